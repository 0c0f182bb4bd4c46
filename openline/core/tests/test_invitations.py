"""Invitation services at the edges the pages rarely reach: an account made meanwhile, the
wrong person accepting, a membership deactivated before the invitation was accepted."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError

from openline.core import invitations
from openline.core.models import Invitation, Membership, User

PASSWORD = "kestrel harbour morning 7"


def _invite(org: Any, alice: Any, email: str = "erin@example.org") -> str:
    _, secret = invitations.invitation_create(
        organization=org, email=email, role="counselor", invited_by_id=alice.pk
    )
    return secret


def test_only_the_secrets_hash_is_stored(org: Any, alice: Any) -> None:
    secret = _invite(org, alice)
    stored = Invitation.objects.get()
    assert len(secret) >= 40 and secret not in stored.token_hash
    assert invitations.invitation_from_secret(secret).pk == stored.pk


def test_an_account_made_meanwhile_must_sign_in_to_accept(org: Any, alice: Any) -> None:
    secret = _invite(org, alice)
    User.objects.create_user(email="erin@example.org", password=PASSWORD)
    with pytest.raises(ValidationError, match="sign in to accept"):
        invitations.invitation_accept_new_person(
            secret=secret, display_name="Erin", password=PASSWORD
        )
    assert not Membership.objects.filter(user__email="erin@example.org").exists()


def test_someone_else_cannot_accept(org: Any, alice: Any, charlie: Any) -> None:
    secret = _invite(org, alice)
    with pytest.raises(ValidationError, match="another address"):
        invitations.invitation_accept_existing(secret=secret, user_id=charlie.pk)
    assert Invitation.objects.get().accepted_at is None


def test_a_member_deactivated_meanwhile_is_not_reactivated_by_accepting(
    org: Any, alice: Any, charlie: Any
) -> None:
    secret = _invite(org, alice, "charlie@example.org")
    Membership.objects.create(organization=org, user=charlie, is_active=False)
    with pytest.raises(ValidationError, match="deactivated"):
        invitations.invitation_accept_existing(secret=secret, user_id=charlie.pk)
    assert not Membership.objects.get(organization=org, user=charlie).is_active


def test_a_used_secret_is_gone(org: Any, alice: Any) -> None:
    secret = _invite(org, alice)
    invitations.invitation_accept_new_person(secret=secret, display_name="Erin", password=PASSWORD)
    with pytest.raises(invitations.InvitationGone):
        invitations.invitation_accept_new_person(
            secret=secret, display_name="Erin", password=PASSWORD
        )
    with pytest.raises(invitations.InvitationGone):
        invitations.invitation_from_secret(secret)

"""Inviting people to an organization by e-mail, and accepting an invitation.

The link carries a secret (secrets.token_urlsafe) of which only the SHA-256 is stored; it
works once, until OPENLINE_INVITATION_DAYS have passed, the invitation is sent again (a new
secret) or withdrawn. Whether the address already has an account (in another organization)
changes nothing the inviting admin sees: only the person following the link learns it."""

from __future__ import annotations

import hashlib
import logging
import secrets
from datetime import timedelta
from functools import partial

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.template.loader import render_to_string
from django.utils import timezone

from openline.core.models import Invitation, Membership, Organization, Role, User
from openline.core.services import audit_record

logger = logging.getLogger(__name__)

ACCEPT_PATH = "/invitations/{secret}/"


class InvitationGone(Exception):
    """The link is unknown, used, withdrawn or expired: all look the same to its holder."""


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _normal_email(email: str) -> str:
    email = User.objects.normalize_email(email.strip()).lower()
    try:
        validate_email(email)
    except ValidationError:
        raise ValidationError({"email": "Enter a valid e-mail address."}) from None
    return email


def accept_url(secret: str) -> str:
    return settings.PUBLIC_URL + ACCEPT_PATH.format(secret=secret)


def _pending(organization_id: int) -> QuerySet[Invitation]:
    return Invitation.objects.filter(
        organization_id=organization_id, accepted_at__isnull=True, withdrawn_at__isnull=True
    )


def _audit(invitation: Invitation, actor_id: int | None, action: str) -> None:
    audit_record(
        organization_id=invitation.organization_id,
        actor_id=actor_id,
        action=action,
        object_type="invitation",
        object_id=invitation.pk,
        detail=f"{invitation.email} as {invitation.get_role_display().lower()}",
    )


def _issue(invitation: Invitation) -> str:
    """Give the invitation a new secret and expiry and send it once committed."""
    secret = secrets.token_urlsafe(32)
    now = timezone.now()
    invitation.token_hash = _hash(secret)
    invitation.sent_at = now
    invitation.expires_at = now + timedelta(days=settings.OPENLINE_INVITATION_DAYS)
    invitation.save()
    # robust: the invitation is saved whatever the mail server says; the admin can resend.
    transaction.on_commit(partial(_send, invitation.pk, secret), robust=True)
    return secret


def _send(invitation_id: int, secret: str) -> None:
    invitation = Invitation.objects.select_related("organization", "invited_by").get(
        pk=invitation_id
    )
    inviter = str(invitation.invited_by) if invitation.invited_by else "An admin"
    organization = invitation.organization.name
    context = {
        "invitation": invitation,
        "inviter": inviter,
        "organization": organization,
        "link": accept_url(secret),
        "days": settings.OPENLINE_INVITATION_DAYS,
    }
    body = render_to_string("core/email/invitation.txt", context)
    subject = f"{inviter} invited you to {organization} on OpenLine"
    send_mail(subject, body, None, [invitation.email])


# --- the organization's side ----------------------------------------------------------------------


@transaction.atomic
def invitation_create(
    *, organization: Organization, email: str, role: str, invited_by_id: int
) -> tuple[Invitation, str]:
    """Invite ``email`` with ``role``; returns the invitation and its secret. An address
    that already has a pending invitation here gets it again, with this role (a new
    secret: the old link stops working). Raises ValidationError keyed by field."""
    email = _normal_email(email)
    if role not in Role.values:
        raise ValidationError({"role": "Choose one of the roles."})
    member = Membership.objects.filter(organization=organization, user__email__iexact=email).first()
    if member is not None and member.is_active:
        raise ValidationError({"email": f"{email} is already a member of this organization."})
    if member is not None:
        raise ValidationError(
            {"email": f"{email} is a deactivated member: reactivate them from the team page."}
        )
    invitation = (
        _pending(organization.pk).select_for_update().filter(email=email).order_by("-id").first()
    )
    action = "member.invitation_resent"
    if invitation is None:
        invitation = Invitation(organization=organization, email=email)
        action = "member.invited"
    invitation.role = role
    invitation.invited_by_id = invited_by_id
    secret = _issue(invitation)
    _audit(invitation, invited_by_id, action)
    return invitation, secret


def _pending_for_update(organization_id: int, invitation_id: int) -> Invitation:
    """Raises Invitation.DoesNotExist for an id of another organization, or one no
    longer pending."""
    return _pending(organization_id).select_for_update().get(pk=invitation_id)


@transaction.atomic
def invitation_resend(*, organization_id: int, invitation_id: int, actor_id: int) -> str:
    """A new secret and a new expiry; the old link stops working. Returns the secret."""
    invitation = _pending_for_update(organization_id, invitation_id)
    invitation.invited_by_id = actor_id
    secret = _issue(invitation)
    _audit(invitation, actor_id, "member.invitation_resent")
    return secret


@transaction.atomic
def invitation_withdraw(*, organization_id: int, invitation_id: int, actor_id: int) -> None:
    invitation = _pending_for_update(organization_id, invitation_id)
    invitation.withdrawn_at = timezone.now()
    invitation.save(update_fields=["withdrawn_at"])
    _audit(invitation, actor_id, "member.invitation_withdrawn")


def invitation_list_pending(*, organization_id: int) -> list[Invitation]:
    """Invitations not yet accepted or withdrawn (expired ones too: they can be resent)."""
    return list(_pending(organization_id).select_related("invited_by").order_by("-sent_at"))


# --- the invited person's side --------------------------------------------------------------------


def invitation_from_secret(secret: str) -> Invitation:
    """The valid invitation this secret opens; raises InvitationGone otherwise."""
    invitation = (
        Invitation.objects.select_related("organization", "invited_by")
        .filter(
            token_hash=_hash(secret),
            accepted_at__isnull=True,
            withdrawn_at__isnull=True,
            expires_at__gt=timezone.now(),
        )
        .first()
    )
    if invitation is None:
        raise InvitationGone
    return invitation


def invitation_account(invitation: Invitation) -> User | None:
    """The account the invited address already has, if any."""
    return User.objects.filter(email__iexact=invitation.email).first()


def _lock_valid(secret: str) -> Invitation:
    invitation = Invitation.objects.select_for_update().filter(token_hash=_hash(secret)).first()
    if (
        invitation is None
        or invitation.accepted_at is not None
        or invitation.withdrawn_at is not None
        or invitation.expires_at <= timezone.now()
    ):
        raise InvitationGone
    return invitation


def _join(invitation: Invitation, user: User) -> Membership:
    membership = Membership.objects.filter(
        organization_id=invitation.organization_id, user=user
    ).first()
    if membership is not None and not membership.is_active:
        raise ValidationError(
            "Your membership of this organization was deactivated: ask an admin to reactivate it."
        )
    if membership is None:
        membership = Membership.objects.create(
            organization_id=invitation.organization_id, user=user, role=invitation.role
        )
    invitation.accepted_at = timezone.now()
    invitation.accepted_by = user
    invitation.save(update_fields=["accepted_at", "accepted_by"])
    _audit(invitation, user.pk, "member.joined")
    return membership


@transaction.atomic
def invitation_accept_new_person(*, secret: str, display_name: str, password: str) -> User:
    """Create the invited person's account with this name and password and make them a
    member with the invitation's role. Raises InvitationGone, or ValidationError keyed by
    field (a password the validators refuse; an address that has an account meanwhile is
    a non-field error)."""
    invitation = _lock_valid(secret)
    display_name = display_name.strip()
    if not display_name:
        raise ValidationError({"display_name": "Enter your name."})
    if invitation_account(invitation) is not None:
        raise ValidationError("This address already has an account: sign in to accept.")
    user = User(email=invitation.email, display_name=display_name[:120])
    try:
        validate_password(password, user)
    except ValidationError as exc:
        raise ValidationError({"password": exc.messages}) from None
    user.set_password(password)
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError:  # the address got an account at this very moment
        raise ValidationError("This address already has an account: sign in to accept.") from None
    _join(invitation, user)
    return user


@transaction.atomic
def invitation_accept_existing(*, secret: str, user_id: int) -> Membership:
    """The signed-in person whose address was invited joins with the invitation's role.
    Raises InvitationGone, or ValidationError when they are someone else."""
    invitation = _lock_valid(secret)
    user = User.objects.get(pk=user_id)
    if user.email.lower() != invitation.email.lower():
        raise ValidationError("This invitation is for another address.")
    return _join(invitation, user)

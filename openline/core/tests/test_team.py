"""Team services: roles, limits, deactivation and the rule that an organization keeps an
active admin."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import close_old_connections, connection, transaction

from openline.core.models import AuditEvent, Membership, User
from openline.core.services import user_create
from openline.core.team import (
    MemberNotFound,
    member_deactivate,
    member_reactivate,
    member_set_limit,
    member_set_role,
    team_update,
)

pytestmark = pytest.mark.django_db


def _m(user: Any) -> Membership:
    return Membership.objects.get(user=user)


def _events(action: str) -> list[tuple[int | None, str, str]]:
    rows = AuditEvent.objects.filter(action=action).order_by("pk")
    return list(rows.values_list("actor_id", "object_id", "detail"))


def test_role_change_is_audited_with_before_and_after(org: Any, alice: Any, bob: Any) -> None:
    member_set_role(
        organization=org, membership_id=_m(bob).pk, role="supervisor", actor_id=alice.pk
    )
    assert _m(bob).role == "supervisor"
    assert _events("member.role_changed") == [(alice.pk, str(bob.pk), "counselor → supervisor")]
    # The same role again changes and records nothing.
    member_set_role(
        organization=org, membership_id=_m(bob).pk, role="supervisor", actor_id=alice.pk
    )
    assert len(_events("member.role_changed")) == 1


def test_unknown_role_and_other_organizations_member_are_refused(
    org: Any, alice: Any, bob: Any, charlie: Any
) -> None:
    with pytest.raises(ValidationError, match="a role is one of"):
        member_set_role(organization=org, membership_id=_m(bob).pk, role="owner", actor_id=1)
    with pytest.raises(MemberNotFound):
        member_set_role(
            organization=org, membership_id=_m(charlie).pk, role="counselor", actor_id=alice.pk
        )
    assert _m(charlie).role == "admin" and _m(bob).role == "counselor"


def test_the_last_active_admin_cannot_be_demoted_or_deactivated(org: Any, alice: Any) -> None:
    with pytest.raises(ValidationError, match="last active admin"):
        member_set_role(
            organization=org, membership_id=_m(alice).pk, role="counselor", actor_id=alice.pk
        )
    with pytest.raises(ValidationError, match="last active admin"):
        member_deactivate(organization=org, membership_id=_m(alice).pk, actor_id=alice.pk)
    assert _m(alice).role == "admin" and _m(alice).is_active
    assert not AuditEvent.objects.filter(action__startswith="member.").exists()


def test_a_deactivated_admin_does_not_count_as_the_other_admin(
    org: Any, alice: Any, bob: Any
) -> None:
    member_set_role(organization=org, membership_id=_m(bob).pk, role="admin", actor_id=alice.pk)
    member_deactivate(organization=org, membership_id=_m(bob).pk, actor_id=alice.pk)
    with pytest.raises(ValidationError, match="last active admin"):
        member_set_role(
            organization=org, membership_id=_m(alice).pk, role="staff", actor_id=alice.pk
        )
    # With a second active admin, either may step down (even themselves).
    member_reactivate(organization=org, membership_id=_m(bob).pk, actor_id=alice.pk)
    member_deactivate(organization=org, membership_id=_m(alice).pk, actor_id=alice.pk)
    assert not _m(alice).is_active and _m(bob).is_active


def test_deactivation_ends_sessions_and_reactivation_restores_the_membership(
    org: Any, alice: Any, bob: Any
) -> None:
    member_set_limit(organization=org, membership_id=_m(bob).pk, limit=7, actor_id=alice.pk)
    hash_before = User.objects.get(pk=bob.pk).get_session_auth_hash()
    member_deactivate(organization=org, membership_id=_m(bob).pk, actor_id=alice.pk)
    bob_now = User.objects.get(pk=bob.pk)
    assert bob_now.session_epoch == bob.session_epoch + 1
    assert bob_now.get_session_auth_hash() != hash_before
    membership = _m(bob)
    assert not membership.is_active and membership.deactivated_at is not None
    with pytest.raises(ValidationError, match="already deactivated"):
        member_deactivate(organization=org, membership_id=membership.pk, actor_id=alice.pk)

    member_reactivate(organization=org, membership_id=membership.pk, actor_id=alice.pk)
    membership = _m(bob)
    assert membership.is_active and membership.deactivated_at is None
    assert (membership.role, membership.max_conversations) == ("counselor", 7)
    with pytest.raises(ValidationError, match="already active"):
        member_reactivate(organization=org, membership_id=membership.pk, actor_id=alice.pk)
    assert _events("member.deactivated") == [(alice.pk, str(bob.pk), "bob@example.org")]
    assert _events("member.reactivated") == [(alice.pk, str(bob.pk), "bob@example.org")]


def test_limit_changes_are_audited_per_person(org: Any, alice: Any, bob: Any) -> None:
    member_set_limit(organization=org, membership_id=_m(bob).pk, limit=7, actor_id=alice.pk)
    member_set_limit(organization=org, membership_id=_m(bob).pk, limit=7, actor_id=alice.pk)
    member_set_limit(organization=org, membership_id=_m(bob).pk, limit=None, actor_id=alice.pk)
    assert [d for _, _, d in _events("member.limit_changed")] == ["default → 7", "7 → default"]
    with pytest.raises(ValidationError, match="between 1 and 50"):
        member_set_limit(organization=org, membership_id=_m(bob).pk, limit=51, actor_id=alice.pk)


def test_team_update_hands_the_admin_role_over_in_one_save(
    org: Any, alice: Any, bob: Any, sue: Any
) -> None:
    team_update(
        organization=org,
        actor_id=alice.pk,
        default_limit=4,
        limits={_m(bob).pk: 2, _m(sue).pk: None},
        roles={_m(alice).pk: "supervisor", _m(bob).pk: "admin"},
    )
    assert (_m(alice).role, _m(bob).role) == ("supervisor", "admin")
    assert _m(bob).conversation_limit == 2
    assert [d for _, o, d in _events("member.limit_changed")] == ["default → 2"]


def test_team_update_refusing_the_last_admin_changes_nothing(
    org: Any, alice: Any, bob: Any
) -> None:
    with pytest.raises(ValidationError) as refused:
        team_update(
            organization=org,
            actor_id=alice.pk,
            default_limit=4,
            limits={_m(bob).pk: 2},
            roles={_m(alice).pk: "counselor", _m(bob).pk: "supervisor"},
        )
    assert list(refused.value.message_dict) == [f"role_{_m(alice).pk}"]
    org.refresh_from_db()
    assert org.max_conversations_per_counselor == 5
    assert (_m(alice).role, _m(bob).role, _m(bob).max_conversations) == (
        "admin",
        "counselor",
        None,
    )
    assert not AuditEvent.objects.exists()


class _AdminRowsHeld:
    """Another transaction holding the admins' rows (PostgreSQL), so that both demotions
    below are under way before either can go on."""

    def __init__(self, organization: Any) -> None:
        self.organization = organization
        self.holding, self.release = threading.Event(), threading.Event()
        self.thread = threading.Thread(target=self._hold)

    def _hold(self) -> None:
        try:
            with transaction.atomic():
                list(
                    Membership.objects.select_for_update().filter(
                        organization=self.organization, role="admin"
                    )
                )
                self.holding.set()
                self.release.wait(10)
        finally:
            close_old_connections()

    def __enter__(self) -> _AdminRowsHeld:
        self.thread.start()
        assert self.holding.wait(5)
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.thread.join(10)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("action", ["demote", "deactivate"])
def test_two_admins_removing_each_other_at_once_leave_one_admin(org: Any, action: str) -> None:
    """Each of two admins demotes (or deactivates) the other at the same moment: exactly
    one succeeds, the other is told the organization would have no admin left."""
    admins = [
        user_create(organization=org, email=f"a{i}@example.org", role="admin", password="pw-12345")
        for i in range(2)
    ]
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def remove(actor: Membership, target: Membership) -> None:
        try:
            barrier.wait(timeout=10)
            if action == "demote":
                member_set_role(
                    organization=org,
                    membership_id=target.pk,
                    role="counselor",
                    actor_id=actor.user_id,
                )
            else:
                member_deactivate(organization=org, membership_id=target.pk, actor_id=actor.user_id)
            outcomes.append("done")
        except ValidationError as exc:
            outcomes.append("refused" if "last active admin" in str(exc) else str(exc))
        finally:
            close_old_connections()

    threads = [
        threading.Thread(target=remove, args=(admins[0], admins[1])),
        threading.Thread(target=remove, args=(admins[1], admins[0])),
    ]
    if connection.vendor == "postgresql":
        with _AdminRowsHeld(org):
            for thread in threads:
                thread.start()
            # Both are waiting on the held rows (without the admins' lock they would have
            # counted two admins already and both go through once released).
            threading.Event().wait(0.5)
    else:  # SQLite: write transactions begin IMMEDIATE, one at a time
        for thread in threads:
            thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes) == ["done", "refused"]
    left = Membership.objects.filter(organization=org, role="admin", is_active=True)
    assert left.count() == 1

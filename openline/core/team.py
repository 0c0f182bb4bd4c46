"""The team: members' roles and limits, deactivation and reactivation.

An organization always keeps an active admin. Every change that could take away the last
one (a demotion, a deactivation) first locks the organization's active admin memberships,
in id order, so two admins demoting each other at the same moment are serialized: the
second sees that only one admin is left and is refused. What deactivation does to other
apps' data (shifts, conversations, sockets) is the console's ``offboarding``; this module
changes the membership and ends the person's sessions."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from openline.core.models import Membership, Organization, Role, User
from openline.core.services import (
    MAX_CONVERSATION_LIMIT,
    audit_record,
    limit_label,
    organization_set_conversation_limits,
)

LAST_ADMIN = "{name} is the organization's last active admin: make someone else an admin first"


class MemberNotFound(ValidationError):
    """No such membership in this organization (pages answer 404)."""


def _lock_admins(organization: Organization) -> list[int]:
    """Lock the active admin memberships (in id order, so that concurrent callers queue
    instead of deadlocking) and return their ids. Call inside a transaction."""
    admins = Membership.objects.select_for_update().filter(
        organization=organization, role=Role.ADMIN, is_active=True
    )
    return list(admins.order_by("pk").values_list("pk", flat=True))


def _locked_member(organization: Organization, membership_id: int) -> Membership:
    member = (
        Membership.objects.select_for_update(of=("self",))
        .select_related("user")
        .filter(pk=membership_id, organization=organization)
        .first()
    )
    if member is None:
        raise MemberNotFound("no such member")
    return member


def _keep_an_admin(member: Membership, admins: list[int]) -> None:
    if member.is_active and member.role == Role.ADMIN and admins == [member.pk]:
        raise ValidationError(LAST_ADMIN.format(name=member.user))


def _audit(member: Membership, actor_id: int, action: str, detail: str = "") -> None:
    audit_record(
        organization_id=member.organization_id,
        actor_id=actor_id,
        action=action,
        object_type="user",
        object_id=member.user_id,
        detail=detail,
    )


@transaction.atomic
def member_set_role(
    *, organization: Organization, membership_id: int, role: str, actor_id: int
) -> Membership:
    """Change a member's role (audited "counselor → supervisor"). The last active admin
    cannot be demoted."""
    if role not in Role.values:
        raise ValidationError(f"a role is one of {', '.join(Role.values)}")
    admins = _lock_admins(organization)
    member = _locked_member(organization, membership_id)
    if member.role == role:
        return member
    _keep_an_admin(member, admins)
    before = member.role
    member.role = role
    member.save(update_fields=["role"])
    _audit(member, actor_id, "member.role_changed", f"{before} → {role}")
    return member


def check_limit(value: int | None) -> None:
    if value is not None and not 1 <= value <= MAX_CONVERSATION_LIMIT:
        raise ValidationError(f"limits must be between 1 and {MAX_CONVERSATION_LIMIT}")


@transaction.atomic
def member_set_limit(
    *, organization: Organization, membership_id: int, limit: int | None, actor_id: int
) -> Membership:
    """A member's own limit of active conversations (None: the organization's default).
    Audited when it changes ("default → 7")."""
    check_limit(limit)
    member = _locked_member(organization, membership_id)
    if member.max_conversations == limit:
        return member
    before = member.max_conversations
    member.max_conversations = limit
    member.save(update_fields=["max_conversations"])
    _audit(
        member, actor_id, "member.limit_changed", f"{limit_label(before)} → {limit_label(limit)}"
    )
    return member


@transaction.atomic
def member_deactivate(
    *, organization: Organization, membership_id: int, actor_id: int
) -> Membership:
    """Take a member out of the organization, keeping their history: the membership stops
    counting (sign-in, alerts, assignment) and every session of theirs ends at its next
    request. The last active admin cannot be deactivated, not even by themselves."""
    admins = _lock_admins(organization)
    member = _locked_member(organization, membership_id)
    if not member.is_active:
        raise ValidationError(f"{member.user} is already deactivated")
    _keep_an_admin(member, admins)
    member.is_active = False
    member.deactivated_at = timezone.now()
    member.save(update_fields=["is_active", "deactivated_at"])
    User.objects.filter(pk=member.user_id).update(session_epoch=F("session_epoch") + 1)
    _audit(member, actor_id, "member.deactivated", member.user.email)
    return member


@transaction.atomic
def member_reactivate(
    *, organization: Organization, membership_id: int, actor_id: int
) -> Membership:
    """Let a deactivated member back in, with their role and limit as they were. Shifts and
    conversations taken from them at deactivation do not come back."""
    member = _locked_member(organization, membership_id)
    if member.is_active:
        raise ValidationError(f"{member.user} is already active")
    member.is_active = True
    member.deactivated_at = None
    member.save(update_fields=["is_active", "deactivated_at"])
    _audit(member, actor_id, "member.reactivated", member.user.email)
    return member


@transaction.atomic
def team_update(
    *,
    organization: Organization,
    actor_id: int,
    default_limit: int,
    limits: dict[int, int | None],
    roles: dict[int, str],
) -> None:
    """The team page's one form: the default limit, each active member's own limit and
    role (keyed by membership id). All or nothing: a refused change (the last admin's
    demotion) raises ValidationError keyed ``role_<id>`` / ``limit_<id>`` and changes nothing.
    Promotions are applied before demotions, so handing the admin role over in one save
    works."""
    errors: dict[str, list[str]] = {}
    organization_set_conversation_limits(
        organization=organization, actor_id=actor_id, default=default_limit, overrides=limits
    )
    ordered = sorted(roles.items(), key=lambda item: item[1] != Role.ADMIN)
    for membership_id, role in ordered:
        try:
            member_set_role(
                organization=organization, membership_id=membership_id, role=role, actor_id=actor_id
            )
        except MemberNotFound:
            raise
        except ValidationError as exc:
            errors[f"role_{membership_id}"] = exc.messages
    if errors:
        raise ValidationError(errors)

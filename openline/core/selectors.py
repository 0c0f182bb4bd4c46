"""Reads about organizations and their members."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.contrib.sessions.backends.base import SessionBase
from django.db.models import Max

from openline.core.models import AuditEvent, Membership

# The organization a person chose to work in, when they belong to several (the session
# remembers it; the console's switcher changes it). Unset or no longer valid: their first.
ORGANIZATION_SESSION_KEY = "openline.organization_id"


def active_memberships(user_id: int) -> list[Membership]:
    """Every organization this person may work in now, oldest membership first."""
    return list(
        Membership.objects.select_related("organization")
        .filter(user_id=user_id, is_active=True)
        .order_by("id")
    )


def active_organization_ids(user_id: int) -> list[int]:
    """The organizations this person is an active member of, in id order."""
    return list(
        Membership.objects.filter(user_id=user_id, is_active=True)
        .order_by("organization_id")
        .values_list("organization_id", flat=True)
    )


def current_membership(user_id: int, organization_id: int | None) -> Membership | None:
    """The active membership in ``organization_id`` (the session's choice) or, when that
    is unset or no longer active, the person's first active one."""
    return choose_membership(active_memberships(user_id), organization_id)


def choose_membership(
    memberships: list[Membership], organization_id: int | None
) -> Membership | None:
    """The one in ``organization_id`` among a person's active memberships, else the first."""
    for membership in memberships:
        if membership.organization_id == organization_id:
            return membership
    return memberships[0] if memberships else None


def session_organization_id(session: SessionBase | dict[str, object] | None) -> int | None:
    raw = session.get(ORGANIZATION_SESSION_KEY) if session is not None else None
    return raw if isinstance(raw, int) else None


@dataclass(frozen=True)
class TeamMember:
    membership: Membership
    second_factor: bool  # an authenticator app set up (read only here)
    last_sign_in: datetime | None  # the latest auth.sign_in in this organization


def team_members(*, organization_id: int) -> list[TeamMember]:
    """Everyone in the organization for the team page, active members first, then by name:
    three queries however many people."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    members = list(
        Membership.objects.filter(organization_id=organization_id)
        .select_related("user")
        .order_by("-is_active", "user__display_name", "user__email")
    )
    user_ids = [m.user_id for m in members]
    with_app = set(
        TOTPDevice.objects.filter(user_id__in=user_ids, confirmed=True).values_list(
            "user_id", flat=True
        )
    )
    sign_ins = dict(
        AuditEvent.objects.filter(
            organization_id=organization_id, action="auth.sign_in", actor_id__in=user_ids
        )
        .values("actor_id")
        .annotate(last=Max("created_at"))
        .values_list("actor_id", "last")
    )
    return [TeamMember(m, m.user_id in with_app, sign_ins.get(m.user_id)) for m in members]

"""Reads about organizations and their members."""

from __future__ import annotations

from django.contrib.sessions.backends.base import SessionBase

from openline.core.models import Membership

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


def current_membership(user_id: int, organization_id: int | None) -> Membership | None:
    """The active membership in ``organization_id`` (the session's choice) or, when that
    is unset or no longer active, the person's first active one."""
    memberships = active_memberships(user_id)
    for membership in memberships:
        if membership.organization_id == organization_id:
            return membership
    return memberships[0] if memberships else None


def session_organization_id(session: SessionBase | dict[str, object] | None) -> int | None:
    raw = session.get(ORGANIZATION_SESSION_KEY) if session is not None else None
    return raw if isinstance(raw, int) else None

"""What the shift services share: the error type, membership and role checks, the
shift's row lock, the audit entry and the live push of an inbox's state."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from openline.availability.models import Shift, ShiftKind
from openline.availability.selectors import inbox_online
from openline.core.models import Membership
from openline.core.realtime import publish_on_commit
from openline.core.services import audit_record


class ShiftError(ValueError):
    """A refused shift action; ``code`` for programs (``forbidden``, ``not_found``,
    ``invalid``, ``full``, ``duplicate``, ``over``), the text for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def member(organization_id: int, user_id: int, *, lock: bool = False) -> Membership:
    """The person's active membership. ``lock``: hold its row until commit, so that a
    sign-up and the person's deactivation (which takes their sign-ups away) cannot cross."""
    memberships = Membership.objects.filter(
        organization_id=organization_id, user_id=user_id, is_active=True
    )
    membership = (memberships.select_for_update() if lock else memberships).first()
    if membership is None:
        raise ShiftError("not_found", "that person is not a member of this organization")
    return membership


def require_manager(organization_id: int, actor_id: int) -> None:
    if not member(organization_id, actor_id).can_manage:
        raise ShiftError("forbidden", "only admins and supervisors can do that")


def publish_state(organization_id: int, number_id: int) -> None:
    publish_on_commit(
        organization_id=organization_id,
        event={
            "type": "inbox.availability",
            "number_id": number_id,
            "online": inbox_online(number_id),
        },
    )


def publish_if_current(shift: Shift, start: datetime, end: datetime) -> None:
    """Push the inbox's state when the change touched an occurrence covering now."""
    if shift.kind == ShiftKind.NORMAL and shift.number_id and start <= timezone.now() < end:
        publish_state(shift.organization_id, shift.number_id)


def locked_shift(organization_id: int, shift_id: int) -> Shift:
    shift = (
        Shift.objects.select_for_update()
        .filter(pk=shift_id, organization_id=organization_id)
        .first()
    )
    if shift is None:
        raise ShiftError("not_found", "there is no such shift")
    return shift


def audit(organization_id: int, actor_id: int, action: str, shift_id: int) -> None:
    audit_record(
        organization_id=organization_id,
        actor_id=actor_id,
        action=action,
        object_type="shift",
        object_id=shift_id,
    )

"""Writes: shifts, sign-ups, the inbox switch and calendar feed tokens.

Admins and supervisors create, cancel and delete shifts, assign people and flip the
switch; everyone signs themselves up and withdraws. Sign-ups are per occurrence (a date of
a recurring shift); a place limit holds per occurrence, checked under the shift's row lock.
Admins and supervisors also edit each inbox's auto-responses (messaging's
``services.autoreply`` sends them). Every change is written to the audit log. When a change
alters who is on shift right now, the inbox's computed state is pushed to consoles after
commit."""

from __future__ import annotations

from openline.availability.services.common import ShiftError
from openline.availability.services.feeds import calendar_feed_get, calendar_feed_rotate
from openline.availability.services.responses import inbox_responses_set
from openline.availability.services.shifts import (
    shift_cancel_occurrence,
    shift_create,
    shift_delete,
)
from openline.availability.services.signups import (
    SERIES_WEEKS,
    SeriesSignUp,
    UncoveredShift,
    shift_sign_up,
    shift_sign_up_series,
    shift_withdraw,
    signups_remove_member,
)
from openline.availability.services.switch import availability_set

__all__ = [
    "SERIES_WEEKS",
    "SeriesSignUp",
    "ShiftError",
    "UncoveredShift",
    "availability_set",
    "calendar_feed_get",
    "calendar_feed_rotate",
    "inbox_responses_set",
    "shift_cancel_occurrence",
    "shift_create",
    "shift_delete",
    "shift_sign_up",
    "shift_sign_up_series",
    "shift_withdraw",
    "signups_remove_member",
]

"""Console pages of the shift calendar: the week, a new shift, cancelling or deleting one,
sign-up and withdraw buttons, the inbox switch, "My shifts", the private iCalendar feed
(no sign-in: its unguessable token is the key) and each inbox's auto-responses (the
offline messages report beside them is the console's: it reads conversations).

Thin views: every rule (who may, places, validity) is the services'. Lookups are scoped to
the member's organization, so another organization's ids are simply not found (404)."""

from __future__ import annotations

from openline.availability.views.mine import feed, feed_rotate, my_shifts
from openline.availability.views.responses import inbox_responses
from openline.availability.views.shifts import (
    shift_delete,
    shift_new,
    shift_sign_up,
    shift_withdraw,
)
from openline.availability.views.week import inbox_state, inbox_switch, shifts_week

__all__ = [
    "feed",
    "feed_rotate",
    "inbox_responses",
    "inbox_state",
    "inbox_switch",
    "my_shifts",
    "shift_delete",
    "shift_new",
    "shift_sign_up",
    "shift_withdraw",
    "shifts_week",
]

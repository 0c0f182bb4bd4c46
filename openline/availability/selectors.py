"""Reads: occurrences in a window, who is on, the online rule and the next opening.

The online rule needs no recurrence expansion: a staffed occurrence always has a sign-up
row, and sign-ups carry their occurrence's UTC bounds. ``inbox_online`` is therefore one
indexed query, cheap enough for every inbound text and chat start."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Exists, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from openline.availability.models import (
    AvailabilityMode,
    CalendarFeed,
    InboxAvailability,
    Shift,
    ShiftKind,
    ShiftSignUp,
)
from openline.availability.recurrence import Occurrence, expand_all
from openline.core.models import Membership, User
from openline.providers.models import Number

FEED_PAST = timedelta(days=30)
FEED_LIMIT = 500


def shifts_touching(
    *,
    organization_id: int,
    start: datetime,
    end: datetime,
    number_id: int | None = None,
    kind: str | None = None,
) -> QuerySet[Shift]:
    """Shifts that may have an occurrence overlapping [start, end). With ``number_id``,
    on-call shifts that cover every inbox are included."""
    shifts = Shift.objects.filter(organization_id=organization_id, first_start__lt=end).filter(
        Q(last_end__isnull=True) | Q(last_end__gt=start)
    )
    if number_id is not None:
        shifts = shifts.filter(Q(number_id=number_id) | Q(number__isnull=True))
    if kind is not None:
        shifts = shifts.filter(kind=kind)
    return shifts.select_related("number").order_by("pk")


def occurrences(
    *,
    organization_id: int,
    start: datetime,
    end: datetime,
    number_id: int | None = None,
    kind: str | None = None,
) -> list[Occurrence]:
    """Every occurrence overlapping [start, end), expanded in each shift's time zone,
    ordered by start."""
    shifts = shifts_touching(
        organization_id=organization_id, start=start, end=end, number_id=number_id, kind=kind
    )
    return expand_all(shifts, start, end)


@dataclass
class Slot:
    """An occurrence with the people signed up for it."""

    occurrence: Occurrence
    signups: list[ShiftSignUp] = field(default_factory=list)

    @property
    def shift(self) -> Shift:
        return self.occurrence.shift

    @property
    def start(self) -> datetime:
        return self.occurrence.start

    @property
    def end(self) -> datetime:
        return self.occurrence.end

    @property
    def taken(self) -> int:
        return len(self.signups)

    @property
    def full(self) -> bool:
        return self.taken >= self.shift.places

    @property
    def user_ids(self) -> set[int]:
        return {s.user_id for s in self.signups}


def schedule(
    *, organization_id: int, start: datetime, end: datetime, number_id: int | None = None
) -> list[Slot]:
    """Occurrences in [start, end) with their sign-ups: two queries."""
    found = occurrences(organization_id=organization_id, start=start, end=end, number_id=number_id)
    slots = {o.key: Slot(o) for o in found}
    signups = ShiftSignUp.objects.filter(
        organization_id=organization_id,
        shift_id__in={o.shift.pk for o in found},
        occurrence_start__lt=end,
        occurrence_end__gt=start,
    ).select_related("user")
    for signup in signups.order_by("created_at", "pk"):
        slot = slots.get((signup.shift_id, signup.occurrence_start))
        if slot is not None:
            slot.signups.append(signup)
    return list(slots.values())


def _covering(at: datetime) -> Q:
    return Q(occurrence_start__lte=at, occurrence_end__gt=at)


def who_is_on(
    number: Number, at: datetime | None = None, kind: str = ShiftKind.NORMAL
) -> list[User]:
    """People signed up for a shift of ``kind`` covering ``at`` in this inbox (for on-call,
    also the organization's on-call shifts without an inbox). One query."""
    at = at or timezone.now()
    inbox = Q(shift__number_id=number.pk)
    if kind == ShiftKind.ONCALL:
        inbox |= Q(shift__number__isnull=True)
    signups = ShiftSignUp.objects.filter(
        _covering(at), inbox, organization_id=number.organization_id, shift__kind=kind
    )
    users = {s.user_id: s.user for s in signups.select_related("user").order_by("created_at", "pk")}
    return list(users.values())


def _staffed_now(at: datetime) -> Exists:
    return Exists(
        ShiftSignUp.objects.filter(
            _covering(at), shift__number=OuterRef("pk"), shift__kind=ShiftKind.NORMAL
        )
    )


def _forced_offline() -> Exists:
    return Exists(
        InboxAvailability.objects.filter(number=OuterRef("pk"), mode=AvailabilityMode.OFFLINE)
    )


def inboxes_online(number_ids: list[int], at: datetime | None = None) -> dict[int, bool]:
    """The online rule for many inboxes in one query (the alert sweep): active, the switch
    on automatic, and a normal shift with someone signed up covering ``at``."""
    at = at or timezone.now()
    rows = (
        Number.objects.filter(pk__in=number_ids)
        .annotate(staffed=_staffed_now(at), forced_offline=_forced_offline())
        .values_list("pk", "is_active", "staffed", "forced_offline")
    )
    online = {pk: active and staffed and not off for pk, active, staffed, off in rows}
    return {pk: online.get(pk, False) for pk in number_ids}


def inbox_online(number_id: int, at: datetime | None = None) -> bool:
    """Whether the inbox takes conversations at ``at`` (default now). One query."""
    return inboxes_online([number_id], at)[number_id]


def _next_start(after: datetime) -> Subquery:
    return Subquery(
        ShiftSignUp.objects.filter(
            shift__number=OuterRef("pk"),
            shift__kind=ShiftKind.NORMAL,
            occurrence_end__gt=after,
        )
        .order_by("occurrence_start")
        .values("occurrence_start")[:1]
    )


def next_opening(number_id: int, after: datetime | None = None) -> datetime | None:
    """When the inbox is next online by its shifts: the start of the next staffed normal
    occurrence (``after`` itself if one covers it). None when nothing staffed lies ahead,
    the inbox is inactive or its switch forces it offline (nobody knows until when)."""
    after = after or timezone.now()
    row = (
        Number.objects.filter(pk=number_id)
        .annotate(next_start=_next_start(after), forced_offline=_forced_offline())
        .values_list("is_active", "next_start", "forced_offline")
        .first()
    )
    if row is None or not row[0] or row[2] or row[1] is None:
        return None
    return max(row[1], after)


@dataclass
class InboxState:
    number: Number
    availability: InboxAvailability | None
    online: bool
    on_shift: list[User]
    next_opening: datetime | None

    @property
    def forced_offline(self) -> bool:
        return self.availability is not None and self.availability.mode == "offline"


def inbox_states(*, organization_id: int, at: datetime | None = None) -> list[InboxState]:
    """Each active inbox's switch, computed state, who is on and the next opening: two
    queries for all inboxes."""
    at = at or timezone.now()
    numbers = list(
        Number.objects.filter(organization_id=organization_id, is_active=True)
        .select_related("availability__changed_by")
        .annotate(next_start=_next_start(at))
        .order_by("pk")
    )
    on_shift: dict[int, dict[int, User]] = defaultdict(dict)
    covering = ShiftSignUp.objects.filter(
        _covering(at),
        organization_id=organization_id,
        shift__kind=ShiftKind.NORMAL,
        shift__number__in=[n.pk for n in numbers],
    )
    for signup in covering.select_related("user", "shift").order_by("created_at", "pk"):
        on_shift[signup.shift.number_id or 0][signup.user_id] = signup.user
    return [_state(n, list(on_shift[n.pk].values()), at) for n in numbers]


def _state(number: Number, people: list[User], at: datetime) -> InboxState:
    availability: InboxAvailability | None = getattr(number, "availability", None)
    forced = availability is not None and availability.mode == AvailabilityMode.OFFLINE
    start: datetime | None = number.next_start  # type: ignore[attr-defined]
    return InboxState(
        number=number,
        availability=availability,
        online=bool(people) and not forced,
        on_shift=people,
        next_opening=None if forced or start is None else max(start, at),
    )


def upcoming_shifts(
    *, organization_id: int, user_id: int, after: datetime | None = None, limit: int = 100
) -> list[ShiftSignUp]:
    """A person's sign-ups that have not ended yet, soonest first."""
    after = after or timezone.now()
    signups = ShiftSignUp.objects.filter(
        organization_id=organization_id, user_id=user_id, occurrence_end__gt=after
    )
    return list(signups.select_related("shift__number").order_by("occurrence_start", "pk")[:limit])


def feed_for_token(token: str) -> CalendarFeed | None:
    """The feed of a private token, while its owner is still an active member. One query."""
    if not token:
        return None
    member = Membership.objects.filter(
        organization_id=OuterRef("organization_id"), user_id=OuterRef("user_id"), is_active=True
    )
    return (
        CalendarFeed.objects.filter(Exists(member), token=token)
        .select_related("organization")
        .first()
    )


def feed_signups(feed: CalendarFeed, *, now: datetime | None = None) -> list[ShiftSignUp]:
    """What a person's calendar shows: their sign-ups from a month back on."""
    since = (now or timezone.now()) - FEED_PAST
    signups = ShiftSignUp.objects.filter(
        organization_id=feed.organization_id, user_id=feed.user_id, occurrence_end__gt=since
    )
    return list(signups.select_related("shift__number").order_by("occurrence_start")[:FEED_LIMIT])


def member_signups_not_over(
    *, organization_id: int, user_id: int, since: datetime
) -> QuerySet[ShiftSignUp]:
    """A person's sign-ups in this organization not over at ``since`` (the one under way
    included): what a member leaving the team is taken off."""
    return ShiftSignUp.objects.filter(
        organization_id=organization_id, user_id=user_id, occurrence_end__gt=since
    )

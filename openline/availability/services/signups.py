"""Signing up for and withdrawing from occurrences. Everyone acts for themselves; admins
and supervisors also for other members. Places are counted per occurrence under the
shift's row lock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.db import IntegrityError, transaction
from django.db.models import Count
from django.utils import timezone

from openline.availability.models import Shift, ShiftSignUp
from openline.availability.recurrence import expand, find, to_local, to_utc
from openline.availability.selectors import member_signups_not_over
from openline.availability.services.common import (
    ShiftError,
    audit,
    locked_shift,
    member,
    publish_if_current,
    require_manager,
)


def _check_on_behalf(organization_id: int, actor_id: int, user_id: int) -> None:
    """Anyone acts for themselves; admins and supervisors also for other members."""
    if user_id == actor_id:
        member(organization_id, actor_id, lock=True)
        return
    require_manager(organization_id, actor_id)
    member(organization_id, user_id, lock=True)


@transaction.atomic
def shift_sign_up(
    *,
    organization_id: int,
    actor_id: int,
    shift_id: int,
    occurrence_start: datetime,
    user_id: int | None = None,
) -> ShiftSignUp:
    """Sign ``user_id`` (default: the actor) up for the occurrence starting at
    ``occurrence_start`` (UTC). Refused when it is over, full, or they are already on it."""
    user_id = user_id or actor_id
    _check_on_behalf(organization_id, actor_id, user_id)
    shift = locked_shift(organization_id, shift_id)
    occurrence = find(shift, occurrence_start)
    if occurrence is None:
        raise ShiftError("not_found", "the shift does not take place then")
    if occurrence.end <= timezone.now():
        raise ShiftError("over", "that shift is over")
    taken = shift.signups.filter(occurrence_start=occurrence.start)
    if taken.filter(user_id=user_id).exists():
        raise ShiftError("duplicate", "already signed up for that shift")
    if taken.count() >= shift.places:
        raise ShiftError("full", "that shift is full")
    try:
        with transaction.atomic():
            signup = ShiftSignUp.objects.create(
                organization_id=organization_id,
                shift=shift,
                occurrence_start=occurrence.start,
                occurrence_end=occurrence.end,
                user_id=user_id,
                signed_up_by_id=actor_id,
            )
    except IntegrityError as exc:
        raise ShiftError("duplicate", "already signed up for that shift") from exc
    audit(organization_id, actor_id, "shift.sign_up", shift_id)
    publish_if_current(shift, occurrence.start, occurrence.end)
    return signup


SERIES_WEEKS = 12


@dataclass(frozen=True)
class SeriesSignUp:
    created: list[ShiftSignUp]
    full: list[datetime]  # dates skipped because every place was taken


@transaction.atomic
def shift_sign_up_series(
    *,
    organization_id: int,
    actor_id: int,
    shift_id: int,
    occurrence_start: datetime,
    user_id: int | None = None,
    weeks: int = SERIES_WEEKS,
) -> SeriesSignUp:
    """Sign up for every date of a shift from ``occurrence_start`` on, for ``weeks`` weeks:
    one sign-up row per date (so each can be withdrawn alone). Dates already taken by the
    person are left as they are; full dates are skipped and reported."""
    user_id = user_id or actor_id
    _check_on_behalf(organization_id, actor_id, user_id)
    shift = locked_shift(organization_id, shift_id)
    first = find(shift, occurrence_start)
    if first is None:
        raise ShiftError("not_found", "the shift does not take place then")
    # Weeks of local time: across a DST change, N weeks later is the same local hour.
    tz = ZoneInfo(shift.timezone)
    window_end = to_utc(to_local(first.start, tz) + timedelta(weeks=max(1, min(weeks, 52))), tz)
    dates = expand(shift, max(first.start, timezone.now()), window_end)
    taken = dict(
        shift.signups.filter(occurrence_start__in=[o.start for o in dates])
        .values_list("occurrence_start")
        .annotate(n=Count("pk"))
    )
    mine = set(
        shift.signups.filter(user_id=user_id, occurrence_start__gte=first.start).values_list(
            "occurrence_start", flat=True
        )
    )
    todo = [o for o in dates if o.start not in mine and taken.get(o.start, 0) < shift.places]
    created = ShiftSignUp.objects.bulk_create(
        ShiftSignUp(
            organization_id=organization_id,
            shift=shift,
            occurrence_start=o.start,
            occurrence_end=o.end,
            user_id=user_id,
            signed_up_by_id=actor_id,
        )
        for o in todo
    )
    if created:
        audit(organization_id, actor_id, "shift.sign_up_series", shift_id)
        publish_if_current(shift, todo[0].start, todo[0].end)
    done = {o.start for o in todo}
    full = [o.start for o in dates if o.start not in mine and o.start not in done]
    return SeriesSignUp(created=created, full=full)


@transaction.atomic
def shift_withdraw(
    *,
    organization_id: int,
    actor_id: int,
    shift_id: int,
    occurrence_start: datetime,
    user_id: int | None = None,
) -> None:
    """Take ``user_id`` (default: the actor) off one occurrence, until it has ended."""
    user_id = user_id or actor_id
    _check_on_behalf(organization_id, actor_id, user_id)
    shift = locked_shift(organization_id, shift_id)
    signup = shift.signups.filter(occurrence_start=occurrence_start, user_id=user_id).first()
    if signup is None:
        raise ShiftError("not_found", "not signed up for that shift")
    if signup.occurrence_end <= timezone.now():
        raise ShiftError("over", "that shift is over")
    signup.delete()
    audit(organization_id, actor_id, "shift.withdraw", shift_id)
    publish_if_current(shift, signup.occurrence_start, signup.occurrence_end)


@dataclass(frozen=True)
class UncoveredShift:
    """An occurrence left with nobody signed up."""

    shift_id: int
    title: str
    inbox: str  # the inbox's label, or "every inbox" for an on-call shift without one
    start: datetime
    end: datetime


def _inbox_label(shift: Shift) -> str:
    return shift.number.label if shift.number is not None else "every inbox"


@transaction.atomic
def signups_remove_member(
    *, organization_id: int, user_id: int, since: datetime, actor_id: int
) -> list[UncoveredShift]:
    """Take a person off every sign-up of theirs in this organization that is not over at
    ``since``, the one under way included (they leave the team: they are on it no longer).
    Returns the occurrences that now have nobody, soonest first. Audited per shift as the
    actor's ``shift.withdraw``."""
    mine = member_signups_not_over(organization_id=organization_id, user_id=user_id, since=since)
    shift_ids = sorted(set(mine.values_list("shift_id", flat=True)))
    if not shift_ids:
        return []
    # The shifts' row locks, in id order: a sign-up counting places waits for this.
    locked = Shift.objects.select_for_update(of=("self",)).filter(
        pk__in=shift_ids, organization_id=organization_id
    )
    shifts = {s.pk: s for s in locked.select_related("number").order_by("pk")}
    taken = list(mine.filter(shift_id__in=list(shifts)))
    ShiftSignUp.objects.filter(pk__in=[s.pk for s in taken]).delete()
    still = set(
        ShiftSignUp.objects.filter(
            shift_id__in=list(shifts), occurrence_start__in={s.occurrence_start for s in taken}
        ).values_list("shift_id", "occurrence_start")
    )
    for shift_id in shifts:
        audit(organization_id, actor_id, "shift.withdraw", shift_id)
    for signup in taken:
        publish_if_current(shifts[signup.shift_id], signup.occurrence_start, signup.occurrence_end)
    uncovered = [
        UncoveredShift(
            shift_id=s.shift_id,
            title=str(shifts[s.shift_id]),
            inbox=_inbox_label(shifts[s.shift_id]),
            start=s.occurrence_start,
            end=s.occurrence_end,
        )
        for s in taken
        if (s.shift_id, s.occurrence_start) not in still
    ]
    return sorted(uncovered, key=lambda u: (u.start, u.shift_id))

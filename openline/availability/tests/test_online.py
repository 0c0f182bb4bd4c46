"""The online rule: the switch on automatic and a normal shift with someone signed up
covering the moment. Also who is on, the next opening, and what each costs in queries."""

from __future__ import annotations

from datetime import date, time

import pytest

from openline.availability.models import AvailabilityMode, InboxAvailability
from openline.availability.selectors import (
    inbox_online,
    inboxes_online,
    next_opening,
    who_is_on,
)
from openline.availability.services import ShiftError, availability_set
from openline.availability.tests.support import sign_up, utc
from openline.core.models import AuditEvent
from openline.providers.models import Number

# The org is in Chicago (UTC-6 until 9 March 2025): 09:00–17:00 local is 15:00–23:00 UTC.
MONDAY_9 = utc(2025, 3, 3, 15)
MONDAY_17 = utc(2025, 3, 3, 23)


@pytest.fixture
def staffed(make_shift, bob, clock):
    shift = make_shift(rrule="FREQ=DAILY")
    sign_up(shift, bob, MONDAY_9)
    return shift


def test_staffed_normal_shift_puts_the_inbox_online_for_exactly_its_hours(staffed, sandbox_number):
    number = sandbox_number.pk
    assert inbox_online(number, at=MONDAY_9)
    assert inbox_online(number, at=utc(2025, 3, 3, 22, 59))
    assert not inbox_online(number, at=utc(2025, 3, 3, 14, 59))
    assert not inbox_online(number, at=MONDAY_17)  # the end is not covered
    # Tuesday's occurrence exists but nobody signed up for it.
    assert not inbox_online(number, at=utc(2025, 3, 4, 16))


def test_unstaffed_shift_and_no_shift_are_offline(make_shift, sandbox_number, clock):
    make_shift()
    assert not inbox_online(sandbox_number.pk, at=MONDAY_9)
    assert not inbox_online(999_999, at=MONDAY_9)  # unknown inbox


def test_on_call_shift_alone_does_not_open_the_inbox(make_shift, bob, sue, sandbox_number, clock):
    on_call = make_shift(kind="oncall")
    everywhere = make_shift(kind="oncall", number=None)
    sign_up(on_call, bob, MONDAY_9)
    sign_up(everywhere, sue, MONDAY_9)
    assert not inbox_online(sandbox_number.pk, at=MONDAY_9)
    assert who_is_on(sandbox_number, MONDAY_9, "oncall") == [bob, sue]
    assert who_is_on(sandbox_number, MONDAY_9) == []


def test_forced_offline_wins_and_records_who_and_when(
    staffed, sandbox_number, sue, clock, published, django_capture_on_commit_callbacks
):
    clock.set(utc(2025, 3, 3, 16))
    assert inbox_online(sandbox_number.pk)
    with django_capture_on_commit_callbacks(execute=True):
        availability_set(
            organization_id=sandbox_number.organization_id,
            actor_id=sue.pk,
            number_id=sandbox_number.pk,
            mode=AvailabilityMode.OFFLINE,
            note="Surge: phones only",
        )
    assert not inbox_online(sandbox_number.pk)
    switch = InboxAvailability.objects.get(number=sandbox_number)
    assert (switch.changed_by, switch.changed_at, switch.note) == (
        sue,
        utc(2025, 3, 3, 16),
        "Surge: phones only",
    )
    assert AuditEvent.objects.filter(action="inbox.availability.offline", actor=sue).exists()
    assert next_opening(sandbox_number.pk) is None  # nobody knows when it comes back

    with django_capture_on_commit_callbacks(execute=True):
        availability_set(
            organization_id=sandbox_number.organization_id,
            actor_id=sue.pk,
            number_id=sandbox_number.pk,
            mode=AvailabilityMode.AUTOMATIC,
        )
    assert inbox_online(sandbox_number.pk)
    events = [e for e in published if e["type"] == "inbox.availability"]
    assert [(e["number_id"], e["online"]) for e in events] == [
        (sandbox_number.pk, False),
        (sandbox_number.pk, True),
    ]


def test_counselors_cannot_flip_the_switch(sandbox_number, bob, charlie):
    with pytest.raises(ShiftError) as refused:
        availability_set(
            organization_id=sandbox_number.organization_id,
            actor_id=bob.pk,
            number_id=sandbox_number.pk,
            mode="offline",
        )
    assert refused.value.code == "forbidden"
    with pytest.raises(ShiftError) as foreign:  # an admin elsewhere
        availability_set(
            organization_id=charlie.memberships.get().organization_id,
            actor_id=charlie.pk,
            number_id=sandbox_number.pk,
            mode="offline",
        )
    assert foreign.value.code == "not_found"
    assert not InboxAvailability.objects.exists()


def test_inactive_inbox_is_offline(staffed, sandbox_number):
    Number.objects.filter(pk=sandbox_number.pk).update(is_active=False)
    assert not inbox_online(sandbox_number.pk, at=MONDAY_9)
    assert next_opening(sandbox_number.pk, MONDAY_9) is None


def test_overlapping_shifts_cover_together(make_shift, bob, dora, sandbox_number, clock):
    day = make_shift(start=time(9), minutes=8 * 60)
    evening = make_shift(start=time(12), minutes=8 * 60)  # 12:00–20:00, overlaps 12–17
    sign_up(day, bob, MONDAY_9)
    sign_up(evening, dora, utc(2025, 3, 3, 18))
    sign_up(evening, bob, utc(2025, 3, 3, 18))  # bob is on both: counted once
    assert who_is_on(sandbox_number, utc(2025, 3, 3, 19)) == [bob, dora]
    assert who_is_on(sandbox_number, utc(2025, 3, 4, 0)) == [dora, bob]
    assert inbox_online(sandbox_number.pk, at=utc(2025, 3, 4, 1))  # 19:00 local
    assert not inbox_online(sandbox_number.pk, at=utc(2025, 3, 4, 2))  # 20:00 local


def test_other_organizations_shifts_do_not_count(
    make_shift, other_org, other_number, charlie, sandbox_number, clock
):
    theirs = make_shift(organization=other_org, actor=charlie, number=other_number)
    everywhere = make_shift(organization=other_org, actor=charlie, number=None, kind="oncall")
    sign_up(theirs, charlie, theirs.first_start)
    sign_up(everywhere, charlie, everywhere.first_start)
    assert inbox_online(other_number.pk, at=theirs.first_start)
    assert not inbox_online(sandbox_number.pk, at=theirs.first_start)
    assert who_is_on(sandbox_number, everywhere.first_start, "oncall") == []


def test_next_opening_is_the_next_staffed_start(make_shift, bob, sandbox_number, clock):
    shift = make_shift(rrule="FREQ=DAILY")
    sign_up(shift, bob, utc(2025, 3, 5, 15))  # Wednesday; Monday and Tuesday unstaffed
    assert next_opening(sandbox_number.pk, MONDAY_9) == utc(2025, 3, 5, 15)
    # While it is staffed the inbox is open now.
    assert next_opening(sandbox_number.pk, utc(2025, 3, 5, 16)) == utc(2025, 3, 5, 16)
    assert next_opening(sandbox_number.pk, utc(2025, 3, 5, 23)) is None


def test_next_opening_across_the_spring_change_is_nine_local(
    org, make_shift, bob, sandbox_number, clock
):
    org.timezone = "America/New_York"
    org.save()
    shift = make_shift(day=date(2025, 3, 7), rrule="FREQ=DAILY")
    sign_up(shift, bob, utc(2025, 3, 10, 13))  # Monday 09:00 EDT
    assert next_opening(sandbox_number.pk, utc(2025, 3, 7, 22)) == utc(2025, 3, 10, 13)


def test_next_opening_ignores_on_call(make_shift, bob, sandbox_number, clock):
    sign_up(make_shift(kind="oncall"), bob, MONDAY_9)
    assert next_opening(sandbox_number.pk, utc(2025, 3, 3)) is None


def test_the_rule_costs_one_query(
    staffed, sandbox_number, org, django_assert_max_num_queries, clock
):
    with django_assert_max_num_queries(1):
        assert inbox_online(sandbox_number.pk, at=MONDAY_9)
    with django_assert_max_num_queries(1):
        assert next_opening(sandbox_number.pk, utc(2025, 3, 3)) == MONDAY_9
    with django_assert_max_num_queries(1):
        assert len(who_is_on(sandbox_number, MONDAY_9)) == 1
    many = Number.objects.bulk_create(
        Number(organization=org, provider="sandbox", e164=f"+1202555{i:04d}", webhook_key=f"k{i}")
        for i in range(100)
    )
    ids = [sandbox_number.pk, *(n.pk for n in many)]
    with django_assert_max_num_queries(1):
        states = inboxes_online(ids, at=MONDAY_9)
    assert states[sandbox_number.pk] and sum(states.values()) == 1

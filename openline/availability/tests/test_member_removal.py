"""A member leaving the team: their sign-ups from now on go, the occurrences left with
nobody are reported, and a deactivated member cannot sign up again."""

from __future__ import annotations

from datetime import date, time

import pytest

from openline.availability.models import ShiftSignUp
from openline.availability.selectors import feed_for_token
from openline.availability.services import (
    ShiftError,
    calendar_feed_get,
    signups_remove_member,
)
from openline.availability.tests.support import sign_up, utc
from openline.core.models import AuditEvent, Membership

MONDAY_9 = utc(2025, 3, 3, 15)  # 09:00 in Chicago
TUESDAY_9 = utc(2025, 3, 4, 15)
WEDNESDAY_9 = utc(2025, 3, 5, 15)


def test_removal_takes_current_and_future_sign_ups_and_lists_uncovered_dates(
    make_shift, org, alice, bob, dora, other_org, charlie, other_number, clock
):
    daily = make_shift(rrule="FREQ=DAILY", places=2, title="Mornings")
    oncall = make_shift(kind="oncall", number=None, day=date(2025, 3, 4), start=time(20, 0))
    clock.set(utc(2025, 3, 3, 14))  # Monday 08:00 local, before the first occurrence
    for start in (MONDAY_9, TUESDAY_9, WEDNESDAY_9):
        sign_up(daily, bob, start)
    sign_up(daily, dora, TUESDAY_9)  # Tuesday keeps someone
    sign_up(oncall, bob, utc(2025, 3, 5, 2))
    clock.set(utc(2025, 3, 3, 18))  # Monday 12:00: Monday's occurrence is under way

    uncovered = signups_remove_member(
        organization_id=org.pk, user_id=bob.pk, since=clock(), actor_id=alice.pk
    )

    assert [(u.title, u.inbox, u.start) for u in uncovered] == [
        ("Mornings", "Main line", MONDAY_9),  # under way: he is on it no longer
        ("On call / support shift", "every inbox", utc(2025, 3, 5, 2)),
        ("Mornings", "Main line", WEDNESDAY_9),
    ]
    assert list(ShiftSignUp.objects.values_list("user_id", "occurrence_start")) == [
        (dora.pk, TUESDAY_9)
    ]
    withdrawn = AuditEvent.objects.filter(action="shift.withdraw", actor=alice)
    assert sorted(withdrawn.values_list("object_id", flat=True)) == sorted(
        [str(daily.pk), str(oncall.pk)]
    )


def test_past_sign_ups_stay_and_nothing_to_remove_is_an_empty_list(
    make_shift, org, alice, bob, clock
):
    shift = make_shift(rrule="FREQ=DAILY")
    sign_up(shift, bob, MONDAY_9)
    clock.set(utc(2025, 3, 4, 12))  # Monday's is over
    assert (
        signups_remove_member(
            organization_id=org.pk, user_id=bob.pk, since=clock(), actor_id=alice.pk
        )
        == []
    )
    assert ShiftSignUp.objects.filter(user=bob).count() == 1


def test_removal_stays_in_its_organization(
    make_shift, org, alice, bob, other_org, charlie, other_number, clock
):
    Membership.objects.create(organization=other_org, user=bob, role="counselor")
    theirs = make_shift(organization=other_org, actor=charlie, number=other_number)
    sign_up(theirs, bob, utc(2025, 3, 3, 14))  # 09:00 in New York
    signups_remove_member(organization_id=org.pk, user_id=bob.pk, since=clock(), actor_id=alice.pk)
    assert ShiftSignUp.objects.filter(user=bob, organization=other_org).count() == 1


def test_a_deactivated_member_cannot_sign_up_nor_be_signed_up(make_shift, org, alice, bob, clock):
    shift = make_shift()
    feed = calendar_feed_get(organization_id=org.pk, user_id=bob.pk)
    assert feed_for_token(feed.token) is not None
    Membership.objects.filter(user=bob).update(is_active=False)
    for actor in (bob, alice):
        with pytest.raises(ShiftError) as refused:
            sign_up(shift, bob, MONDAY_9, actor=actor)
        assert refused.value.code == "not_found"
    assert not ShiftSignUp.objects.exists()
    assert feed_for_token(feed.token) is None  # the private calendar stops too

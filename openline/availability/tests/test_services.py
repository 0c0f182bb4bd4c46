"""Creating, cancelling and deleting shifts; signing up and withdrawing: places, who may
act for whom, other organizations, the audit log and the live push."""

from __future__ import annotations

from datetime import date, time

import pytest

from openline.availability.models import Shift, ShiftSignUp
from openline.availability.selectors import occurrences
from openline.availability.services import (
    ShiftError,
    shift_cancel_occurrence,
    shift_delete,
    shift_withdraw,
)
from openline.availability.tests.support import sign_up, utc
from openline.core.models import AuditEvent

MONDAY_9 = utc(2025, 3, 3, 15)  # 09:00 in Chicago
TUESDAY_9 = utc(2025, 3, 4, 15)


def _code(call) -> str:
    with pytest.raises(ShiftError) as refused:
        call()
    return refused.value.code


def test_places_are_a_limit_per_occurrence(make_shift, bob, dora, sue, clock):
    shift = make_shift(places=2, rrule="FREQ=DAILY")
    sign_up(shift, bob, MONDAY_9)
    sign_up(shift, dora, MONDAY_9)
    assert _code(lambda: sign_up(shift, sue, MONDAY_9)) == "full"
    sign_up(shift, sue, TUESDAY_9)  # another date has its own places
    assert _code(lambda: sign_up(shift, bob, MONDAY_9)) == "duplicate"
    assert ShiftSignUp.objects.filter(occurrence_start=MONDAY_9).count() == 2


def test_sign_up_needs_a_real_occurrence_that_is_not_over(make_shift, bob, clock):
    shift = make_shift(rrule="FREQ=WEEKLY;BYDAY=MO")
    assert _code(lambda: sign_up(shift, bob, TUESDAY_9)) == "not_found"
    assert _code(lambda: sign_up(shift, bob, utc(2025, 3, 3, 16))) == "not_found"
    clock.set(utc(2025, 3, 3, 22))  # 16:00 local: in progress, still possible
    signup = sign_up(shift, bob, MONDAY_9)
    assert (signup.occurrence_start, signup.occurrence_end) == (MONDAY_9, utc(2025, 3, 3, 23))
    clock.set(utc(2025, 3, 3, 23))
    assert _code(lambda: shift_withdraw_self(shift, bob, MONDAY_9)) == "over"
    assert _code(lambda: sign_up(shift, bob, MONDAY_9)) == "over"


def shift_withdraw_self(shift, user, start, actor=None):
    return shift_withdraw(
        organization_id=shift.organization_id,
        actor_id=(actor or user).pk,
        shift_id=shift.pk,
        occurrence_start=start,
        user_id=user.pk,
    )


def test_counselors_sign_only_themselves_up_and_off(make_shift, bob, dora, sue, alice, clock):
    shift = make_shift(places=5)
    assert _code(lambda: sign_up(shift, dora, MONDAY_9, actor=bob)) == "forbidden"
    by_sue = sign_up(shift, dora, MONDAY_9, actor=sue)
    assert by_sue.signed_up_by == sue
    sign_up(shift, bob, MONDAY_9, actor=alice)
    assert _code(lambda: shift_withdraw_self(shift, dora, MONDAY_9, actor=bob)) == "forbidden"
    shift_withdraw_self(shift, bob, MONDAY_9)
    shift_withdraw_self(shift, dora, MONDAY_9, actor=sue)
    assert not ShiftSignUp.objects.exists()
    assert _code(lambda: shift_withdraw_self(shift, bob, MONDAY_9)) == "not_found"
    actions = list(
        AuditEvent.objects.filter(object_type="shift")
        .order_by("pk")
        .values_list("action", flat=True)
    )
    assert actions == ["shift.create", *["shift.sign_up"] * 2, *["shift.withdraw"] * 2]


def test_only_admins_and_supervisors_make_and_remove_shifts(make_shift, bob, sue, clock):
    assert _code(lambda: make_shift(actor=bob)) == "forbidden"
    shift = make_shift(actor=sue, rrule="FREQ=DAILY")
    call = {"organization_id": shift.organization_id, "shift_id": shift.pk}
    assert _code(lambda: shift_delete(actor_id=bob.pk, **call)) == "forbidden"
    assert (
        _code(lambda: shift_cancel_occurrence(actor_id=bob.pk, occurrence_start=MONDAY_9, **call))
        == "forbidden"
    )
    assert Shift.objects.filter(pk=shift.pk).exists()


def test_shift_shape_is_checked(make_shift, other_number, clock):
    assert _code(lambda: make_shift(number=None)) == "invalid"  # normal needs an inbox
    assert make_shift(number=None, kind="oncall").number is None
    assert _code(lambda: make_shift(number=other_number)) == "not_found"
    assert _code(lambda: make_shift(places=0)) == "invalid"
    assert _code(lambda: make_shift(minutes=5)) == "invalid"
    assert _code(lambda: make_shift(kind="nap")) == "invalid"
    assert _code(lambda: make_shift(rrule="FREQ=MINUTELY")) == "invalid"


def test_shift_takes_the_organizations_time_zone(org, make_shift, clock):
    org.timezone = "Europe/London"
    org.save()
    shift = make_shift(day=date(2025, 3, 31), start=time(9), rrule="FREQ=DAILY;COUNT=2")
    assert shift.timezone == "Europe/London"
    assert (shift.first_start, shift.last_end) == (utc(2025, 3, 31, 8), utc(2025, 4, 1, 16))


def test_cancelling_a_date_removes_it_and_its_sign_ups(make_shift, org, bob, alice, clock):
    shift = make_shift(rrule="FREQ=DAILY;COUNT=3")
    sign_up(shift, bob, MONDAY_9)
    sign_up(shift, bob, TUESDAY_9)
    shift_cancel_occurrence(
        organization_id=org.pk, actor_id=alice.pk, shift_id=shift.pk, occurrence_start=MONDAY_9
    )
    found = occurrences(organization_id=org.pk, start=utc(2025, 3, 3), end=utc(2025, 3, 10))
    assert [o.start for o in found] == [TUESDAY_9, utc(2025, 3, 5, 15)]
    assert list(ShiftSignUp.objects.values_list("occurrence_start", flat=True)) == [TUESDAY_9]
    assert _code(lambda: sign_up(shift, bob, MONDAY_9)) == "not_found"


def test_cancelling_a_one_off_deletes_it(make_shift, org, alice, bob, clock):
    shift = make_shift()
    sign_up(shift, bob, MONDAY_9)
    shift_cancel_occurrence(
        organization_id=org.pk, actor_id=alice.pk, shift_id=shift.pk, occurrence_start=MONDAY_9
    )
    assert not Shift.objects.exists() and not ShiftSignUp.objects.exists()


def test_deleting_a_shift_takes_its_sign_ups(make_shift, org, alice, bob, clock):
    shift = make_shift(rrule="FREQ=DAILY")
    sign_up(shift, bob, TUESDAY_9)
    shift_delete(organization_id=org.pk, actor_id=alice.pk, shift_id=shift.pk)
    assert not ShiftSignUp.objects.exists()
    assert AuditEvent.objects.filter(action="shift.delete", object_id=str(shift.pk)).exists()


def test_outsiders_cannot_touch_another_organizations_shifts(
    make_shift, org, other_org, bob, charlie, clock
):
    shift = make_shift()
    as_charlie = {"actor_id": charlie.pk, "shift_id": shift.pk, "occurrence_start": MONDAY_9}
    from openline.availability.services import shift_sign_up

    # Through his own organization the shift does not exist ...
    assert _code(lambda: shift_sign_up(organization_id=other_org.pk, **as_charlie)) == "not_found"
    # ... and in alice's he is not a member.
    assert _code(lambda: shift_sign_up(organization_id=org.pk, **as_charlie)) == "not_found"
    assert (
        _code(lambda: shift_sign_up(organization_id=org.pk, user_id=bob.pk, **as_charlie))
        == "not_found"
    )
    assert (
        _code(
            lambda: shift_delete(
                organization_id=other_org.pk, actor_id=charlie.pk, shift_id=shift.pk
            )
        )
        == "not_found"
    )
    # An admin cannot put someone from another organization on a shift either.
    alice_id = shift.created_by_id
    assert (
        _code(
            lambda: shift_sign_up(
                organization_id=org.pk,
                actor_id=alice_id,
                shift_id=shift.pk,
                occurrence_start=MONDAY_9,
                user_id=charlie.pk,
            )
        )
        == "not_found"
    )
    assert not ShiftSignUp.objects.exists()


def test_changes_to_the_current_shift_are_pushed_live(
    make_shift, bob, sandbox_number, clock, published, django_capture_on_commit_callbacks
):
    shift = make_shift(rrule="FREQ=DAILY")
    clock.set(utc(2025, 3, 3, 16))
    with django_capture_on_commit_callbacks(execute=True):
        sign_up(shift, bob, TUESDAY_9)  # tomorrow: today's state is unchanged
    assert published == []
    with django_capture_on_commit_callbacks(execute=True):
        sign_up(shift, bob, MONDAY_9)
    with django_capture_on_commit_callbacks(execute=True):
        shift_withdraw_self(shift, bob, MONDAY_9)
    assert [(e["type"], e["number_id"], e["online"]) for e in published] == [
        ("inbox.availability", sandbox_number.pk, True),
        ("inbox.availability", sandbox_number.pk, False),
    ]


def test_series_sign_up_takes_every_free_date_for_the_weeks(make_shift, bob, dora, sue, clock):
    from openline.availability.services import shift_sign_up_series

    shift = make_shift(rrule="FREQ=WEEKLY;BYDAY=MO", places=1)
    sign_up(shift, dora, utc(2025, 3, 17, 14))  # 17 March is full (Chicago is on CDT by then)
    sign_up(shift, bob, utc(2025, 3, 24, 14))  # bob already has 24 March
    series = shift_sign_up_series(
        organization_id=shift.organization_id,
        actor_id=sue.pk,
        shift_id=shift.pk,
        occurrence_start=MONDAY_9,
        user_id=bob.pk,
        weeks=4,
    )
    assert [s.occurrence_start for s in series.created] == [MONDAY_9, utc(2025, 3, 10, 14)]
    assert series.full == [utc(2025, 3, 17, 14)]
    mine = ShiftSignUp.objects.filter(user=bob).order_by("occurrence_start")
    assert [s.occurrence_start.day for s in mine] == [3, 10, 24]
    assert {s.signed_up_by for s in series.created} == {sue}
    # Each date stays its own sign-up: withdrawing one leaves the rest.
    shift_withdraw_self(shift, bob, utc(2025, 3, 10, 14))
    assert ShiftSignUp.objects.filter(user=bob).count() == 2


def test_series_sign_up_for_others_needs_a_manager(make_shift, bob, dora, clock):
    from openline.availability.services import shift_sign_up_series

    shift = make_shift(rrule="FREQ=DAILY")
    call = {"organization_id": shift.organization_id, "shift_id": shift.pk}
    assert (
        _code(
            lambda: shift_sign_up_series(
                actor_id=bob.pk, user_id=dora.pk, occurrence_start=MONDAY_9, **call
            )
        )
        == "forbidden"
    )
    assert not ShiftSignUp.objects.exists()


def test_occurrences_selector_across_new_york_changes(org, make_shift, clock):
    org.timezone = "America/New_York"
    org.save()
    make_shift(day=date(2025, 3, 3), rrule="FREQ=WEEKLY;BYDAY=FR,MO")
    ended = make_shift(day=date(2025, 1, 6), rrule="FREQ=DAILY;COUNT=3")  # long over
    spring = occurrences(organization_id=org.pk, start=utc(2025, 3, 7), end=utc(2025, 3, 11))
    assert [o.start for o in spring] == [utc(2025, 3, 7, 14), utc(2025, 3, 10, 13)]
    autumn = occurrences(organization_id=org.pk, start=utc(2025, 10, 31), end=utc(2025, 11, 4))
    assert [o.start for o in autumn] == [utc(2025, 10, 31, 13), utc(2025, 11, 3, 14)]
    assert ended.last_end == utc(2025, 1, 8, 22)
    assert all(o.shift.pk != ended.pk for o in spring + autumn)


def test_view_signs_up_for_a_series(make_shift, bob, bob_client, clock):
    shift = make_shift(rrule="FREQ=DAILY;COUNT=3", places=1)
    response = bob_client.post(
        f"/shifts/{shift.pk}/sign-up",
        {"occurrence": MONDAY_9.isoformat(), "series": "1"},
        follow=True,
    )
    assert "Signed up for 3 dates." in response.content.decode()
    assert ShiftSignUp.objects.filter(user=bob).count() == 3

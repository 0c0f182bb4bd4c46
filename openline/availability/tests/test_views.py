"""The console pages: the week, sign-up buttons, the new-shift form, cancelling, the inbox
switch and "My shifts"; every page and action checked against an outsider."""

from __future__ import annotations

from datetime import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from openline.availability.models import InboxAvailability, Shift, ShiftSignUp
from openline.availability.tests.support import sign_up, utc

MONDAY_9 = utc(2025, 3, 3, 15)  # 09:00 in Chicago
WEEK = "/shifts/?week=2025-03-05"


def _html(response) -> str:
    return " ".join(response.content.decode().split())


@pytest.fixture
def shift(make_shift, clock):
    return make_shift(rrule="FREQ=WEEKLY;BYDAY=MO,WE", title="Day line")


def test_week_shows_each_days_occurrences_in_local_time(shift, bob, dora, bob_client):
    sign_up(shift, dora, MONDAY_9)
    response = bob_client.get(WEEK)
    assert response.status_code == 200
    html = _html(response)
    assert "Week of Monday 3 March 2025" in html
    assert html.count(f'data-shift="{shift.pk}"') == 2  # Monday and Wednesday
    assert "09:00–17:00" in html and "Day line" in html
    assert "1 / 2" in html and "Dora" in html
    assert 'aria-current="page">Shifts' in html
    assert "Sign up" in html and "New shift" not in html  # bob is a counselor


def test_week_filters_by_inbox_and_pages_by_week(shift, bob_client, org, sandbox_number):
    from openline.providers.services import number_add

    other = number_add(organization=org, provider="sandbox", e164="+12025550111", name="Youth")
    page = _html(bob_client.get(f"{WEEK}&inbox={other.pk}"))
    assert f'data-shift="{shift.pk}"' not in page
    page = _html(bob_client.get(f"{WEEK}&inbox={sandbox_number.pk}"))
    assert f'data-shift="{shift.pk}"' in page
    assert "?week=2025-03-10" in page and "?week=2025-02-24" in page
    assert "Week of Monday 3 March" in _html(bob_client.get("/shifts/?week=nonsense"))


def test_week_view_queries_do_not_grow_with_shifts(
    make_shift, org, alice, bob, dora, sue, sue_client, clock, django_assert_max_num_queries
):
    def page_queries() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert sue_client.get(WEEK).status_code == 200
        return len(queries)

    make_shift(rrule="FREQ=DAILY")
    few = page_queries()
    for hour in range(8):
        extra = make_shift(start=time(10 + hour), minutes=60, rrule="FREQ=DAILY", places=3)
        for person in (bob, dora, sue):
            sign_up(extra, person, extra.first_start)
    assert page_queries() == few
    with django_assert_max_num_queries(12):
        sue_client.get(WEEK)


def test_sign_up_and_withdraw_buttons(shift, bob, bob_client):
    form = {"occurrence": MONDAY_9.isoformat(), "next": WEEK}
    response = bob_client.post(f"/shifts/{shift.pk}/sign-up", form)
    assert response.status_code == 302 and response["Location"] == WEEK
    assert ShiftSignUp.objects.get().user == bob
    page = _html(bob_client.get(WEEK))
    assert "Withdraw" in page and "You" in page
    bob_client.post(f"/shifts/{shift.pk}/withdraw", form)
    assert not ShiftSignUp.objects.exists()


def test_a_full_shift_says_so(shift, bob, dora, sue, bob_client):
    shift.places = 1
    shift.save()
    sign_up(shift, dora, MONDAY_9)
    form = {"occurrence": MONDAY_9.isoformat(), "next": WEEK}
    response = bob_client.post(f"/shifts/{shift.pk}/sign-up", form, follow=True)
    assert "That shift is full" in _html(response)
    assert ShiftSignUp.objects.count() == 1


def test_foreign_next_url_is_not_followed(shift, bob_client):
    form = {"occurrence": MONDAY_9.isoformat(), "next": "https://evil.example/"}
    response = bob_client.post(f"/shifts/{shift.pk}/sign-up", form)
    assert response["Location"] == "/shifts/"


def test_supervisors_assign_and_remove_others_counselors_cannot(
    shift, bob, dora, sue_client, bob_client
):
    form = {"occurrence": MONDAY_9.isoformat(), "user": dora.pk}
    assert bob_client.post(f"/shifts/{shift.pk}/sign-up", form).status_code == 403
    assert sue_client.post(f"/shifts/{shift.pk}/sign-up", form).status_code == 302
    assert ShiftSignUp.objects.get().user == dora
    assert "Assign" in _html(sue_client.get(WEEK))
    assert bob_client.post(f"/shifts/{shift.pk}/withdraw", form).status_code == 403
    assert sue_client.post(f"/shifts/{shift.pk}/withdraw", form).status_code == 302
    assert not ShiftSignUp.objects.exists()


def _new(client, **fields):
    form = {
        "number": "",
        "kind": "normal",
        "title": "",
        "start_date": "2025-03-03",
        "start_time": "09:00",
        "end_time": "17:00",
        "places": "2",
        "repeat": "none",
        "interval": "1",
        "ends": "never",
        "until": "",
        "count": "",
    }
    return client.post("/shifts/new", {**form, **fields})


def test_new_shift_form_builds_the_rule(sue_client, sandbox_number, clock):
    assert sue_client.get("/shifts/new").status_code == 200
    inbox = str(sandbox_number.pk)
    response = _new(
        sue_client, number=inbox, repeat="weekly", weekdays=["MO", "WE"], ends="count", count="4"
    )
    assert response.status_code == 302
    weekly = Shift.objects.get()
    assert weekly.rrule == "FREQ=WEEKLY;COUNT=4;BYDAY=MO,WE"
    assert (weekly.start_time, weekly.duration_minutes) == (time(9), 480)
    assert response["Location"] == f"/shifts/?week=2025-03-03&inbox={sandbox_number.pk}"

    _new(sue_client, number=inbox, repeat="daily", interval="2", ends="until", until="2025-03-31")
    assert Shift.objects.last().rrule == "FREQ=DAILY;INTERVAL=2;UNTIL=20250331T235959"
    _new(sue_client, number=inbox, start_time="22:00", end_time="06:00")
    overnight = Shift.objects.last()
    assert (overnight.rrule, overnight.duration_minutes) == ("", 480)
    _new(sue_client, kind="oncall", repeat="weekly")  # every inbox; weekly on its own day
    assert Shift.objects.last().rrule == "FREQ=WEEKLY;BYDAY=MO"


def test_new_shift_form_errors(sue_client, sandbox_number, bob_client, clock):
    response = _new(sue_client, number=str(sandbox_number.pk), repeat="daily", ends="until")
    assert response.status_code == 422 and "Choose the last date" in _html(response)
    response = _new(sue_client)  # a normal shift without an inbox
    assert response.status_code == 422 and "staffs one inbox" in _html(response)
    assert bob_client.get("/shifts/new").status_code == 403
    assert _new(bob_client, number=str(sandbox_number.pk)).status_code == 403
    assert not Shift.objects.exists()


def test_cancel_one_date_or_delete_the_series(shift, alice_client, bob, clock):
    sign_up(shift, bob, MONDAY_9)
    url = f"/shifts/{shift.pk}/delete?occurrence={MONDAY_9.isoformat()}"
    page = alice_client.get(url.replace("+", "%2B"))
    assert page.status_code == 200 and "1 signed up" in _html(page)
    alice_client.post(f"/shifts/{shift.pk}/delete", {"occurrence": MONDAY_9.isoformat()})
    shift.refresh_from_db()
    assert shift.exdates == ["2025-03-03T09:00:00"] and not ShiftSignUp.objects.exists()
    alice_client.post(f"/shifts/{shift.pk}/delete", {})
    assert not Shift.objects.exists()


def test_inbox_switch_and_state(shift, bob, sue, sue_client, bob_client, clock, sandbox_number):
    sign_up(shift, bob, MONDAY_9)
    clock.set(utc(2025, 3, 3, 9))  # 03:00 local
    state = _html(bob_client.get("/shifts/state"))
    assert "Offline" in state and "no one on shift; next opening Mon 3 Mar 09:00" in state
    assert "Take offline" not in state  # counselors see, do not switch
    clock.set(utc(2025, 3, 3, 16))
    # Hours later: a sign-in left idle that long has ended, so both sign in again.
    bob_client.force_login(bob)
    sue_client.force_login(sue)
    assert "Online now</span> — bob@example.org on shift" in _html(bob_client.get("/shifts/state"))
    switch = f"/shifts/inbox/{sandbox_number.pk}/switch"
    assert bob_client.post(switch, {"mode": "offline"}).status_code == 403
    response = sue_client.post(switch, {"mode": "offline", "note": "Storm"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    html = _html(response)
    assert "switched offline" in html and "set by Sue, Mon 3 Mar 10:00" in html and "Storm" in html
    assert InboxAvailability.objects.get().changed_by == sue
    sue_client.post(switch, {"mode": "automatic"})
    assert InboxAvailability.objects.get().mode == "automatic"


def test_my_shifts_lists_mine_and_the_feed_address(shift, bob, dora, bob_client, clock):
    sign_up(shift, bob, MONDAY_9)
    sign_up(shift, dora, utc(2025, 3, 5, 15))
    html = _html(bob_client.get("/shifts/mine/"))
    assert "Mon 3 Mar 2025, 09:00–17:00" in html and "Wed 5 Mar" not in html
    assert "/shifts/feed/" in html and ".ics" in html


def test_outsider_gets_nothing_of_another_organization(
    shift, bob, charlie_client, sandbox_number, clock
):
    sign_up(shift, bob, MONDAY_9)
    own = charlie_client.get(WEEK)
    assert own.status_code == 200
    assert "Main line" not in _html(own) and "bob@example.org" not in _html(own)
    assert "Main line" not in _html(charlie_client.get("/shifts/state"))
    form = {"occurrence": MONDAY_9.isoformat()}
    assert charlie_client.post(f"/shifts/{shift.pk}/sign-up", form).status_code == 404
    assert charlie_client.post(
        f"/shifts/{shift.pk}/withdraw", {**form, "user": bob.pk}
    ).status_code in (
        403,
        404,
    )
    assert charlie_client.get(f"/shifts/{shift.pk}/delete").status_code == 404
    assert charlie_client.post(f"/shifts/{shift.pk}/delete", form).status_code == 404
    switch = f"/shifts/inbox/{sandbox_number.pk}/switch"
    assert charlie_client.post(switch, {"mode": "offline"}).status_code == 404
    response = _new(charlie_client, number=str(sandbox_number.pk))
    assert response.status_code == 422  # not one of his inboxes
    assert Shift.objects.count() == 1 and ShiftSignUp.objects.count() == 1
    assert not InboxAvailability.objects.exists()


def test_pages_need_a_signed_in_member(client, shift):
    for url in ("/shifts/", "/shifts/mine/", "/shifts/new", "/shifts/state"):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/login/")
    assert client.post(f"/shifts/{shift.pk}/sign-up", {}).status_code == 302
    assert ShiftSignUp.objects.count() == 0


def test_bad_occurrence_value_is_not_found(shift, bob_client):
    for value in ("", "yesterday", "2025-03-03T15:00:00"):  # the last has no offset
        assert (
            bob_client.post(f"/shifts/{shift.pk}/sign-up", {"occurrence": value}).status_code == 404
        )


def test_new_shift_defaults_to_the_week_shown(sue_client, clock):
    page = _html(sue_client.get("/shifts/new?date=2025-04-07"))
    assert 'value="2025-04-07"' in page


def test_delete_page_does_not_link_to_another_site(shift, alice_client):
    page = _html(alice_client.get(f"/shifts/{shift.pk}/delete?next=javascript:alert(1)"))
    assert "javascript:" not in page and 'href="/shifts/"' in page

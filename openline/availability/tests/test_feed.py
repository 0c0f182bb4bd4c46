"""The private iCalendar feed: valid iCalendar with the owner's shifts only, reached by
its token alone, and dead once rotated or once the person leaves the organization."""

from __future__ import annotations

import icalendar
import pytest

from openline.availability.models import CalendarFeed
from openline.availability.services import calendar_feed_get
from openline.availability.tests.support import sign_up, utc
from openline.core.models import AuditEvent, Membership

MONDAY_9 = utc(2025, 3, 3, 15)
WEDNESDAY_9 = utc(2025, 3, 5, 15)


@pytest.fixture
def shifts(make_shift, bob, dora, clock):
    normal = make_shift(rrule="FREQ=WEEKLY;BYDAY=MO,WE", title="Days")
    on_call = make_shift(kind="oncall", number=None)
    sign_up(normal, bob, MONDAY_9)
    sign_up(normal, dora, MONDAY_9)
    sign_up(normal, dora, WEDNESDAY_9)
    sign_up(on_call, bob, MONDAY_9)
    return normal, on_call


def _feed_url(user) -> str:
    org_id = Membership.objects.get(user=user).organization_id
    return f"/shifts/feed/{calendar_feed_get(organization_id=org_id, user_id=user.pk).token}.ics"


def test_feed_is_icalendar_with_my_shifts(client, shifts, bob):
    normal, on_call = shifts
    response = client.get(_feed_url(bob))  # no sign-in
    assert response.status_code == 200
    assert response["Content-Type"] == "text/calendar; charset=utf-8"
    calendar = icalendar.Calendar.from_ical(response.content)
    events = sorted(calendar.walk("VEVENT"), key=lambda e: str(e["summary"]))
    assert [str(e["summary"]) for e in events] == [
        "All inboxes — On call / support shift",
        "Main line — Normal shift: Days",
    ]
    main = events[1]
    assert main.decoded("dtstart") == MONDAY_9
    assert main.decoded("dtend") == utc(2025, 3, 3, 23)
    assert str(main["uid"]) == f"shift-{normal.pk}-20250303T150000Z@openline"
    assert len({str(e["uid"]) for e in events}) == 2
    assert str(calendar["x-wr-calname"]) == "Riverside Crisis Line: my shifts"


def test_feed_shows_no_one_else(client, shifts, bob, dora):
    body = client.get(_feed_url(bob)).content.decode()
    assert "dora" not in body.lower() and "bob@" not in body
    dora_events = icalendar.Calendar.from_ical(client.get(_feed_url(dora)).content).walk("VEVENT")
    assert sorted(e.decoded("dtstart") for e in dora_events) == [MONDAY_9, WEDNESDAY_9]


def test_other_organizations_member_sees_only_their_own(client, shifts, charlie):
    calendar = icalendar.Calendar.from_ical(client.get(_feed_url(charlie)).content)
    assert calendar.walk("VEVENT") == []


def test_unknown_or_rotated_token_is_not_found(client, shifts, bob, bob_client):
    assert client.get("/shifts/feed/not-a-token.ics").status_code == 404
    assert client.get("/shifts/feed/.ics").status_code == 404
    old = _feed_url(bob)
    assert old in bob_client.get("/shifts/mine/").content.decode()
    assert bob_client.post("/shifts/mine/feed").status_code == 302
    assert client.get(old).status_code == 404
    new = _feed_url(bob)
    assert new != old and client.get(new).status_code == 200
    assert AuditEvent.objects.filter(action="calendar_feed.rotate", actor=bob).exists()


def test_feed_dies_with_the_membership(client, shifts, bob):
    url = _feed_url(bob)
    Membership.objects.filter(user=bob).delete()
    assert client.get(url).status_code == 404
    assert CalendarFeed.objects.filter(user=bob).exists()  # kept, but it opens nothing


def test_feed_costs_two_queries(client, shifts, bob, django_assert_max_num_queries):
    url = _feed_url(bob)
    with django_assert_max_num_queries(2):
        assert client.get(url).status_code == 200

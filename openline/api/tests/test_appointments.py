"""The appointments API: POST books (idempotent on external_id: the same again is 200 and
changes nothing, other details are 409), PUT by external id creates or updates (moving
re-plans the reminders, cancelling withdraws them), lists with filters, one appointment
with its reminders and answer, cancel; bad input is a 4xx naming the field, never a 500;
read-only tokens only read; nothing of another organization's."""

from __future__ import annotations

import json
import zoneinfo
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
from django.utils import timezone
from hypothesis import example, given
from hypothesis import strategies as st

from openline.api.tests.conftest import ApiClient
from openline.api.tests.test_fuzz import (
    FUZZ,
    _assert_4xx_or_success,
    _query,
    bodies,
    field_values,
    phones,
    query_values,
)
from openline.campaigns.models import (
    Appointment,
    AppointmentStatus,
    AppointmentType,
    Reminder,
    ReminderRule,
    ReminderStatus,
    SendingWindow,
)
from openline.core.models import ApiToken, AuditEvent

NY = zoneinfo.ZoneInfo("America/New_York")
CHICAGO = zoneinfo.ZoneInfo("America/Chicago")  # the test organization's


def _put(api: ApiClient, external_id: str, data: Any) -> Any:
    return api.client.put(
        f"/api/v1/appointments/by-external-id/{external_id}",
        json.dumps(data),
        content_type="application/json",
        **api.headers,
    )


def _later(days: int, hour: int, minute: int = 0) -> datetime:
    """A New York wall-clock time ``days`` from now (aware)."""
    day = timezone.now().astimezone(NY).date() + timedelta(days=days)
    return datetime.combine(day, time(hour, minute), tzinfo=NY)


def _local(moment: datetime) -> str:
    """As a scheduling system sends it: local wall-clock time, no offset."""
    return moment.replace(tzinfo=None).isoformat(timespec="minutes")


@pytest.fixture
def checkup(org: Any) -> AppointmentType:
    """A visit type with a reminder 2 hours before; texts may go at any hour."""
    SendingWindow.objects.create(organization=org, start=time(0, 0), end=time(23, 59, 59))
    kind = AppointmentType.objects.create(organization=org, name="Check-up")
    ReminderRule.objects.create(
        organization=org, appointment_type=kind, minutes_before=120, template="See you {time}."
    )
    return kind


def _visit(starts: datetime, **extra: Any) -> dict[str, Any]:
    return {
        "phone": "(212) 555-0110",
        "name": "Ann Lee",
        "starts_at": _local(starts),
        "time_zone": "America/New_York",
        "minutes": 30,
        "staff_name": "Dr. Ruiz",
        "location": "Main St clinic",
        "type": "Check-up",
        **extra,
    }


def _state() -> tuple[Any, ...]:
    """Everything a refused or repeated request must leave as it was."""
    return (
        list(Appointment.objects.order_by("pk").values()),
        list(Reminder.objects.order_by("pk").values()),
        AuditEvent.objects.count(),
    )


def test_post_books_and_the_same_again_is_200_and_changes_nothing(
    api: ApiClient, checkup: AppointmentType
) -> None:
    starts = _later(3, 9, 30)
    body = _visit(starts, external_id="EHR-1")

    created = api.post("/appointments", body)

    assert created.status_code == 201, created.content
    out = created.json()
    assert out["starts_at"] == starts.astimezone(UTC).isoformat().replace("+00:00", "Z")
    assert out["local_start"] == starts.isoformat()
    assert (out["time_zone"], out["type"], out["status"]) == (
        "America/New_York",
        "Check-up",
        "booked",
    )
    assert out["contact"]["phone"] == "+12125550110" and out["contact"]["name"] == "Ann Lee"
    (reminder,) = out["reminders"]
    assert reminder["status"] == "planned"
    assert reminder["due_at"] == (starts - timedelta(hours=2)).astimezone(UTC).isoformat().replace(
        "+00:00", "Z"
    )
    assert AuditEvent.objects.filter(action="appointment.created", api_token__isnull=False).exists()
    before = _state()

    again = api.post("/appointments", body)

    assert again.status_code == 200
    assert again.json() == out
    assert _state() == before


def test_post_with_other_details_for_an_existing_external_id_is_409_and_changes_nothing(
    api: ApiClient, checkup: AppointmentType
) -> None:
    api.post("/appointments", _visit(_later(3, 9, 30), external_id="EHR-1"))
    before = _state()

    moved = api.post("/appointments", _visit(_later(3, 11), external_id="EHR-1"))

    assert moved.status_code == 409
    assert moved.json()["code"] == "external_id_conflict"
    assert "PUT /api/v1/appointments/by-external-id/EHR-1" in moved.json()["detail"]
    assert _state() == before


def test_post_without_an_external_id_books_each_time(api: ApiClient) -> None:
    body = _visit(_later(3, 9, 30))

    assert api.post("/appointments", body).status_code == 201
    assert api.post("/appointments", body).status_code == 201
    assert Appointment.objects.count() == 2


def test_put_creates_then_moving_replans_and_cancelling_withdraws(
    api: ApiClient, checkup: AppointmentType
) -> None:
    created = _put(api, "EHR-7", _visit(_later(3, 9, 30)))
    assert created.status_code == 201
    appointment_id = created.json()["id"]

    same = _put(api, "EHR-7", _visit(_later(3, 9, 30)))
    assert (same.status_code, same.json()["id"]) == (200, appointment_id)
    assert Reminder.objects.count() == 1

    moved = _put(api, "EHR-7", _visit(_later(4, 15)))

    assert moved.status_code == 200
    reminders = {(r["status"], r["reason"]) for r in moved.json()["reminders"]}
    assert reminders == {("withdrawn", "the appointment moved"), ("planned", "")}
    due = Reminder.objects.get(appointment_id=appointment_id, status=ReminderStatus.PLANNED).due_at
    assert due == _later(4, 13)

    cancelled = _put(api, "EHR-7", _visit(_later(4, 15), status="cancelled"))

    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert not Reminder.objects.filter(status=ReminderStatus.PLANNED).exists()
    assert Appointment.objects.count() == 1


def test_put_without_a_status_keeps_the_patients_confirmation(
    api: ApiClient, checkup: AppointmentType
) -> None:
    _put(api, "EHR-7", _visit(_later(3, 9, 30)))
    Appointment.objects.filter(external_id="EHR-7").update(
        status=AppointmentStatus.CONFIRMED, answer="confirmed", answered_at=timezone.now()
    )
    before = _state()

    again = _put(api, "EHR-7", _visit(_later(3, 9, 30)))

    assert again.status_code == 200
    assert (again.json()["status"], again.json()["answer"]) == ("confirmed", "confirmed")
    assert _state() == before


def test_put_takes_its_external_id_from_the_path(api: ApiClient) -> None:
    slashed = _put(api, "EPIC/2030/42", _visit(_later(3, 9, 30)))
    assert slashed.status_code == 201 and slashed.json()["external_id"] == "EPIC/2030/42"

    other = _put(api, "EHR-1", _visit(_later(3, 9, 30), external_id="EHR-2"))

    assert other.status_code == 422 and other.json()["code"] == "invalid_external_id"
    assert Appointment.objects.count() == 1


@pytest.mark.parametrize(
    ("starts_at", "time_zone", "expected"),
    [
        ("2030-12-10T09:30", "America/New_York", datetime(2030, 12, 10, 14, 30, tzinfo=UTC)),
        ("2030-12-10T09:30", None, datetime(2030, 12, 10, 15, 30, tzinfo=UTC)),  # Chicago's
        (
            "2030-12-10T09:30:00-08:00",
            "America/New_York",
            datetime(2030, 12, 10, 17, 30, tzinfo=UTC),
        ),
        ("2030-12-10 09:30:00Z", "Europe/Paris", datetime(2030, 12, 10, 9, 30, tzinfo=UTC)),
        ("2030-07-10T09:30", "America/New_York", datetime(2030, 7, 10, 13, 30, tzinfo=UTC)),
    ],
)
def test_a_start_without_an_offset_is_local_time_in_its_time_zone(
    api: ApiClient, starts_at: str, time_zone: str | None, expected: datetime
) -> None:
    body = {"phone": "+12125550110", "starts_at": starts_at}
    if time_zone:
        body["time_zone"] = time_zone

    response = api.post("/appointments", body)

    assert response.status_code == 201, response.content
    appointment = Appointment.objects.get()
    assert appointment.starts_at == expected
    assert appointment.time_zone == (time_zone or "America/Chicago")


def _field(response: Any) -> str:
    """The field a 422 names: from a validation error's location, else from its code."""
    answer = response.json()
    if answer["code"] == "invalid_request":
        return str(answer["detail"][0]["loc"][-1])
    return str(answer["code"]).removeprefix("invalid_")


LONG = "x" * 121


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        ({"time_zone": "America"}, "time_zone"),  # a directory of zones, not a zone
        ({"time_zone": "a" * 60}, "time_zone"),
        ({"time_zone": "../../etc/passwd"}, "time_zone"),
        ({"starts_at": "PAST"}, "starts_at"),
        ({"starts_at": "2030-12-10"}, "starts_at"),  # no time of day
        ({"starts_at": "2030-02-30T09:00"}, "starts_at"),
        ({"starts_at": 1900000000}, "starts_at"),
        ({"starts_at": "9999-12-31T23:30"}, "starts_at"),
        ({"phone": None}, "phone"),
        ({"phone": ""}, "phone"),
        ({"phone": "   "}, "phone"),
        ({"phone": "12"}, "phone"),
        ({"phone": "+1212555011\u0000"}, "phone"),
        ({"status": "done"}, "status"),
        ({"staff_name": LONG}, "staff_name"),
        ({"location": LONG}, "location"),
        ({"type": "x" * 81}, "type"),
        ({"external_id": "x" * 101}, "external_id"),
        ({"name": "x" * 201}, "name"),
        ({"minutes": "30"}, "minutes"),
        ({"minutes": 0}, "minutes"),
        ({"minutes": 24 * 60 + 1}, "minutes"),
        ({"minutes": True}, "minutes"),
        ({"when": "tomorrow"}, "when"),
        ({"location": "\ud800"}, "location"),
    ],
)
def test_bad_input_is_422_naming_the_field_and_stores_nothing(
    api: ApiClient, checkup: AppointmentType, change: dict[str, Any], field: str
) -> None:
    body = {**_visit(_later(3, 9, 30), external_id="EHR-1"), **change}
    if body.get("starts_at") == "PAST":
        body["starts_at"] = _local(_later(-1, 9))
    if body.get("phone") is None:
        del body["phone"]
    raw = json.dumps(body).encode()

    created = api.post("/appointments", raw=raw)
    pushed = api.client.put(
        "/api/v1/appointments/by-external-id/EHR-1", raw, content_type="application/json",
        **api.headers,
    )  # fmt: skip

    for response in (created, pushed):
        assert response.status_code == 422, response.content
        assert _field(response) == field
    assert Appointment.objects.count() == 0 and Reminder.objects.count() == 0


def test_an_existing_appointment_may_be_updated_after_it_started(
    api: ApiClient, checkup: AppointmentType
) -> None:
    """A scheduling system marks a visit completed once it is over; only new ones must be
    ahead."""
    _put(api, "EHR-1", _visit(_later(3, 9, 30)))
    Appointment.objects.update(starts_at=_later(-1, 9))

    done = _put(api, "EHR-1", _visit(_later(-1, 9), status="completed"))

    assert done.status_code == 200 and done.json()["status"] == "completed"


@pytest.fixture
def booked(api: ApiClient, org: Any, checkup: AppointmentType) -> dict[str, int]:
    """Four appointments on two days (New York) in two places, one cancelled, one
    confirmed by the patient."""
    ids = {}
    for name, starts, where in (
        ("a", _later(3, 9), "Main St clinic"),
        ("b", _later(3, 16), "Elm St clinic"),
        ("c", _later(4, 9), "Main St clinic"),
        ("d", _later(4, 11), "main st clinic"),
    ):
        response = _put(api, f"EHR-{name}", _visit(starts, location=where))
        assert response.status_code == 201
        ids[name] = response.json()["id"]
    api.post(f"/appointments/{ids['c']}/cancel")
    Appointment.objects.filter(pk=ids["b"]).update(
        answer="confirmed", answered_at=timezone.now(), status=AppointmentStatus.CONFIRMED
    )
    return ids


def _listed(api: ApiClient, **params: Any) -> list[int]:
    response = api.get("/appointments", **params)
    assert response.status_code == 200, response.content
    return [item["id"] for item in response.json()["items"]]


def test_the_list_filters_by_day_place_status_and_answer(
    api: ApiClient, booked: dict[str, int], django_assert_max_num_queries: Any
) -> None:
    a, b, c, d = (booked[k] for k in "abcd")
    day3, day4 = (_later(n, 0).date().isoformat() for n in (3, 4))

    with django_assert_max_num_queries(4):
        assert _listed(api) == [a, b, c, d]
    assert _listed(api, date_from=day4) == [c, d]
    # A date is a day in the organization's zone (Chicago): 9:00 in New York is 8:00 there.
    assert _listed(api, date_from=day3, date_to=day3) == [a, b]
    assert _listed(api, date_from=_later(3, 10).isoformat(), date_to=_later(4, 10).isoformat()) == [
        b,
        c,
    ]
    # Naive: Chicago time, so 8:30 is 9:30 in New York, after a's start.
    assert _listed(api, date_to=_local(_later(3, 8, 30))) == [a]
    assert _listed(api, location="MAIN ST CLINIC") == [a, c, d]
    assert _listed(api, status="cancelled") == [c]
    assert _listed(api, answer="confirmed") == [b]
    assert _listed(api, answer="none") == [a, c, d]
    assert _listed(api, external_id="EHR-d") == [d]
    page = api.get("/appointments", limit=2, offset=1).json()
    assert [item["id"] for item in page["items"]] == [b, c] and page["count"] == 4
    assert "reminders" not in page["items"][0]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"date_from": "tomorrow"}, "date_from"),
        ({"date_to": "2030-13-01"}, "date_to"),
        ({"date_to": "0001-01-01"}, "date_to"),
        ({"status": "done"}, "status"),
        ({"answer": "maybe"}, "answer"),
        ({"location": "x" * 121}, "location"),
        ({"limit": 0}, "limit"),
    ],
)
def test_a_bad_filter_is_422_naming_it(api: ApiClient, params: dict[str, Any], field: str) -> None:
    response = api.get("/appointments", **params)

    assert response.status_code == 422
    assert _field(response) == field


def test_one_appointment_shows_its_reminders_and_the_patients_answer(
    api: ApiClient, booked: dict[str, int]
) -> None:
    answer = api.get(f"/appointments/{booked['b']}").json()

    assert (answer["status"], answer["answer"]) == ("confirmed", "confirmed")
    assert answer["answered_at"] is not None
    (reminder,) = answer["reminders"]
    assert set(reminder) == {"id", "due_at", "status", "reason", "sent_at", "for_start"}
    assert reminder["status"] == "planned" and reminder["sent_at"] is None

    cancelled = api.get(f"/appointments/{booked['c']}").json()
    (withdrawn,) = cancelled["reminders"]
    assert (withdrawn["status"], withdrawn["reason"]) == (
        "withdrawn",
        "the appointment was cancelled",
    )
    assert cancelled["answer"] is None


def test_cancel_withdraws_the_reminders_once(
    api: ApiClient, org: Any, checkup: AppointmentType
) -> None:
    """Also for an appointment without an external id (booked by hand or from a file)."""
    appointment_id = api.post("/appointments", _visit(_later(3, 9, 30))).json()["id"]

    cancelled = api.post(f"/appointments/{appointment_id}/cancel")

    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert not Reminder.objects.filter(status=ReminderStatus.PLANNED).exists()
    assert (
        AuditEvent.objects.filter(
            action="appointment.cancelled", object_id=str(appointment_id)
        ).count()
        == 1
    )
    before = _state()

    again = api.post(f"/appointments/{appointment_id}/cancel")

    assert again.status_code == 200 and _state() == before

    Appointment.objects.filter(pk=appointment_id).update(status=AppointmentStatus.COMPLETED)
    over = api.post(f"/appointments/{appointment_id}/cancel")
    assert (over.status_code, over.json()["code"]) == (409, "invalid_state")


def test_another_organizations_appointments_are_404_and_never_listed(
    api: ApiClient, other_api: ApiClient, booked: dict[str, int]
) -> None:
    ours = booked["a"]
    before = _state()

    assert other_api.get(f"/appointments/{ours}").status_code == 404
    assert other_api.post(f"/appointments/{ours}/cancel").status_code == 404
    assert other_api.get("/appointments").json() == {"items": [], "count": 0}
    assert other_api.get("/appointments", external_id="EHR-a").json()["count"] == 0
    assert _state() == before

    theirs = _put(other_api, "EHR-a", _visit(_later(5, 9)))  # the same id, their own

    assert theirs.status_code == 201 and theirs.json()["id"] != ours
    assert Appointment.objects.get(pk=ours).starts_at == _later(3, 9)


def test_a_read_only_token_may_only_read(
    api: ApiClient, booked: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ApiToken, "read_only", True, raising=False)
    before = _state()

    assert api.get("/appointments").status_code == 200
    assert api.get(f"/appointments/{booked['a']}").status_code == 200
    refused = [
        api.post("/appointments", _visit(_later(5, 9))),
        _put(api, "EHR-a", _visit(_later(5, 9))),
        api.post(f"/appointments/{booked['a']}/cancel"),
    ]
    for response in refused:
        assert (response.status_code, response.json()["code"]) == (403, "read_only_token")
    assert _state() == before


def test_without_a_token_nothing_is_read(booked: dict[str, int]) -> None:
    anonymous = ApiClient(None)

    assert anonymous.get("/appointments").status_code == 401
    assert anonymous.get(f"/appointments/{booked['a']}").status_code == 401


def test_the_endpoints_are_documented_with_examples(api: ApiClient) -> None:
    schema = api.client.get("/api/v1/openapi.json").json()

    paths = schema["paths"]
    assert set(paths["/api/v1/appointments"]) == {"get", "post"}
    assert set(paths["/api/v1/appointments/by-external-id/{external_id}"]) == {"put"}
    assert "post" in paths["/api/v1/appointments/{appointment_id}/cancel"]
    body = schema["components"]["schemas"]["AppointmentIn"]
    assert body["examples"][0]["starts_at"] == "2030-12-10T09:30"
    assert "time_zone" in body["properties"]["starts_at"]["description"]


# --- fuzzing (test_fuzz's approach) -----------------------------------------------------------

starts = st.sampled_from(
    ["2030-12-10T09:30", "2030-12-10T09:30:00-05:00", "2020-01-01T09:00", "2030-12-10", ""]
) | st.text(max_size=30)
zones = st.sampled_from(["America/New_York", "America", "Mars/Olympus", "", "UTC", "EST"])
near_valid_appointments = st.fixed_dictionaries(
    {"phone": phones, "starts_at": starts},
    optional={
        "time_zone": zones | field_values,
        "minutes": st.integers(-5, 2000) | field_values,
        "status": st.sampled_from(["booked", "cancelled", "no_show", "done", ""]),
        "external_id": st.sampled_from(["EHR-1", "a/b", ""]) | field_values,
        "staff_name": field_values,
        "type": field_values,
    },
)
APPOINTMENT_FIELDS = [
    "phone", "name", "starts_at", "time_zone", "minutes", "staff_name", "location", "type",
    "status", "external_id",
]  # fmt: skip


@pytest.mark.django_db
@FUZZ
@given(raw=bodies(APPOINTMENT_FIELDS, near_valid_appointments))
@example(raw=b'{"phone": "+12125550110", "starts_at": "2030-12-10T09:30", "time_zone": "America"}')
@example(raw=b'{"phone": "+12125550110", "starts_at": "9999-12-31T23:59:59-05:00"}')
@example(raw=b'{"phone": "+12125550110", "starts_at": "2030-12-10T09:30", "type": "\\u0000"}')
def test_fuzzed_appointment_posts_and_puts_never_500_and_refusals_store_nothing(
    api: ApiClient, raw: bytes
) -> None:
    before = _state()

    created = api.post("/appointments", raw=raw)
    pushed = api.client.put(
        "/api/v1/appointments/by-external-id/EHR-9", raw, content_type="application/json",
        **api.headers,
    )  # fmt: skip

    _assert_4xx_or_success(created)
    _assert_4xx_or_success(pushed)
    if created.status_code >= 400 and pushed.status_code >= 400:
        assert _state() == before


@pytest.mark.django_db
@FUZZ
@given(
    date_from=query_values,
    date_to=query_values,
    location=query_values,
    status=query_values,
    answer=query_values,
    external_id=query_values,
)
@example(
    date_from=b"0001-01-01T00:00+14:00", date_to=b"9999-12-31", location=b"\x00",
    status=b"", answer=b"\xff", external_id=b"\x00",
)  # fmt: skip
def test_fuzzed_appointment_reads_never_500(
    api: ApiClient,
    date_from: bytes,
    date_to: bytes,
    location: bytes,
    status: bytes,
    answer: bytes,
    external_id: bytes,
) -> None:
    query = _query(
        date_from=date_from, date_to=date_to, location=location, status=status, answer=answer,
        external_id=external_id,
    )  # fmt: skip

    _assert_4xx_or_success(api.get(f"/appointments?{query}"))
    _assert_4xx_or_success(api.get(f"/appointments/{external_id.hex() or 0}"))

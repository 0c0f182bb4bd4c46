"""The reports pages: who may see them, what their filters refuse, the CSV (the table as
shown, audited) and the monthly summary."""

from __future__ import annotations

import csv
import html
import io
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from openline.core.models import AuditEvent
from openline.forms.models import Form, FormVersion
from openline.messaging.models import Channel
from openline.reports.base import REPORTS
from openline.reports.tests.conftest import at, conversation_at, message_at

pytestmark = pytest.mark.django_db
NOVEMBER = {"start": "2026-11-01", "end": "2026-11-30"}


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _csv(response: Any) -> list[list[str]]:
    assert response.streaming
    text = b"".join(response).decode()
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:])))


@pytest.fixture
def november(org: Any, bob: Any, make_conversation: Callable[..., Any]) -> None:
    start = at("2026-11-30 23:30")
    conversation = make_conversation(start, assigned_to=bob, assigned_at=start)
    message_at(conversation, start)
    make_conversation(at("2026-12-01 00:10"))


def test_supervisors_and_admins_see_reports_counselors_and_staff_do_not(
    org: Any, alice: Any, sue: Any, bob: Any, sandbox_number: Any
) -> None:
    from openline.core.services import user_create

    staff = user_create(organization=org, email="sam@example.org", role="staff", password="x" * 12)
    for user in (alice, sue):
        page = _client(user).get("/reports/")
        assert page.status_code == 200
        assert b"Volume by day" in page.content and b'href="/reports/"' in page.content
    for user in (bob, staff.user):
        for response in (
            _client(user).get("/reports/"),
            _client(user).get("/reports/summary/"),
            _client(user).post("/reports/export/", {"report": "answered"}),
        ):
            assert response.status_code == 403
    assert b'href="/reports/"' not in _client(bob).get("/").content


def test_signed_out_people_are_sent_to_sign_in(db: None) -> None:
    response = Client().get("/reports/")
    assert response.status_code == 302 and "/login" in response["Location"]


def test_the_page_defaults_to_the_last_thirty_days(alice: Any, sandbox_number: Any) -> None:
    page = _client(alice).get("/reports/")
    table = next(c for c in page.context["cards"] if c.report.key == "volume_by_day")
    assert len(table.report.rows) == 30
    assert page.context["filters"].end == page.context["form"].today


def test_each_report_is_a_card_with_its_table_and_chart_data(alice: Any, november: None) -> None:
    page = _client(alice).get("/reports/", NOVEMBER)
    body = page.content.decode()
    keys = [c.report.key for c in page.context["cards"]]
    assert keys == [k for k in REPORTS if k != "form_field"]
    for key in keys:
        assert f'data-report="{key}"' in body
    assert 'id="chart-volume_by_day" type="application/json"' in body
    assert 'data-chart="chart-volume_by_day"' in body
    assert '<div class="report-chart" aria-hidden="true">' in body
    assert '<th scope="row">2026-11-30</th><td>1</td><td>1</td>' in body
    assert 'class="table report-heat"' in body and "heat-5" in body


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ({"start": "2026-11-30", "end": "2026-11-01"}, "end", "comes before the start"),
        ({"start": "2020-01-01", "end": "2026-11-01"}, "end", "at most three years"),
        ({"start": "yesterday"}, "start", "Enter a date like"),
        ({"inbox": "999999"}, "inbox", "this organization's inboxes"),
        ({"channel": "alert"}, "channel", "Choose a channel"),
        ({"form": "999999"}, "form", "this organization's forms"),
        ({"field": "reason"}, "field", "Choose a field of the chosen form"),
    ],
)
def test_bad_filters_answer_422_with_the_message_next_to_the_filter(
    alice: Any, sandbox_number: Any, query: dict[str, str], field: str, message: str
) -> None:
    page = _client(alice).get("/reports/", query)
    assert page.status_code == 422
    assert page.context["cards"] == []
    assert message in html.unescape(page.content.decode())
    assert any(message in error for error in page.context["form"].errors[field])


def test_another_organizations_inbox_and_form_are_refused(
    alice: Any, sandbox_number: Any, other_org: Any, other_number: Any
) -> None:
    theirs = Form.objects.create(organization=other_org, name="Theirs")
    FormVersion.objects.create(
        organization=other_org,
        form=theirs,
        number=1,
        schema={
            "sections": [{"title": "S", "fields": [{"key": "x", "label": "X", "kind": "text"}]}]
        },
    )
    client = _client(alice)
    assert client.get("/reports/", {"inbox": other_number.pk}).status_code == 422
    assert client.get("/reports/", {"form": theirs.pk, "field": "x"}).status_code == 422
    refused = client.post("/reports/export/", {"report": "answered", "inbox": other_number.pk})
    assert refused.status_code == 422
    assert not AuditEvent.objects.filter(action="report.export").exists()


def test_a_field_of_another_form_is_refused(alice: Any, org: Any, sandbox_number: Any) -> None:
    schema = {"sections": [{"title": "S", "fields": [{"key": "x", "label": "X", "kind": "text"}]}]}
    first = Form.objects.create(organization=org, name="First")
    FormVersion.objects.create(organization=org, form=first, number=1, schema=schema)
    second = Form.objects.create(organization=org, name="Second")
    page = _client(alice).get("/reports/", {"form": second.pk, "field": "x"})
    assert page.status_code == 422
    assert "not one of the chosen form" in page.content.decode()
    chosen = _client(alice).get("/reports/", {"form": first.pk, "field": "x"})
    assert chosen.status_code == 200
    assert "form_field" in [c.report.key for c in chosen.context["cards"]]


@pytest.mark.parametrize("key", sorted(REPORTS))
def test_each_csv_is_the_table_as_shown_and_is_audited(
    key: str, alice: Any, november: None
) -> None:
    client = _client(alice)
    page = client.get("/reports/", NOVEMBER)
    shown = next((c.report for c in page.context["cards"] if c.report.key == key), None)
    response = client.post("/reports/export/", {"report": key, **NOVEMBER})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert f"{key}-2026-11-01-2026-11-30.csv" in response["Content-Disposition"]
    rows = _csv(response)
    if shown is not None:
        expected = [shown.columns] + [
            ["" if cell is None else str(cell) for cell in row] for row in shown.rows
        ]
        assert rows == expected
    event = AuditEvent.objects.get(action="report.export")
    assert event.object_id == key and event.actor_id == alice.pk
    assert "2026-11-01 to 2026-11-30" in event.detail


def test_the_csv_applies_the_filters(
    alice: Any, org: Any, sandbox_number: Any, make_conversation: Callable[..., Any]
) -> None:
    make_conversation(at("2026-11-05 10:00"))
    make_conversation(at("2026-11-05 10:00"), channel=Channel.CHAT)
    response = _client(alice).post(
        "/reports/export/", {"report": "volume_by_day", "channel": "chat", **NOVEMBER}
    )
    rows = _csv(response)
    assert rows[0] == ["Day", "Conversations", "Inbound texts"]
    assert ["2026-11-05", "1", "0"] in rows and len(rows) == 31


def test_an_unknown_report_or_a_get_is_not_an_export(alice: Any, sandbox_number: Any) -> None:
    client = _client(alice)
    assert client.post("/reports/export/", {"report": "nope"}).status_code == 404
    assert client.get("/reports/export/").status_code == 405
    assert not AuditEvent.objects.filter(action="report.export").exists()


def test_the_monthly_summary_shows_every_reports_figures_for_the_month(
    alice: Any, november: None
) -> None:
    page = _client(alice).get("/reports/summary/", {"month": "2026-11"})
    assert page.status_code == 200
    body = page.content.decode()
    assert "Monthly summary: November 2026" in body
    assert "data-print" in body and "reports/print.css" in body and "reports/print.js" in body
    assert "<canvas" not in body
    cards = {c.report.key: c.report for c in page.context["cards"]}
    assert set(cards) == set(REPORTS) - {"form_field"}
    assert dict(cards["volume_by_day"].summary)["Conversations"] == 1
    assert len(cards["volume_by_day"].rows) == 30


@pytest.mark.parametrize("month", ["2026-13", "November", "0000-01"])
def test_a_bad_month_answers_422(alice: Any, sandbox_number: Any, month: str) -> None:
    page = _client(alice).get("/reports/summary/", {"month": month})
    assert page.status_code == 422
    assert page.context["form"].errors["month"]


def test_another_organizations_data_never_reaches_the_page(
    alice: Any, sandbox_number: Any, other_org: Any, other_number: Any
) -> None:
    theirs = conversation_at(other_org, other_number, at("2026-11-10 12:00"))
    message_at(theirs, at("2026-11-10 12:00"))
    page = _client(alice).get("/reports/", NOVEMBER)
    day = next(c.report for c in page.context["cards"] if c.report.key == "volume_by_day")
    assert dict(day.summary)["Conversations"] == 0


def test_the_whole_page_runs_a_bounded_number_of_queries(
    alice: Any, november: None, django_assert_max_num_queries: Any
) -> None:
    client = _client(alice)
    with django_assert_max_num_queries(60):
        assert client.get("/reports/", NOVEMBER).status_code == 200

"""Each report against hand-built rows whose answers are known, in the organization's time
zone (America/Chicago for the test organization)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from openline.alerts.models import Alert, AlertKind
from openline.billing.models import CreditEntry, CreditKind, CreditPurpose
from openline.campaigns.models import Broadcast, BroadcastRecipient, RecipientStatus
from openline.contacts.models import ConsentEvent, ConsentKind, ConsentSource
from openline.forms.models import Form, FormAnswer, FormResponse, FormVersion
from openline.messaging.models import (
    Channel,
    ConversationStatus,
    Direction,
    MessageKind,
    MessageStatus,
    Priority,
    RiskLevel,
)
from openline.reports.base import REPORTS, Report
from openline.reports.tests.conftest import at, conversation_at, filters_for, message_at, minutes

NOVEMBER = ("2026-11-01", "2026-11-30")


def run(key: str, organization: Any, *dates: str, **more: Any) -> Report:
    start, end = dates or NOVEMBER
    return REPORTS[key](filters_for(organization, start, end, **more))


def row(report: Report, first: object) -> list[object]:
    return next(r for r in report.rows if r[0] == first)


def figure(report: Report, label: str) -> object:
    return dict(report.summary)[label]


# --- volume -----------------------------------------------------------------------------------


def test_volume_by_day_counts_the_last_local_evening_and_not_the_next_midnight(
    org: Any, make_conversation: Callable[..., Any]
) -> None:
    late = make_conversation(at("2026-11-30 23:30"))  # 05:30 UTC on December 1st
    make_conversation(at("2026-12-01 00:10"))  # the next day where the organization is
    make_conversation(at("2026-10-31 23:59"))
    first = make_conversation(at("2026-11-01 00:00"))
    message_at(late, at("2026-11-30 23:31"))
    message_at(late, at("2026-12-01 00:05"))
    message_at(first, at("2026-11-01 00:01"))
    report = run("volume_by_day", org)
    assert len(report.rows) == 30
    assert row(report, "2026-11-30") == ["2026-11-30", 1, 1]
    assert row(report, "2026-11-01") == ["2026-11-01", 1, 1]
    assert figure(report, "Conversations") == 2
    assert figure(report, "Inbound texts") == 2


def test_staff_alert_records_and_another_organizations_conversations_never_count(
    org: Any, other_org: Any, other_number: Any, make_conversation: Callable[..., Any]
) -> None:
    make_conversation(at("2026-11-10 12:00"))
    alert_record = make_conversation(at("2026-11-10 12:00"), channel=Channel.ALERT)
    message_at(alert_record, at("2026-11-10 12:00"), direction=Direction.OUTBOUND)
    theirs = conversation_at(other_org, other_number, at("2026-11-10 12:00"))
    message_at(theirs, at("2026-11-10 12:01"))
    assert row(run("volume_by_day", org), "2026-11-10") == ["2026-11-10", 1, 0]
    assert figure(run("answered", org), "Conversations") == 1


def test_volume_by_hour_of_week_uses_chicago_hours(
    org: Any, make_conversation: Callable[..., Any]
) -> None:
    make_conversation(at("2026-11-02 08:15"))  # a Monday, 14:15 UTC
    make_conversation(at("2026-11-02 08:45"))
    make_conversation(at("2026-11-07 23:30"))  # a Saturday, already Sunday in UTC
    report = run("volume_by_hour", org)
    monday, saturday, sunday = row(report, "Monday"), row(report, "Saturday"), row(report, "Sunday")
    assert monday[1 + 8] == 2 and sum(monday[1:]) == 2  # type: ignore[arg-type]
    assert saturday[1 + 23] == 1
    assert sum(sunday[1:]) == 0  # type: ignore[arg-type]
    assert figure(report, "Busiest hour") == "Monday 08:00 (2)"


def test_inbox_and_channel_filters_narrow_every_count(
    org: Any, second_number: Any, make_conversation: Callable[..., Any]
) -> None:
    make_conversation(at("2026-11-05 10:00"))
    make_conversation(at("2026-11-05 10:00"), number=second_number)
    make_conversation(at("2026-11-05 11:00"), channel=Channel.CHAT)
    day = "2026-11-05"
    assert row(run("volume_by_day", org), day)[1] == 3
    assert row(run("volume_by_day", org, number_id=second_number.pk), day)[1] == 1
    assert row(run("volume_by_day", org, channel="chat"), day)[1] == 1
    assert row(run("volume_by_day", org, channel="sms"), day)[1] == 2


def test_offline_texts_by_the_day_they_arrived(
    org: Any, make_conversation: Callable[..., Any]
) -> None:
    conversation = make_conversation(at("2026-11-07 22:00"), opened_offline=True)
    message_at(conversation, at("2026-11-07 22:00"), received_offline=True)
    message_at(conversation, at("2026-11-08 01:00"), received_offline=True)
    message_at(conversation, at("2026-11-08 09:00"))
    report = run("offline_texts", org)
    assert row(report, "2026-11-07")[1] == 1 and row(report, "2026-11-08")[1] == 1
    assert figure(report, "Texts received offline") == 2


# --- handling ---------------------------------------------------------------------------------


def test_answered_abandoned_and_still_waiting(
    org: Any, bob: Any, make_conversation: Callable[..., Any]
) -> None:
    start = at("2026-11-12 09:00")
    make_conversation(start, assigned_to=bob, assigned_at=start + minutes(2), status="active")
    make_conversation(
        start,
        assigned_to=bob,
        assigned_at=start + minutes(1),
        status="closed",
        closed_at=start + minutes(20),
    )
    make_conversation(start, status=ConversationStatus.CLOSED, closed_at=start + minutes(30))
    # Born closed: a broadcast's or a reminder's texts nobody answered. Not a contact.
    make_conversation(start, status=ConversationStatus.CLOSED, closed_at=start)
    make_conversation(
        start, channel=Channel.CHAT, status=ConversationStatus.CLOSED, closed_at=start + minutes(3)
    )  # a visitor who left before anyone answered
    make_conversation(start)
    # A clear answer to a reminder or survey, closed by OpenLine: not left unanswered.
    make_conversation(
        start,
        status=ConversationStatus.CLOSED,
        closed_at=start + minutes(1),
        handled_automatically=True,
    )
    report = run("answered", org)
    assert row(report, "Answered")[1:] == [2, "33%"]
    assert row(report, "Abandoned")[1:] == [2, "33%"]
    assert row(report, "Handled automatically")[1:] == [1, "17%"]
    assert row(report, "Still waiting")[1:] == [1, "17%"]
    assert report.chart is not None and report.chart.series[0][1] == [2, 2, 1, 1]


def test_time_to_assume_and_first_reply_percentiles_on_a_known_set(
    org: Any, bob: Any, make_conversation: Callable[..., Any]
) -> None:
    start = at("2026-11-12 09:00")
    for n in range(1, 11):  # assumed after 1..10 minutes
        make_conversation(start, assigned_to=bob, assigned_at=start + minutes(n))
    for n in (2, 4):
        replied = make_conversation(start)
        message_at(replied, start + minutes(0.5), direction="out", kind=MessageKind.AUTOMATED)
        message_at(replied, start + minutes(n), direction="out", sender=bob)
        message_at(replied, start + minutes(n + 5), direction="out", sender=bob)
    report = run("response_times", org)
    assert row(report, "Time to assume") == ["Time to assume", 10, 300, 540]
    assert row(report, "Time to first reply") == ["Time to first reply", 2, 120, 240]
    assert figure(report, "p50 to assume") == "5 min"
    assert figure(report, "p90 to first reply") == "4 min"


def test_response_times_with_nothing_to_measure_say_so(org: Any, sandbox_number: Any) -> None:
    report = run("response_times", org)
    assert row(report, "Time to assume") == ["Time to assume", 0, None, None]
    assert figure(report, "p50 to assume") == "–"


def test_conversation_length_buckets_by_duration_and_by_messages(
    org: Any, make_conversation: Callable[..., Any]
) -> None:
    start = at("2026-11-12 09:00")
    for length in (minutes(3), minutes(10), minutes(90), timedelta(days=2)):
        make_conversation(start, status="closed", closed_at=start + length)
    one = make_conversation(start)
    message_at(one, start)
    three = make_conversation(start)
    for n in range(3):
        message_at(three, start + minutes(n))
    report = run("conversation_length", org)
    lengths = {r[1]: r[2] for r in report.rows if r[0] == "Length"}
    counts = {r[1]: r[2] for r in report.rows if r[0] == "Messages"}
    assert lengths == {
        "Under 5 min": 1,
        "5–15 min": 1,
        "15–30 min": 0,
        "30–60 min": 0,
        "1–2 h": 1,
        "2–24 h": 0,
        "A day or more": 1,
    }
    assert counts["0"] == 4 and counts["1"] == 1 and counts["2–5"] == 1
    assert figure(report, "Closed conversations") == 4
    assert figure(report, "Median length") == "10 min"


# --- alerts and consent -----------------------------------------------------------------------


def _alert(conversation: Any, kind: str, created: Any, refused: str = "", attempt: int = 1) -> None:
    alert = Alert.objects.create(
        organization_id=conversation.organization_id,
        conversation=conversation,
        phone="+12025550100",
        kind=kind,
        attempt=attempt,
        refused=refused,
    )
    Alert.objects.filter(pk=alert.pk).update(created_at=created)


def test_alerts_by_kind_and_time_from_the_first_alert_to_assume(
    org: Any, bob: Any, make_conversation: Callable[..., Any]
) -> None:
    start = at("2026-11-12 09:00")
    quick = make_conversation(start, assigned_to=bob, assigned_at=start + minutes(3))
    _alert(quick, AlertKind.NEW, start + minutes(1))
    _alert(quick, AlertKind.REMINDER, start + minutes(2), attempt=2)
    slow = make_conversation(start, assigned_to=bob, assigned_at=start + minutes(11))
    _alert(slow, AlertKind.NEW, start + minutes(1))
    _alert(slow, AlertKind.HIGH_RISK, start + minutes(4), refused="opted out")
    report = run("alerts", org)
    assert row(report, "New conversation")[1:] == [2, 0]
    assert row(report, "Reminder")[1:] == [1, 0]
    assert row(report, "High-risk wait")[1:] == [0, 1]
    assert figure(report, "Alerts sent") == 3
    assert figure(report, "Alerted, then assumed") == 2
    assert figure(report, "p50 alert to assume") == "2 min"
    assert figure(report, "p90 alert to assume") == "10 min"


def _consent(organization: Any, kind: str, created: Any, number: Any = None) -> None:
    ConsentEvent.objects.create(
        organization=organization,
        phone="+12025550111",
        number=number,
        kind=kind,
        source=ConsentSource.KEYWORD,
        created_at=created,
    )


def test_opt_outs_and_opt_ins_by_local_day(
    org: Any, other_org: Any, sandbox_number: Any, second_number: Any
) -> None:
    _consent(org, ConsentKind.OPT_OUT, at("2026-11-03 23:30"), sandbox_number)
    _consent(org, ConsentKind.OPT_OUT, at("2026-11-04 00:30"), second_number)
    _consent(org, ConsentKind.OPT_IN, at("2026-11-04 08:00"), sandbox_number)
    _consent(org, ConsentKind.HELP, at("2026-11-04 08:00"), sandbox_number)
    _consent(other_org, ConsentKind.OPT_OUT, at("2026-11-04 08:00"))
    report = run("consent", org)
    assert row(report, "2026-11-03")[1:] == [1, 0]
    assert row(report, "2026-11-04")[1:] == [1, 1]
    assert figure(report, "Opt-outs") == 2
    assert figure(run("consent", org, number_id=sandbox_number.pk), "Opt-outs") == 1


# --- risk -------------------------------------------------------------------------------------


def test_risk_levels_count_the_not_assessed(
    org: Any, make_conversation: Callable[..., Any]
) -> None:
    start = at("2026-11-12 09:00")
    make_conversation(start, risk_level=RiskLevel.HIGH)
    make_conversation(start, risk_level=RiskLevel.LOW)
    make_conversation(start, risk_level=RiskLevel.LOW)
    make_conversation(start)
    report = run("risk_levels", org)
    assert [r[1] for r in report.rows] == [2, 0, 1, 1]
    assert report.rows[-1][0] == "Not assessed"
    assert figure(report, "Assessed") == "3 (75%)"


def test_raised_priorities_by_what_raised_them(
    org: Any, make_conversation: Callable[..., Any]
) -> None:
    start = at("2026-11-12 09:00")
    make_conversation(start, priority=Priority.URGENT, priority_reason="Risk phrase: “pills”")
    make_conversation(start, priority=Priority.HIGH, priority_reason="Risk phrase: “end it”")
    make_conversation(start, priority=Priority.ELEVATED, priority_reason="Survey: feeling unsafe")
    make_conversation(start, priority=Priority.HIGH, channel=Channel.CHAT)  # triage, no reason
    make_conversation(start, priority=Priority.HIGH, priority_reason="Chat triage: at risk")
    make_conversation(start)  # normal
    report = run("priorities", org)
    assert report.columns == ["Reason", "Elevated", "High", "Urgent", "Total"]
    assert row(report, "Risk phrase") == ["Risk phrase", 0, 1, 1, 2]
    assert row(report, "Survey") == ["Survey", 1, 0, 0, 1]
    assert row(report, "Chat triage") == ["Chat triage", 0, 2, 0, 2]
    assert row(report, "Other") == ["Other", 0, 0, 0, 0]
    assert figure(report, "Raised priorities") == 5


# --- form fields ------------------------------------------------------------------------------


def _field(key: str, label: str, kind: str, options: list[tuple[str, str]] = ()) -> dict[str, Any]:  # type: ignore[assignment]
    return {
        "key": key,
        "label": label,
        "kind": kind,
        "options": [{"value": v, "label": text} for v, text in options],
    }


def _schema(*fields: dict[str, Any]) -> dict[str, Any]:
    return {"sections": [{"key": "about", "title": "About", "fields": list(fields)}]}


def _answers(version: FormVersion, conversation: Any, key: str, *values: Any) -> None:
    response = FormResponse.objects.create(
        organization_id=version.organization_id,
        form_id=version.form_id,
        version=version,
        purpose="contact",
        channel="console",
        conversation=conversation,
        status="complete",
    )
    for position, value in enumerate(values):
        FormAnswer.objects.create(
            organization_id=version.organization_id,
            response=response,
            form_id=version.form_id,
            field_key=key,
            value=str(value),
            number=value if isinstance(value, int) else None,
            label=f"old label of {value}",
            position=position,
        )


@pytest.fixture
def intake_form(org: Any) -> tuple[Form, FormVersion, FormVersion]:
    form = Form.objects.create(organization=org, name="Intake")
    reason_v1 = _field("reason", "Reason", "choice", [("housing", "Housing"), ("food", "Food")])
    reason_v2 = _field(
        "reason",
        "Reason for contact",
        "multi_choice",
        [("housing", "Housing or shelter"), ("food", "Food"), ("safety", "Safety")],
    )
    age = _field("age", "Age", "number")
    v1 = FormVersion.objects.create(
        organization=org, form=form, number=1, schema=_schema(reason_v1, age)
    )
    v2 = FormVersion.objects.create(
        organization=org, form=form, number=2, schema=_schema(reason_v2)
    )
    Form.objects.filter(pk=form.pk).update(current_version=v2)
    return form, v1, v2


def test_a_form_field_is_counted_across_versions_with_the_latest_labels(
    org: Any, make_conversation: Callable[..., Any], intake_form: Any
) -> None:
    form, v1, v2 = intake_form
    start = at("2026-11-12 09:00")
    _answers(v1, make_conversation(start), "reason", "housing")
    _answers(v1, make_conversation(start), "reason", "housing")
    _answers(v1, make_conversation(start), "reason", "food")
    _answers(v2, make_conversation(start), "reason", "housing", "safety")
    _answers(v2, make_conversation(at("2026-12-02 09:00")), "reason", "food")  # out of range
    report = run("form_field", org, form_id=form.pk, field_key="reason")
    assert report.title == "Intake: Reason for contact"
    assert report.rows == [
        ["Housing or shelter", 3, "75%"],
        ["Food", 1, "25%"],
        ["Safety", 1, "25%"],
    ]
    assert figure(report, "Responses answering") == 4


def test_a_number_field_shows_buckets_and_min_average_max(
    org: Any, make_conversation: Callable[..., Any], intake_form: Any
) -> None:
    form, v1, _ = intake_form
    for age in (10, 20, 30, 40, 50):
        _answers(v1, make_conversation(at("2026-11-12 09:00")), "age", age)
    report = run("form_field", org, form_id=form.pk, field_key="age")
    assert [r[1] for r in report.rows] == [1, 1, 1, 1, 1]
    assert report.rows[0][0] == "10–18" and report.rows[-1][0] == "42–50"
    assert dict(report.summary) == {
        "Answers": 5,
        "Minimum": "10",
        "Average": "30.0",
        "Maximum": "50",
    }


def test_another_organizations_form_is_not_reported(
    org: Any, other_org: Any, charlie: Any, intake_form: Any
) -> None:
    theirs = Form.objects.create(organization=other_org, name="Theirs")
    FormVersion.objects.create(
        organization=other_org, form=theirs, number=1, schema=_schema(_field("x", "X", "text"))
    )
    report = run("form_field", org, form_id=theirs.pk, field_key="x")
    assert report.rows == [] and "not one of this organization" in report.note


# --- sending ----------------------------------------------------------------------------------


def test_broadcast_delivery_by_outcome(
    org: Any, sandbox_number: Any, make_conversation: Callable[..., Any]
) -> None:
    broadcast = Broadcast.objects.create(
        organization=org,
        name="Flu clinic",
        body="Clinic Saturday",
        status="finished",
        started_at=at("2026-11-12 09:00"),
    )
    statuses = [
        MessageStatus.DELIVERED,
        MessageStatus.DELIVERED,
        MessageStatus.FAILED,
        MessageStatus.SENT,
    ]
    for status in [*statuses, None]:
        conversation = make_conversation(at("2026-11-12 09:00"))
        message = None
        if status:
            message = message_at(
                conversation, at("2026-11-12 09:00"), direction="out", kind="bulk", status=status
            )
        BroadcastRecipient.objects.create(
            organization=org,
            broadcast=broadcast,
            contact_id=conversation.contact_id,
            phone=conversation.contact.phone,
            number=sandbox_number,
            time_zone="America/Chicago",
            status=RecipientStatus.QUEUED if status else RecipientStatus.REFUSED,
            message=message,
        )
    report = run("broadcasts", org)
    assert row(report, "Delivered")[1:] == [2, "40%"]
    assert row(report, "Undelivered or failed")[1] == 1
    assert row(report, "Sent, not yet confirmed")[1] == 1
    assert row(report, "Not sent (refused)")[1] == 1
    assert row(report, "Still sending")[1] == 0
    assert figure(report, "Broadcasts started") == 1
    assert figure(run("broadcasts", org, "2026-12-01", "2026-12-31"), "Recipients") == 0


def test_credits_used_by_purpose_less_refunds(org: Any, other_org: Any) -> None:
    when = at("2026-11-12 09:00")
    for kind, credits, purpose in [
        (CreditKind.PURCHASE, 1000, ""),
        (CreditKind.DEBIT, 30, CreditPurpose.SMS),
        (CreditKind.DEBIT, 12, CreditPurpose.SMS),
        (CreditKind.REFUND, 2, CreditPurpose.SMS),
        (CreditKind.DEBIT, 5, CreditPurpose.ALERT),
        (CreditKind.RESERVE, 500, CreditPurpose.CAMPAIGN),
    ]:
        CreditEntry.objects.create(
            organization=org, kind=kind, credits=credits, purpose=purpose, created_at=when
        )
    CreditEntry.objects.create(
        organization=other_org, kind=CreditKind.DEBIT, credits=99, purpose="sms", created_at=when
    )
    report = run("credits", org)
    assert row(report, "SMS")[1:] == [42, 2, 40]
    assert row(report, "Alerts")[1:] == [5, 0, 5]
    assert row(report, "Campaigns")[1:] == [0, 0, 0]
    assert dict(report.summary) == {"Credits used": 45, "Credits added": 1000}


# --- cost -------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", sorted(REPORTS))
def test_each_report_runs_a_bounded_number_of_queries(
    key: str,
    org: Any,
    bob: Any,
    make_conversation: Callable[..., Any],
    intake_form: Any,
    django_assert_max_num_queries: Any,
) -> None:
    form, v1, _ = intake_form
    start = at("2026-11-12 09:00")
    for n in range(20):  # more rows must not mean more queries
        conversation = make_conversation(start + minutes(n), assigned_to=bob, assigned_at=start)
        message_at(conversation, start + minutes(n))
        _answers(v1, conversation, "reason", "food")
    filters = filters_for(org, *NOVEMBER, form_id=form.pk, field_key="reason")
    with django_assert_max_num_queries(6):
        REPORTS[key](filters)

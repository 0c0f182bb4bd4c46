"""Risk: the conversations' assessed risk levels and why priorities were raised."""

from __future__ import annotations

from django.db.models import Case, CharField, Count, Q, Value, When

from openline.messaging.models import Channel, Conversation, Priority, RiskLevel
from openline.reports.base import Chart, Report, ReportFilters, report
from openline.reports.queries import column, conversation_q, share, total

NOT_ASSESSED = "Not assessed"
REASONS = [
    ("risk_phrase", "Risk phrase"),
    ("triage", "Chat triage"),
    ("survey", "Survey"),
    ("other", "Other"),
]


@report("risk_levels")
def risk_levels(filters: ReportFilters) -> Report:
    counted = dict(
        Conversation.objects.filter(conversation_q(filters))
        .values("risk_level")
        .annotate(n=Count("id"))
        .values_list("risk_level", "n")
    )
    labels = [level.label for level in RiskLevel] + [NOT_ASSESSED]
    values = [counted.get(level.value, 0) for level in RiskLevel] + [counted.get(None, 0)]
    total = sum(values)
    assessed = total - values[-1]
    return Report(
        key="risk_levels",
        title="Risk levels",
        columns=["Risk level", "Conversations", "Share"],
        rows=[
            [label, value, share(value, total)] for label, value in zip(labels, values, strict=True)
        ],
        chart=Chart("doughnut", labels, [("Conversations", list(values))]),
        summary=[
            ("Assessed", f"{assessed} ({share(assessed, total)})"),
            ("High risk", values[2]),
        ],
        note="Each conversation's latest risk assessment (the screener a counselor "
        "completes): low, moderate or high, or not assessed.",
    )


def _reason_kind() -> Case:
    return Case(
        When(priority_reason__startswith="Risk phrase", then=Value("risk_phrase")),
        When(priority_reason__startswith="Survey", then=Value("survey")),
        When(
            Q(priority_reason__startswith="Chat triage")
            | Q(priority_reason="", channel=Channel.CHAT),
            then=Value("triage"),
        ),
        default=Value("other"),
        output_field=CharField(),
    )


@report("priorities")
def priorities(filters: ReportFilters) -> Report:
    raised = Conversation.objects.filter(conversation_q(filters), priority__gt=Priority.NORMAL)
    counted = {
        (kind, priority): n
        for kind, priority, n in raised.annotate(reason_kind=_reason_kind())
        .values("reason_kind", "priority")
        .annotate(n=Count("id"))
        .values_list("reason_kind", "priority", "n")
    }
    levels = [p for p in Priority if p > Priority.NORMAL]
    rows: list[list[object]] = []
    for key, label in REASONS:
        per_level = [counted.get((key, level.value), 0) for level in levels]
        rows.append([label, *per_level, sum(per_level)])
    raised_n = total(rows, len(levels) + 1)
    return Report(
        key="priorities",
        title="Raised priorities",
        columns=["Reason", *(level.label for level in levels), "Total"],
        rows=rows,
        chart=Chart(
            "bar",
            [label for _, label in REASONS],
            [(level.label, column(rows, 1 + i)) for i, level in enumerate(levels)],
            stacked=True,
        ),
        summary=[("Raised priorities", raised_n)]
        + [(str(row[0]), row[-1]) for row in rows if row[-1]],
        note="Conversations whose priority was raised above normal, by what raised it (a "
        "risk phrase in a text, the chat's triage answers, a survey answer) and the "
        "priority it reached.",
    )

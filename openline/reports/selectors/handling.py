"""How conversations were handled: answered or abandoned, how long until a member assumed
one and until the first personal reply, and how long conversations lasted."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db.models import (
    Case,
    CharField,
    Count,
    Q,
    QuerySet,
    Value,
    When,
)

from openline.messaging.models import (
    Conversation,
    ConversationStatus,
    Message,
)
from openline.reports.base import Chart, Report, ReportFilters, report
from openline.reports.queries import conversation_q, duration, percentiles, readable, seconds, share


@report("answered")
def answered(filters: ReportFilters) -> Report:
    unassumed = Q(assigned_at__isnull=True)
    closed = Q(status=ConversationStatus.CLOSED)
    handled = Q(handled_automatically=True)
    counts = Conversation.objects.filter(conversation_q(filters)).aggregate(
        answered=Count("id", filter=Q(assigned_at__isnull=False)),
        handled=Count("id", filter=unassumed & closed & handled),
        abandoned=Count("id", filter=unassumed & closed & ~handled),
        waiting=Count("id", filter=unassumed & ~closed),
    )
    total = sum(counts.values())
    labels = ["Answered", "Abandoned", "Handled automatically", "Still waiting"]
    values = [counts["answered"], counts["abandoned"], counts["handled"], counts["waiting"]]
    return Report(
        key="answered",
        title="Answered and abandoned",
        columns=["Outcome", "Conversations", "Share"],
        rows=[
            [label, value, share(value, total)] for label, value in zip(labels, values, strict=True)
        ],
        chart=Chart("doughnut", labels, [("Conversations", list(values))]),
        summary=[
            ("Conversations", total),
            ("Answered", f"{counts['answered']} ({share(counts['answered'], total)})"),
            ("Abandoned", f"{counts['abandoned']} ({share(counts['abandoned'], total)})"),
        ],
        note="Answered: a member assumed it. Abandoned: it closed before anyone assumed it "
        "(a texter's conversation closed unattended, a chat visitor who left). Handled "
        "automatically: a clear answer to an appointment reminder or a survey, closed by "
        "OpenLine because nobody needed to read it. Still waiting: open and not yet assumed.",
    )


@report("response_times")
def response_times(filters: ReportFilters) -> Report:
    scope = Conversation.objects.filter(conversation_q(filters))
    assumed_n, (assume_50, assume_90) = percentiles(
        scope.filter(assigned_at__isnull=False), duration("assigned_at", "created_at")
    )
    replied = scope.filter(first_reply_at__isnull=False)
    replied_n, (reply_50, reply_90) = percentiles(replied, duration("first_reply_at", "created_at"))
    rows: list[list[object]] = [
        ["Time to assume", assumed_n, seconds(assume_50), seconds(assume_90)],
        ["Time to first reply", replied_n, seconds(reply_50), seconds(reply_90)],
    ]
    return Report(
        key="response_times",
        title="Time to assume and to first reply",
        columns=["Measure", "Conversations", "p50 (seconds)", "p90 (seconds)"],
        rows=rows,
        chart=Chart(
            "bar",
            ["Time to assume", "Time to first reply"],
            [
                ("p50 (seconds)", [seconds(assume_50), seconds(reply_50)]),
                ("p90 (seconds)", [seconds(assume_90), seconds(reply_90)]),
            ],
        ),
        summary=[
            ("p50 to assume", readable(assume_50)),
            ("p90 to assume", readable(assume_90)),
            ("p50 to first reply", readable(reply_50)),
            ("p90 to first reply", readable(reply_90)),
        ],
        note="From a conversation's start to the moment a member assumed it, and to the "
        "first personal reply sent in it (automatic replies do not count). Half of the "
        "conversations took at most the p50, nine in ten at most the p90.",
    )


LENGTHS = [
    ("Under 5 min", timedelta(minutes=5)),
    ("5–15 min", timedelta(minutes=15)),
    ("15–30 min", timedelta(minutes=30)),
    ("30–60 min", timedelta(hours=1)),
    ("1–2 h", timedelta(hours=2)),
    ("2–24 h", timedelta(days=1)),
]
LONGEST = "A day or more"
MESSAGE_COUNTS = [("1", 1), ("2–5", 5), ("6–10", 10), ("11–20", 20), ("21–50", 50)]
MOST_MESSAGES = "More than 50"


def _length_bucket() -> Case:
    whens = [
        When(length_s__lt=limit.total_seconds(), then=Value(label)) for label, limit in LENGTHS
    ]
    return Case(*whens, default=Value(LONGEST), output_field=CharField())


def _messages_buckets(filters: ReportFilters, scope: QuerySet[Conversation]) -> dict[str, int]:
    """Conversations by their number of messages: the messages grouped by conversation,
    then the groups counted per bucket, in one query (a count per conversation read every
    conversation's messages one by one, measured in bench-reports). A conversation's
    messages are not older than it, which lets the date index narrow them."""
    per_conversation = (
        Message.objects.filter(conversation__in=scope.values("pk"), created_at__gte=filters.since)
        .order_by()
        .values("conversation_id")
        .annotate(n=Count("id"))
    )
    buckets: dict[str, Any] = {}
    low = 0
    for index, (_, limit) in enumerate(MESSAGE_COUNTS):
        buckets[f"b{index}"] = Count("conversation_id", filter=Q(n__gt=low, n__lte=limit))
        low = limit
    buckets["most"] = Count("conversation_id", filter=Q(n__gt=low))
    counted = per_conversation.aggregate(**buckets)
    by_label = {label: counted[f"b{i}"] for i, (label, _) in enumerate(MESSAGE_COUNTS)}
    by_label[MOST_MESSAGES] = counted["most"]
    by_label["0"] = scope.count() - sum(by_label.values())
    return by_label


@report("conversation_length")
def conversation_length(filters: ReportFilters) -> Report:
    scope = Conversation.objects.filter(conversation_q(filters))
    closed = scope.filter(closed_at__isnull=False)
    by_length = dict(
        closed.annotate(length_s=duration("closed_at", "created_at"), bucket=_length_bucket())
        .values("bucket")
        .annotate(n=Count("id"))
        .values_list("bucket", "n")
    )
    by_messages = _messages_buckets(filters, scope)
    length_labels = [label for label, _ in LENGTHS] + [LONGEST]
    message_labels = ["0"] + [label for label, _ in MESSAGE_COUNTS] + [MOST_MESSAGES]
    rows: list[list[object]] = [
        ["Length", label, by_length.get(label, 0)] for label in length_labels
    ] + [["Messages", label, by_messages.get(label, 0)] for label in message_labels]
    _, (median,) = percentiles(closed, duration("closed_at", "created_at"), (0.5,))
    return Report(
        key="conversation_length",
        title="Conversation length",
        columns=["Measure", "Bucket", "Conversations"],
        rows=rows,
        chart=Chart(
            "bar",
            length_labels,
            [("Closed conversations", [by_length.get(b, 0) for b in length_labels])],
        ),
        summary=[
            ("Closed conversations", sum(by_length.values())),
            ("Median length", readable(median)),
        ],
        note="Length: from the start to the close, for closed conversations. Messages: "
        "texts in and out per conversation (all conversations of the range).",
    )

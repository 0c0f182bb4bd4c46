"""How many: conversations and inbound texts by day, by hour of the week, and the texts
that arrived while an inbox was offline."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.db.models import Count, QuerySet

from openline.messaging.models import Conversation, Direction, Message
from openline.reports.base import Chart, Report, ReportFilters, report
from openline.reports.queries import (
    column,
    conversation_q,
    days,
    in_range,
    local_date,
    local_hour,
    local_iso_weekday,
)

WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def _per_day(queryset: QuerySet[Any], filters: ReportFilters) -> dict[date, int]:
    rows = (
        queryset.annotate(day=local_date("created_at", filters))
        .values("day")
        .annotate(n=Count("id"))
        .values_list("day", "n")
    )
    return dict(rows)


def inbound_texts(filters: ReportFilters) -> QuerySet[Message]:
    return Message.objects.filter(
        conversation_q(filters, "conversation__", dated=False),
        in_range(filters),
        organization_id=filters.organization_id,
        direction=Direction.INBOUND,
    )


@report("volume_by_day")
def volume_by_day(filters: ReportFilters) -> Report:
    conversations = _per_day(Conversation.objects.filter(conversation_q(filters)), filters)
    texts = _per_day(inbound_texts(filters), filters)
    rows: list[list[object]] = [
        [day.isoformat(), conversations.get(day, 0), texts.get(day, 0)] for day in days(filters)
    ]
    total_conversations = sum(conversations.values())
    total_texts = sum(texts.values())
    busiest = max(conversations.items(), key=lambda item: item[1]) if conversations else None
    return Report(
        key="volume_by_day",
        title="Volume by day",
        columns=["Day", "Conversations", "Inbound texts"],
        rows=rows,
        chart=Chart(
            "bar",
            [str(row[0]) for row in rows],
            [
                ("Conversations", column(rows, 1)),
                ("Inbound texts", column(rows, 2)),
            ],
        ),
        summary=[
            ("Conversations", total_conversations),
            ("Inbound texts", total_texts),
            ("Busiest day", f"{busiest[0].isoformat()} ({busiest[1]})" if busiest else "–"),
        ],
        note="Conversations by the day they started and inbound texts by the day they "
        "arrived, in the organization's time zone.",
    )


@report("volume_by_hour")
def volume_by_hour(filters: ReportFilters) -> Report:
    grouped = (
        Conversation.objects.filter(conversation_q(filters))
        .annotate(
            weekday=local_iso_weekday("created_at", filters),
            hour=local_hour("created_at", filters),
        )
        .values("weekday", "hour")
        .annotate(n=Count("id"))
        .values_list("weekday", "hour", "n")
    )
    counts = {(weekday, hour): n for weekday, hour, n in grouped}
    rows: list[list[object]] = [
        [name, *(counts.get((number, hour), 0) for hour in range(24))]
        for number, name in enumerate(WEEKDAYS, start=1)
    ]
    peak = max(counts.items(), key=lambda item: item[1]) if counts else None
    return Report(
        key="volume_by_hour",
        title="Volume by hour of the week",
        columns=["Day", *(f"{hour:02d}" for hour in range(24))],
        rows=rows,
        chart=Chart(
            "heatmap",
            [f"{hour:02d}" for hour in range(24)],
            [(WEEKDAYS[i], [counts.get((i + 1, h), 0) for h in range(24)]) for i in range(7)],
        ),
        summary=[
            (
                "Busiest hour",
                f"{WEEKDAYS[peak[0][0] - 1]} {peak[0][1]:02d}:00 ({peak[1]})" if peak else "–",
            )
        ],
        note="Conversations by the weekday and hour they started, in the organization's time zone.",
    )


@report("offline_texts")
def offline_texts(filters: ReportFilters) -> Report:
    per_day = _per_day(inbound_texts(filters).filter(received_offline=True), filters)
    rows: list[list[object]] = [[day.isoformat(), per_day.get(day, 0)] for day in days(filters)]
    return Report(
        key="offline_texts",
        title="Offline texts",
        columns=["Day", "Texts received offline"],
        rows=rows,
        chart=Chart(
            "bar",
            [str(row[0]) for row in rows],
            [("Texts received offline", column(rows, 1))],
        ),
        summary=[("Texts received offline", sum(per_day.values()))],
        note="Inbound texts that arrived while their inbox was offline, by the day they arrived.",
    )

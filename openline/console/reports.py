"""Reads for the offline messages report: texts that arrived while their inbox was
offline, their counts by hour of the week (in the organization's time zone) to show
demand outside the hours, and the conversations they opened that still wait for someone.
Every read is scoped to one organization."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from django.db.models import Count, QuerySet
from django.db.models.functions import ExtractHour, ExtractIsoWeekDay

from openline.messaging.models import Conversation, ConversationStatus, Direction, Message

DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
LEVELS = 4  # colour steps above "none"


def offline_texts(
    *, organization_id: int, since: datetime, until: datetime, number_id: int | None = None
) -> QuerySet[Message]:
    """Inbound texts marked as received while offline in [since, until), newest first."""
    texts = Message.objects.filter(
        organization_id=organization_id,
        direction=Direction.INBOUND,
        received_offline=True,
        created_at__gte=since,
        created_at__lt=until,
    )
    if number_id is not None:
        texts = texts.filter(conversation__number_id=number_id)
    return texts


@dataclass(frozen=True)
class Cell:
    day: str
    hour: int
    count: int
    level: int  # 0 (none) .. LEVELS (the busiest hour)

    @property
    def label(self) -> str:
        texts = "text" if self.count == 1 else "texts"
        return f"{self.day} {self.hour:02d}:00–{(self.hour + 1) % 24:02d}:00: {self.count} {texts}"


@dataclass(frozen=True)
class HeatMap:
    rows: list[tuple[str, list[Cell]]]  # Monday first, hours 0-23
    total: int
    peak: int


def offline_heatmap(
    *,
    organization_id: int,
    since: datetime,
    until: datetime,
    tz: str,
    number_id: int | None = None,
) -> HeatMap:
    """Offline texts counted by local weekday and hour: one grouped query."""
    zone = ZoneInfo(tz)
    counts = (
        offline_texts(
            organization_id=organization_id, since=since, until=until, number_id=number_id
        )
        .annotate(
            weekday=ExtractIsoWeekDay("created_at", tzinfo=zone),
            hour=ExtractHour("created_at", tzinfo=zone),
        )
        .values("weekday", "hour")
        .annotate(n=Count("pk"))
        .order_by()
    )
    grid = {(row["weekday"], row["hour"]): row["n"] for row in counts}
    peak = max(grid.values(), default=0)
    rows = [
        (day, [_cell(day, hour, grid.get((index + 1, hour), 0), peak) for hour in range(24)])
        for index, day in enumerate(DAYS)
    ]
    return HeatMap(rows=rows, total=sum(grid.values()), peak=peak)


def _cell(day: str, hour: int, count: int, peak: int) -> Cell:
    level = math.ceil(LEVELS * count / peak) if count else 0
    return Cell(day=day, hour=hour, count=count, level=level)


def offline_followups(
    *, organization_id: int, number_id: int | None = None
) -> QuerySet[Conversation]:
    """Conversations opened while offline that nobody has taken yet, oldest first."""
    waiting = Conversation.objects.filter(
        organization_id=organization_id,
        opened_offline=True,
        status=ConversationStatus.WAITING,
    )
    if number_id is not None:
        waiting = waiting.filter(number_id=number_id)
    return waiting.select_related("contact", "number").order_by("created_at", "pk")

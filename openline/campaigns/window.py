"""Quiet hours: broadcasts text people only inside the organization's sending window, in
each recipient's own local time (from the phone number; the organization's zone when the
number does not say)."""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from openline.campaigns.models import SendingWindow


@dataclass(frozen=True)
class Window:
    start: time
    end: time

    def is_open(self, now: datetime, zone: str) -> bool:
        local = now.astimezone(zoneinfo.ZoneInfo(zone)).time()
        return self.start <= local < self.end

    def opens_at(self, now: datetime, zone: str) -> datetime:
        """``now`` if the window is open in ``zone``, else when it next opens (aware)."""
        if self.is_open(now, zone):
            return now
        tz = zoneinfo.ZoneInfo(zone)
        local = now.astimezone(tz)
        day = local.date() if local.time() < self.start else local.date() + timedelta(days=1)
        return datetime.combine(day, self.start, tzinfo=tz)


def sending_window(*, organization_id: int) -> Window:
    row = SendingWindow.objects.filter(organization_id=organization_id).first()
    return Window(row.start, row.end) if row else Window(time(8, 0), time(21, 0))

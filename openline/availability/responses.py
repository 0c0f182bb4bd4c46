"""Reads for auto-responses: an inbox's settings, which inboxes answer at all (processing
asks once per batch), and the words of an answer with the next opening filled in."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.db.models import Q
from django.utils import timezone

from openline.availability.models import InboxResponses
from openline.providers.models import Number

CLOSED_UNTIL_UNKNOWN = "as soon as we can"


def responses_for(number: Number) -> InboxResponses:
    """The inbox's settings; unsaved defaults (everything off) when never edited."""
    found = InboxResponses.objects.filter(number_id=number.pk).first()
    return found or InboxResponses(organization_id=number.organization_id, number=number)


def responding_inboxes(number_ids: list[int]) -> set[int]:
    """Which of these inboxes have any auto-response switched on. One query."""
    on = Q(offline_enabled=True) | Q(greeting_enabled=True) | Q(busy_enabled=True)
    rows = InboxResponses.objects.filter(on, number_id__in=number_ids)
    return set(rows.values_list("number_id", flat=True))


def opening_phrase(moment: datetime | None, *, tz: str, now: datetime | None = None) -> str:
    """When the service opens again, as a person would say it in the organization's zone:
    "today at 9:00 AM", "tomorrow at 9:00 AM", "Tuesday at 9:00 AM", or with the date
    beyond a week. Unknown (switched off, nothing staffed ahead): "as soon as we can"."""
    if moment is None:
        return CLOSED_UNTIL_UNKNOWN
    zone = ZoneInfo(tz)
    local = moment.astimezone(zone)
    today = (now or timezone.now()).astimezone(zone).date()
    clock = local.strftime("%-I:%M %p")
    days = (local.date() - today).days
    if days <= 0:
        return f"today at {clock}"
    if days == 1:
        return f"tomorrow at {clock}"
    if days < 7:
        return f"{local:%A} at {clock}"
    return f"{local:%A, %B} {local.day} at {clock}"


def response_text(template: str, *, organization_name: str, next_open: str = "") -> str:
    """Fill the placeholders (plain replacement: a stray brace in the text is harmless)."""
    text = template.replace("{organization}", organization_name)
    return text.replace("{next_open}", next_open).strip()


def period_start(responses: InboxResponses, now: datetime) -> datetime:
    return now - timedelta(hours=responses.offline_period_hours)

"""Shifts, sign-ups, the inbox switch and calendar feed tokens.

A shift is stored the way people plan it: a local start date and time, a duration and an
RFC 5545 RRULE in the shift's time zone (the organization's when it was created). Its
occurrences are expanded on demand (``recurrence``). A sign-up is for one occurrence and
carries that occurrence's UTC bounds, so "is anyone on shift now" is an indexed range query
with no expansion at all."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from openline.core.models import Organization
from openline.providers.models import Number

MIN_SHIFT_MINUTES = 15
MAX_SHIFT_MINUTES = 24 * 60
MAX_PLACES = 100


class ShiftKind(models.TextChoices):
    NORMAL = "normal", "Normal"
    ONCALL = "oncall", "On call / support"


class Shift(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    # Normal shifts staff one inbox; an on-call shift without an inbox covers them all.
    number = models.ForeignKey(
        Number, null=True, blank=True, on_delete=models.CASCADE, related_name="shifts"
    )
    kind = models.CharField(max_length=10, choices=ShiftKind.choices, default=ShiftKind.NORMAL)
    title = models.CharField(max_length=100, blank=True)
    # Copied from the organization at creation: a later change of the organization's zone
    # must not move the sign-ups people already have.
    timezone = models.CharField(max_length=64)
    start_date = models.DateField()
    start_time = models.TimeField()
    duration_minutes = models.PositiveIntegerField(
        validators=[MinValueValidator(MIN_SHIFT_MINUTES), MaxValueValidator(MAX_SHIFT_MINUTES)]
    )
    # An RRULE value without DTSTART ("FREQ=WEEKLY;BYDAY=MO,WE;COUNT=10"); blank = one-off.
    rrule = models.CharField(max_length=300, blank=True)
    # Cancelled occurrences, as local start times ("2025-03-10T09:00:00").
    exdates = models.JSONField(default=list, blank=True)
    places = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1), MaxValueValidator(MAX_PLACES)]
    )
    # UTC bounds of all occurrences (derived), so a window query skips shifts that cannot
    # touch it; last_end is None for a rule without an end.
    first_start = models.DateTimeField()
    last_end = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["organization", "first_start"])]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(kind="oncall") | models.Q(number__isnull=False),
                name="shift_normal_has_inbox",
            ),
            models.CheckConstraint(condition=models.Q(places__gte=1), name="shift_places_min"),
        ]

    def __str__(self) -> str:
        return self.title or f"{self.get_kind_display()} shift"

    @property
    def is_recurring(self) -> bool:
        return bool(self.rrule)


class ShiftSignUp(models.Model):
    """One person on one occurrence of a shift."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    shift = models.ForeignKey(Shift, on_delete=models.CASCADE, related_name="signups")
    occurrence_start = models.DateTimeField()
    occurrence_end = models.DateTimeField()
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="shift_signups"
    )
    signed_up_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["shift", "occurrence_start", "user"], name="uniq_shift_signup"
            )
        ]
        indexes = [
            models.Index(fields=["shift", "occurrence_end"]),
            models.Index(fields=["user", "occurrence_end"]),
        ]


class AvailabilityMode(models.TextChoices):
    AUTOMATIC = "automatic", "Automatic (by shifts)"
    OFFLINE = "offline", "Offline"


class InboxAvailability(models.Model):
    """The inbox's manual switch. No row means automatic."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    number = models.OneToOneField(Number, on_delete=models.CASCADE, related_name="availability")
    mode = models.CharField(
        max_length=10, choices=AvailabilityMode.choices, default=AvailabilityMode.AUTOMATIC
    )
    note = models.CharField(max_length=200, blank=True)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    changed_at = models.DateTimeField()


def _feed_token() -> str:
    return secrets.token_urlsafe(24)


class CalendarFeed(models.Model):
    """A person's private iCalendar subscription. The token is kept (not hashed) so the
    page can show the address again: it unlocks only that person's own shift times."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    token = models.CharField(max_length=64, unique=True, default=_feed_token)
    issued_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "user"], name="uniq_calendar_feed")
        ]


DEFAULT_OFFLINE_TEXT = (
    "Thanks for your message. We're closed right now and open again {next_open}. "
    "If you are in danger call 911."
)
DEFAULT_GREETING_TEXT = (
    "Hi, you've reached {organization}. A counselor will answer you here as soon as they can. "
    "Reply STOP to opt out."
)
DEFAULT_BUSY_TEXT = (
    "Thanks for your message. All our counselors are busy right now; please stay with us "
    "and someone will answer as soon as they can. If you are in danger call 911."
)
MAX_RESPONSE_CHARS = 480
MAX_OFFLINE_PERIOD_HOURS = 168


class InboxResponses(models.Model):
    """An inbox's automatic answers to texts. All are off until someone turns them on:
    nothing is texted in the organization's name before a person has read the words.

    ``{next_open}`` in the offline text becomes the next opening in the organization's time
    zone ("Tuesday at 9:00 AM"); ``{organization}`` its name."""

    organization_id: int
    number_id: int
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    number = models.OneToOneField(Number, on_delete=models.CASCADE, related_name="responses")
    offline_enabled = models.BooleanField(default=False)
    offline_text = models.CharField(max_length=MAX_RESPONSE_CHARS, default=DEFAULT_OFFLINE_TEXT)
    # One person gets at most one offline answer from this inbox per this many hours.
    offline_period_hours = models.PositiveSmallIntegerField(
        default=12, validators=[MinValueValidator(1), MaxValueValidator(MAX_OFFLINE_PERIOD_HOURS)]
    )
    # A person's first conversation ever in this inbox.
    greeting_enabled = models.BooleanField(default=False)
    greeting_text = models.CharField(
        max_length=MAX_RESPONSE_CHARS, blank=True, default=DEFAULT_GREETING_TEXT
    )
    # Sent to a new conversation when this many (it included) wait in the inbox's queue.
    busy_enabled = models.BooleanField(default=False)
    busy_text = models.CharField(
        max_length=MAX_RESPONSE_CHARS, blank=True, default=DEFAULT_BUSY_TEXT
    )
    busy_threshold = models.PositiveSmallIntegerField(
        default=5, validators=[MinValueValidator(1), MaxValueValidator(1000)]
    )
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    @property
    def offline_on(self) -> bool:
        return self.offline_enabled and bool(self.offline_text.strip())

    @property
    def greeting_on(self) -> bool:
        return self.greeting_enabled and bool(self.greeting_text.strip())

    @property
    def busy_on(self) -> bool:
        return self.busy_enabled and bool(self.busy_text.strip()) and self.busy_threshold > 0


class AutoReplyKind(models.TextChoices):
    OFFLINE = "offline", "Offline"
    GREETING = "greeting", "First-contact greeting"
    BUSY = "busy", "All counselors busy"


class AutoReply(models.Model):
    """One automatic answer to one inbound text: what makes sending idempotent (one per
    text, one greeting per person and inbox, one busy answer per conversation) and what
    the offline period is counted from. ``message`` is the text as sent; empty, with
    ``refused`` set, when the send service refused it (an opted-out number)."""

    organization_id: int
    number_id: int
    contact_id: int
    conversation_id: int
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    number = models.ForeignKey(Number, on_delete=models.CASCADE, related_name="+")
    contact = models.ForeignKey("contacts.Contact", on_delete=models.CASCADE, related_name="+")
    conversation = models.ForeignKey(
        "messaging.Conversation", on_delete=models.CASCADE, related_name="auto_replies"
    )
    trigger = models.ForeignKey("messaging.Message", on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=10, choices=AutoReplyKind.choices)
    message = models.ForeignKey(
        "messaging.Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    refused = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["trigger"], name="uniq_auto_reply_trigger"),
            models.UniqueConstraint(
                fields=["contact", "number"],
                condition=models.Q(kind="greeting"),
                name="uniq_auto_reply_greeting",
            ),
            models.UniqueConstraint(
                fields=["conversation"],
                condition=models.Q(kind="busy"),
                name="uniq_auto_reply_busy",
            ),
        ]
        indexes = [models.Index(fields=["contact", "number", "kind", "created_at"])]

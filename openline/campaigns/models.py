from __future__ import annotations

from datetime import time

from django.conf import settings
from django.db import models
from django.db.models import Q

from openline.core.models import Organization


class SendingWindow(models.Model):
    """When broadcasts may text people, in each recipient's own local time."""

    organization = models.OneToOneField(
        Organization, on_delete=models.CASCADE, related_name="sending_window"
    )
    start = models.TimeField(default=time(8, 0))
    end = models.TimeField(default=time(21, 0))

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(start__lt=models.F("end")), name="window_order")
        ]


class BroadcastStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    SCHEDULED = "scheduled", "Scheduled"
    SENDING = "sending", "Sending"
    PAUSED = "paused", "Paused"
    FINISHED = "finished", "Finished"
    CANCELLED = "cancelled", "Cancelled"


class BroadcastChannel(models.TextChoices):
    SMS = "sms", "Text message"
    VOICE = "voice", "Voice call"


# Languages the provider's text-to-speech reads (BCP 47, as TwiML <Say language> takes).
VOICE_LANGUAGES = [
    ("en-US", "English (US)"),
    ("es-US", "Spanish (US)"),
    ("en-GB", "English (UK)"),
    ("fr-CA", "French (Canada)"),
    ("pt-BR", "Portuguese (Brazil)"),
    ("vi-VN", "Vietnamese"),
    ("zh-CN", "Chinese (Mandarin)"),
]


class VoiceRecording(models.Model):
    """A voice broadcast's recorded message (recorded in the browser or uploaded): WAV or
    MP3, which the provider fetches by its unguessable token when a call is answered."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    name = models.CharField(max_length=120)
    audio = models.BinaryField()
    content_type = models.CharField(max_length=20)  # audio/wav | audio/mpeg
    seconds = models.PositiveIntegerField()
    token = models.CharField(max_length=43, unique=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.name


class ReplyMode(models.TextChoices):
    QUEUE = "queue", "Replies wait in the queue"
    NOT_MONITORED = "not_monitored", "Answer replies once: this number is not monitored"


class Broadcast(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    name = models.CharField(max_length=120)
    channel = models.CharField(
        max_length=5, choices=BroadcastChannel.choices, default=BroadcastChannel.SMS
    )
    # A text message's text; a voice broadcast's text to read (empty with a recording).
    body = models.TextField(blank=True)
    recording = models.ForeignKey(
        VoiceRecording, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    language = models.CharField(max_length=10, choices=VOICE_LANGUAGES, default="en-US")
    status = models.CharField(
        max_length=10, choices=BroadcastStatus.choices, default=BroadcastStatus.DRAFT
    )
    # Who gets it: {"include_tags": [ids], "exclude_tags": [ids]} (see audience.py).
    audience = models.JSONField(default=dict, blank=True)
    numbers = models.ManyToManyField("providers.Number", related_name="broadcasts")
    # A reply always reaches the queue (nothing a person texts is dropped); NOT_MONITORED
    # also answers each recipient's first reply with ``not_monitored_text``.
    reply_mode = models.CharField(max_length=15, choices=ReplyMode.choices, default=ReplyMode.QUEUE)
    not_monitored_text = models.CharField(max_length=320, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    scheduled_for = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The credits set aside when it was queued; settled when it finishes.
    reservation = models.OneToOneField(
        "billing.CreditEntry", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # The runner's last turn: the scheduler restarts a sending broadcast whose runner died.
    last_run_at = models.DateTimeField(null=True, blank=True)
    # The current chain of runner turns; a turn of an older chain stops (see _start_runner).
    runner = models.PositiveIntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["organization", "-created_at"])]
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_voice(self) -> bool:
        return self.channel == BroadcastChannel.VOICE


class RecipientStatus(models.TextChoices):
    PENDING = "pending", "Waiting to be sent"
    QUEUED = "queued", "Handed to the send service"
    REFUSED = "refused", "Not sent"
    CANCELLED = "cancelled", "Cancelled"


class BroadcastRecipient(models.Model):
    """One phone number a broadcast goes to: the unit of work. Queuing it inserts its
    message and marks it queued in one transaction, so a crash never texts anyone twice
    and never skips anyone."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    broadcast = models.ForeignKey(Broadcast, on_delete=models.CASCADE, related_name="recipients")
    contact = models.ForeignKey("contacts.Contact", on_delete=models.CASCADE, related_name="+")
    phone = models.CharField(max_length=20)
    number = models.ForeignKey("providers.Number", on_delete=models.PROTECT, related_name="+")
    time_zone = models.CharField(max_length=64)
    status = models.CharField(
        max_length=10, choices=RecipientStatus.choices, default=RecipientStatus.PENDING
    )
    reason = models.CharField(max_length=200, blank=True)
    segments = models.PositiveIntegerField(default=1)
    credits = models.PositiveIntegerField(default=0)
    footer = models.BooleanField(default=False)
    message = models.OneToOneField(
        "messaging.Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    call = models.OneToOneField(
        "messaging.Call", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    queued_at = models.DateTimeField(null=True, blank=True)
    # When their first reply got the "not monitored" answer (once per recipient).
    reply_answered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["broadcast", "phone"], name="uniq_broadcast_phone")
        ]
        indexes = [
            models.Index(fields=["broadcast", "status", "time_zone"]),
            models.Index(fields=["organization", "phone"]),
        ]

    @property
    def reason_text(self) -> str:
        """The reason as a sentence, without its code ("opted_out: ..." -> "...")."""
        code, _, text = self.reason.partition(": ")
        return text if text and code.isidentifier() else self.reason


class StickySender(models.Model):
    """The number a person gets broadcasts from, kept across broadcasts so replies and
    STOPs stay in one thread on their phone."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    phone = models.CharField(max_length=20)
    number = models.ForeignKey("providers.Number", on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "phone"], name="uniq_sticky_phone")
        ]


class Segment(models.Model):
    """A saved audience ("Saturday swimmers, not staff"), to start broadcasts from."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    name = models.CharField(max_length=120)
    audience = models.JSONField(default=dict)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"], name="uniq_segment_name")
        ]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


# --- appointments and their reminders (issue 16) -----------------------------------------


class AppointmentStatus(models.TextChoices):
    BOOKED = "booked", "Booked"
    CONFIRMED = "confirmed", "Confirmed"
    CANCELLED = "cancelled", "Cancelled"
    RESCHEDULE = "reschedule", "Rescheduling requested"
    COMPLETED = "completed", "Completed"
    NO_SHOW = "no_show", "No-show"


class AppointmentType(models.Model):
    """A kind of visit ("New patient", "Flu shot"); its reminder rules hang off it."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    name = models.CharField(max_length=80)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"], name="appointment_type_name")
        ]

    def __str__(self) -> str:
        return self.name


class ReminderSettings(models.Model):
    """Healthcare sending limits per patient (texts from reminders, counted per local day
    and per rolling seven days)."""

    organization = models.OneToOneField(
        Organization, on_delete=models.CASCADE, related_name="reminder_settings"
    )
    max_per_day = models.PositiveSmallIntegerField(default=1)
    max_per_week = models.PositiveSmallIntegerField(default=3)
    # Who hears of a cancellation by text reply: a console notification, and a text too
    # when ``notify_by_text`` (through the alert machinery's phone for that member).
    notify_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    notify_by_text = models.BooleanField(default=False)


class ReminderRule(models.Model):
    """One text relative to an appointment's start: ``days_before`` at ``at_time`` (the
    appointment's local time), or ``minutes_before`` the start."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    appointment_type = models.ForeignKey(
        AppointmentType, on_delete=models.CASCADE, related_name="rules"
    )
    days_before = models.PositiveSmallIntegerField(null=True, blank=True)
    at_time = models.TimeField(null=True, blank=True)
    minutes_before = models.PositiveIntegerField(null=True, blank=True)
    template = models.TextField()
    # Booked after this reminder's time had passed: sent at once (in sending hours) only
    # when asked; otherwise skipped.
    send_when_booked_late = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["appointment_type_id", "-days_before", "-minutes_before", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(days_before__isnull=False, at_time__isnull=False, minutes_before__isnull=True)
                    | Q(
                        days_before__isnull=True, at_time__isnull=True, minutes_before__isnull=False
                    )
                ),
                name="reminder_rule_offset",
            )
        ]


class Appointment(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    contact = models.ForeignKey("contacts.Contact", on_delete=models.CASCADE)
    appointment_type = models.ForeignKey(
        AppointmentType, null=True, blank=True, on_delete=models.SET_NULL
    )
    starts_at = models.DateTimeField()  # UTC
    time_zone = models.CharField(max_length=64)  # where it takes place (IANA)
    minutes = models.PositiveIntegerField(default=30)
    staff_name = models.CharField(max_length=120, blank=True)
    location = models.CharField(max_length=120, blank=True)
    status = models.CharField(
        max_length=12, choices=AppointmentStatus.choices, default=AppointmentStatus.BOOKED
    )
    # The scheduling system's id: pushing the same appointment again changes nothing.
    external_id = models.CharField(max_length=100, blank=True)
    # The first clear answer to a reminder, and when.
    answer = models.CharField(max_length=12, blank=True)
    answered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["starts_at", "pk"]
        indexes = [
            models.Index(fields=["organization", "starts_at"]),
            models.Index(fields=["contact", "starts_at"]),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "external_id"],
                condition=~Q(external_id=""),
                name="appointment_external_id",
            )
        ]


class ReminderStatus(models.TextChoices):
    PLANNED = "planned", "Planned"
    SENT = "sent", "Sent"
    WITHDRAWN = "withdrawn", "Withdrawn"  # the appointment moved or was cancelled
    MISSED = "missed", "Missed"  # due while OpenLine was down, too late to send
    SKIPPED = "skipped", "Not sent"  # booked too late, over a sending limit
    REFUSED = "refused", "Refused"  # no consent, invalid number...


class Reminder(models.Model):
    """One reminder text for one appointment start: planned, then sent once (the status
    moves from PLANNED in one UPDATE, so two schedulers cannot both send it)."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    appointment = models.ForeignKey(Appointment, on_delete=models.CASCADE, related_name="reminders")
    rule = models.ForeignKey(ReminderRule, on_delete=models.CASCADE, related_name="+")
    # The start this reminder announces: a change to another start plans new ones, and a
    # start already announced is not announced again.
    for_start = models.DateTimeField()
    due_at = models.DateTimeField()
    status = models.CharField(
        max_length=10, choices=ReminderStatus.choices, default=ReminderStatus.PLANNED
    )
    reason = models.CharField(max_length=200, blank=True)
    message = models.ForeignKey(
        "messaging.Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["due_at", "pk"]
        indexes = [models.Index(fields=["status", "due_at"])]
        constraints = [
            # Withdrawn ones (a re-timed rule, a visit moved away and back) do not count.
            models.UniqueConstraint(
                fields=["appointment", "rule", "for_start"],
                condition=~Q(status="withdrawn"),
                name="reminder_once_per_start",
            )
        ]


# --- campaigns: texts relative to a date on the contact (issue 16) -------------------------


class CampaignStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    PAUSED = "paused", "Paused"


class Campaign(models.Model):
    """A sequence of texts relative to a date on each contact: a custom date field (its
    key) or the contact's creation (``date_field`` "created"). Contacts with a date (and the
    tag, without the excluded one) are in; they leave when the date or the tags change."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    name = models.CharField(max_length=120)
    date_field = models.CharField(max_length=40)  # a CustomField key, or "created"
    include_tag = models.ForeignKey(
        "contacts.Tag", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    exclude_tag = models.ForeignKey(
        "contacts.Tag", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    number = models.ForeignKey(
        "providers.Number", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(
        max_length=8, choices=CampaignStatus.choices, default=CampaignStatus.ACTIVE
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "pk"]

    def __str__(self) -> str:
        return self.name


class CampaignStep(models.Model):
    """One text: ``days`` after the date (negative: before it) at ``at_time`` local."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="steps")
    days = models.IntegerField()
    at_time = models.TimeField(default=time(10, 0))
    template = models.TextField()

    class Meta:
        ordering = ["days", "at_time", "pk"]


class CampaignSendStatus(models.TextChoices):
    PLANNED = "planned", "Planned"
    SENT = "sent", "Sent"
    WITHDRAWN = "withdrawn", "Withdrawn"  # the date or the tags changed
    SKIPPED = "skipped", "Not sent"  # too late, no credits...
    REFUSED = "refused", "Refused"  # no consent, invalid number


class CampaignSend(models.Model):
    """One step for one contact and one value of its date: sent at most once."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    step = models.ForeignKey(CampaignStep, on_delete=models.CASCADE, related_name="sends")
    contact = models.ForeignKey("contacts.Contact", on_delete=models.CASCADE, related_name="+")
    date_value = models.DateField()
    due_at = models.DateTimeField()
    status = models.CharField(
        max_length=10, choices=CampaignSendStatus.choices, default=CampaignSendStatus.PLANNED
    )
    reason = models.CharField(max_length=200, blank=True)
    message = models.ForeignKey(
        "messaging.Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["due_at", "pk"]
        indexes = [models.Index(fields=["status", "due_at"])]
        constraints = [
            models.UniqueConstraint(
                fields=["step", "contact", "date_value"], name="campaign_send_once"
            )
        ]


class AppointmentUpload(models.Model):
    """An appointments CSV between its upload and the user's "Import": kept in the database
    (any web process can finish it), for an hour at most (it holds patients' details), and
    taken by one delete when imported or discarded."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    token = models.CharField(max_length=40, unique=True)
    payload = models.BinaryField()  # StoredImport as JSON (appointment_import)
    created_at = models.DateTimeField()

from __future__ import annotations

from django.conf import settings
from django.db import models

from openline.contacts.models import ConsentEvent, Contact
from openline.core.models import Organization
from openline.providers.models import Number


class InboundEvent(models.Model):
    """An acknowledged inbound message, written durably before the webhook answers.

    Processing turns it into a Message; (provider, provider_message_id) makes a retried
    webhook a no-op."""

    organization_id: int
    number_id: int
    # No index of their own: every index is another page written on each intake commit
    # (measured about 5 us apiece). The (number, from_number, id) index below serves
    # lookups by number, and nothing looks events up by organization except deleting one
    # (a rare administrative act, which can afford a scan).
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, db_index=False)
    number = models.ForeignKey(Number, on_delete=models.CASCADE, db_index=False)
    provider = models.CharField(max_length=30)
    provider_message_id = models.CharField(max_length=64)
    from_number = models.CharField(max_length=20)
    body = models.TextField(blank=True)
    media_urls = models.JSONField(default=list, blank=True)
    received_at = models.DateTimeField()
    processed_at = models.DateTimeField(null=True, blank=True)
    # Processing failures so far; after a few the event waits for a person (see logs).
    attempts = models.PositiveSmallIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "provider_message_id"], name="uniq_inbound_provider_id"
            )
        ]
        indexes = [
            models.Index(fields=["number", "from_number", "id"]),
            models.Index(
                fields=["id"],
                name="inbound_pending_idx",
                condition=models.Q(processed_at__isnull=True),
            ),
        ]


class Channel(models.TextChoices):
    SMS = "sms", "SMS"
    CHAT = "chat", "Chat"
    VOICE = "voice", "Voice"
    # Staff alerts (waiting conversations, after-hours notices): a closed record per staff
    # phone and inbox, kept out of the console's queue.
    ALERT = "alert", "Staff alerts"


class ConversationStatus(models.TextChoices):
    WAITING = "waiting", "Waiting"
    ACTIVE = "active", "Active"
    CLOSED = "closed", "Closed"


class Priority(models.IntegerChoices):
    """How urgently a conversation should be answered (set by pre-chat triage answers);
    the queue serves higher priorities first."""

    NORMAL = 0, "Normal"
    ELEVATED = 1, "Elevated"
    HIGH = 2, "High"
    URGENT = 3, "Urgent"


class RiskLevel(models.IntegerChoices):
    """The result of a risk assessment (the most severe positive screening item); empty on
    a conversation nobody assessed."""

    LOW = 1, "Low"
    MODERATE = 2, "Moderate"
    HIGH = 3, "High"


class Conversation(models.Model):
    organization_id: int
    number_id: int
    contact_id: int
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    number = models.ForeignKey(Number, on_delete=models.PROTECT, related_name="conversations")
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="conversations")
    channel = models.CharField(max_length=10, choices=Channel.choices, default=Channel.SMS)
    status = models.CharField(
        max_length=10, choices=ConversationStatus.choices, default=ConversationStatus.WAITING
    )
    priority = models.SmallIntegerField(choices=Priority.choices, default=Priority.NORMAL)
    # Why the priority was raised, shown in the queue row ("Risk phrase: “pills”",
    # "Chat triage: …", "Survey: …"); empty at normal priority.
    priority_reason = models.CharField(max_length=200, blank=True, default="", db_default="")
    # The latest risk assessment's result (forms: the screener a counselor completes).
    risk_level = models.SmallIntegerField(choices=RiskLevel.choices, null=True, blank=True)
    # A new text conversation answering its inbox's pre-conversation survey stays out of
    # the queue until the survey ends or this time passes, whichever is first: a survey
    # that breaks or a texter who stops answering never keeps a person from the queue.
    held_until = models.DateTimeField(null=True, blank=True)
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    assigned_at = models.DateTimeField(null=True, blank=True)
    # Set when the person wrote something that reads like an opt-out request.
    needs_consent_review = models.BooleanField(default=False)
    # Its first text arrived while the inbox was offline: it waits for follow-up when the
    # service opens instead of alerting people on shift.
    opened_offline = models.BooleanField(default=False, db_default=False)
    last_message_at = models.DateTimeField(db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    # When its first personal reply was written (reports' time to first reply, read from
    # one row instead of a search of its messages).
    first_reply_at = models.DateTimeField(null=True, blank=True)
    # Closed by OpenLine after a clear answer to a reminder or survey that nobody needed to
    # read: reports count it apart from the conversations people left unanswered.
    handled_automatically = models.BooleanField(default=False, db_default=False)

    class Meta:
        constraints = [
            # One open conversation per person and inbox, even with several workers.
            models.UniqueConstraint(
                fields=["contact", "number"],
                condition=~models.Q(status="closed"),
                name="uniq_open_conversation",
            )
        ]
        indexes = [
            models.Index(fields=["organization", "number", "-last_message_at"]),
            models.Index(fields=["organization", "status", "last_message_at"]),
            models.Index(fields=["contact", "number", "status"]),
            models.Index(fields=["organization", "assigned_to", "status"]),
            # Reports select a range of start times (SQLite, with no statistics, otherwise
            # walks every conversation of the organization: bench/README.md, bench-reports).
            models.Index(fields=["organization", "created_at"], name="conversation_org_created"),
        ]


class Direction(models.TextChoices):
    INBOUND = "in", "Inbound"
    OUTBOUND = "out", "Outbound"


class MessageStatus(models.TextChoices):
    RECEIVED = "received", "Received"
    QUEUED = "queued", "Queued"
    SENDING = "sending", "Sending"
    # The provider may or may not have accepted it (a timeout, a dropped connection, a 5xx):
    # reconciliation asks the provider before anything is sent again.
    UNKNOWN = "unknown", "Checking if sent"
    SENT = "sent", "Sent"
    DELIVERED = "delivered", "Delivered"
    UNDELIVERED = "undelivered", "Undelivered"
    FAILED = "failed", "Failed"


# Outbound messages whose fate is still open (reconciliation watches these).
UNSETTLED_STATUSES = (MessageStatus.QUEUED, MessageStatus.SENDING, MessageStatus.UNKNOWN)

# Status only moves forward: a late "sent" never overwrites "delivered".
STATUS_RANK = {
    MessageStatus.RECEIVED: 0,
    MessageStatus.QUEUED: 1,
    MessageStatus.SENDING: 2,
    MessageStatus.UNKNOWN: 2,  # like SENDING: any real status the provider reports moves it on
    MessageStatus.SENT: 3,
    MessageStatus.DELIVERED: 4,
    MessageStatus.UNDELIVERED: 4,
    MessageStatus.FAILED: 4,
}


class MessageKind(models.TextChoices):
    PERSONAL = "personal", "Personal reply"
    AUTOMATED = "automated", "Automated"
    BULK = "bulk", "Broadcast"
    CONSENT = "consent", "Consent confirmation"
    ALERT = "alert", "Staff alert"
    REMINDER = "reminder", "Appointment reminder"
    CAMPAIGN = "campaign", "Campaign"


class Message(models.Model):
    organization_id: int
    conversation_id: int
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="messages"
    )
    direction = models.CharField(max_length=3, choices=Direction.choices)
    kind = models.CharField(max_length=10, choices=MessageKind.choices, default="personal")
    body = models.TextField()
    segments = models.PositiveSmallIntegerField(default=1)
    encoding = models.CharField(max_length=5, default="GSM-7")
    status = models.CharField(max_length=12, choices=MessageStatus.choices)
    provider_message_id = models.CharField(max_length=64, blank=True, db_index=True)
    error_code = models.CharField(max_length=20, blank=True)
    error_message = models.CharField(max_length=300, blank=True)
    sender = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    inbound_event = models.OneToOneField(
        InboundEvent, null=True, blank=True, on_delete=models.SET_NULL
    )
    # The consent event this message answers (welcome, help text, opt-out confirmation: the
    # ledger's "text shown"); an opt-out confirmation is the one message allowed after one.
    consent_event = models.OneToOneField(
        ConsentEvent, null=True, blank=True, on_delete=models.SET_NULL
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(db_index=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    status_changed_at = models.DateTimeField(null=True, blank=True)
    # When a message put back in the queue is due again (a retry's backoff); empty means
    # when it was queued. Past it by a margin with no task waiting, the task was lost and
    # reconciliation dispatches the message again.
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # An inbound text that arrived while its inbox was offline (the offline report).
    received_offline = models.BooleanField(default=False, db_default=False)

    class Meta:
        indexes = [
            models.Index(fields=["conversation", "created_at"]),
            # Reports count a range of texts (see Conversation's).
            models.Index(fields=["organization", "created_at"], name="message_org_created"),
            # Reconciliation looks for unsettled outbound messages every few seconds; they
            # are few, and inbound texts (status "received") never enter this index.
            models.Index(
                fields=["status", "status_changed_at"],
                name="message_unsettled_idx",
                condition=models.Q(status__in=UNSETTLED_STATUSES),
            ),
        ]
        ordering = ["created_at", "id"]


class CallStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    CALLING = "calling", "Calling"  # handed to the provider
    # The provider may or may not have started it (a timeout, a 5xx): its callbacks (our
    # call id is in their URLs) settle it, or reconciliation asks the provider.
    UNKNOWN = "unknown", "Checking if placed"
    RINGING = "ringing", "Ringing"
    IN_PROGRESS = "in_progress", "Answered, playing"
    COMPLETED = "completed", "Completed"
    BUSY = "busy", "Busy"
    NO_ANSWER = "no_answer", "No answer"
    FAILED = "failed", "Failed"
    CANCELED = "canceled", "Canceled"


CALL_STATUS_RANK = {
    CallStatus.QUEUED: 0,
    CallStatus.CALLING: 1,
    CallStatus.UNKNOWN: 1,
    CallStatus.RINGING: 2,
    CallStatus.IN_PROGRESS: 3,
    CallStatus.COMPLETED: 4,
    CallStatus.BUSY: 4,
    CallStatus.NO_ANSWER: 4,
    CallStatus.FAILED: 4,
    CallStatus.CANCELED: 4,
}
CALL_FINAL_STATUSES = tuple(s for s, rank in CALL_STATUS_RANK.items() if rank == 4)


class Call(models.Model):
    """One outbound call (a voice broadcast's): placed through ``call_send``, which refuses
    numbers on the voice do-not-call list and people who opted out, like ``message_send``
    for texts. Its script (what it plays) is kept on it; the provider reports statuses,
    who answered (a person or a voicemail) and the billed duration."""

    organization_id: int
    number_id: int
    contact_id: int
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    number = models.ForeignKey(Number, on_delete=models.PROTECT, related_name="+")
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="calls")
    phone = models.CharField(max_length=20)
    status = models.CharField(max_length=12, choices=CallStatus.choices)
    # {"play_url": ...} or {"say": ..., "language": ...}, plus "opt_out_prompt".
    script = models.JSONField(default=dict)
    time_limit = models.PositiveIntegerField(default=120)
    answered_by = models.CharField(max_length=10, blank=True)  # human | machine | ""
    duration = models.PositiveIntegerField(default=0)  # billed seconds
    credits = models.PositiveIntegerField(default=0)
    provider_call_id = models.CharField(max_length=64, blank=True, db_index=True)
    error_code = models.CharField(max_length=20, blank=True)
    error_message = models.CharField(max_length=300, blank=True)
    # "9" pressed: the number went on the do-not-call list during this call.
    opted_out = models.BooleanField(default=False)
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(db_index=True)
    status_changed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["organization", "phone", "created_at"])]
        ordering = ["created_at", "id"]

    @property
    def outcome(self) -> str:
        """What a person would call it: answered, voicemail, busy, no answer, failed..."""
        if self.status == CallStatus.COMPLETED:
            return "voicemail" if self.answered_by == "machine" else "answered"
        return self.status


class NoteKind(models.TextChoices):
    NOTE = "note", "Note"
    TRANSFER = "transfer", "Transfer"
    WRAP_UP = "wrap_up", "Wrap-up"
    EVENT = "event", "Event"


class ConversationNote(models.Model):
    """Internal: notes, transfer notes, wrap-ups and assignment history. Never sent."""

    organization_id: int
    conversation_id: int
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="notes")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    kind = models.CharField(max_length=10, choices=NoteKind.choices, default=NoteKind.NOTE)
    body = models.TextField(blank=True)
    created_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["conversation", "created_at"])]
        ordering = ["created_at", "id"]


class ConversationParticipant(models.Model):
    """A supervisor who joined a conversation someone else holds: they may reply too."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="participants"
    )
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    joined_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["conversation", "user"], name="uniq_participant")
        ]


class ConversationRead(models.Model):
    """Per-user read state: unread when the conversation moved after ``read_at`` or the
    user marked it unread."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="reads")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    read_at = models.DateTimeField()
    marked_unread = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "conversation"], name="uniq_conversation_read")
        ]


class AwaitedAnswer(models.Model):
    """A system-sent text from ``number`` asked ``contact`` a question (an appointment
    reminder's "Reply C to confirm, X to cancel"): until ``until``, their texts on that
    number are read as answers by the app that asked (``purpose``, see
    messaging.answers), and a bare CANCEL answers the question instead of opting out."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="+")
    number = models.ForeignKey(Number, on_delete=models.CASCADE, related_name="+")
    purpose = models.CharField(max_length=20)
    ref_id = models.BigIntegerField()  # what the question is about, for ``purpose``
    asked_at = models.DateTimeField()
    until = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["contact", "number"], name="one_awaited_answer")
        ]


class RiskPhrase(models.Model):
    """A word, phrase or emoji that raises a conversation's priority when an inbound text
    contains it (messaging.risk): each organization keeps its own list, shown to admins
    with what it matched."""

    organization_id: int
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    phrase = models.CharField(max_length=100)
    priority = models.SmallIntegerField(choices=Priority.choices, default=Priority.URGENT)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "phrase"], name="uniq_risk_phrase")
        ]

    def __str__(self) -> str:
        return self.phrase

"""Reading broadcasts: the list, progress counts and the per-message log."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Count, Q, QuerySet

from openline.campaigns.models import (
    Broadcast,
    BroadcastChannel,
    BroadcastRecipient,
    RecipientStatus,
)
from openline.messaging.models import CallStatus, MessageStatus

# Progress buckets, in the order the bar shows them.
BUCKETS = ("pending", "queued", "sent", "delivered", "failed", "refused", "cancelled")
VOICE_BUCKETS = (
    "pending",
    "queued",
    "ringing",
    "answered",
    "voicemail",
    "busy",
    "no_answer",
    "failed",
    "refused",
    "cancelled",
)
# Not finished yet: the bar's "done" leaves these out.
_UNDONE = ("pending", "queued", "ringing")

_MESSAGE_BUCKET = {
    MessageStatus.QUEUED: "queued",
    MessageStatus.SENDING: "queued",
    MessageStatus.UNKNOWN: "queued",
    MessageStatus.SENT: "sent",
    MessageStatus.DELIVERED: "delivered",
    MessageStatus.UNDELIVERED: "failed",
    MessageStatus.FAILED: "failed",
}


_CALL_BUCKET: dict[str, str] = {
    CallStatus.QUEUED: "queued",
    CallStatus.CALLING: "queued",
    CallStatus.UNKNOWN: "queued",
    CallStatus.RINGING: "ringing",
    CallStatus.IN_PROGRESS: "ringing",
    CallStatus.BUSY: "busy",
    CallStatus.NO_ANSWER: "no_answer",
    CallStatus.FAILED: "failed",
    CallStatus.CANCELED: "failed",
}


def call_bucket(status: str | None, answered_by: str | None) -> str:
    if status == CallStatus.COMPLETED:
        return "voicemail" if answered_by == "machine" else "answered"
    return _CALL_BUCKET.get(status or "", "answered")


def buckets_for(broadcast: Broadcast) -> tuple[str, ...]:
    return VOICE_BUCKETS if broadcast.channel == BroadcastChannel.VOICE else BUCKETS


@dataclass
class Progress:
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(BUCKETS, 0))

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def done(self) -> int:
        return self.total - sum(self.counts.get(bucket, 0) for bucket in _UNDONE)

    def bar(self, scale: int = 1000) -> list[tuple[str, int, float, float]]:
        """(bucket, count, x, width) per non-empty bucket, on a bar ``scale`` units long
        (drawn as SVG: the page's content policy allows no inline styles)."""
        parts, x = [], 0.0
        for bucket, n in self.counts.items():
            if n and self.total:
                width = scale * n / self.total
                parts.append((bucket, n, round(x, 2), round(width, 2)))
                x += width
        return parts

    def as_dict(self) -> dict[str, object]:
        return {"counts": dict(self.counts), "total": self.total, "done": self.done}


def broadcasts_for(*, organization_id: int) -> QuerySet[Broadcast]:
    return Broadcast.objects.filter(organization_id=organization_id).select_related("created_by")


def broadcast_get(*, organization_id: int, broadcast_id: int) -> Broadcast:
    return Broadcast.objects.select_related("reservation").get(
        organization_id=organization_id, pk=broadcast_id
    )


def broadcast_progress(*, broadcast_id: int) -> Progress:
    """Recipients per bucket, one grouped query."""
    channel = Broadcast.objects.filter(pk=broadcast_id).values_list("channel", flat=True).first()
    if channel == BroadcastChannel.VOICE:
        return _call_progress(broadcast_id)
    rows = (
        BroadcastRecipient.objects.filter(broadcast_id=broadcast_id)
        .values_list("status", "message__status")
        .annotate(n=Count("pk"))
        .order_by()
    )
    progress = Progress()
    for status, message_status, n in rows:
        if status == RecipientStatus.QUEUED:
            # A queued recipient whose message was removed (retention) was sent.
            bucket = _MESSAGE_BUCKET.get(message_status, "sent")
        else:
            bucket = str(status)
        progress.counts[bucket] += n
    return progress


def _call_progress(broadcast_id: int) -> Progress:
    rows = (
        BroadcastRecipient.objects.filter(broadcast_id=broadcast_id)
        .values_list("status", "call__status", "call__answered_by")
        .annotate(n=Count("pk"))
        .order_by()
    )
    progress = Progress(counts=dict.fromkeys(VOICE_BUCKETS, 0))
    for status, call_status, answered_by, n in rows:
        if status == RecipientStatus.QUEUED:
            bucket = call_bucket(call_status, answered_by)
        else:
            bucket = str(status)
        progress.counts[bucket] += n
    return progress


def broadcast_log(*, broadcast_id: int, status: str = "") -> QuerySet[BroadcastRecipient]:
    """The per-message log: recipient, number, time, status, segments, credits, error."""
    rows = (
        BroadcastRecipient.objects.filter(broadcast_id=broadcast_id)
        .select_related("contact", "number", "message", "call")
        .order_by("pk")
    )
    if status in ("pending", "refused", "cancelled"):
        rows = rows.filter(status=status)
    elif status and _voice(broadcast_id):
        rows = rows.filter(status=RecipientStatus.QUEUED).filter(_call_filter(status))
    elif status:
        statuses = [s for s, bucket in _MESSAGE_BUCKET.items() if bucket == status]
        by_message = Q(message__status__in=statuses)
        if status == "sent":  # a queued recipient whose message was removed was sent
            by_message |= Q(message__isnull=True)
        rows = rows.filter(status=RecipientStatus.QUEUED).filter(by_message)
    return rows


def _voice(broadcast_id: int) -> bool:
    channel = Broadcast.objects.filter(pk=broadcast_id).values_list("channel", flat=True).first()
    return channel == BroadcastChannel.VOICE


def _call_filter(bucket: str) -> Q:
    """Recipients whose call is in ``bucket`` (as ``call_bucket`` sorts them)."""
    if bucket == "answered":
        return Q(call__status=CallStatus.COMPLETED) & ~Q(call__answered_by="machine")
    if bucket == "voicemail":
        return Q(call__status=CallStatus.COMPLETED, call__answered_by="machine")
    return Q(call__status__in=[s for s, b in _CALL_BUCKET.items() if b == bucket])


def broadcast_names(*, message_ids: list[int]) -> dict[int, str]:
    """Which broadcast each of these messages was part of (by message id), for showing a
    reply's context in the console."""
    if not message_ids:
        return {}
    rows = BroadcastRecipient.objects.filter(message_id__in=message_ids).values_list(
        "message_id", "broadcast__name"
    )
    return {message_id: name for message_id, name in rows if message_id is not None}

"""The sandbox: a built-in simulated carrier. Inbound texts come from the phone-simulator
page (openline/runtime/simulator.py) through the real intake endpoint; outbound texts are
"delivered" to the simulated phone (tasks.carrier_deliver) and report statuses through the
same status service as a real provider's callbacks.

Test numbers: a recipient ending in 0666 is rejected as opted out (like Twilio 21610) and
one ending in 0999 is undeliverable (like a landline).

Calls (voice broadcasts) ring on the simulated phone for OPENLINE_SANDBOX_RING_SECONDS,
where the phone simulator can answer them; unanswered, they end by the number's last four
digits: 0001 busy, 0002 no answer, 0003 a voicemail greeting then the message, 0009 a
person who presses 9, 0999 failed (unreachable), anything else a person who listens to
the end. Status callbacks carry CallId, CallStatus (ringing, in-progress, completed, busy,
no-answer, failed), AnsweredBy (human, machine) and Duration (seconds)."""

from __future__ import annotations

import hmac
import json
import uuid
from collections.abc import Collection
from dataclasses import asdict
from datetime import datetime
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

from django.core import signing

from openline.providers.base import (
    CallResult,
    CallScript,
    CallUpdate,
    CallUrls,
    InboundMessage,
    Provider,
    ProviderError,
    SendResult,
    SignatureError,
    StatusUpdate,
    WebhookError,
    WebhookRequest,
)

if TYPE_CHECKING:
    from openline.providers.models import Number
    from openline.providers.sandbox.models import SandboxCall

TOKEN_SALT = "openline.sandbox.phone"
OPTED_OUT_SUFFIX = "0666"
UNDELIVERABLE_SUFFIX = "0999"
STATUSES = frozenset({"queued", "sending", "sent", "delivered", "undelivered", "failed"})
CALL_STATUSES = {
    "ringing": "ringing",
    "in-progress": "in_progress",
    "completed": "completed",
    "busy": "busy",
    "no-answer": "no_answer",
    "failed": "failed",
}
ANSWERED_BY = frozenset({"human", "machine", ""})


def phone_token(number: Number) -> str:
    """The credential the simulator page uses to post as a phone to this number."""
    return signing.dumps(number.webhook_key, salt=TOKEN_SALT)


def _one(request: WebhookRequest, name: str, required: bool = True) -> str:
    values = request.params.get(name)
    if not values:
        if required:
            raise WebhookError(f"missing field {name}")
        return ""
    return values[0]


class SandboxProvider(Provider):
    slug = "sandbox"
    name = "Sandbox (simulated carrier)"
    simulated = True

    def verify(self, number: Number, request: WebhookRequest) -> None:
        token = request.headers.get("x-sandbox-token", "")
        try:
            key = signing.loads(token, salt=TOKEN_SALT, max_age=7 * 24 * 3600)
        except signing.BadSignature:
            raise SignatureError("missing or invalid X-Sandbox-Token") from None
        if not hmac.compare_digest(str(key), number.webhook_key):
            raise SignatureError("X-Sandbox-Token is for another number")

    def parse_inbound(self, request: WebhookRequest) -> InboundMessage:
        message_id = _one(request, "MessageId")
        if not 8 <= len(message_id) <= 64:
            raise WebhookError("MessageId must be 8 to 64 characters")
        return InboundMessage(
            provider_message_id=message_id,
            from_number=_one(request, "From"),
            to_number=_one(request, "To"),
            body=_one(request, "Body", required=False),
        )

    def parse_status(self, request: WebhookRequest) -> list[StatusUpdate]:
        status = _one(request, "Status")
        if status not in STATUSES:
            raise WebhookError(f"unknown Status {status!r}")
        return [
            StatusUpdate(
                provider_message_id=_one(request, "MessageId"),
                status=status,
                error_code=_one(request, "ErrorCode", required=False),
            )
        ]

    def send(
        self, number: Number, *, to: str, body: str, status_url: str, idempotency_key: str
    ) -> SendResult:
        from openline.providers.sandbox.models import SandboxMessage
        from openline.providers.sandbox.tasks import carrier_deliver

        if to.endswith(OPTED_OUT_SUFFIX):
            raise ProviderError("recipient has opted out (sandbox)", code="21610", opted_out=True)
        provider_id = "SB" + uuid.uuid5(uuid.NAMESPACE_URL, idempotency_key).hex
        message, created = SandboxMessage.objects.get_or_create(
            provider_message_id=provider_id,
            defaults={
                "organization_id": number.organization_id,
                "number": number,
                "to": to,
                "body": body,
            },
        )
        if created:
            carrier_deliver.enqueue(provider_id)
        return SendResult(provider_message_id=provider_id, status="sending")

    def fetch_status(self, number: Number, provider_message_id: str) -> str | None:
        from openline.providers.sandbox.models import SandboxMessage

        message = SandboxMessage.objects.filter(
            number=number, provider_message_id=provider_message_id
        ).first()
        if message is None:
            return None
        if message.status == "queued":
            # Its carrier report was lost (the worker died while reporting, or before the
            # sender recorded the id): report again. Reporting is idempotent.
            from openline.providers.sandbox.tasks import carrier_deliver

            carrier_deliver.enqueue(provider_message_id)
            return None
        return message.status

    def find_sent(
        self,
        number: Number,
        *,
        to: str,
        body: str,
        since: datetime,
        exclude: Collection[str] = (),
    ) -> SendResult | None:
        """The simulated carrier's own record (one SandboxMessage per accepted send): the
        oldest with this sender, recipient and exact body since ``since``, not excluded."""
        from openline.providers.sandbox.models import SandboxMessage

        record = (
            SandboxMessage.objects.filter(number=number, to=to, body=body, created_at__gte=since)
            .exclude(provider_message_id__in=list(exclude))
            .order_by("created_at", "pk")
            .first()
        )
        if record is None:
            return None
        return SendResult(provider_message_id=record.provider_message_id, status=record.status)

    # --- voice ---------------------------------------------------------------------------

    def place_call(
        self, number: Number, *, to: str, urls: CallUrls, time_limit: int, idempotency_key: str
    ) -> CallResult:
        from openline.providers.sandbox.models import SandboxCall
        from openline.providers.sandbox.tasks import carrier_call

        query = parse_qs(urlsplit(urls.status).query)
        provider_id = "SC" + uuid.uuid5(uuid.NAMESPACE_URL, idempotency_key).hex
        _, created = SandboxCall.objects.get_or_create(
            provider_call_id=provider_id,
            defaults={
                "organization_id": number.organization_id,
                "number": number,
                "to": to,
                "call_id": int(query["call"][0]),
                "time_limit": time_limit,
            },
        )
        if created:
            carrier_call.enqueue(provider_id)
        return CallResult(provider_call_id=provider_id)

    def find_call(
        self,
        number: Number,
        *,
        to: str,
        since: datetime,
        exclude: Collection[str] = (),
    ) -> CallUpdate | None:
        """The simulated carrier's own record (one SandboxCall per placed call): the oldest
        from this number to ``to`` since ``since``, not excluded."""
        from openline.providers.sandbox.models import SandboxCall

        record = (
            SandboxCall.objects.filter(number=number, to=to, created_at__gte=since)
            .exclude(provider_call_id__in=list(exclude))
            .order_by("created_at", "pk")
            .first()
        )
        return None if record is None else self._call_record(record)

    def fetch_call(self, number: Number, provider_call_id: str) -> CallUpdate | None:
        from openline.providers.sandbox.models import SandboxCall

        record = SandboxCall.objects.filter(
            number=number, provider_call_id=provider_call_id
        ).first()
        return None if record is None else self._call_record(record)

    @staticmethod
    def _call_record(record: SandboxCall) -> CallUpdate:
        """What the simulated carrier knows of a call. One still ringing or answered may
        have lost its carrier (a worker killed while it ran the call): it is set going
        again, and reports as usual; reporting is idempotent."""
        from openline.providers.sandbox.tasks import carrier_call

        if record.status in ("ringing", "in-progress"):
            carrier_call.enqueue(record.provider_call_id, True)
        return CallUpdate(
            provider_call_id=record.provider_call_id, status=CALL_STATUSES[record.status]
        )

    def parse_call_status(self, request: WebhookRequest) -> CallUpdate:
        status = _one(request, "CallStatus")
        if status not in CALL_STATUSES:
            raise WebhookError(f"unknown CallStatus {status!r}")
        answered_by = _one(request, "AnsweredBy", required=False)
        if answered_by not in ANSWERED_BY:
            raise WebhookError(f"unknown AnsweredBy {answered_by!r}")
        duration = _one(request, "Duration", required=False) or "0"
        if not duration.isdigit():
            raise WebhookError("Duration must be a whole number of seconds")
        return CallUpdate(
            provider_call_id=_one(request, "CallId"),
            status=CALL_STATUSES[status],
            answered_by=answered_by,
            duration=int(duration),
            error_code=_one(request, "ErrorCode", required=False),
        )

    def parse_answer(self, request: WebhookRequest) -> tuple[str, str]:
        answered_by = _one(request, "AnsweredBy", required=False)
        if answered_by not in ANSWERED_BY:
            raise WebhookError(f"unknown AnsweredBy {answered_by!r}")
        return _one(request, "CallId"), answered_by

    def parse_keypress(self, request: WebhookRequest) -> tuple[str, str]:
        return _one(request, "CallId"), _one(request, "Digits", required=False)

    def call_document(
        self, script: CallScript | None, *, keypress_url: str, goodbye: str = ""
    ) -> tuple[str, bytes]:
        """JSON for the phone simulator: what to play, or what to say before hanging up."""
        if script is None:
            document: dict[str, object] = {"hangup": True, "say": goodbye}
        else:
            document = {**asdict(script), "keypress_url": keypress_url, "hangup": False}
        return "application/json", json.dumps(document).encode()

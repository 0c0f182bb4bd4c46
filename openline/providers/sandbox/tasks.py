from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlencode

from django.conf import settings
from django.utils import timezone
from django_tasks import task

from openline.providers.base import CallScript, StatusUpdate, WebhookRequest
from openline.providers.models import Number
from openline.providers.registry import get_provider, status_receive, voice_receiver
from openline.providers.sandbox.models import SandboxCall, SandboxMessage
from openline.providers.sandbox.provider import UNDELIVERABLE_SUFFIX, phone_token
from openline.providers.services import number_webhook_urls

MAX_WAITS = 20


# Not on the dispatch queue: a real carrier's reports come in through the status webhook,
# and take none of the dispatch thread's time (runtime.worker).
@task()
def carrier_deliver(provider_message_id: str, waited: int = 0) -> None:
    """The simulated carrier reports sent, then delivered (or undelivered), as a real
    carrier's status callbacks: the fields it would post to the number's status URL, checked
    and read by the sandbox adapter as the status webhook does (verify, parse_status), then
    applied by the same status service (the registry's status receiver). Only the HTTP hop is
    left out: the carrier lives in this process."""
    sandbox = SandboxMessage.objects.select_related("number").get(
        provider_message_id=provider_message_id
    )
    final = "undelivered" if sandbox.to.endswith(UNDELIVERABLE_SUFFIX) else "delivered"
    updates = _status_reports(sandbox.number, provider_message_id, final=final)
    if not status_receive(number=sandbox.number, updates=updates):  # both in one transaction
        # Dispatch stores the id right after send() returns; wait for it briefly.
        if waited < MAX_WAITS:
            later = timezone.now() + timedelta(milliseconds=100)
            carrier_deliver.using(run_after=later).enqueue(provider_message_id, waited + 1)
        return
    SandboxMessage.objects.filter(pk=sandbox.pk).update(status=final)


def _status_reports(number: Number, provider_message_id: str, *, final: str) -> list[StatusUpdate]:
    """The two callbacks, as the sandbox adapter reads them from the status webhook."""
    provider = get_provider(number.provider)
    error = "30006" if final == "undelivered" else ""
    updates: list[StatusUpdate] = []
    for status, code in (("sent", ""), (final, error)):
        fields = {"MessageId": provider_message_id, "Status": status}
        if code:
            fields["ErrorCode"] = code
        callback = WebhookRequest(
            url=number_webhook_urls(number)["status_url"],
            params={name: [value] for name, value in fields.items()},
            headers={"x-sandbox-token": phone_token(number)},
            raw_body=urlencode(fields).encode(),
        )
        provider.verify(number, callback)
        updates += provider.parse_status(callback)
    return updates


# --- calls -------------------------------------------------------------------------------

VOICEMAIL_GREETING = 8  # seconds of a voicemail greeting before the message plays


@task()
def carrier_call(provider_call_id: str, settle: bool = False) -> None:
    """The simulated carrier rings the phone (a "ringing" callback) and lets it ring for
    OPENLINE_SANDBOX_RING_SECONDS, when the phone simulator may answer it; then, if nobody
    did, ends it by the number's test suffix (see sandbox.provider): each step through the
    adapter's callbacks (verify, parse) to the voice receiver, as a real carrier's would."""
    call = SandboxCall.objects.select_related("number").get(provider_call_id=provider_call_id)
    if not settle:
        sandbox_call_report(call, {"CallStatus": "ringing"})
        later = timezone.now() + timedelta(seconds=settings.OPENLINE_SANDBOX_RING_SECONDS)
        carrier_call.using(run_after=later).enqueue(provider_call_id, True)
        return
    if call.status == "in-progress" and call.answered_at is not None:
        # Answered in the simulator, which ends it; a page closed mid-call does not, so the
        # carrier hangs up at the call's time limit, as a real one would.
        ends = call.answered_at + timedelta(seconds=call.time_limit)
        if timezone.now() < ends:
            carrier_call.using(run_after=ends).enqueue(provider_call_id, True)
        else:
            sandbox_call_end(call, "completed", duration=call.time_limit, by="human")
        return
    if call.status != "ringing":
        return  # ended in the simulator
    suffix = call.to[-4:]
    ending = {"0001": "busy", "0002": "no-answer", "0999": "failed"}.get(suffix)
    if ending is not None:
        sandbox_call_end(call, ending)
        return
    answered_by = "machine" if suffix == "0003" else "human"
    script = sandbox_call_answer(call, answered_by)
    seconds = 0 if script is None else max(script.seconds, 5)
    if answered_by == "machine":
        seconds += VOICEMAIL_GREETING
    if script is not None and suffix == "0009":
        sandbox_call_keypress(call, "9")
        seconds = min(seconds, 12)
    sandbox_call_end(call, "completed", duration=min(seconds, call.time_limit), by=answered_by)


def _callback(call: SandboxCall, action: str, fields: dict[str, str]) -> WebhookRequest:
    number = call.number
    url = f"{settings.PUBLIC_URL}/voice/sandbox/{number.webhook_key}/{action}?call={call.call_id}"
    fields = {"CallId": call.provider_call_id, **fields}
    request = WebhookRequest(
        url=url,
        params={name: [value] for name, value in fields.items()},
        headers={"x-sandbox-token": phone_token(number)},
        raw_body=urlencode(fields).encode(),
    )
    get_provider(number.provider).verify(number, request)
    return request


def sandbox_call_report(call: SandboxCall, fields: dict[str, str]) -> None:
    request = _callback(call, "status", fields)
    update = get_provider(call.number.provider).parse_call_status(request)
    voice_receiver().status(number=call.number, call_id=call.call_id, update=update)


def sandbox_call_answer(call: SandboxCall, answered_by: str) -> CallScript | None:
    """The phone was answered: what the call plays (None: the caller hung up)."""
    request = _callback(call, "answer", {"AnsweredBy": answered_by})
    provider_call_id, answered = get_provider(call.number.provider).parse_answer(request)
    SandboxCall.objects.filter(pk=call.pk).update(status="in-progress", answered_at=timezone.now())
    call.status = "in-progress"
    return voice_receiver().answer(
        number=call.number,
        call_id=call.call_id,
        provider_call_id=provider_call_id,
        answered_by=answered,
    )


def sandbox_call_keypress(call: SandboxCall, digits: str) -> str:
    request = _callback(call, "keypress", {"Digits": digits})
    provider_call_id, pressed = get_provider(call.number.provider).parse_keypress(request)
    return voice_receiver().keypress(
        number=call.number, call_id=call.call_id, provider_call_id=provider_call_id, digits=pressed
    )


def sandbox_call_end(call: SandboxCall, status: str, *, duration: int = 0, by: str = "") -> None:
    fields = {"CallStatus": status, "Duration": str(duration)}
    if by:
        fields["AnsweredBy"] = by
    sandbox_call_report(call, fields)
    SandboxCall.objects.filter(pk=call.pk).update(status=status)
    call.status = status

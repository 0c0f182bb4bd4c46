"""The one call service. Every automated call (a voice broadcast's) is placed through
``call_send``, which refuses the voice do-not-call list and anyone who opted out, and
``call_dispatch`` checks again at the last moment, like texts (outbound.py, dispatch.py).

A call is placed once: when the provider may have started it (a timeout, a 5xx) it is
marked UNKNOWN and not placed again until the provider says it has no such call
(``calls_reconcile``); the provider's callbacks still find it meanwhile, because our call
id is in every URL it calls back (``call_urls``)."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from openline.billing.services import CreditError, credits_for_voice
from openline.contacts.models import ConsentSource
from openline.contacts.phones import InvalidPhoneNumber, normalize_phone
from openline.contacts.services.contacts import contact_get_or_create
from openline.contacts.services.voice import call_refusal, voice_opt_out_record
from openline.core.realtime import publish_on_commit
from openline.messaging.models import CALL_STATUS_RANK, Call, CallStatus
from openline.messaging.ratelimit import limiter
from openline.messaging.services.outbound import SendRefused
from openline.providers.base import CallScript, CallUpdate, CallUrls, ProviderError
from openline.providers.models import Number
from openline.providers.registry import get_provider

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 4
MAX_INLINE_WAIT = 1.0
MAX_SAY = 1000  # characters of text-to-speech
OPT_OUT_PROMPT = "To stop these calls, press 9."
GOODBYE_OPTED_OUT = "You will not get these calls again. Goodbye."


def call_urls(call: Call) -> CallUrls:
    number = call.number
    base = f"{settings.PUBLIC_URL}/voice/{number.provider}/{number.webhook_key}"
    return CallUrls(
        answer=f"{base}/answer?call={call.pk}",
        keypress=f"{base}/keypress?call={call.pk}",
        status=f"{base}/status?call={call.pk}",
    )


def call_script(
    *, play_url: str = "", say: str = "", language: str = "en-US", seconds: int = 0
) -> dict[str, Any]:
    """A call's script as stored on it: a recording's URL or text to read, with the
    "press 9" prompt that every automated call carries."""
    if bool(play_url) == bool(say.strip()):
        raise SendRefused("invalid_script", "a call plays either a recording or a text")
    if len(say) > MAX_SAY:
        raise SendRefused("invalid_script", f"the text to read is over {MAX_SAY} characters")
    script = CallScript(
        play_url=play_url,
        say=say.strip(),
        language=language,
        opt_out_prompt=OPT_OUT_PROMPT,
        seconds=seconds,
    )
    return asdict(script)


@transaction.atomic
def call_send(
    *, organization_id: int, to: str, number_id: int, script: dict[str, Any], time_limit: int
) -> Call:
    """Queue an automated call to ``to`` from ``number_id`` playing ``script``
    (``call_script``), at most ``time_limit`` seconds; raise SendRefused if it may not be
    placed. Dispatch happens after commit."""
    try:
        phone = normalize_phone(to)
    except InvalidPhoneNumber as exc:
        raise SendRefused("invalid_phone", str(exc)) from exc
    number = Number.objects.filter(
        organization_id=organization_id, pk=number_id, is_active=True
    ).first()
    if number is None:
        raise SendRefused("invalid_from", "that number is not one of this organization's")
    contact, _ = contact_get_or_create(organization_id=organization_id, phone=phone)
    refusal = call_refusal(contact=contact, simulated=number.simulated)
    if refusal is not None:
        raise SendRefused(refusal.code, refusal.reason)
    now = timezone.now()
    call = Call.objects.create(
        organization_id=organization_id,
        number=number,
        contact=contact,
        phone=phone,
        status=CallStatus.QUEUED,
        script=script,
        time_limit=max(60, time_limit),
        created_at=now,
        status_changed_at=now,
    )
    call_id = call.pk
    transaction.on_commit(lambda: enqueue_call(call_id))
    return call


def enqueue_call(call_id: int, delay: float = 0) -> None:
    from openline.messaging.tasks import dispatch_call

    options: dict[str, Any] = {"queue_name": "dispatch"}
    if delay > 0:
        options["run_after"] = timezone.now() + timedelta(seconds=delay)
    dispatch_call.using(**options).enqueue(call_id)


def _claim(call_id: int) -> tuple[Call, float] | None:
    call = (
        Call.objects.select_for_update()
        .select_related("contact", "number")
        .filter(pk=call_id, status=CallStatus.QUEUED)
        .first()
    )
    if call is None:
        return None
    refusal = call_refusal(contact=call.contact, simulated=call.number.simulated)
    if refusal is not None:  # pressed 9 on another call, texted STOP...: not placed
        _set_status(call, CallStatus.FAILED, error_code=refusal.code, error=refusal.reason)
        return None
    number = call.number
    booked, delay = limiter().reserve(
        f"calls:number:{number.pk}",
        units=1,
        per_second=number.calls_per_second,
        max_wait=MAX_INLINE_WAIT,
    )
    if not booked:
        retry_in = max(delay - MAX_INLINE_WAIT / 2, 0.05)
        transaction.on_commit(lambda: enqueue_call(call_id, retry_in))
        return None
    call.attempts += 1
    call.save(update_fields=["attempts"])
    _set_status(call, CallStatus.CALLING)
    return call, delay


def call_dispatch(*, call_id: int) -> None:
    with transaction.atomic():
        claimed = _claim(call_id)
    if claimed is None:
        return
    call, delay = claimed
    if delay > 0:
        time.sleep(delay)
    provider = get_provider(call.number.provider)
    try:
        result = provider.place_call(
            call.number,
            to=call.phone,
            urls=call_urls(call),
            time_limit=call.time_limit,
            idempotency_key=f"openline-call-{call.pk}",
        )
    except ProviderError as exc:
        logger.warning(
            "call failed call=%s attempt=%s code=%s permanent=%s outcome_unknown=%s",
            call.pk,
            call.attempts,
            exc.code,
            exc.permanent,
            exc.outcome_unknown,
        )
        _handle_error(call, exc)
        return
    with transaction.atomic():
        call = Call.objects.select_for_update().get(pk=call.pk)
        if not call.provider_call_id:  # a callback may have brought it first
            call.provider_call_id = result.provider_call_id
            call.save(update_fields=["provider_call_id"])


def _handle_error(call: Call, exc: ProviderError) -> None:
    with transaction.atomic():
        call = Call.objects.select_for_update().get(pk=call.pk)
        if exc.permanent or (call.attempts >= MAX_ATTEMPTS and not exc.outcome_unknown):
            _set_status(call, CallStatus.FAILED, error_code=exc.code or "error", error=str(exc))
        elif exc.outcome_unknown:
            # It may be ringing now: placing it again could call twice.
            call.status = CallStatus.UNKNOWN
            call.error_code, call.error_message = exc.code[:20], str(exc)[:300]
            call.status_changed_at = timezone.now()
            call.save(update_fields=["status", "error_code", "error_message", "status_changed_at"])
        else:  # surely not placed: trying again cannot call twice
            call.status = CallStatus.QUEUED
            call.error_code, call.error_message = exc.code[:20], str(exc)[:300]
            call.save(update_fields=["status", "error_code", "error_message"])
            delay = exc.retry_after or float(min(300, 2**call.attempts))
            call_id = call.pk
            transaction.on_commit(lambda: enqueue_call(call_id, delay))


def _set_status(call: Call, status: str, *, error_code: str = "", error: str = "") -> bool:
    """Move ``call`` forward to ``status``; backwards or sideways is ignored."""
    if CALL_STATUS_RANK[CallStatus(status)] <= CALL_STATUS_RANK[CallStatus(call.status)]:
        return False
    call.status = status
    call.status_changed_at = timezone.now()
    fields = ["status", "status_changed_at"]
    if error_code:
        call.error_code, call.error_message = error_code[:20], error[:300]
        fields += ["error_code", "error_message"]
    call.save(update_fields=fields)
    publish_on_commit(
        organization_id=call.organization_id,
        event={"type": "call.status", "call_id": call.pk, "status": call.status},
    )
    return True


def _find(number: Number, call_id: int, provider_call_id: str) -> Call | None:
    """The call a callback is about: ours by id (from the URL), from this number, and the
    provider's id matching when both are known."""
    call = Call.objects.select_for_update().filter(pk=call_id, number=number).first()
    if call is None:
        return None
    if not call.provider_call_id and provider_call_id:
        call.provider_call_id = provider_call_id
        call.save(update_fields=["provider_call_id"])
    elif provider_call_id and call.provider_call_id != provider_call_id:
        return None
    return call


@transaction.atomic
def call_status_apply(*, number: Number, call_id: int, update: CallUpdate) -> Call | None:
    """A status callback: move the call forward; a finished call gets its billed duration,
    who answered and its cost (per started minute). None when the call is not ours."""
    call = _find(number, call_id, update.provider_call_id)
    if call is None:
        return None
    if update.answered_by and not call.answered_by:
        call.answered_by = update.answered_by
        call.save(update_fields=["answered_by"])
    final = CALL_STATUS_RANK[CallStatus(update.status)] == 4
    if final and CALL_STATUS_RANK[CallStatus(call.status)] < 4:
        call.duration = update.duration if update.status == CallStatus.COMPLETED else 0
        call.credits = _cost(call)
        call.save(update_fields=["duration", "credits"])
    error = f"the provider reported error {update.error_code}" if update.error_code else ""
    _set_status(call, update.status, error_code=update.error_code, error=error)
    return call


def _cost(call: Call) -> int:
    if not call.duration:
        return 0
    try:
        return credits_for_voice(phone=call.phone, seconds=call.duration)
    except CreditError:
        logger.warning("no voice credit rate for call=%s; not charged", call.pk)
        return 0


@transaction.atomic
def call_answer(
    *, number: Number, call_id: int, provider_call_id: str, answered_by: str
) -> CallScript | None:
    """The call was answered (by a person, or a voicemail whose greeting ended): what to
    play. None: hang up (not ours, or no longer wanted)."""
    call = _find(number, call_id, provider_call_id)
    if call is None or CALL_STATUS_RANK[CallStatus(call.status)] == 4:
        return None
    if answered_by and not call.answered_by:
        call.answered_by = answered_by
        call.save(update_fields=["answered_by"])
    _set_status(call, CallStatus.IN_PROGRESS)
    script = CallScript(**call.script)
    if call.answered_by == "machine":  # nobody to press a key
        script = CallScript(
            play_url=script.play_url,
            say=script.say,
            language=script.language,
            seconds=script.seconds,
        )
    return script


def call_replay(*, number: Number, call_id: int) -> CallScript | None:
    """The script again for a person on the call (a key other than 9 was pressed); None
    when the call is not ours or has ended."""
    call = Call.objects.filter(pk=call_id, number=number).first()
    if call is None or CALL_STATUS_RANK[CallStatus(call.status)] == 4:
        return None
    return CallScript(**call.script)


@transaction.atomic
def call_keypress(*, number: Number, call_id: int, provider_call_id: str, digits: str) -> str:
    """A key pressed during the call; what to say before hanging up. 9 puts the number on
    the do-not-call list (a voice opt-out in the ledger, the person's own)."""
    call = _find(number, call_id, provider_call_id)
    if call is None or digits.strip() != "9":
        return ""
    voice_opt_out_record(
        organization_id=call.organization_id,
        phone=call.phone,
        source=ConsentSource.KEYPRESS,
        text="pressed 9 on a call",
        number_id=number.pk,
        simulated=number.simulated,
    )
    if not call.opted_out:
        call.opted_out = True
        call.save(update_fields=["opted_out"])
    return GOODBYE_OPTED_OUT


# --- calls whose task, answer or report was lost --------------------------------------------

# A queued call with no dispatch task this long after it changed: its task was lost (a
# crash between the commit and the enqueue, a worker killed mid-task).
CALL_LOST_AFTER = timedelta(minutes=2)
# A call marked calling with no provider id this long: its worker died before it stored
# the provider's answer (placing a call takes seconds).
CALL_STUCK_AFTER = timedelta(minutes=5)
# A provider may list a call a little after accepting it: "no record" counts after this.
CALL_UNKNOWN_GRACE = timedelta(minutes=2)
# Past its time limit by this much with no final report: it will not get one.
CALL_NO_REPORT_AFTER = timedelta(minutes=15)
# Look-ups are network calls, and the scheduler's other jobs wait behind this one.
CALL_LOOKUPS_PER_ROUND = 25
_OPEN = (CallStatus.CALLING, CallStatus.UNKNOWN, CallStatus.RINGING, CallStatus.IN_PROGRESS)


def calls_reconcile(*, now: datetime | None = None) -> int:
    """Settle the calls a crash or a lost callback left open; run by the scheduler (one
    at a time), like messages_reconcile for texts. Returns how many calls changed.

    1. A queued call whose dispatch task was lost is dispatched again.
    2. A call whose placing has no answer on record (the worker died after marking it
       calling, or the request timed out: UNKNOWN) is looked up at the provider
       (``find_call``): found, it takes the provider's id and status; no record, it is
       placed again, which cannot call anyone twice. Cannot ask: next round.
    3. A call past its time limit with no final report asks the provider for its status
       (``fetch_call``); still nothing CALL_NO_REPORT_AFTER later, it ends as failed and
       is not placed again."""
    now = now or timezone.now()
    return _redispatch_lost(now) + _settle_unplaced(now) + _settle_unreported(now)


def _redispatch_lost(now: datetime) -> int:
    from openline.messaging.services.reconcile import with_pending_task
    from openline.messaging.tasks import dispatch_call

    cutoff = now - CALL_LOST_AFTER
    queued = list(
        Call.objects.filter(status=CallStatus.QUEUED, status_changed_at__lt=cutoff)
        .order_by("pk")
        .values_list("pk", flat=True)[:500]
    )
    lost = set(queued) - with_pending_task(dispatch_call, queued, running_since=cutoff)
    for call_id in sorted(lost):
        Call.objects.filter(pk=call_id).update(status_changed_at=now)
        enqueue_call(call_id)
    return len(lost)


def _settle_unplaced(now: datetime) -> int:
    unanswered = Call.objects.filter(provider_call_id="").filter(
        Q(status=CallStatus.UNKNOWN, status_changed_at__lt=now - CALL_UNKNOWN_GRACE)
        | Q(status=CallStatus.CALLING, status_changed_at__lt=now - CALL_STUCK_AFTER)
    )
    unreachable: set[int] = set()  # numbers whose provider could not be asked this round
    changed = lookups = 0
    for call in unanswered.select_related("number").order_by("pk")[:500]:
        if call.number_id in unreachable or _twin_in_flight(call, now):
            continue
        if lookups == CALL_LOOKUPS_PER_ROUND:
            break
        lookups += 1
        try:
            found = get_provider(call.number.provider).find_call(
                call.number, to=call.phone, since=call.created_at, exclude=_claimed_ids(call)
            )
        except ProviderError as exc:
            unreachable.add(call.number_id)
            logger.warning("could not ask the provider about call=%s code=%s", call.pk, exc.code)
            continue
        changed += _adopt(call, found) if found is not None else _place_again(call)
    return changed


def _twin_in_flight(call: Call, now: datetime) -> bool:
    """Another call to the same person from the same number is being placed right now:
    its answer will claim its own provider record, which a look-up now could take for
    this one's. Wait for it."""
    return (
        Call.objects.filter(
            number_id=call.number_id,
            phone=call.phone,
            status=CallStatus.CALLING,
            provider_call_id="",
            status_changed_at__gte=now - CALL_STUCK_AFTER,
        )
        .exclude(pk=call.pk)
        .exists()
    )


def _claimed_ids(call: Call) -> set[str]:
    """Provider ids of our other calls to this person from this number: not this one's."""
    return set(
        Call.objects.filter(number_id=call.number_id, phone=call.phone)
        .exclude(pk=call.pk)
        .exclude(provider_call_id="")
        .values_list("provider_call_id", flat=True)
    )


def _lock_unplaced(call: Call) -> Call | None:
    return (
        Call.objects.select_for_update()
        .filter(
            pk=call.pk, status__in=(CallStatus.CALLING, CallStatus.UNKNOWN), provider_call_id=""
        )
        .first()
    )


def _adopt(call: Call, found: CallUpdate) -> int:
    """The provider has it: it was placed once, and that is its record."""
    with transaction.atomic():
        locked = _lock_unplaced(call)
        if locked is None or found.provider_call_id in _claimed_ids(locked):
            return 0
        locked.status = CallStatus.CALLING  # placed; the provider's status moves it on
        locked.status_changed_at = timezone.now()
        locked.error_code = locked.error_message = ""
        locked.save(update_fields=["status", "status_changed_at", "error_code", "error_message"])
        call_status_apply(number=locked.number, call_id=locked.pk, update=found)
    logger.info("reconciled call=%s: the provider had it", call.pk)
    return 1


def _place_again(call: Call) -> int:
    """The provider has no record: it was never placed, so placing it is safe."""
    with transaction.atomic():
        locked = _lock_unplaced(call)
        if locked is None:
            return 0
        if locked.attempts >= MAX_ATTEMPTS:
            reason = f"the provider did not take it in {locked.attempts} attempts"
            _set_status(locked, CallStatus.FAILED, error_code="not_placed", error=reason)
        else:
            locked.status = CallStatus.QUEUED
            locked.status_changed_at = timezone.now()
            locked.error_message = "the provider has no record of it, so it is placed again"
            locked.save(update_fields=["status", "status_changed_at", "error_message"])
            call_id = locked.pk
            transaction.on_commit(lambda: enqueue_call(call_id))
    logger.info("reconciled call=%s: the provider had no record", call.pk)
    return 1


def _settle_unreported(now: datetime) -> int:
    """Calls the provider has, whose final report is overdue (``CALL_STUCK_AFTER`` past the
    time limit): the provider's status if it has moved on; failed once CALL_NO_REPORT_AFTER
    has passed too."""
    stale = Call.objects.filter(status__in=_OPEN, status_changed_at__lt=now - CALL_STUCK_AFTER)
    changed = lookups = 0
    for call in stale.select_related("number").order_by("pk")[:500]:
        since = now - (call.status_changed_at or now) - timedelta(seconds=call.time_limit)
        if since < CALL_STUCK_AFTER:
            continue  # it may still be on the line
        if call.provider_call_id and lookups < CALL_LOOKUPS_PER_ROUND:
            lookups += 1
            update = get_provider(call.number.provider).fetch_call(
                call.number, call.provider_call_id
            )
            if update is not None:
                applied = call_status_apply(number=call.number, call_id=call.pk, update=update)
                if applied is not None and applied.status != call.status:
                    changed += 1
                    continue
        if since < CALL_NO_REPORT_AFTER:
            continue
        with transaction.atomic():
            locked = Call.objects.select_for_update().get(pk=call.pk)
            if locked.status in _OPEN:
                reason = "no final report from the provider; not called again"
                changed += _set_status(
                    locked, CallStatus.FAILED, error_code="no_report", error=reason
                )
    return changed

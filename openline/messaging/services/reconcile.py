"""Outbound messages whose fate is open after a failure or a crash: asked about, never
blindly sent again. Run by the scheduler every few seconds (one scheduler at a time).

Three passes, in this order:

1. Lost dispatch: a QUEUED message past its due time by LOST_AFTER with no dispatch task
   waiting (a crash between the commit that queued it and the enqueue) is dispatched again.
2. Unknown outcome: a message dispatch marked UNKNOWN, or one left SENDING without a
   provider id past STUCK_AFTER (a crash between claim and answer), is looked up at the
   provider (``find_sent``). Found: its provider id and status are recorded. No record
   (after UNKNOWN_GRACE, so a slow provider has time to list it): queued and dispatched
   again. The provider cannot be asked: next round (for at most GIVE_UP_AFTER).
3. A SENDING message with a provider id past STUCK_AFTER takes the provider's status.

Pass 1 runs first, so a message that pass 2 puts back in the queue is not swept as well."""

from __future__ import annotations

import functools
import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.db.models import Q, QuerySet
from django.db.models.functions import Coalesce
from django.utils import timezone

from openline.messaging import sql
from openline.messaging.events import publish_message_event
from openline.messaging.models import Direction, Message, MessageStatus
from openline.messaging.services.dispatch import MAX_ATTEMPTS, message_requeue
from openline.messaging.services.outbound import enqueue_dispatch, message_set_status
from openline.providers.base import ProviderError, SendResult
from openline.providers.registry import get_provider

if TYPE_CHECKING:
    from django_tasks.base import Task

logger = logging.getLogger(__name__)

# A SENDING message waits this long for its worker's answer: far past any send timeout.
STUCK_AFTER = timedelta(minutes=5)
# A provider may list a message a little after accepting it: "no record" counts after this.
UNKNOWN_GRACE = timedelta(minutes=2)
# A queued message this far past its due time, with no task waiting, lost its task.
LOST_AFTER = timedelta(minutes=2)
# A provider that cannot be asked this long: a person decides (nothing is resent).
GIVE_UP_AFTER = timedelta(days=1)
# Look-ups are network calls and other periodic jobs wait behind this one.
LOOKUPS_PER_ROUND = 25
BATCH = 500

_OPEN = (MessageStatus.UNKNOWN, MessageStatus.SENDING)


def messages_reconcile(*, now: datetime | None = None) -> int:
    """Settle what can be settled now; returns how many messages changed."""
    now = now or timezone.now()
    return (
        messages_redispatch_lost(now=now)
        + _settle_unknown_outcomes(now)
        + _settle_stuck_with_provider_id(now)
    )


def _unsettled() -> QuerySet[Message]:
    """Outbound messages still QUEUED, SENDING or UNKNOWN, through message_unsettled_idx
    (``sql.messages_unsettled`` says why it is written by hand)."""
    return Message.objects.filter(sql.messages_unsettled(), direction=Direction.OUTBOUND)


# --- 1. lost dispatch tasks -----------------------------------------------------------------


def messages_redispatch_lost(*, now: datetime) -> int:
    """Enqueue dispatch again for queued messages whose task is gone. Never two tasks at
    once with the database queue: a message with a dispatch task waiting or running is
    left alone. Another task backend's queue cannot be read here; there a message is swept
    only LOST_AFTER past its due time (``next_attempt_at``, so a retry's backoff is
    respected), and even a second task is harmless: ``_claim`` claims only a QUEUED row,
    under its row lock, so whichever task comes second finds nothing to send."""
    cutoff = now - LOST_AFTER
    overdue = list(
        _overdue(cutoff).order_by("pk").values_list("pk", flat=True)[:BATCH],
    )
    lost = sorted(set(overdue) - _with_pending_dispatch(overdue, running_since=cutoff))
    return sum(_redispatch(message_id, cutoff) for message_id in lost)


def _overdue(cutoff: datetime) -> QuerySet[Message]:
    """Queued outbound messages due (or queued) before ``cutoff``."""
    return (
        _unsettled()
        .filter(status=MessageStatus.QUEUED)
        .alias(due=Coalesce("next_attempt_at", "status_changed_at", "created_at"))
        .filter(due__lt=cutoff)
    )


def _with_pending_dispatch(message_ids: list[int], *, running_since: datetime) -> set[int]:
    from openline.messaging.tasks import dispatch_message

    return with_pending_task(dispatch_message, message_ids, running_since=running_since)


def with_pending_task(task: Task[..., Any], ids: list[int], *, running_since: datetime) -> set[int]:
    """Which of ``ids`` (each ``task``'s first argument) have a task waiting, or running
    since ``running_since`` (database queue only; empty for a backend whose queue cannot be
    read). A task marked running for longer belongs to a worker that died (killed while
    sending): the queue never runs it again, so it does not hold its message back."""
    from django_tasks_db import DatabaseBackend
    from django_tasks_db.models import DBTaskResult

    if not ids or not isinstance(task.get_backend(), DatabaseBackend):
        return set()
    pending = (
        DBTaskResult.objects.filter(
            task_path=task.module_path,
            args_kwargs__args__0__in=ids,
        )
        .filter(Q(status="READY") | Q(status="RUNNING", started_at__gte=running_since))
        .values_list("args_kwargs", flat=True)
    )
    return {int(args_kwargs["args"][0]) for args_kwargs in pending}


def _redispatch(message_id: int, cutoff: datetime) -> int:
    with transaction.atomic():
        # Still queued and overdue (not retried in the meantime): due again from now.
        swept = _overdue(cutoff).filter(pk=message_id).update(next_attempt_at=timezone.now())
        if swept:
            transaction.on_commit(functools.partial(enqueue_dispatch, message_id))
    if swept:
        logger.warning("dispatch task lost; dispatching again message=%s", message_id)
    return swept


# --- 2. unknown outcomes --------------------------------------------------------------------


def _settle_unknown_outcomes(now: datetime) -> int:
    stuck = Q(
        status=MessageStatus.SENDING,
        provider_message_id="",
        status_changed_at__lt=now - STUCK_AFTER,
    )
    open_ones = (
        _unsettled()
        .filter(Q(status=MessageStatus.UNKNOWN) | stuck)
        .select_related("conversation__number", "conversation__contact")
        .order_by("created_at", "pk")[:BATCH]
    )
    unreachable: set[int] = set()  # numbers whose provider could not be asked this round
    changed = lookups = 0
    for message in open_ones:
        number_id = message.conversation.number_id
        if number_id in unreachable or _twin_in_flight(message, now):
            continue
        if lookups == LOOKUPS_PER_ROUND:
            break
        lookups += 1
        try:
            found = _look_up(message)
        except ProviderError as exc:
            unreachable.add(number_id)
            logger.warning(
                "could not ask the provider about message=%s code=%s", message.pk, exc.code
            )
            changed += _give_up_if_too_long(message, now)
            continue
        changed += _settle(message, found, now)
    return changed


def _twin_in_flight(message: Message, now: datetime) -> bool:
    """Another message with the same text to the same person from the same number is
    being sent right now: its answer will claim its own provider record, which a look-up
    now could mistake for this one's. Wait for it."""
    conversation = message.conversation
    return (
        Message.objects.filter(
            conversation__number_id=conversation.number_id,
            conversation__contact__phone=conversation.contact.phone,
            direction=Direction.OUTBOUND,
            body=message.body,
            status=MessageStatus.SENDING,
            provider_message_id="",
            status_changed_at__gte=now - STUCK_AFTER,
        )
        .exclude(pk=message.pk)
        .exists()
    )


def _claimed_ids(message: Message) -> set[str]:
    """Provider ids of other OpenLine messages with the same text, person and number: a
    provider record they hold is theirs, not this message's."""
    conversation = message.conversation
    return set(
        Message.objects.filter(
            conversation__number_id=conversation.number_id,
            conversation__contact__phone=conversation.contact.phone,
            direction=Direction.OUTBOUND,
            body=message.body,
        )
        .exclude(pk=message.pk)
        .exclude(provider_message_id="")
        .values_list("provider_message_id", flat=True)
    )


def _look_up(message: Message) -> SendResult | None:
    """The provider's record of ``message``, if any, searched from its creation (the
    earliest any attempt at it can have reached the provider)."""
    number = message.conversation.number
    return get_provider(number.provider).find_sent(
        number,
        to=message.conversation.contact.phone,
        body=message.body,
        since=message.created_at,
        exclude=_claimed_ids(message),
    )


def _settle(message: Message, found: SendResult | None, now: datetime) -> int:
    if found is not None:
        return _record_found(message, found)
    if message.status == MessageStatus.UNKNOWN and _since_change(message, now) < UNKNOWN_GRACE:
        return 0  # the provider may not list it yet
    return _resend(message)


def _since_change(message: Message, now: datetime) -> timedelta:
    return now - (message.status_changed_at or message.created_at)


def _lock_open(message: Message) -> Message | None:
    """``message`` locked, if it is still open (UNKNOWN, or SENDING without an answer)."""
    return (
        Message.objects.select_for_update(of=("self",))
        .select_related("conversation__number", "conversation__contact")
        .filter(pk=message.pk, status__in=_OPEN, provider_message_id="")
        .first()
    )


def _record_found(message: Message, found: SendResult) -> int:
    """The provider has it: it was sent once, and that is its record."""
    with transaction.atomic():
        locked = _lock_open(message)
        if locked is None or found.provider_message_id in _claimed_ids(locked):
            return 0
        now = timezone.now()
        locked.provider_message_id = found.provider_message_id
        locked.sent_at = locked.status_changed_at = now
        locked.status = MessageStatus.SENDING  # with the provider; its status moves it on
        locked.error_code = locked.error_message = ""
        locked.save(
            update_fields=[
                "provider_message_id",
                "sent_at",
                "status",
                "status_changed_at",
                "error_code",
                "error_message",
            ]
        )
        publish_message_event(locked, "message.status")
        message_set_status(
            message=locked,
            status=found.status,
            error_code=found.error_code,
            error_message=f"provider error {found.error_code}" if found.error_code else "",
        )
    logger.info("reconciled message=%s: the provider had it", message.pk)
    return 1


def _resend(message: Message) -> int:
    """The provider has no record: it was never accepted, so sending it is safe."""
    with transaction.atomic():
        locked = _lock_open(message)
        if locked is None:
            return 0
        if locked.attempts >= MAX_ATTEMPTS:
            message_set_status(
                message=locked,
                status=MessageStatus.FAILED,
                error_code=locked.error_code or "not_accepted",
                error_message=f"the provider did not take it in {locked.attempts} attempts",
            )
        else:
            message_requeue(
                message=locked,
                delay=0,
                error_code=locked.error_code,
                error_message="the provider has no record of it, so it is being sent again",
            )
    logger.info("reconciled message=%s: the provider had no record", message.pk)
    return 1


def _give_up_if_too_long(message: Message, now: datetime) -> int:
    """After GIVE_UP_AFTER of not being able to ask, a person decides: failed with the
    reason, and nothing is sent again."""
    if _since_change(message, now) < GIVE_UP_AFTER:
        return 0
    with transaction.atomic():
        locked = _lock_open(message)
        if locked is None:
            return 0
        return int(
            message_set_status(
                message=locked,
                status=MessageStatus.FAILED,
                error_code="outcome_unknown",
                error_message="the provider could not be asked whether it was sent; check "
                "with them before sending it again",
            )
        )


# --- 3. sent, but no status since ---------------------------------------------------------


def _settle_stuck_with_provider_id(now: datetime) -> int:
    stuck = (
        _unsettled()
        .filter(status=MessageStatus.SENDING, status_changed_at__lt=now - STUCK_AFTER)
        .exclude(provider_message_id="")
        .select_related("conversation__number")[:BATCH]
    )
    changed = 0
    for message in stuck:
        number = message.conversation.number
        status = get_provider(number.provider).fetch_status(number, message.provider_message_id)
        if status is not None:
            with transaction.atomic():
                changed += message_set_status(message=message, status=status)
    return changed

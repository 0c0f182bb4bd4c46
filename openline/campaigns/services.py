"""Broadcasts: one text to many people, through the one send service.

Draft → (queue: recipients planned and credits reserved, in one transaction) → scheduled or
sending → finished, with pause, resume and cancel. The runner (``broadcast_run``) hands
recipients to ``message_send`` at the sender numbers' configured rates, only inside each
recipient's sending window; each recipient row is claimed, given its message and marked
queued in one transaction, so a crash never texts anyone twice and never skips anyone.
When every message has finished, the reservation is settled: what the carrier took is
debited, the rest released."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q, Sum
from django.db.models.functions import Coalesce, Length
from django.utils import timezone

from openline.billing.models import CreditEntry, CreditPurpose
from openline.billing.services import (
    credit_balance,
    credit_rate,
    credits_reserve,
    credits_settle,
)
from openline.campaigns.audience import (
    ELIGIBLE,
    AudienceCounts,
    AudienceError,
    audience_clean,
    audience_contacts,
    audience_counts,
    audience_numbers,
)
from openline.campaigns.compose import body_check, body_render, merge_keys
from openline.campaigns.models import (
    VOICE_LANGUAGES,
    Broadcast,
    BroadcastChannel,
    BroadcastRecipient,
    BroadcastStatus,
    RecipientStatus,
    ReplyMode,
    Segment,
    StickySender,
    VoiceRecording,
)
from openline.campaigns.voice import (
    RecordingError,
    message_seconds,
    minutes_per_call,
    say_check,
    voice_call_recipient,
)
from openline.campaigns.window import Window, sending_window
from openline.contacts.models import Contact, CustomField, FieldValue
from openline.contacts.phones import phone_region, phone_time_zone, region_for_prefix
from openline.core.models import ApiToken, Membership, Organization
from openline.core.realtime import publish_on_commit
from openline.core.services import audit_record
from openline.messaging.models import (
    CALL_FINAL_STATUSES,
    UNSETTLED_STATUSES,
    Direction,
    Message,
    MessageKind,
    MessageStatus,
)
from openline.messaging.segments import count_segments
from openline.messaging.selectors import calls_waiting_to_place, messages_waiting_to_send
from openline.messaging.services.outbound import SendRefused, message_send
from openline.providers.models import Number

logger = logging.getLogger(__name__)

MAX_NAME = 120
MAX_ANSWER = 320
# Replies this long after a broadcast started still get its "not monitored" answer.
ANSWER_REPLIES_FOR = timedelta(days=14)
ANSWERS_PER_TICK = 200
REPLIES_LOOK_BACK = timedelta(minutes=10)
# The runner wakes this often while a broadcast sends, and hands over at most this many
# recipients a turn (the rest wait for the next turn).
RUN_INTERVAL = 1.0
MAX_PER_TURN = 500
# The runner keeps this many seconds of texts (at the senders' rates) waiting for dispatch,
# and never more than MAX_WAITING texts: enough that dispatch does not run dry between
# turns; few enough that a pause takes effect within seconds, and that a rate above what
# the machine can send builds no backlog (handing over texts nobody can send yet takes the
# worker's time from sending: bench/README.md, "make bench-broadcast").
AHEAD_SECONDS = 2 * RUN_INTERVAL
MAX_WAITING = 200
# The runner reports a broadcast's progress at most this often (seconds).
PROGRESS_EVERY = 2.0
# Recipients claimed and queued per transaction.
CHUNK = 50
# A sending broadcast whose runner has not turned for OPENLINE_BROADCAST_STALLED_SECONDS
# (30) is restarted by the scheduler (its worker died).


class BroadcastError(ValueError):
    def __init__(self, message: str, code: str = "invalid") -> None:
        super().__init__(message)
        self.code = code


# --- drafting ----------------------------------------------------------------------------


def _numbers(organization_id: int, number_ids: Iterable[int]) -> list[Number]:
    ids = sorted(set(number_ids))
    if not ids:
        raise BroadcastError("pick at least one number to send from")
    numbers = list(
        Number.objects.filter(organization_id=organization_id, is_active=True, pk__in=ids)
    )
    if len(numbers) != len(ids):
        raise BroadcastError("every sender must be one of this organization's active numbers")
    return numbers


def broadcast_create(
    *,
    organization_id: int,
    actor_id: int | None,
    name: str,
    body: str,
    audience: dict[str, Any],
    number_ids: Iterable[int],
    api_token_id: int | None = None,
    reply_mode: str = ReplyMode.QUEUE,
    not_monitored_text: str = "",
    channel: str = BroadcastChannel.SMS,
    recording_id: int | None = None,
    language: str = "en-US",
) -> Broadcast:
    """A draft broadcast by a supervisor or admin (``actor_id``) or an integration
    (``api_token_id``): a text, or a call (``channel`` voice) playing a recording or
    reading ``body`` aloud in ``language``. Nothing is sent until it is queued."""
    _require_manager(organization_id, actor_id, api_token_id)
    name = " ".join((name or "").split())
    if not name:
        raise BroadcastError("give the broadcast a name")
    if len(name) > MAX_NAME:
        raise BroadcastError(f"the name is at most {MAX_NAME} characters")
    recording = None
    if channel == BroadcastChannel.VOICE:
        body, recording = _voice_message(organization_id, body, recording_id, language)
    elif channel == BroadcastChannel.SMS:
        keys = CustomField.objects.filter(organization_id=organization_id).values_list(
            "key", flat=True
        )
        body = body_check(body, field_keys=keys)
    else:
        raise BroadcastError(f"channel is one of: {', '.join(BroadcastChannel.values)}")
    clean = audience_clean(organization_id=organization_id, audience=audience)
    numbers = _numbers(organization_id, number_ids)
    if reply_mode not in ReplyMode.values:
        raise BroadcastError(f"reply_mode is one of: {', '.join(ReplyMode.values)}")
    not_monitored_text = " ".join((not_monitored_text or "").split())
    if len(not_monitored_text) > MAX_ANSWER:
        raise BroadcastError(f"the answer to replies is at most {MAX_ANSWER} characters")
    with transaction.atomic():
        broadcast = Broadcast.objects.create(
            organization_id=organization_id,
            name=name,
            body=body,
            audience=clean,
            created_by_id=actor_id,
            reply_mode=reply_mode,
            not_monitored_text=not_monitored_text,
            channel=channel,
            recording=recording,
            language=language,
        )
        broadcast.numbers.set(numbers)
        _audit(broadcast, "create", actor_id, api_token_id)
    return broadcast


def _voice_message(
    organization_id: int, body: str, recording_id: int | None, language: str
) -> tuple[str, VoiceRecording | None]:
    """A voice broadcast plays one of the organization's recordings or reads a text."""
    if language not in dict(VOICE_LANGUAGES):
        raise BroadcastError(f"language is one of: {', '.join(dict(VOICE_LANGUAGES))}")
    try:
        text = say_check(body)
    except RecordingError as exc:
        raise BroadcastError(str(exc)) from None
    if recording_id is None:
        if not text:
            raise BroadcastError("record or upload a message, or write a text to read aloud")
        return text, None
    recording = VoiceRecording.objects.filter(
        organization_id=organization_id, pk=recording_id
    ).first()
    if recording is None:
        raise BroadcastError("that recording is not one of this organization's")
    if text:
        raise BroadcastError("a call plays a recording or reads a text, not both")
    return "", recording


def is_manager(organization_id: int, actor_id: int | None, api_token_id: int | None = None) -> bool:
    """A supervisor or admin of the organization (active), or one of its API tokens."""
    if api_token_id is not None:
        return ApiToken.objects.filter(organization_id=organization_id, pk=api_token_id).exists()
    return actor_id is not None and (
        Membership.objects.filter(
            organization_id=organization_id,
            user_id=actor_id,
            user__is_active=True,
            is_active=True,
        )
        .filter(Q(role="admin") | Q(role="supervisor"))
        .exists()
    )


def _require_manager(organization_id: int, actor_id: int | None, api_token_id: int | None) -> None:
    if not is_manager(organization_id, actor_id, api_token_id):
        raise BroadcastError("only admins and supervisors send broadcasts", "forbidden")


def _audit(
    broadcast: Broadcast, action: str, actor_id: int | None, api_token_id: int | None
) -> None:
    audit_record(
        organization_id=broadcast.organization_id,
        actor_id=actor_id,
        api_token_id=api_token_id,
        action=f"broadcast.{action}",
        object_type="broadcast",
        object_id=broadcast.pk,
    )


def broadcast_set_people(
    *, broadcast: Broadcast, actor_id: int | None, contact_id: int | None, included: bool
) -> Broadcast:
    """Leave one person of a draft's audience out (``included`` False) or put them back;
    ``contact_id`` None with ``included``: select everyone the audience selects again."""
    _require_manager(broadcast.organization_id, actor_id, None)
    if contact_id is None and not included:
        raise AudienceError("say who to leave out")
    if (
        contact_id is not None
        and not Contact.objects.filter(
            organization_id=broadcast.organization_id, pk=contact_id
        ).exists()
    ):
        raise AudienceError("no such contact here")
    with transaction.atomic():
        locked = Broadcast.objects.select_for_update().get(pk=broadcast.pk)
        if locked.status != BroadcastStatus.DRAFT:
            raise BroadcastError("only a draft's people can change", "invalid_state")
        removed = set(locked.audience.get("remove_contacts") or [])
        if contact_id is None:
            removed.clear()
        elif included:
            removed.discard(contact_id)
        else:
            removed.add(contact_id)
        locked.audience = {**locked.audience, "remove_contacts": sorted(removed)}
        locked.save(update_fields=["audience"])
    return locked


def segment_save(
    *, organization_id: int, actor_id: int | None, name: str, audience: dict[str, Any]
) -> Segment:
    """Save ``audience`` under ``name`` (replacing a segment of that name)."""
    _require_manager(organization_id, actor_id, None)
    name = " ".join((name or "").split())
    if not name or len(name) > MAX_NAME:
        raise BroadcastError(f"give the audience a name of at most {MAX_NAME} characters")
    clean = audience_clean(organization_id=organization_id, audience=audience)
    segment, _ = Segment.objects.update_or_create(
        organization_id=organization_id,
        name=name,
        defaults={"audience": clean, "created_by_id": actor_id},
    )
    return segment


def segment_delete(*, segment: Segment, actor_id: int | None) -> None:
    _require_manager(segment.organization_id, actor_id, None)
    segment.delete()


# --- the preview -------------------------------------------------------------------------


@dataclass(frozen=True)
class Waiting:
    time_zone: str
    recipients: int
    until: datetime


@dataclass(frozen=True)
class Preview:
    counts: AudienceCounts
    no_rate: int  # eligible numbers in countries without an SMS rate (left out)
    encoding: str
    segments: int  # per message, for the longest name, without the footer
    segments_with_footer: int
    credits_needed: int
    credits_available: int
    waiting: list[Waiting]  # recipients outside their sending window now, per zone
    minutes_per_call: int = 0  # voice: reserved per call (the message and a greeting)
    seconds: int = 0  # voice: how long the message plays

    @property
    def shortfall(self) -> int:
        return max(0, self.credits_needed - self.credits_available)

    @property
    def sendable(self) -> int:
        return self.counts.eligible - self.no_rate

    def as_dict(self) -> dict[str, Any]:
        return {
            "selected": self.counts.selected,
            "eligible": self.sendable,
            "excluded": [
                {"reason": code, "label": label, "count": n}
                for code, label, n in self.counts.excluded_rows
            ]
            + [
                {
                    "reason": "no_rate",
                    "label": f"no {'voice' if self.counts.voice else 'SMS'} rate for the country",
                    "count": self.no_rate,
                }
            ],
            "encoding": self.encoding,
            "segments_per_message": self.segments,
            "segments_with_footer": self.segments_with_footer,
            "credits_needed": self.credits_needed,
            "credits_available": self.credits_available,
            "shortfall": self.shortfall,
            "minutes_per_call": self.minutes_per_call,
            "message_seconds": self.seconds,
            "waiting": [
                {"time_zone": w.time_zone, "recipients": w.recipients, "until": w.until.isoformat()}
                for w in self.waiting
            ],
        }


def _zone_for_prefix(prefix: str, default: str) -> str:
    digits = prefix.lstrip("+")
    if digits.startswith("1"):  # North America: the area code names the zone
        return phone_time_zone(f"+{digits[:4]}2345678", default=default)
    return default


def broadcast_preview(*, broadcast: Broadcast, now: datetime | None = None) -> Preview:
    """What queuing ``broadcast`` now would do: counted by the database, not by loading
    contacts. Credits are for the longest name in the audience and a footer for everyone
    who has not had a broadcast yet, so the estimate is not below what queuing reserves."""
    now = now or timezone.now()
    org = broadcast.organization
    simulated = _simulated(broadcast)
    counts = audience_counts(
        organization_id=org.pk,
        audience=broadcast.audience,
        simulated=simulated,
        voice=broadcast.is_voice,
    )
    if broadcast.is_voice:
        return _voice_preview(broadcast, counts, now)
    longest = (
        audience_contacts(organization_id=org.pk, audience=broadcast.audience)
        .order_by(Length("name").desc())
        .values_list("name", flat=True)
        .first()
    ) or ""
    fields = _longest_field_values(org.pk, broadcast.body)
    plain = count_segments(body_render(broadcast.body, name=longest, fields=fields, footer=False))
    footed = count_segments(body_render(broadcast.body, name=longest, fields=fields, footer=True))
    credits = no_rate = 0
    zones: dict[str, int] = {}
    for prefix, n in counts.by_prefix.items():
        rate = credit_rate(region=region_for_prefix(prefix), channel="sms")
        if rate is None:
            no_rate += n
            continue
        credits += rate * footed.segments * n
        zone = _zone_for_prefix(prefix, org.timezone)
        zones[zone] = zones.get(zone, 0) + n
    return Preview(
        counts=counts,
        no_rate=no_rate,
        encoding=footed.encoding,
        segments=plain.segments,
        segments_with_footer=footed.segments,
        credits_needed=credits,
        credits_available=credit_balance(organization_id=org.pk).available,
        waiting=_waiting(broadcast, zones, now),
    )


def _waiting(broadcast: Broadcast, zones: dict[str, int], now: datetime) -> list[Waiting]:
    window = sending_window(organization_id=broadcast.organization_id)
    start = max(now, broadcast.scheduled_for or now)
    return [
        Waiting(zone, n, window.opens_at(start, zone))
        for zone, n in sorted(zones.items())
        if not window.is_open(start, zone)
    ]


def _voice_preview(broadcast: Broadcast, counts: AudienceCounts, now: datetime) -> Preview:
    """A voice broadcast's preview: the minutes reserved per call at each country's rate."""
    org = broadcast.organization
    minutes = minutes_per_call(broadcast)
    credits = no_rate = 0
    zones: dict[str, int] = {}
    for prefix, n in counts.by_prefix.items():
        rate = credit_rate(region=region_for_prefix(prefix), channel="voice")
        if rate is None:
            no_rate += n
            continue
        credits += rate * minutes * n
        zone = _zone_for_prefix(prefix, org.timezone)
        zones[zone] = zones.get(zone, 0) + n
    return Preview(
        counts=counts,
        no_rate=no_rate,
        encoding="",
        segments=0,
        segments_with_footer=0,
        credits_needed=credits,
        credits_available=credit_balance(organization_id=org.pk).available,
        waiting=_waiting(broadcast, zones, now),
        minutes_per_call=minutes,
        seconds=message_seconds(broadcast),
    )


def _longest_field_values(organization_id: int, body: str) -> dict[str, str]:
    """For each custom field ``body`` merges, its longest value in the organization."""
    keys = merge_keys(body)
    longest: dict[str, str] = {}
    for key in keys:
        value = (
            FieldValue.objects.filter(organization_id=organization_id, field__key=key)
            .order_by(Length("text").desc())
            .values_list("text", flat=True)
            .first()
        )
        if value:
            longest[key] = value
    return longest


def person_fields(
    organization_id: int, body: str, person_ids: list[int]
) -> dict[int, dict[str, str]]:
    """Custom field values by person, for the fields ``body`` merges (none: no query)."""
    keys = merge_keys(body) - {"name", "first_name"}
    found: dict[int, dict[str, str]] = {}
    if not keys or not person_ids:
        return found
    rows = FieldValue.objects.filter(
        organization_id=organization_id, field__key__in=keys, contact_id__in=person_ids
    ).values_list("contact_id", "field__key", "text")
    for contact_id, key, text in rows.iterator(chunk_size=2000):
        found.setdefault(contact_id, {})[key] = text
    return found


def _simulated(broadcast: Broadcast) -> bool | None:
    """Consent as it counts for the broadcast's senders (see consent_events_in_scope)."""
    numbers = list(broadcast.numbers.all())
    if not numbers:
        return None
    return all(number.simulated for number in numbers)


# --- queuing: plan the recipients and reserve the credits --------------------------------


class _SenderPicker:
    """Spreads new recipients over the numbers in proportion to their rates; a person who
    had a broadcast from one of them keeps it (sticky sender)."""

    def __init__(self, organization_id: int, numbers: list[Number]) -> None:
        self.organization_id = organization_id
        self.numbers = {number.pk: number for number in numbers}
        self.assigned = dict.fromkeys(self.numbers, 0)

    def pick(self, sticky: int | None) -> int:
        if sticky in self.numbers:
            number_id = sticky
        else:
            number_id = min(
                self.numbers,
                key=lambda pk: (self.assigned[pk] / self.numbers[pk].segments_per_second, pk),
            )
        self.assigned[number_id] += 1
        return number_id


def broadcast_queue(
    *,
    broadcast: Broadcast,
    actor_id: int | None,
    scheduled_for: datetime | None = None,
    api_token_id: int | None = None,
) -> Broadcast:
    """Plan every eligible recipient (sender, time zone, segments, credits) and reserve the
    credits, in one transaction: InsufficientCredits leaves the draft as it was. Sends now,
    or at ``scheduled_for``."""
    _require_manager(broadcast.organization_id, actor_id, api_token_id)
    now = timezone.now()
    if scheduled_for is not None and scheduled_for <= now:
        scheduled_for = None
    with transaction.atomic():
        locked = Broadcast.objects.select_for_update().get(pk=broadcast.pk)
        if locked.status != BroadcastStatus.DRAFT:
            state = locked.get_status_display().lower()
            raise BroadcastError(f"this broadcast is {state}", "invalid_state")
        total = _plan(locked)
        if total == 0:
            verb = "called" if locked.is_voice else "texted"
            raise BroadcastError(f"nobody in this audience can be {verb}", "no_recipients")
        reservation = credits_reserve(
            organization_id=locked.organization_id,
            credits=total,
            purpose=CreditPurpose.VOICE if locked.is_voice else CreditPurpose.SMS,
            note=f"broadcast {locked.pk}",
        )
        locked.reservation = reservation
        locked.scheduled_for = scheduled_for
        locked.status = BroadcastStatus.SCHEDULED if scheduled_for else BroadcastStatus.SENDING
        locked.started_at = None if scheduled_for else now
        locked.save(update_fields=["reservation", "scheduled_for", "status", "started_at"])
        _audit(locked, "schedule" if scheduled_for else "send", actor_id, api_token_id)
        if not scheduled_for:
            _start_runner(locked.pk)
    return locked


def _plan(broadcast: Broadcast) -> int:
    """Insert a recipient row per eligible number; return the credits they need."""
    org: Organization = broadcast.organization
    numbers = list(broadcast.numbers.filter(is_active=True))
    if not numbers:
        raise BroadcastError("none of its sender numbers is active any more")
    picker = _SenderPicker(org.pk, numbers)
    had_one = BroadcastRecipient.objects.filter(
        organization_id=org.pk, phone=OuterRef("phone"), status=RecipientStatus.QUEUED
    )
    voice = broadcast.is_voice
    eligible = (
        audience_numbers(
            organization_id=org.pk,
            audience=broadcast.audience,
            simulated=_simulated(broadcast),
            voice=voice,
        )
        .filter(ELIGIBLE)
        .annotate(had_one=Exists(had_one), person=Coalesce("primary_id", "pk"))
        .order_by("pk")
        .values_list("pk", "phone", "name", "had_one", "person", "primary__name")
    )
    total = 0
    batch: list[BroadcastRecipient] = []
    rows = list(eligible.iterator(chunk_size=2000))
    fields = {} if voice else person_fields(org.pk, broadcast.body, [row[4] for row in rows])
    minutes = minutes_per_call(broadcast) if voice else 0
    sticky = dict(
        StickySender.objects.filter(organization_id=org.pk).values_list("phone", "number_id")
    )
    new_sticky: list[StickySender] = []
    for contact_id, phone, own_name, had_one_already, person, person_name in rows:
        if voice:  # a call: no text, no footer; the minutes reserved for every call
            footer, text, segments, units = False, "", 0, minutes
        else:
            footer = not had_one_already
            name = person_name or own_name
            text = body_render(broadcast.body, name=name, fields=fields.get(person), footer=footer)
            segments = units = count_segments(text).segments
        region = phone_region(phone)
        channel = "voice" if voice else "sms"
        rate = credit_rate(region=region, channel=channel)
        number_id = picker.pick(sticky.get(phone))
        if phone not in sticky:
            new_sticky.append(
                StickySender(organization_id=org.pk, phone=phone, number_id=number_id)
            )
        recipient = BroadcastRecipient(
            organization_id=org.pk,
            broadcast=broadcast,
            contact_id=contact_id,
            phone=phone,
            number_id=number_id,
            time_zone=phone_time_zone(phone, default=org.timezone),
            segments=segments,
            footer=footer,
        )
        if rate is None:
            recipient.status = RecipientStatus.REFUSED
            kind = "voice" if voice else "SMS"
            recipient.reason = f"no {kind} credit rate for country {region or 'unknown'}"
        elif len(text) > settings.OPENLINE_MAX_BODY_CHARS:
            recipient.status = RecipientStatus.REFUSED
            recipient.reason = (
                f"too long with this person's name: {len(text)} characters, the limit is "
                f"{settings.OPENLINE_MAX_BODY_CHARS}"
            )
        else:
            recipient.credits = rate * units
            total += recipient.credits
        batch.append(recipient)
    BroadcastRecipient.objects.bulk_create(batch, batch_size=1000)
    StickySender.objects.bulk_create(new_sticky, batch_size=1000, ignore_conflicts=True)
    return total


# --- running -----------------------------------------------------------------------------


def _wake(broadcast_id: int, delay: float = 0, *, runner: int | None = None) -> None:
    from openline.campaigns.tasks import run_broadcast

    def enqueue() -> None:
        task = run_broadcast
        if delay > 0:
            task = task.using(run_after=timezone.now() + timedelta(seconds=delay))
        task.enqueue(broadcast_id, runner)

    transaction.on_commit(enqueue)


def _start_runner(broadcast_id: int) -> None:
    """Start a new chain of runner turns (sending starts, a resume, a restart): the chain
    that may still be waiting to turn then finds itself out of date and stops, so there is
    only ever one, and the rate is never doubled. Call in a transaction."""
    Broadcast.objects.filter(pk=broadcast_id).update(runner=F("runner") + 1)
    runner = Broadcast.objects.filter(pk=broadcast_id).values_list("runner", flat=True).get()
    _wake(broadcast_id, runner=runner)


def broadcast_run(
    *, broadcast_id: int, runner: int | None = None, now: datetime | None = None
) -> None:
    """One turn of the runner: hand the recipients whose window is open to the send
    service, as many as the senders can send in the next few seconds; then come back.
    ``runner``: the chain this turn belongs to (an out-of-date one stops)."""
    now = now or timezone.now()
    with transaction.atomic():
        broadcast = Broadcast.objects.select_for_update().filter(pk=broadcast_id).first()
        if broadcast is None or broadcast.status != BroadcastStatus.SENDING:
            return
        if runner is not None and runner != broadcast.runner:
            return  # another chain took over (a resume, a restart)
        runner = broadcast.runner
        Broadcast.objects.filter(pk=broadcast_id).update(last_run_at=now)
    pending = BroadcastRecipient.objects.filter(
        broadcast_id=broadcast_id, status=RecipientStatus.PENDING
    )
    window = sending_window(organization_id=broadcast.organization_id)
    zones = list(pending.values_list("time_zone", flat=True).distinct().order_by())
    open_zones = [zone for zone in zones if window.is_open(now, zone)]
    budget = _turn_budget(broadcast)
    ids = list(
        pending.filter(time_zone__in=open_zones)
        .order_by("pk")
        .values_list("pk", flat=True)[:budget]
    )
    for start in range(0, len(ids), CHUNK):
        if not Broadcast.objects.filter(pk=broadcast_id, status=BroadcastStatus.SENDING).exists():
            return  # paused or cancelled meanwhile
        _queue_recipients(broadcast, ids[start : start + CHUNK])
    _publish_progress_now_and_then(broadcast)
    with transaction.atomic():
        if len(ids) == budget or pending.filter(time_zone__in=open_zones).exists():
            _wake(broadcast_id, RUN_INTERVAL, runner=runner)
        elif zones and pending.exists():
            wait = _seconds_until_a_window_opens(window, now, zones)
            _wake(broadcast_id, wait, runner=runner)
        else:
            _wake(broadcast_id, RUN_INTERVAL * 2, runner=runner)  # to settle at the end
            broadcast_finish_if_done(broadcast_id=broadcast_id)


def _turn_budget(broadcast: Broadcast) -> int:
    """Recipients this turn: what tops up the texts waiting for the senders (handed over,
    not yet sent) to ``AHEAD_SECONDS`` at their segments per second, at most MAX_WAITING.
    What still waits counts against the turn, so the runner never hands over faster than
    dispatch sends: a configured rate above what the machine can send builds no backlog,
    and the runner's turns do not take the time dispatch needs. A voice broadcast counts
    calls not yet placed, at the numbers' calls per second."""
    numbers = list(broadcast.numbers.all())
    number_ids = [n.pk for n in numbers]
    org_id = broadcast.organization_id
    if broadcast.is_voice:
        rate = sum(n.calls_per_second for n in numbers) or 1.0
        waiting = calls_waiting_to_place(organization_id=org_id, number_ids=number_ids)
    else:
        rate = sum(n.segments_per_second for n in numbers) or 1.0
        waiting = messages_waiting_to_send(organization_id=org_id, number_ids=number_ids)
    target = min(math.ceil(rate * AHEAD_SECONDS), MAX_WAITING)
    return max(0, min(MAX_PER_TURN, target - waiting))


def _seconds_until_a_window_opens(window: Window, now: datetime, zones: list[str]) -> float:
    soonest = min(window.opens_at(now, zone) for zone in zones)
    # The scheduler looks in every round anyway; a long wait is its job.
    return max(1.0, min((soonest - now).total_seconds(), 3600.0))


def _queue_recipients(broadcast: Broadcast, ids: list[int]) -> None:
    """Claim each recipient, send it through ``message_send`` and record the message, all
    in one transaction: a crash anywhere leaves each one either pending or queued with its
    message, never queued twice."""
    with transaction.atomic():
        recipients = list(
            BroadcastRecipient.objects.filter(pk__in=ids, status=RecipientStatus.PENDING)
            .select_related("contact__primary")
            .select_for_update(of=("self",))
        )
        people = [r.contact.primary_id or r.contact_id for r in recipients]
        fields = person_fields(broadcast.organization_id, broadcast.body, people)
        for recipient in recipients:
            now = timezone.now()
            claimed = BroadcastRecipient.objects.filter(
                pk=recipient.pk, status=RecipientStatus.PENDING
            ).update(status=RecipientStatus.QUEUED, queued_at=now)
            if not claimed:
                continue
            if broadcast.is_voice:
                _call_recipient(broadcast, recipient)
                continue
            body = body_render(
                broadcast.body,
                contact=recipient.contact,
                fields=fields.get(recipient.contact.primary_id or recipient.contact_id),
                footer=recipient.footer,
            )
            try:
                message = message_send(
                    organization_id=broadcast.organization_id,
                    body=body,
                    to=recipient.phone,
                    number_id=recipient.number_id,
                    kind=MessageKind.BULK,
                )
            except SendRefused as exc:
                BroadcastRecipient.objects.filter(pk=recipient.pk).update(
                    status=RecipientStatus.REFUSED,
                    reason=f"{exc.code}: {exc}"[:200],
                    credits=0,
                )
                continue
            rate = recipient.credits // max(recipient.segments, 1)
            BroadcastRecipient.objects.filter(pk=recipient.pk).update(
                message=message, segments=message.segments, credits=rate * message.segments
            )


def _call_recipient(broadcast: Broadcast, recipient: BroadcastRecipient) -> None:
    try:
        call = voice_call_recipient(broadcast, recipient)
    except SendRefused as exc:
        BroadcastRecipient.objects.filter(pk=recipient.pk).update(
            status=RecipientStatus.REFUSED, reason=f"{exc.code}: {exc}"[:200], credits=0
        )
        return
    BroadcastRecipient.objects.filter(pk=recipient.pk).update(call=call)


def broadcast_finish_if_done(*, broadcast_id: int) -> bool:
    """Settle a sending (or cancelled) broadcast once nobody is left waiting and all its
    messages have left the queue: debit what the carrier took, release the rest. A sending
    one becomes finished; a cancelled one stays cancelled. Call in a transaction."""
    broadcast = Broadcast.objects.select_for_update().get(pk=broadcast_id)
    ending = (BroadcastStatus.SENDING, BroadcastStatus.CANCELLED)
    if broadcast.status not in ending or broadcast.finished_at is not None:
        return False
    recipients = BroadcastRecipient.objects.filter(broadcast_id=broadcast_id)
    if recipients.filter(status=RecipientStatus.PENDING).exists():
        return False
    queued = recipients.filter(status=RecipientStatus.QUEUED)
    if queued.filter(message__status__in=UNSETTLED_STATUSES).exists():
        return False
    if queued.filter(call__isnull=False).exclude(call__status__in=CALL_FINAL_STATUSES).exists():
        return False  # a call still ringing or playing (an UNKNOWN one waits for its callback)
    _settle(broadcast)
    if broadcast.status == BroadcastStatus.SENDING:
        broadcast.status = BroadcastStatus.FINISHED
    broadcast.finished_at = timezone.now()
    broadcast.save(update_fields=["status", "finished_at"])
    _publish_progress(broadcast)
    return True


def _settle(broadcast: Broadcast) -> None:
    if broadcast.reservation is None:
        return
    if broadcast.is_voice:
        _settle_calls(broadcast, broadcast.reservation)
        return
    # Charged: every message the carrier took (it has the carrier's id, or a status only
    # the carrier gives). Refused ones and failures before the carrier cost nothing.
    taken = (
        Q(message__isnull=True)
        | ~Q(message__provider_message_id="")
        | Q(
            message__status__in=(
                MessageStatus.SENT,
                MessageStatus.DELIVERED,
                MessageStatus.UNDELIVERED,
            )
        )
    )
    used = (
        BroadcastRecipient.objects.filter(broadcast_id=broadcast.pk, status=RecipientStatus.QUEUED)
        .filter(taken)
        .aggregate(total=Sum("credits"))["total"]
        or 0
    )
    credits_settle(reservation=broadcast.reservation, used=min(used, broadcast.reservation.credits))


def _settle_calls(broadcast: Broadcast, reservation: CreditEntry) -> None:
    """Debit what each call was billed (per started minute; never above what was reserved
    for it: its time limit), release the rest."""
    calls = BroadcastRecipient.objects.filter(
        broadcast_id=broadcast.pk, status=RecipientStatus.QUEUED, call__isnull=False
    ).values_list("credits", "call__credits")
    used = sum(min(reserved, billed) for reserved, billed in calls)
    credits_settle(reservation=reservation, used=min(used, reservation.credits))


# --- pause, resume, cancel ---------------------------------------------------------------


def _change(
    broadcast: Broadcast,
    actor_id: int | None,
    api_token_id: int | None,
    allowed: tuple[str, ...],
    action: str,
) -> Broadcast:
    _require_manager(broadcast.organization_id, actor_id, api_token_id)
    locked = Broadcast.objects.select_for_update().get(pk=broadcast.pk)
    if locked.status not in allowed:
        state = locked.get_status_display().lower()
        raise BroadcastError(f"a {state} broadcast cannot be {action}", "invalid_state")
    _audit(locked, action, actor_id, api_token_id)
    return locked


@transaction.atomic
def broadcast_pause(
    *, broadcast: Broadcast, actor_id: int | None, api_token_id: int | None = None
) -> Broadcast:
    locked = _change(broadcast, actor_id, api_token_id, (BroadcastStatus.SENDING,), "paused")
    locked.status = BroadcastStatus.PAUSED
    locked.save(update_fields=["status"])
    _publish_progress(locked)
    return locked


@transaction.atomic
def broadcast_resume(
    *, broadcast: Broadcast, actor_id: int | None, api_token_id: int | None = None
) -> Broadcast:
    locked = _change(broadcast, actor_id, api_token_id, (BroadcastStatus.PAUSED,), "resumed")
    locked.status = BroadcastStatus.SENDING
    locked.last_run_at = None
    locked.save(update_fields=["status", "last_run_at"])
    _start_runner(locked.pk)
    return locked


@transaction.atomic
def broadcast_cancel(
    *, broadcast: Broadcast, actor_id: int | None, api_token_id: int | None = None
) -> Broadcast:
    """Nobody still waiting gets it; texts already handed over go on. The credits are
    settled once those finish (at once when nothing is in flight)."""
    allowed = (BroadcastStatus.SCHEDULED, BroadcastStatus.SENDING, BroadcastStatus.PAUSED)
    locked = _change(broadcast, actor_id, api_token_id, allowed, "cancelled")
    BroadcastRecipient.objects.filter(
        broadcast_id=locked.pk, status=RecipientStatus.PENDING
    ).update(status=RecipientStatus.CANCELLED, reason="the broadcast was cancelled")
    locked.status = BroadcastStatus.CANCELLED
    locked.save(update_fields=["status"])
    if not broadcast_finish_if_done(broadcast_id=locked.pk):
        _publish_progress(locked)  # the scheduler settles it when the last ones finish
    locked.refresh_from_db()
    return locked


# --- the scheduler's part ----------------------------------------------------------------


def broadcasts_tick(*, now: datetime | None = None) -> None:
    """Every few seconds: start scheduled broadcasts that are due, restart a runner that
    died (its worker was killed), and settle broadcasts whose last texts have finished."""
    now = now or timezone.now()
    due = Broadcast.objects.filter(status=BroadcastStatus.SCHEDULED, scheduled_for__lte=now)
    for broadcast_id in due.values_list("pk", flat=True):
        with transaction.atomic():
            started = Broadcast.objects.filter(
                pk=broadcast_id, status=BroadcastStatus.SCHEDULED
            ).update(status=BroadcastStatus.SENDING, started_at=now, last_run_at=None)
            if started:
                _start_runner(broadcast_id)
    stalled_after = timedelta(seconds=settings.OPENLINE_BROADCAST_STALLED_SECONDS)
    stalled = Broadcast.objects.filter(status=BroadcastStatus.SENDING).filter(
        Q(last_run_at__lt=now - stalled_after)
        | Q(last_run_at__isnull=True, started_at__lt=now - stalled_after)
    )
    for broadcast_id in stalled.values_list("pk", flat=True):
        logger.warning("broadcast %s: runner stalled; restarting it", broadcast_id)
        with transaction.atomic():
            _start_runner(broadcast_id)
    broadcast_replies_answer(now=now)
    unsettled = Broadcast.objects.filter(
        status__in=(BroadcastStatus.SENDING, BroadcastStatus.CANCELLED), finished_at__isnull=True
    )
    for broadcast_id in unsettled.values_list("pk", flat=True):
        with transaction.atomic():
            broadcast_finish_if_done(broadcast_id=broadcast_id)


def not_monitored_answer(broadcast: Broadcast) -> str:
    return broadcast.not_monitored_text or (
        f"Replies to this number are not monitored. - {broadcast.organization.name}"
    )


def broadcast_replies_answer(*, now: datetime | None = None) -> int:
    """Answer, once, each recipient of a "not monitored" broadcast who has replied since
    it was sent (the scheduler calls this every few seconds). The reply itself stays in
    the queue like any text. The answer goes through the send service, so someone who
    replied STOP gets nothing. Returns how many were answered."""
    now = now or timezone.now()
    # Only people who texted lately: found through the messages index, so a tick costs
    # little however many broadcasts there were. (A scheduler stopped for longer than
    # this leaves some replies unanswered; they are in the queue all the same.)
    recent = Message.objects.filter(
        direction=Direction.INBOUND, created_at__gte=now - REPLIES_LOOK_BACK
    ).values("conversation__contact_id")
    replied = Message.objects.filter(
        direction=Direction.INBOUND,
        conversation__contact_id=OuterRef("contact_id"),
        conversation__number_id=OuterRef("number_id"),
        created_at__gt=OuterRef("queued_at"),
    )
    due = (
        BroadcastRecipient.objects.filter(
            broadcast__reply_mode=ReplyMode.NOT_MONITORED,
            broadcast__started_at__gte=now - ANSWER_REPLIES_FOR,
            status=RecipientStatus.QUEUED,
            reply_answered_at__isnull=True,
            contact_id__in=recent,
        )
        .filter(Exists(replied))
        .select_related("broadcast__organization")
        .order_by("pk")[:ANSWERS_PER_TICK]
    )
    answered = 0
    for recipient in due:
        with transaction.atomic():
            claimed = BroadcastRecipient.objects.filter(
                pk=recipient.pk, reply_answered_at__isnull=True
            ).update(reply_answered_at=now)
            if not claimed:
                continue
            reply = (
                Message.objects.filter(
                    direction=Direction.INBOUND,
                    conversation__contact_id=recipient.contact_id,
                    conversation__number_id=recipient.number_id,
                )
                .select_related("conversation")
                .order_by("-created_at", "-pk")
                .first()
            )
            if reply is None:
                continue
            try:
                with transaction.atomic():
                    message_send(
                        organization_id=recipient.organization_id,
                        conversation=reply.conversation,
                        body=not_monitored_answer(recipient.broadcast),
                        kind=MessageKind.AUTOMATED,
                    )
            except SendRefused as exc:  # they opted out in that reply: nothing is sent
                logger.info("broadcast reply answer %s refused: %s", recipient.pk, exc.code)
            answered += 1
    return answered


def _publish_progress_now_and_then(broadcast: Broadcast) -> None:
    """The runner's progress report, at most every PROGRESS_EVERY seconds per broadcast:
    counting it reads every recipient row. Pause, cancel and the end always report."""
    if cache.add(f"openline:broadcast-progress:{broadcast.pk}", True, PROGRESS_EVERY):
        _publish_progress(broadcast)


def _publish_progress(broadcast: Broadcast) -> None:
    from openline.campaigns.selectors import broadcast_progress

    publish_on_commit(
        organization_id=broadcast.organization_id,
        event={
            "type": "broadcast.progress",
            "broadcast_id": broadcast.pk,
            "status": broadcast.status,
            **broadcast_progress(broadcast_id=broadcast.pk).as_dict(),
        },
    )

"""SMS alerts for waiting conversations: the plan an inbox's policy makes, and the sweep that
sends what is due.

The sweep is state-driven. It looks at every waiting conversation in an online inbox with
alerts on, works out from how long it has waited which step of the plan is due now, and
sends that step to each recipient who has no alert record for it yet. A record and its
text are written in one transaction, and a unique key on (conversation, step, phone)
settles races, so a sweep that crashes, is killed, or runs twice neither loses nor repeats
an alert. Only the latest due step is sent: a worker that was down for a while sends one
catch-up text, not every missed reminder. Nothing is due once someone assumes the
conversation (it is no longer waiting).

A conversation held for its pre-conversation survey is not in the queue yet: nothing is due
for it until the hold ends. A waiting conversation at high or urgent priority that has waited
its inbox's ``high_risk_minutes`` also texts the supervisors and admins on shift and the
on-call people, once (``_high_risk_alerts``).

Alert texts name the inbox, how long it has waited and a console link: no message content,
no name or number of the person waiting."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef
from django.urls import reverse
from django.utils import timezone

from openline.alerts.models import Alert, AlertKind, AlertPolicy, AlertProfile
from openline.core.models import Membership, Role
from openline.messaging.models import (
    Channel,
    Conversation,
    ConversationStatus,
    MessageKind,
    Priority,
)
from openline.messaging.selectors import not_held

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Step:
    kind: str
    attempt: int  # 1 = the first alert, 2 = the first reminder, ...
    minutes: int  # after the conversation started waiting


def alert_plan(
    *, enabled: bool, reminder_minutes: int, reminders: int, escalate_after: int
) -> list[Step]:
    """The texts one unanswered conversation produces, in order. Attempt 1 is the "new
    conversation" alert; each reminder is one more attempt, ``reminder_minutes`` apart;
    escalation to on-call people comes after ``escalate_after`` unanswered attempts, one
    reminder interval after the last of them (so it needs a reminder frequency)."""
    if not enabled:
        return []
    steps = [Step(AlertKind.NEW, 1, 0)]
    if reminder_minutes:
        steps += [
            Step(AlertKind.REMINDER, n + 1, n * reminder_minutes) for n in range(1, reminders + 1)
        ]
        if escalate_after:
            steps.append(
                Step(AlertKind.ESCALATION, escalate_after + 1, escalate_after * reminder_minutes)
            )
    return sorted(steps, key=lambda s: (s.minutes, s.kind == AlertKind.ESCALATION))


def policy_plan(policy: AlertPolicy) -> list[Step]:
    return alert_plan(
        enabled=policy.enabled,
        reminder_minutes=policy.reminder_minutes,
        reminders=policy.reminders,
        escalate_after=policy.escalate_after,
    )


def due_steps(plan: list[Step], waited_minutes: float) -> list[Step]:
    """What is due after waiting this long: the latest staff step (new or reminder) and
    the escalation once its time has come."""
    reached = [s for s in plan if s.minutes <= waited_minutes]
    staff = [s for s in reached if s.kind != AlertKind.ESCALATION]
    return staff[-1:] + [s for s in reached if s.kind == AlertKind.ESCALATION]


# --- recipients ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Recipient:
    user_id: int | None
    phone: str


class Roster:
    """Who can be alerted at ``at``, for these inboxes and organizations, in a handful of
    queries however many inboxes and people: people signed up for a shift covering ``at``
    who have a confirmed alert phone, want new-conversation texts, and permit them (consent
    ledger)."""

    def __init__(self, at: datetime, number_ids: list[int], organization_ids: list[int]) -> None:
        from openline.availability.models import ShiftKind, ShiftSignUp

        covering = ShiftSignUp.objects.filter(occurrence_start__lte=at, occurrence_end__gt=at)
        staff = covering.filter(
            shift__number_id__in=number_ids, shift__kind=ShiftKind.NORMAL
        ).values_list("shift__number_id", "organization_id", "user_id")
        oncall = covering.filter(
            organization_id__in=organization_ids, shift__kind=ShiftKind.ONCALL
        ).values_list("organization_id", "user_id")
        staff_rows, oncall_rows = set(staff), set(oncall)
        phones = self._phones({(o, u) for _, o, u in staff_rows} | oncall_rows)
        self.staff: dict[int, list[Recipient]] = {}
        for number_id, org, user in sorted(staff_rows):
            if (org, user) in phones:
                self.staff.setdefault(number_id, []).append(Recipient(user, phones[org, user]))
        self.oncall: dict[int, list[Recipient]] = {}
        for org, user in sorted(oncall_rows):
            if (org, user) in phones:
                self.oncall.setdefault(org, []).append(Recipient(user, phones[org, user]))

    @staticmethod
    def _phones(people: set[tuple[int, int]]) -> dict[tuple[int, int], str]:
        """(organization, user) -> alert phone, for active members who confirmed it with a
        code texted to it, want the texts and permit them (a deactivated member is never
        texted, whatever sign-up of theirs is left)."""
        active = Membership.objects.filter(
            organization_id=OuterRef("organization_id"),
            user_id=OuterRef("user_id"),
            is_active=True,
        )
        profiles = AlertProfile.objects.filter(
            Exists(active),
            organization_id__in={o for o, _ in people},
            user_id__in={u for _, u in people},
            new_conversation_sms=True,
            confirmed_phone=F("mobile"),
        ).exclude(mobile="")
        wanted = {
            (p.organization_id, p.user_id): p.mobile
            for p in profiles
            if (p.organization_id, p.user_id) in people
        }
        permitted: set[tuple[int, str]] = set()
        for org in {o for o, _ in wanted}:
            mine = {phone for (o, _), phone in wanted.items() if o == org}
            permitted |= {(org, phone) for phone in opted_in_phones(org, mine)}
        return {key: phone for key, phone in wanted.items() if (key[0], phone) in permitted}

    def for_step(self, conversation: _Waiting, step: Step) -> list[Recipient]:
        if step.kind == AlertKind.ESCALATION:
            return self.oncall.get(conversation.organization_id, [])
        return self.staff.get(conversation.number_id, [])


def opted_in_phones(organization_id: int, phones: set[str]) -> set[str]:
    """Which of these phones said "I permit SMS" and have not texted STOP since."""
    from openline.contacts.selectors import consent_opted_in

    return consent_opted_in(organization_id=organization_id, phones=phones)


def permits_sms(*, organization_id: int, phone: str) -> bool:
    return bool(opted_in_phones(organization_id, {phone}))


# --- the sweep ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Waiting:
    pk: int
    number_id: int
    organization_id: int
    channel: str
    created_at: datetime


@dataclass
class SweepResult:
    waiting: int = 0
    due: int = 0
    sent: int = 0
    refused: int = 0


def alerts_sweep(*, now: datetime | None = None) -> SweepResult:
    """Send every alert that is due now (see the module's docstring). Safe to run at any
    time, from any number of processes."""
    from openline.availability.selectors import inboxes_online

    now = now or timezone.now()
    result = SweepResult()
    _after_hours_notices(now, result)
    policies = {p.number_id: p for p in AlertPolicy.objects.filter(enabled=True)}
    if not policies:
        return result
    online = inboxes_online(list(policies), now)
    _waiting_alerts(now, {n: policy_plan(p) for n, p in policies.items() if online[n]}, result)
    limits = {n: p.high_risk_minutes for n, p in policies.items() if online[n]}
    _high_risk_alerts(now, {n: m for n, m in limits.items() if m}, result)
    if result.due:
        logger.info(
            "alert sweep: %d waiting, %d due, %d sent, %d refused",
            result.waiting,
            result.due,
            result.sent,
            result.refused,
        )
    return result


def _waiting_alerts(now: datetime, plans: dict[int, list[Step]], result: SweepResult) -> None:
    """Each policy's plan for the conversations waiting in its inbox. A conversation held
    for its pre-conversation survey is not in the queue yet: nothing is due for it until
    the hold ends (its wait still counts from its first text)."""
    waiting = [
        _Waiting(*row)
        for row in Conversation.objects.filter(
            not_held(now),
            number_id__in=list(plans),
            status=ConversationStatus.WAITING,
            opened_offline=False,
        ).values_list("pk", "number_id", "organization_id", "channel", "created_at")
    ]
    result.waiting = len(waiting)
    due = [
        (c, step)
        for c in waiting
        for step in due_steps(plans[c.number_id], (now - c.created_at).total_seconds() / 60)
    ]
    if not due:
        return
    done = set(
        Alert.objects.filter(
            conversation__number_id__in=list(plans),
            conversation__status=ConversationStatus.WAITING,
        ).values_list("conversation_id", "kind", "attempt", "phone")
    )
    roster = Roster(now, list(plans), list({c.organization_id for c in waiting}))
    _send_all(
        [
            (conversation, step, recipient)
            for conversation, step in due
            for recipient in roster.for_step(conversation, step)
            if (conversation.pk, step.kind, step.attempt, recipient.phone) not in done
        ],
        now,
        result,
    )


# --- high-risk waits ----------------------------------------------------------------------

HIGH_RISK_STEP = Step(AlertKind.HIGH_RISK, 1, 0)
MANAGERS = (Role.ADMIN, Role.SUPERVISOR)


def _high_risk_alerts(now: datetime, limits: dict[int, int], result: SweepResult) -> None:
    """A waiting conversation at high or urgent priority (a risk phrase, triage, a survey
    answer) that has waited its inbox's ``high_risk_minutes`` alerts the supervisors and
    admins on a shift of the organization now and everyone on call: once per conversation
    and phone (the Alert key), whatever later sweeps see. Inboxes with alerts off, offline
    or with the limit at 0 send none, and held conversations are not in the queue yet."""
    if not limits:
        return
    rows = Conversation.objects.filter(
        not_held(now),
        number_id__in=list(limits),
        status=ConversationStatus.WAITING,
        priority__gte=Priority.HIGH,
    ).values_list("pk", "number_id", "organization_id", "channel", "created_at")
    due = [
        c
        for c in (_Waiting(*row) for row in rows)
        if (now - c.created_at).total_seconds() >= limits[c.number_id] * 60
    ]
    if not due:
        return
    done = set(
        Alert.objects.filter(
            conversation_id__in=[c.pk for c in due], kind=AlertKind.HIGH_RISK
        ).values_list("conversation_id", "phone")
    )
    recipients = high_risk_recipients(now, {c.organization_id for c in due})
    _send_all(
        [
            (conversation, HIGH_RISK_STEP, recipient)
            for conversation in due
            for recipient in recipients.get(conversation.organization_id, [])
            if (conversation.pk, recipient.phone) not in done
        ],
        now,
        result,
    )


def high_risk_recipients(now: datetime, organization_ids: set[int]) -> dict[int, list[Recipient]]:
    """Per organization, one recipient per phone: its supervisors and admins on a shift of
    any of its inboxes now, and everyone on an on-call shift (the escalation contacts),
    each with a confirmed alert phone that permits texts (``Roster``)."""
    from openline.providers.models import Number

    numbers = dict(
        Number.objects.filter(organization_id__in=organization_ids).values_list(
            "pk", "organization_id"
        )
    )
    roster = Roster(now, list(numbers), list(organization_ids))
    managers = set(
        Membership.objects.filter(
            organization_id__in=organization_ids, role__in=MANAGERS, is_active=True
        ).values_list("organization_id", "user_id")
    )
    chosen: dict[int, dict[str, Recipient]] = {org: {} for org in organization_ids}
    for number_id, people in roster.staff.items():
        org = numbers[number_id]
        for person in people:
            if (org, person.user_id) in managers:
                chosen[org].setdefault(person.phone, person)
    for org, people in roster.oncall.items():
        for person in people:
            chosen[org].setdefault(person.phone, person)
    return {org: sorted(found.values(), key=lambda r: r.phone) for org, found in chosen.items()}


AFTER_HOURS_STEP = Step(AlertKind.AFTER_HOURS, 1, 0)
AFTER_HOURS_WINDOW = timedelta(hours=1)


def _after_hours_notices(now: datetime, result: SweepResult) -> None:
    """CoAction's after-hours notice: one content-free text to the inbox's designated phone,
    once it is confirmed, for each conversation opened while it was offline (in the last
    hour, so turning the notice on does not send one for every old conversation)."""
    confirmed = AlertPolicy.objects.filter(after_hours_confirmed_phone=F("after_hours_phone"))
    phones = dict(
        confirmed.exclude(after_hours_phone="").values_list("number_id", "after_hours_phone")
    )
    if not phones:
        return
    opened = Conversation.objects.filter(
        number_id__in=list(phones), opened_offline=True, created_at__gte=now - AFTER_HOURS_WINDOW
    ).exclude(alerts__kind=AlertKind.AFTER_HOURS)
    rows = opened.values_list("pk", "number_id", "organization_id", "channel", "created_at")
    notices = [(_Waiting(*row), AFTER_HOURS_STEP) for row in rows]
    _send_all([(c, step, Recipient(None, phones[c.number_id])) for c, step in notices], now, result)


# Alerts written per transaction: each is its own savepoint (a race lost to another sweep
# skips just that one), and a crash loses the whole group, which the next sweep resends.
# Small enough that a sweep's write lock never holds up webhook intake for long.
SEND_CHUNK = 25


def _send_all(
    pending: list[tuple[_Waiting, Step, Recipient]], now: datetime, result: SweepResult
) -> None:
    from openline.providers.models import Number

    result.due += len(pending)
    numbers = Number.objects.filter(pk__in={c.number_id for c, _, _ in pending})
    labels = {n.pk: n.label for n in numbers.only("name", "e164")}
    for start in range(0, len(pending), SEND_CHUNK):
        with transaction.atomic():
            for conversation, step, recipient in pending[start : start + SEND_CHUNK]:
                outcome = _send(conversation, step, recipient, now, labels)
                result.sent += outcome == "sent"
                result.refused += outcome == "refused"


def _send(
    conversation: _Waiting,
    step: Step,
    recipient: Recipient,
    now: datetime,
    labels: dict[int, str],
) -> str:
    minutes = max(0, int((now - conversation.created_at).total_seconds() // 60))
    inbox = labels[conversation.number_id]
    return alert_send(
        conversation=conversation,
        step=step,
        recipient=recipient,
        body=alert_text(conversation, step.kind, minutes, inbox),
    )


def alert_send(
    *, conversation: _Waiting | Conversation, step: Step, recipient: Recipient, body: str
) -> str:
    """One alert: its record and its text together, or neither. "sent", "refused" (the
    send service refused it; the record says why) or "skipped" (already sent: the unique
    key on conversation, step and phone). Also used by alerts.rescue."""
    from openline.messaging.services.outbound import SendRefused, message_send

    message, refused = None, ""
    try:
        with transaction.atomic():  # the text and its record, or neither
            try:
                message = message_send(
                    organization_id=conversation.organization_id,
                    body=body,
                    to=recipient.phone,
                    number_id=conversation.number_id,
                    kind=MessageKind.ALERT,
                )
            except SendRefused as exc:  # e.g. they texted STOP a moment ago
                refused = str(exc)[:200]
            Alert.objects.create(
                organization_id=conversation.organization_id,
                conversation_id=conversation.pk,
                user_id=recipient.user_id,
                phone=recipient.phone,
                kind=step.kind,
                attempt=step.attempt,
                message=message,
                refused=refused,
            )
    except IntegrityError:  # sent already (another sweep): this text is rolled back
        return "skipped"
    return "refused" if refused else "sent"


def alert_text(conversation: _Waiting | Conversation, kind: str, minutes: int, inbox: str) -> str:
    """The alert's words: the inbox, the wait, a link. Never content or who is waiting."""
    what = "web chat" if conversation.channel == Channel.CHAT else "text conversation"
    link = settings.PUBLIC_URL + reverse("console:conversation", args=[conversation.pk])
    waited = "just now" if minutes < 1 else f"waiting {minutes} min"
    if kind == AlertKind.ESCALATION:
        return f"OpenLine escalation: nobody has answered a {what} in {inbox} ({waited}). {link}"
    if kind == AlertKind.AFTER_HOURS:
        return f"OpenLine: a text arrived in {inbox} while it is offline. {link}"
    if kind == AlertKind.HIGH_RISK:
        return f"OpenLine: a high-risk {what} has waited {minutes} min in {inbox}. {link}"
    return f"OpenLine: a {what} is waiting in {inbox} ({waited}). {link}"

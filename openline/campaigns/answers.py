"""Replies to appointment reminders, read in context (registered with messaging.answers).

The first clear answer counts: confirm, cancel or reschedule, with common typos and
phrasings; the patient gets a short acknowledgement and the change is audited. A clear
confirm or cancel that opened a conversation closes it again with a note (nobody needs to
act); a reschedule request stays waiting in the queue, since a person has to find a new
time. Anything else (a question, "running 10 min late", a second answer) stays in the
queue like any text, with the appointment shown beside it.

CANCEL: while a reminder awaits an answer, a bare CANCEL cancels the appointment (it does
not opt out; see contacts.keywords) and the acknowledgement says "reply STOP to stop all
texts", so nobody loses the way out. STOP always opts out, and is never read here."""

from __future__ import annotations

import re
import unicodedata

from django.db import transaction
from django.utils import timezone

from openline.campaigns.models import Appointment, AppointmentStatus
from openline.core.services import audit_record
from openline.messaging.models import AwaitedAnswer, ConversationStatus, Message, MessageKind
from openline.messaging.services.assignment import conversation_close_unattended
from openline.messaging.services.outbound import SendRefused, message_send

CONFIRM, CANCEL, RESCHEDULE = "confirmed", "cancelled", "reschedule"

_WORDS = {
    CONFIRM: {
        *("c", "y", "yes", "yes!", "yep", "yeah", "yea", "ya", "yup", "yess", "yse", "ys"),
        *("1", "ok", "okay", "k", "kk", "sure", "confirm", "confirmed", "confirmd", "comfirm"),
        *("confrim", "confim", "conf", "absolutely", "definitely", "👍", "✅", "👌"),
    },
    CANCEL: {
        *("x", "n", "no", "nope", "nah", "cancel", "cancelled", "canceled", "cancell", "cancle"),
        *("cancal", "canel", "cxl", "❌"),
    },
    RESCHEDULE: {
        *("r", "reschedule", "reschedual", "rescedule", "reshedule", "rescheduel", "resched"),
        *("rebook", "change", "move"),
    },
}
_PHRASES = {
    CONFIRM: (
        r"i ?(?:will|ll|'ll) be there",
        r"will be there",
        r"see you (?:then|there|tomorrow|soon)",
        r"(?:yes|y) (?:please|thanks|thank you|confirm(?:ed)?)",
        r"confirm(?:ed)? (?:please|thanks|thank you)",
    ),
    CANCEL: (
        r"(?:can ?not|can ?t|cant|won ?t|wont|unable to|not able to) (?:make it|come|attend|go)",
        r"(?:please )?cancel (?:it|my appointment|the appointment|appointment|please)",
        r"not coming",
    ),
    RESCHEDULE: (
        r"(?:can|could) (?:we|i|you) (?:move|change|reschedule) (?:it|my appointment|the time)",
        r"(?:need|want|like) to (?:reschedule|move|change)",
        r"(?:another|a different|a new|new) (?:time|day|date)",
        r"reschedule (?:please|it|my appointment)",
    ),
}
# Courtesy around an answer: "hi, I need to reschedule please", "sorry can't make it".
_LEAD = r"(?:(?:hi|hello|hey|sorry|ok|oh|so|i|we|id|i would|we would|please|unfortunately) )*"
_TAIL = r"(?: (?:please|pls|thanks|thank you|thx|sorry|today|tomorrow))*"
_COMPILED = {
    kind: [re.compile(rf"^{_LEAD}(?:{p}){_TAIL}$") for p in pats] for kind, pats in _PHRASES.items()
}
ACKS = {
    CONFIRM: "Thanks, you're confirmed for {when}. See you then!",
    CANCEL: "Your appointment on {when} is cancelled. To stop all texts from us, reply STOP.",
    RESCHEDULE: "Thanks, we'll be in touch to find a new time.",
}


def _normalize(text: str) -> str:
    """Lower-case ASCII words (emoji kept), apostrophes dropped, punctuation to spaces."""
    folded = unicodedata.normalize("NFKC", text).casefold().replace("’", "'")
    folded = folded.replace("'", "")
    kept = "".join(ch if ch.isalnum() or ord(ch) > 0x2000 else " " for ch in folded)
    return " ".join(kept.split())


def classify(text: str) -> str | None:
    """confirmed / cancelled / reschedule, or None when the reply is not one clear answer."""
    words = _normalize(text)
    if not words:
        return None
    found = {kind for kind, vocabulary in _WORDS.items() if words in vocabulary}
    found |= {kind for kind, patterns in _COMPILED.items() if any(p.match(words) for p in patterns)}
    return found.pop() if len(found) == 1 else None


def answer_read(message: Message, awaited: AwaitedAnswer) -> bool:
    """messaging.answers reader for appointment reminders; True when acted on."""
    answer = classify(message.body)
    if answer is None:
        return False
    with transaction.atomic():
        appointment = (
            Appointment.objects.select_for_update()
            .select_related("contact")
            .filter(pk=awaited.ref_id, organization_id=message.organization_id)
            .first()
        )
        if (
            appointment is None
            or appointment.answer
            or appointment.status
            in (
                AppointmentStatus.CANCELLED,
                AppointmentStatus.COMPLETED,
                AppointmentStatus.NO_SHOW,
            )
        ):
            return False  # not the first answer: a person reads it
        _apply(appointment, answer, message)
    return True


def _apply(appointment: Appointment, answer: str, message: Message) -> None:
    from openline.campaigns.reminders import reminders_plan, visit_date_time

    now = timezone.now()
    appointment.answer, appointment.answered_at = answer, now
    appointment.status = {
        CONFIRM: AppointmentStatus.CONFIRMED,
        CANCEL: AppointmentStatus.CANCELLED,
        RESCHEDULE: AppointmentStatus.RESCHEDULE,
    }[answer]
    appointment.save(update_fields=["answer", "answered_at", "status", "updated_at"])
    reminders_plan(appointment, now=now)  # a cancellation withdraws the rest
    audit_record(
        organization_id=appointment.organization_id,
        actor_id=None,
        action=f"appointment.{answer}_by_text",
        object_type="appointment",
        object_id=appointment.pk,
    )
    conversation = message.conversation
    when = " at ".join(visit_date_time(appointment))
    try:
        with transaction.atomic():
            message_send(
                organization_id=appointment.organization_id,
                conversation=conversation,
                body=ACKS[answer].format(when=when),
                kind=MessageKind.AUTOMATED,
            )
    except SendRefused:
        pass  # opted out meanwhile: no acknowledgement
    if answer == CANCEL:
        _notify_cancellation(appointment, when)
    opened_by_it = (
        conversation.status == ConversationStatus.WAITING
        and conversation.assigned_to_id is None
        and not conversation.messages.filter(direction="in").exclude(pk=message.pk).exists()
    )
    if answer != RESCHEDULE and opened_by_it:
        conversation_close_unattended(
            conversation_id=conversation.pk,
            note=f"Answered the appointment reminder: {answer}. Handled automatically.",
            handled=True,
        )


def _notify_cancellation(appointment: Appointment, when: str) -> None:
    """The member the organization named hears of it: a console notification (a realtime
    event the console turns into a toast), and a text to their confirmed alert phone when
    asked. The text names no patient and quotes nothing they wrote."""
    from openline.alerts.services import profile_for
    from openline.campaigns.models import ReminderSettings
    from openline.core.models import Membership
    from openline.core.realtime import publish_on_commit

    notice = ReminderSettings.objects.filter(organization_id=appointment.organization_id).first()
    if notice is None or notice.notify_user_id is None:
        return
    if not Membership.objects.filter(
        organization_id=appointment.organization_id, user_id=notice.notify_user_id, is_active=True
    ).exists():
        return  # a deactivated member hears nothing more from the organization
    name = (appointment.contact.name or appointment.contact.phone).strip()
    publish_on_commit(
        organization_id=appointment.organization_id,
        event={
            "type": "appointment.cancelled",
            "appointment_id": appointment.pk,
            "label": f"{name} cancelled {when}"
            + (f" ({appointment.location})" if appointment.location else ""),
            "notify_user_id": notice.notify_user_id,
        },
    )
    if not notice.notify_by_text:
        return
    phone = profile_for(
        organization_id=appointment.organization_id, user_id=notice.notify_user_id
    ).confirmed_phone
    if not phone:
        return
    place = f", {appointment.location}" if appointment.location else ""
    try:
        with transaction.atomic():
            message_send(
                organization_id=appointment.organization_id,
                to=phone,
                body=f"OpenLine: an appointment was cancelled by text ({when}{place}). "
                "Details in the console.",
                kind=MessageKind.ALERT,
            )
    except SendRefused:
        pass  # the member opted out of texts from this number

from __future__ import annotations

from dataclasses import dataclass

from django.apps import apps
from django.db.models import OuterRef, Q, QuerySet, Subquery

from openline.contacts.models import ConsentEvent, ConsentKind, ConsentSource, Contact

# Opt-outs that came from the person: a keyword, the carrier's report (Twilio 21610) or
# their own words, confirmed by staff (source MESSAGE). Only the person undoes these.
PERSON_OPT_OUT_SOURCES = frozenset(
    {ConsentSource.KEYWORD, ConsentSource.PROVIDER, ConsentSource.MESSAGE}
)


@dataclass(frozen=True, slots=True)
class ConsentState:
    status: str  # "opted_in" | "opted_out" | "unknown"
    last_change: ConsentEvent | None
    pending_request: ConsentEvent | None
    # True when any opt-out since the last opt-in came from the person (keyword, carrier, a
    # request of theirs that staff confirmed): only the person can undo it.
    person_opted_out: bool = False
    # We asked the person to confirm an opt-in and they have not answered yet.
    opt_in_pending: bool = False

    @property
    def opted_out(self) -> bool:
        return self.status == "opted_out"

    @property
    def opted_in(self) -> bool:
        return self.status == "opted_in"

    @property
    def opted_out_by_person(self) -> bool:
        return self.opted_out and self.person_opted_out

    @property
    def automated_allowed(self) -> bool:
        """Automated and bulk messages stop on an opt-out and on an unconfirmed request."""
        return not self.opted_out and self.pending_request is None

    def as_dict(self) -> dict[str, object]:
        return {
            "status": self.status,
            "opted_out_by_person": self.opted_out_by_person,
            "pending_opt_out_request": self.pending_request is not None,
            "changed_at": self.last_change.created_at.isoformat() if self.last_change else None,
            "source": self.last_change.source if self.last_change else None,
        }


_STATE_KINDS = (
    ConsentKind.OPT_IN,
    ConsentKind.OPT_OUT,
    ConsentKind.OPT_OUT_REQUEST,
    ConsentKind.REQUEST_DISMISSED,
    ConsentKind.OPT_IN_REQUEST,
)


def consent_events_in_scope(
    *, organization_id: int, simulated: bool | None = None
) -> QuerySet[ConsentEvent]:
    """The ledger as it counts for texts through a real number (``simulated`` False: events
    recorded through the sandbox's simulated carrier do not count) or through a simulated
    one (True: every event counts, so a real opt-out holds in the simulator too). None is
    the organization's own view: real, unless all its numbers are simulated (a demo or a
    training organization)."""
    if simulated is None:
        simulated = _only_simulated_numbers(organization_id)
    events = ConsentEvent.objects.filter(organization_id=organization_id)
    return events if simulated else events.filter(simulated=False)


def _only_simulated_numbers(organization_id: int) -> bool:
    # By name, not import: the providers app builds on this one.
    number_model = apps.get_model("providers", "Number")
    numbers = number_model.objects.filter(organization_id=organization_id, is_active=True)
    return all(number.simulated for number in numbers.only("provider"))


def consent_state(
    *, organization_id: int, phone: str, simulated: bool | None = None
) -> ConsentState:
    """Derive the current consent state from the ledger (newest event first), for texts
    through a real number or a simulated one (see ``consent_events_in_scope``)."""
    events = (
        consent_events_in_scope(organization_id=organization_id, simulated=simulated)
        .filter(phone=phone, kind__in=_STATE_KINDS)
        .order_by("-created_at", "-id")
    )
    last_change: ConsentEvent | None = None
    pending: ConsentEvent | None = None
    request_settled = False
    person_opted_out = False
    opt_in_pending: bool | None = None  # decided by the newest opt-in request or change
    for event in events.iterator(chunk_size=50):
        if event.kind == ConsentKind.OPT_IN_REQUEST:
            if opt_in_pending is None:
                opt_in_pending = last_change is None
            continue
        if event.kind == ConsentKind.OPT_IN:
            last_change = last_change or event
            break
        if event.kind == ConsentKind.OPT_OUT:
            # Keep looking back to the last opt-in: was any of these opt-outs the person's?
            last_change = last_change or event
            person_opted_out = person_opted_out or event.source in PERSON_OPT_OUT_SOURCES
            opt_in_pending = bool(opt_in_pending)
        elif last_change is not None:
            continue  # requests made while opted out change nothing
        elif event.kind == ConsentKind.REQUEST_DISMISSED:
            request_settled = True
        elif not request_settled and pending is None:
            pending = event
    if last_change is None:
        status = "unknown"
    elif last_change.kind == ConsentKind.OPT_OUT:
        status = "opted_out"
    else:
        status = "opted_in"
    if status == "opted_out":
        pending = None  # already stopped; nothing left to confirm
    return ConsentState(
        status=status,
        last_change=last_change,
        pending_request=pending,
        person_opted_out=person_opted_out,
        opt_in_pending=bool(opt_in_pending),
    )


def consent_opted_in(
    *, organization_id: int, phones: set[str], simulated: bool | None = None
) -> set[str]:
    """Which of ``phones`` are opted in now (``consent_state(...).status == "opted_in"``):
    their latest opt-in or opt-out is an opt-in. One query for any number of phones."""
    latest = (
        consent_events_in_scope(organization_id=organization_id, simulated=simulated)
        .filter(phone__in=list(phones), kind__in=(ConsentKind.OPT_IN, ConsentKind.OPT_OUT))
        .order_by("phone", "-created_at", "-id")
        .values_list("phone", "kind")
    )
    seen: dict[str, str] = {}
    for phone, kind in latest:
        seen.setdefault(phone, kind)
    return {phone for phone, kind in seen.items() if kind == ConsentKind.OPT_IN}


def consent_history(*, organization_id: int, phone: str) -> QuerySet[ConsentEvent]:
    return (
        ConsentEvent.objects.filter(organization_id=organization_id, phone=phone)
        .select_related("actor", "number", "message")  # message: the answer it was given
        .order_by("-created_at", "-id")
    )


def contact_list(*, organization_id: int, query: str = "") -> QuerySet[Contact]:
    contacts = Contact.objects.filter(organization_id=organization_id)
    if query:
        contacts = contacts.filter(Q(name__icontains=query) | Q(phone__contains=query))
    return contacts.order_by("name", "phone")


def contact_get(*, organization_id: int, contact_id: int) -> Contact:
    return Contact.objects.get(organization_id=organization_id, id=contact_id)


def contact_by_phone(*, organization_id: int, phone: str) -> Contact | None:
    return Contact.objects.filter(organization_id=organization_id, phone=phone).first()


_VOICE_KINDS = (ConsentKind.VOICE_OPT_OUT, ConsentKind.VOICE_OPT_IN)


def voice_do_not_call_entry(
    *, organization_id: int, phone: str, simulated: bool | None = None
) -> ConsentEvent | None:
    """The event that put ``phone`` on the organization's voice do-not-call list, or None
    when it is not on it (its newest voice event is not an opt-out)."""
    latest = (
        consent_events_in_scope(organization_id=organization_id, simulated=simulated)
        .filter(phone=phone, kind__in=_VOICE_KINDS)
        .order_by("-created_at", "-id")
        .first()
    )
    return latest if latest is not None and latest.kind == ConsentKind.VOICE_OPT_OUT else None


def voice_do_not_call_list(*, organization_id: int) -> QuerySet[ConsentEvent]:
    """The do-not-call list: for every number on it, the event that put it there."""
    newest = (
        ConsentEvent.objects.filter(
            organization_id=organization_id, phone=OuterRef("phone"), kind__in=_VOICE_KINDS
        )
        .order_by("-created_at", "-id")
        .values("pk")[:1]
    )
    return (
        ConsentEvent.objects.filter(organization_id=organization_id, kind=ConsentKind.VOICE_OPT_OUT)
        .filter(pk=Subquery(newest))
        .select_related("actor", "number")
        .order_by("-created_at", "-id")
    )

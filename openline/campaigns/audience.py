"""Who a broadcast reaches, counted by the database.

An audience picks **people** (contacts that are not another number of someone) and then
their **numbers** (the person's own and each of their other numbers). It is a small dict:

- ``everyone`` (every person), or ``include_tags`` (people with any of them) and
  ``add_contacts`` (people picked by hand);
- ``exclude_tags`` (people with any of them are left out, unless picked by hand) and
  ``remove_contacts`` (people unpicked by hand);
- ``filters``: a list of ``{"on", "op", "value", "exclude"}`` conditions that must all
  hold (``exclude`` turns one around): on a custom field (``"field:<id>"``: equals,
  before, after, empty), the last time the person and the organization texted
  (``last_contact``: before or on/after a date, or empty for never), the inbox they last
  used (``inbox``: equals a number id), and, for each number, its consent state
  (``consent``: opted_in, opted_out, opt_out_pending, no_opt_in) or its type
  (``number_type``).

An empty audience selects nobody. Eligible numbers are those whose consent ledger says
opted in, with no opt-out request waiting for review, on a textable number; every other
number is counted under the reason it is left out."""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import datetime, time
from typing import Any

from django.db.models import (
    Case,
    Count,
    Exists,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Substr
from django.db.models.lookups import Exact

from openline.contacts.models import (
    TEXTABLE_TYPES,
    ConsentKind,
    Contact,
    CustomField,
    FieldKind,
    FieldValue,
    NumberType,
    Tag,
)
from openline.contacts.selectors import consent_events_in_scope
from openline.contacts.services.fields import FieldError, field_value_parse, parse_date
from openline.core.models import Organization
from openline.messaging.models import Conversation
from openline.providers.models import Number


class AudienceError(ValueError):
    code = "invalid_audience"


# Why a selected number gets nothing, in the order the preview lists them.
EXCLUSIONS = {
    "not_textable": "landline or VoIP number: cannot receive texts",
    "opted_out": "opted out",
    "opt_out_pending": "asked not to be texted (request waiting for review)",
    "no_opt_in": "no opt-in on record",
}
# A voice broadcast calls landlines too (see contacts.services.voice.call_refusal).
VOICE_EXCLUSIONS = {
    "do_not_call": "on the voice do-not-call list",
    "opted_out": "opted out of texts (no automated calls either)",
    "opt_out_pending": "asked not to be contacted (request waiting for review)",
    "no_opt_in": "mobile number with no consent on record for prerecorded calls",
}
CONSENT_STATES = ("opted_in", "opted_out", "opt_out_pending", "no_opt_in")
MAX_FILTERS = 20

_ID_LISTS = ("include_tags", "exclude_tags", "add_contacts", "remove_contacts")
_OPS = {
    FieldKind.TEXT: ("equals", "empty"),
    FieldKind.CHOICE: ("equals", "empty"),
    FieldKind.NUMBER: ("equals", "before", "after", "empty"),
    FieldKind.DATE: ("equals", "before", "after", "empty"),
    "last_contact": ("before", "after", "empty"),
    "inbox": ("equals",),
    "consent": ("equals",),
    "number_type": ("equals",),
}
_NUMBER_LEVEL = ("consent", "number_type")


def _everyone(audience: dict[str, Any]) -> bool:
    return audience.get("everyone") is True


# --- checking an audience ----------------------------------------------------------------


def audience_clean(*, organization_id: int, audience: dict[str, Any]) -> dict[str, Any]:
    """``audience`` with only known keys, ids of this organization's tags, contacts, fields
    and numbers, and filters that make sense; raise AudienceError naming anything else."""
    if not isinstance(audience, dict):
        raise AudienceError("an audience is an object of tag and contact id lists")
    unknown = sorted(set(audience) - {*_ID_LISTS, "everyone", "filters"})
    if unknown:
        raise AudienceError(f"unknown audience keys: {', '.join(unknown)}")
    if not isinstance(audience.get("everyone", False), bool):
        raise AudienceError("everyone is true or false")
    clean: dict[str, Any] = {"everyone": _everyone(audience)}
    for key in _ID_LISTS:
        ids = audience.get(key) or []
        if not isinstance(ids, list) or not all(
            isinstance(i, int) and not isinstance(i, bool) for i in ids
        ):
            raise AudienceError(f"{key} must be a list of ids")
        model = Tag if key.endswith("tags") else Contact
        found = set(
            model.objects.filter(organization_id=organization_id, pk__in=ids).values_list(
                "pk", flat=True
            )
        )
        missing = sorted(set(ids) - found)
        if missing:
            noun = "tags" if model is Tag else "contacts"
            raise AudienceError(f"no such {noun} here: {', '.join(map(str, missing))}")
        clean[key] = sorted(found)
    filters = audience.get("filters") or []
    if not isinstance(filters, list) or len(filters) > MAX_FILTERS:
        raise AudienceError(f"filters is a list of at most {MAX_FILTERS} conditions")
    clean["filters"] = [_clean_filter(organization_id, f) for f in filters]
    return clean


def _clean_filter(organization_id: int, condition: Any) -> dict[str, Any]:
    if not isinstance(condition, dict) or set(condition) - {"on", "op", "value", "exclude"}:
        raise AudienceError('a filter is {"on": ..., "op": ..., "value": ..., "exclude": ...}')
    on, op = condition.get("on"), condition.get("op")
    value, exclude = condition.get("value", ""), condition.get("exclude", False)
    if not isinstance(on, str) or not isinstance(op, str) or not isinstance(exclude, bool):
        raise AudienceError("a filter's on and op are text, exclude is true or false")
    if not isinstance(value, str | int) or isinstance(value, bool) or len(str(value)) > 500:
        raise AudienceError("a filter's value is text or a number")
    kind: str = on
    if on.startswith("field:"):
        field = _field(organization_id, on)
        kind = field.kind
    if kind not in _OPS:
        raise AudienceError(f"cannot filter on {on!r}")
    if op not in _OPS[kind]:
        raise AudienceError(f"{on} can be filtered with: {', '.join(_OPS[kind])}")
    if op != "empty":
        _check_value(organization_id, on, kind, op, value)
    return {"on": on, "op": op, "value": value if op != "empty" else "", "exclude": exclude}


def _field(organization_id: int, on: str) -> CustomField:
    try:
        return CustomField.objects.get(organization_id=organization_id, pk=int(on[6:]))
    except (ValueError, CustomField.DoesNotExist):
        raise AudienceError(f"no such field here: {on}") from None


def _check_value(organization_id: int, on: str, kind: str, op: str, value: Any) -> None:
    try:
        if on.startswith("field:"):
            field_value_parse(_field(organization_id, on), str(value))
        elif on == "last_contact":
            parse_date(str(value))
    except FieldError as exc:
        raise AudienceError(str(exc)) from None
    if (
        on == "inbox"
        and not Number.objects.filter(
            organization_id=organization_id, pk=value if isinstance(value, int) else -1
        ).exists()
    ):
        raise AudienceError(f"no such inbox here: {value}")
    if on == "consent" and value not in CONSENT_STATES:
        raise AudienceError(f"consent is one of: {', '.join(CONSENT_STATES)}")
    if on == "number_type" and value not in NumberType.values:
        raise AudienceError(f"number_type is one of: {', '.join(NumberType.values)}")


# --- people and numbers ------------------------------------------------------------------


def audience_contacts(*, organization_id: int, audience: dict[str, Any]) -> QuerySet[Contact]:
    """The selected people: contacts that are nobody's other number, with a phone."""
    with_tag = Contact.tags.through.objects.filter(contact_id=OuterRef("pk"))
    people = Contact.objects.filter(organization_id=organization_id, primary__isnull=True)
    people = people.exclude(phone="")
    include = audience.get("include_tags") or []
    added = audience.get("add_contacts") or []
    if not _everyone(audience):
        picked = Exists(with_tag.filter(tag_id__in=include)) if include else Q(pk__in=[])
        people = people.filter(picked | Q(pk__in=added)) if added else people.filter(picked)
    exclude = audience.get("exclude_tags") or []
    if exclude:
        people = people.exclude(Exists(with_tag.filter(tag_id__in=exclude)) & ~Q(pk__in=added))
    removed = audience.get("remove_contacts") or []
    if removed:
        people = people.exclude(pk__in=removed)
    organization = Organization.objects.get(pk=organization_id)
    for condition in audience.get("filters") or []:
        if condition["on"] not in _NUMBER_LEVEL:
            q = _person_condition(organization, condition)
            people = people.exclude(q) if condition["exclude"] else people.filter(q)
    return people


def _person_condition(organization: Organization, condition: dict[str, Any]) -> Q:
    on, op, value = condition["on"], condition["op"], condition["value"]
    if on.startswith("field:"):
        field = _field(organization.pk, on)
        values = FieldValue.objects.filter(contact_id=OuterRef("pk"), field=field)
        if op == "empty":
            return ~Q(Exists(values))
        parsed = field_value_parse(field, str(value))
        columns = {str(FieldKind.NUMBER): "number", str(FieldKind.DATE): "date"}
        column = columns.get(field.kind, "text")
        if column == "text":
            return Q(Exists(values.filter(text__iexact=parsed["text"])))
        lookup = {"equals": "", "before": "__lt", "after": "__gt"}[op]
        return Q(Exists(values.filter(**{f"{column}{lookup}": parsed[column]})))
    theirs = Conversation.objects.filter(
        Q(contact_id=OuterRef("pk")) | Q(contact__primary_id=OuterRef("pk"))
    )
    if on == "inbox":
        last_inbox = theirs.order_by("-last_message_at", "-pk").values("number_id")[:1]
        return Q(Exact(Subquery(last_inbox), int(value)))
    # last_contact
    if op == "empty":
        return ~Q(Exists(theirs))
    tz = zoneinfo.ZoneInfo(organization.timezone)
    start = datetime.combine(parse_date(str(value)), time(0, 0), tzinfo=tz)
    since = Q(Exists(theirs.filter(last_message_at__gte=start)))
    return since if op == "after" else Q(Exists(theirs)) & ~since


def audience_numbers(
    *,
    organization_id: int,
    audience: dict[str, Any],
    simulated: bool | None = None,
    voice: bool = False,
) -> QuerySet[Contact]:
    """Every number of the selected people, annotated with ``consent``, ``latest`` and
    ``state`` (``eligible`` or an EXCLUSIONS reason; VOICE_EXCLUSIONS for calls), with the
    per-number filters applied."""
    people = audience_contacts(organization_id=organization_id, audience=audience).values("pk")
    numbers = (
        Contact.objects.filter(organization_id=organization_id)
        .filter(Q(pk__in=people) | Q(primary_id__in=people))
        .exclude(phone="")
    )
    numbers = audience_with_consent(numbers, organization_id=organization_id, simulated=simulated)
    # Each mention of ``consent`` or ``latest`` runs its subquery again, for every number.
    # When the newest event is an opt-in or an opt-out it is also the newest of those two
    # (``consent``): ``latest`` alone decides for nearly everyone, once. Only when an
    # opt-out request or its dismissal is newest does ``consent`` decide, as it always did.
    if voice:
        numbers = numbers.annotate(do_not_call=_do_not_call(organization_id, simulated))
    numbers = numbers.annotate(state=_voice_state() if voice else _text_state())
    for condition in audience.get("filters") or []:
        if condition["on"] in _NUMBER_LEVEL:
            q = _number_condition(condition)
            numbers = numbers.exclude(q) if condition["exclude"] else numbers.filter(q)
    return numbers


def _text_state() -> Case:
    return Case(
        When(~Q(number_type__in=TEXTABLE_TYPES), then=Value("not_textable")),
        When(latest=ConsentKind.OPT_IN, then=Value("eligible")),
        When(latest=ConsentKind.OPT_OUT, then=Value("opted_out")),
        When(latest__isnull=True, then=Value("no_opt_in")),
        When(consent=ConsentKind.OPT_OUT, then=Value("opted_out")),
        When(consent__isnull=True, then=Value("no_opt_in")),
        When(latest=ConsentKind.OPT_OUT_REQUEST, then=Value("opt_out_pending")),
        default=Value("eligible"),
    )


def _do_not_call(organization_id: int, simulated: bool | None) -> Subquery:
    """The newest voice opt-out or its removal: on the list when it is an opt-out."""
    events = consent_events_in_scope(organization_id=organization_id, simulated=simulated)
    newest = events.filter(
        phone=OuterRef("phone"), kind__in=(ConsentKind.VOICE_OPT_OUT, ConsentKind.VOICE_OPT_IN)
    ).order_by("-created_at", "-id")
    return Subquery(newest.values("kind")[:1])


def _voice_state() -> Case:
    """As ``call_refusal`` decides for one number: the do-not-call list first, then an
    opt-out from texts or a request waiting; a mobile needs an opt-in, other types do not."""
    mobile = Q(number_type=NumberType.MOBILE)
    return Case(
        When(do_not_call=ConsentKind.VOICE_OPT_OUT, then=Value("do_not_call")),
        When(latest=ConsentKind.OPT_IN, then=Value("eligible")),
        When(latest=ConsentKind.OPT_OUT, then=Value("opted_out")),
        When(Q(latest__isnull=True) & mobile, then=Value("no_opt_in")),
        When(latest__isnull=True, then=Value("eligible")),
        When(consent=ConsentKind.OPT_OUT, then=Value("opted_out")),
        When(latest=ConsentKind.OPT_OUT_REQUEST, then=Value("opt_out_pending")),
        When(Q(consent__isnull=True) & mobile, then=Value("no_opt_in")),
        default=Value("eligible"),
    )


def _number_condition(condition: dict[str, Any]) -> Q:
    if condition["on"] == "number_type":
        return Q(number_type=condition["value"])
    value = condition["value"]
    if value == "opted_in":
        return Q(consent=ConsentKind.OPT_IN)
    return Q(state=value)


ELIGIBLE = Q(state="eligible")


def audience_with_consent(
    contacts: QuerySet[Contact], *, organization_id: int, simulated: bool | None = None
) -> QuerySet[Contact]:
    """Annotate each contact with its latest opt-in or opt-out (``consent``) and its latest
    consent event of any kind that changes it (``latest``: an opt-out request waiting for
    review when that is the newest), both read from the ledger by subquery."""
    events = consent_events_in_scope(organization_id=organization_id, simulated=simulated)
    events = events.filter(phone=OuterRef("phone")).order_by("-created_at", "-id")
    consent = events.filter(kind__in=(ConsentKind.OPT_IN, ConsentKind.OPT_OUT))
    latest = events.filter(
        kind__in=(
            ConsentKind.OPT_IN,
            ConsentKind.OPT_OUT,
            ConsentKind.OPT_OUT_REQUEST,
            ConsentKind.REQUEST_DISMISSED,
        )
    )
    return contacts.annotate(
        consent=Subquery(consent.values("kind")[:1]),
        latest=Subquery(latest.values("kind")[:1]),
    )


# --- counting ----------------------------------------------------------------------------


@dataclass(frozen=True)
class AudienceCounts:
    selected: int  # people
    eligible: int  # numbers a broadcast may text (or call)
    excluded: dict[str, int]  # reason code (EXCLUSIONS) -> numbers left out
    by_prefix: dict[str, int]  # eligible numbers by their first five characters ("+1212")
    voice: bool = False

    @property
    def excluded_rows(self) -> list[tuple[str, str, int]]:
        labels = VOICE_EXCLUSIONS if self.voice else EXCLUSIONS
        return [(code, labels[code], self.excluded[code]) for code in labels]


def audience_counts(
    *,
    organization_id: int,
    audience: dict[str, Any],
    simulated: bool | None = None,
    voice: bool = False,
) -> AudienceCounts:
    """Selected people, eligible numbers and each excluded group: two queries, the second
    grouped by each number's state and its first five characters (for the rates)."""
    selected = audience_contacts(organization_id=organization_id, audience=audience).count()
    rows = (
        audience_numbers(
            organization_id=organization_id, audience=audience, simulated=simulated, voice=voice
        )
        .annotate(prefix=Substr("phone", 1, 5))
        .values_list("state", "prefix")
        .annotate(n=Count("pk"))
        .order_by()
    )
    excluded = dict.fromkeys(VOICE_EXCLUSIONS if voice else EXCLUSIONS, 0)
    by_prefix: dict[str, int] = {}
    for state, prefix, n in rows:
        if state == "eligible":
            by_prefix[prefix] = by_prefix.get(prefix, 0) + n
        else:
            excluded[state] += n
    return AudienceCounts(
        selected=selected,
        eligible=sum(by_prefix.values()),
        excluded=excluded,
        by_prefix=by_prefix,
        voice=voice,
    )

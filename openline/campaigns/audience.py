"""Who a broadcast reaches, counted by the database.

An audience is a small dict: ``everyone`` (every contact with a phone) or ``include_tags``
(contacts with any of them) and ``add_contacts`` (people picked by hand); then
``exclude_tags`` (contacts with any of them are left out, unless picked by hand) and
``remove_contacts`` (people unpicked by hand). An empty audience selects nobody.
Eligible numbers are those whose consent ledger says opted in, with no opt-out request
waiting for review, on a textable number; every other selected number is counted under
the reason it is left out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Case, Count, Exists, OuterRef, Q, QuerySet, Subquery, Value, When
from django.db.models.functions import Substr

from openline.contacts.models import TEXTABLE_TYPES, ConsentKind, Contact, Tag
from openline.contacts.selectors import consent_events_in_scope


class AudienceError(ValueError):
    code = "invalid_audience"


# Why a selected number gets nothing, in the order the preview lists them.
EXCLUSIONS = {
    "not_textable": "landline or VoIP number: cannot receive texts",
    "opted_out": "opted out",
    "opt_out_pending": "asked not to be texted (request waiting for review)",
    "no_opt_in": "no opt-in on record",
}

_KEYS = ("include_tags", "exclude_tags", "add_contacts", "remove_contacts")


def _everyone(audience: dict[str, Any]) -> bool:
    return audience.get("everyone") is True


def audience_clean(*, organization_id: int, audience: dict[str, Any]) -> dict[str, Any]:
    """``audience`` with only known keys and ids of this organization's tags and contacts;
    raise AudienceError naming anything else."""
    if not isinstance(audience, dict):
        raise AudienceError("an audience is an object of tag and contact id lists")
    unknown = sorted(set(audience) - {*_KEYS, "everyone"})
    if unknown:
        raise AudienceError(f"unknown audience keys: {', '.join(unknown)}")
    if not isinstance(audience.get("everyone", False), bool):
        raise AudienceError("everyone is true or false")
    clean: dict[str, Any] = {"everyone": _everyone(audience)}
    for key in _KEYS:
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
    return clean


def audience_contacts(*, organization_id: int, audience: dict[str, Any]) -> QuerySet[Contact]:
    """The selected contacts (with a phone), before consent is looked at."""
    with_tag = Contact.tags.through.objects.filter(contact_id=OuterRef("pk"))
    contacts = Contact.objects.filter(organization_id=organization_id).exclude(phone="")
    include = audience.get("include_tags") or []
    added = audience.get("add_contacts") or []
    if not _everyone(audience):
        picked = Exists(with_tag.filter(tag_id__in=include)) if include else Q(pk__in=[])
        contacts = contacts.filter(picked | Q(pk__in=added)) if added else contacts.filter(picked)
    exclude = audience.get("exclude_tags") or []
    if exclude:
        contacts = contacts.exclude(Exists(with_tag.filter(tag_id__in=exclude)) & ~Q(pk__in=added))
    removed = audience.get("remove_contacts") or []
    if removed:
        contacts = contacts.exclude(pk__in=removed)
    return contacts


ELIGIBLE = Q(number_type__in=TEXTABLE_TYPES, consent=ConsentKind.OPT_IN) & ~Q(
    latest=ConsentKind.OPT_OUT_REQUEST
)


def audience_with_consent(
    contacts: QuerySet[Contact], *, organization_id: int, simulated: bool | None = None
) -> QuerySet[Contact]:
    """Annotate each contact with its latest opt-in or opt-out (``consent``) and its latest
    consent event of any kind that changes it (``latest``: an opt-out request waiting for
    review when that is the newest), both read from the ledger by subquery. ``ELIGIBLE``
    then filters those a broadcast may text."""
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


@dataclass(frozen=True)
class AudienceCounts:
    selected: int  # contacts with a phone
    eligible: int  # numbers a broadcast may text
    excluded: dict[str, int]  # reason code (EXCLUSIONS) -> numbers left out
    by_prefix: dict[str, int]  # eligible numbers by their first five characters ("+1212")

    @property
    def excluded_rows(self) -> list[tuple[str, str, int]]:
        return [(code, EXCLUSIONS[code], self.excluded[code]) for code in EXCLUSIONS]


def audience_counts(
    *, organization_id: int, audience: dict[str, Any], simulated: bool | None = None
) -> AudienceCounts:
    """Selected people, eligible numbers and each excluded group: one query, grouped by
    each number's state and its first five characters (for the rates per country)."""
    contacts = audience_with_consent(
        audience_contacts(organization_id=organization_id, audience=audience),
        organization_id=organization_id,
        simulated=simulated,
    )
    rows = (
        contacts.annotate(
            state=Case(
                When(~Q(number_type__in=TEXTABLE_TYPES), then=Value("not_textable")),
                When(consent=ConsentKind.OPT_OUT, then=Value("opted_out")),
                When(consent__isnull=True, then=Value("no_opt_in")),
                When(latest=ConsentKind.OPT_OUT_REQUEST, then=Value("opt_out_pending")),
                default=Value("eligible"),
            ),
            prefix=Substr("phone", 1, 5),
        )
        .values_list("state", "prefix")
        .annotate(n=Count("pk"))
        .order_by()
    )
    excluded = dict.fromkeys(EXCLUSIONS, 0)
    by_prefix: dict[str, int] = {}
    for state, prefix, n in rows:
        if state == "eligible":
            by_prefix[prefix] = by_prefix.get(prefix, 0) + n
        else:
            excluded[state] += n
    eligible = sum(by_prefix.values())
    return AudienceCounts(
        selected=eligible + sum(excluded.values()),
        eligible=eligible,
        excluded=excluded,
        by_prefix=by_prefix,
    )

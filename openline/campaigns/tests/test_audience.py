"""The audience builder: people and all their numbers, custom fields (equals, before,
after, empty), the last contact and last inbox, consent state and number type, include and
exclude, merge fields from custom fields; counted by the database."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from openline.billing.models import CreditKind
from openline.billing.services import credits_add
from openline.campaigns.audience import AudienceError, audience_clean, audience_counts
from openline.campaigns.compose import ComposeError
from openline.campaigns.models import BroadcastRecipient
from openline.campaigns.services import broadcast_create, broadcast_queue
from openline.contacts.models import ConsentSource, FieldKind
from openline.contacts.services.consent import consent_record_opt_in, consent_record_opt_out
from openline.contacts.services.contacts import (
    DuplicateContact,
    contact_add_number,
    contact_create,
)
from openline.contacts.services.fields import FieldError, contact_set_field, custom_field_create
from openline.messaging.models import Conversation, ConversationStatus


def _opt_in(org: Any, admin: Any, phone: str) -> None:
    consent_record_opt_in(
        organization_id=org.pk, phone=phone, source=ConsentSource.STAFF,
        evidence="registration form", actor_id=admin.pk,
    )  # fmt: skip


@pytest.fixture
def family(org: Any, alice: Any, sandbox_number: Any) -> dict[str, Any]:
    """Two parents' mobiles for one swimmer record, a second family, and custom fields."""
    level = custom_field_create(
        organization_id=org.pk, name="Level", kind=FieldKind.CHOICE, choices=["Guppy", "Shark"]
    )
    birthday = custom_field_create(organization_id=org.pk, name="Birthday", kind=FieldKind.DATE)
    balance = custom_field_create(organization_id=org.pk, name="Balance", kind=FieldKind.NUMBER)
    lee = contact_create(organization_id=org.pk, phone="+12125550101", name="Ann Lee")
    lee2 = contact_add_number(contact=lee, phone="(212) 555-0111")
    ortiz = contact_create(organization_id=org.pk, phone="+12125550102", name="Ben Ortiz")
    for phone in ("+12125550101", "+12125550111", "+12125550102"):
        _opt_in(org, alice, phone)
    contact_set_field(contact=lee, field=level, raw="shark")
    contact_set_field(contact=lee2, field=birthday, raw="3/14/2016")  # stored on the person
    contact_set_field(contact=ortiz, field=level, raw="Guppy")
    contact_set_field(contact=ortiz, field=balance, raw="1,250.50")
    return {
        "lee": lee, "lee2": lee2, "ortiz": ortiz,
        "level": level, "birthday": birthday, "balance": balance,
    }  # fmt: skip


def _counts(org: Any, *filters: dict[str, Any]) -> tuple[int, int]:
    audience = {"everyone": True, "filters": list(filters)}
    clean = audience_clean(organization_id=org.pk, audience=audience)
    counts = audience_counts(organization_id=org.pk, audience=clean)
    return counts.selected, counts.eligible


def _on(field: Any, op: str, value: Any = "", exclude: bool = False) -> dict[str, Any]:
    return {"on": f"field:{field.pk}", "op": op, "value": value, "exclude": exclude}


def test_a_person_with_two_numbers_is_one_person_and_two_numbers(
    org: Any, family: dict[str, Any]
) -> None:
    assert _counts(org) == (2, 3)
    assert family["lee2"].primary_id == family["lee"].pk
    assert family["lee2"].field_values.count() == 0 and family["lee"].field_values.count() == 2


def test_custom_field_filters_compare_by_kind(org: Any, family: dict[str, Any]) -> None:
    level, birthday, balance = family["level"], family["birthday"], family["balance"]
    assert _counts(org, _on(level, "equals", "SHARK")) == (1, 2)
    assert _counts(org, _on(level, "equals", "shark", exclude=True)) == (1, 1)
    assert _counts(org, _on(birthday, "before", "2017-01-01")) == (1, 2)
    assert _counts(org, _on(birthday, "after", "2017-01-01")) == (0, 0)
    assert _counts(org, _on(birthday, "empty")) == (1, 1)
    assert _counts(org, _on(balance, "after", "999")) == (1, 1)
    assert _counts(org, _on(balance, "before", "999")) == (0, 0)
    assert _counts(org, _on(balance, "equals", "1250.5")) == (1, 1)


def test_per_number_filters_narrow_the_numbers_not_the_people(
    org: Any, alice: Any, family: dict[str, Any]
) -> None:
    consent_record_opt_out(
        organization_id=org.pk, phone="+12125550111", source=ConsentSource.KEYWORD, text="STOP"
    )
    opted_out = {"on": "consent", "op": "equals", "value": "opted_out"}
    assert _counts(org, opted_out) == (2, 0)
    audience = {"everyone": True, "filters": [{**opted_out, "exclude": True}]}
    clean = audience_clean(organization_id=org.pk, audience=audience)
    counts = audience_counts(organization_id=org.pk, audience=clean)
    assert (counts.eligible, counts.excluded["opted_out"]) == (2, 0)
    assert _counts(org, {"on": "number_type", "op": "equals", "value": "landline"}) == (2, 0)


def test_last_contact_and_last_inbox(org: Any, family: dict[str, Any], sandbox_number: Any) -> None:
    from openline.providers.services import number_add

    other = number_add(organization=org, provider="sandbox", e164="+12025550150", name="Second")
    now = timezone.now()
    for number, contact, days in ((sandbox_number, "lee2", 40), (other, "ortiz", 2)):
        Conversation.objects.create(
            organization=org, number=number, contact=family[contact],
            status=ConversationStatus.CLOSED, last_message_at=now - timedelta(days=days),
        )  # fmt: skip
    week_ago = (timezone.localdate() - timedelta(days=7)).isoformat()
    assert _counts(org, {"on": "last_contact", "op": "after", "value": week_ago}) == (1, 1)
    assert _counts(org, {"on": "last_contact", "op": "before", "value": week_ago}) == (1, 2)
    assert _counts(org, {"on": "last_contact", "op": "empty"}) == (0, 0)
    assert _counts(org, {"on": "inbox", "op": "equals", "value": sandbox_number.pk}) == (1, 2)
    assert _counts(org, {"on": "inbox", "op": "equals", "value": other.pk}) == (1, 1)


@pytest.mark.parametrize(
    "condition",
    [
        {"on": "field:999999", "op": "equals", "value": "x"},
        {"on": "consent", "op": "before", "value": "opted_in"},
        {"on": "consent", "op": "equals", "value": "maybe"},
        {"on": "last_contact", "op": "after", "value": "yesterday"},
        {"on": "inbox", "op": "equals", "value": 999999},
        {"on": "shoe_size", "op": "equals", "value": "9"},
        {"on": "number_type", "op": "equals", "value": "fax"},
        {"on": "consent", "op": "equals", "value": "opted_in", "exclude": "yes"},
        "not a filter",
    ],
)
def test_a_filter_that_makes_no_sense_is_refused_with_a_reason(
    org: Any, family: dict[str, Any], condition: Any
) -> None:
    with pytest.raises(AudienceError):
        audience_clean(organization_id=org.pk, audience={"filters": [condition]})


def test_another_organizations_field_is_not_usable(
    org: Any, family: dict[str, Any], other_org: Any
) -> None:
    with pytest.raises(AudienceError):
        audience_clean(
            organization_id=other_org.pk, audience={"filters": [_on(family["level"], "empty")]}
        )


def test_field_values_are_checked_by_kind(org: Any, family: dict[str, Any]) -> None:
    for field, raw in (("level", "Whale"), ("birthday", "next week"), ("balance", "lots")):
        with pytest.raises(FieldError):
            contact_set_field(contact=family["ortiz"], field=family[field], raw=raw)
    with pytest.raises(FieldError):
        custom_field_create(organization_id=org.pk, name="First name", kind=FieldKind.TEXT)
    with pytest.raises(FieldError):
        custom_field_create(organization_id=org.pk, name="Level", kind=FieldKind.TEXT)


def test_a_number_that_belongs_to_someone_else_cannot_be_added(
    org: Any, family: dict[str, Any]
) -> None:
    with pytest.raises(DuplicateContact):
        contact_add_number(contact=family["ortiz"], phone="+12125550111")
    loner = contact_create(organization_id=org.pk, phone="+12125550133", name="")
    joined = contact_add_number(contact=family["ortiz"], phone="+12125550133")
    assert (joined.pk, joined.primary_id, joined.name) == (
        loner.pk,
        family["ortiz"].pk,
        "Ben Ortiz",
    )


def test_custom_fields_merge_into_each_persons_text_and_unknown_ones_are_refused(
    org: Any, alice: Any, sandbox_number: Any, family: dict[str, Any], pipeline: Any
) -> None:
    from openline.campaigns.models import SendingWindow

    SendingWindow.objects.create(organization=org, start="00:00", end="23:59:59")
    credits_add(
        organization_id=org.pk, credits=50, note="inv", actor_id=alice.pk,
        kind=CreditKind.PURCHASE,
    )  # fmt: skip
    numbers = [sandbox_number.pk]
    with pytest.raises(ComposeError):
        broadcast_create(
            organization_id=org.pk, actor_id=alice.pk, name="x", body="Hi {shoe_size}",
            audience={"everyone": True}, number_ids=numbers,
        )  # fmt: skip
    broadcast = broadcast_create(
        organization_id=org.pk, actor_id=alice.pk, name="Levels",
        body="{first_name} is in {level}, born {birthday}.",
        audience={"everyone": True}, number_ids=numbers,
    )  # fmt: skip
    pipeline.run(
        lambda: broadcast_queue(broadcast=broadcast, actor_id=alice.pk), include_deferred=True
    )
    rows = BroadcastRecipient.objects.filter(broadcast=broadcast).select_related("message")
    texts = {row.contact_id: row.message.body.split("\n")[0] for row in rows}
    assert texts == {
        family["lee"].pk: "Ann is in Shark, born 2016-03-14.",
        family["lee2"].pk: "Ann is in Shark, born 2016-03-14.",  # the person's second mobile
        family["ortiz"].pk: "Ben is in Guppy, born .",
    }

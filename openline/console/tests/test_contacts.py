"""Contacts directory, contact page, starting conversations and recording consent."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from openline.contacts.models import ConsentEvent, ConsentKind, ConsentSource, Contact
from openline.messaging.models import Direction, Message, MessageKind, MessageStatus


@pytest.fixture
def dana(org: Any) -> Contact:
    return Contact.objects.create(
        organization=org, name="Dana Reyes", phone="+12025550163", number_type="mobile"
    )


def _detail(client: Client, contact: Contact) -> str:
    response = client.get(reverse("console:contact", args=[contact.pk]))
    assert response.status_code == 200
    return response.content.decode()


def test_contact_list_and_search(alice_client: Client, dana: Contact, org: Any) -> None:
    Contact.objects.create(organization=org, name="Sam Ortiz", phone="+12125550177")
    url = reverse("console:contacts")
    html = alice_client.get(url).content.decode()
    assert "Dana Reyes" in html and "Sam Ortiz" in html
    assert "+1 202-555-0163" in html
    by_name = alice_client.get(url, {"q": "dana"}).content.decode()
    assert "Dana Reyes" in by_name and "Sam Ortiz" not in by_name
    by_number = alice_client.get(url, {"q": "(212) 555-01"}).content.decode()
    assert "Sam Ortiz" in by_number and "Dana Reyes" not in by_number
    none = alice_client.get(url, {"q": "zzz"}).content.decode()
    assert "No contacts match" in none


def test_contact_list_is_scoped_to_the_organization(charlie_client: Client, dana: Contact) -> None:
    html = charlie_client.get(reverse("console:contacts")).content.decode()
    assert "Dana Reyes" not in html


def test_create_contact(alice_client: Client, org: Any) -> None:
    response = alice_client.post(
        reverse("console:contact_new"),
        {"name": "Lee Park", "phone": "(202) 555-0199", "number_type": "mobile"},
    )
    contact = Contact.objects.get(organization=org)
    assert response.status_code == 302
    assert response["Location"] == reverse("console:contact", args=[contact.pk])
    assert (contact.name, contact.phone, contact.number_type) == (
        "Lee Park",
        "+12025550199",
        "mobile",
    )


def test_create_contact_detects_number_type_when_not_given(alice_client: Client, org: Any) -> None:
    alice_client.post(reverse("console:contact_new"), {"phone": "+447400123456", "number_type": ""})
    assert Contact.objects.get(organization=org).number_type == "mobile"


@pytest.mark.parametrize(
    ("phone", "message"),
    [
        ("12345", "is not a valid phone number"),
        ("hello", "is not a phone number"),
        ("", "This field is required."),
    ],
)
def test_create_contact_shows_phone_errors(
    alice_client: Client, org: Any, phone: str, message: str
) -> None:
    response = alice_client.post(reverse("console:contact_new"), {"name": "X", "phone": phone})
    assert response.status_code == 422
    assert message in response.content.decode()
    assert not Contact.objects.exists()


def test_create_duplicate_contact_is_refused(alice_client: Client, dana: Contact) -> None:
    response = alice_client.post(reverse("console:contact_new"), {"phone": "202-555-0163"})
    assert response.status_code == 422
    assert "A contact with +12025550163 already exists" in response.content.decode()


def test_contact_page_shows_consent_history_and_conversations(
    alice_client: Client, text_in: Any
) -> None:
    conversation = text_in("hello")
    text_in("STOP")
    html = _detail(alice_client, conversation.contact)
    assert "Opted out" in html
    assert "Keyword" in html and "<q>STOP</q>" in html
    # The answer the person was shown, from the ledger.
    assert "Answered: <q>" in html and "unsubscribed and will get no more texts" in html
    assert reverse("console:conversation", args=[conversation.pk]) in html
    assert "opted out of texts; they can opt back in by texting START" in html
    assert "Only they can opt back in, by texting START." in html  # staff opt-in is blocked


def test_edit_contact(alice_client: Client, dana: Contact) -> None:
    response = alice_client.post(
        reverse("console:contact_edit", args=[dana.pk]),
        {"name": "Dana R.", "number_type": "landline", "notes": "prefers evenings"},
    )
    assert response.status_code == 302
    dana.refresh_from_db()
    assert (dana.name, dana.number_type, dana.notes) == ("Dana R.", "landline", "prefers evenings")


def test_tags_are_set_on_the_contact_page_and_shared_by_name(
    alice_client: Client, dana: Contact
) -> None:
    url = reverse("console:contact_edit", args=[dana.pk])
    form = {
        "name": "Dana",
        "number_type": "mobile",
        "tags": "Swim team,  saturday class, swim TEAM",
    }
    assert alice_client.post(url, form).status_code == 302
    assert sorted(dana.tags.values_list("name", flat=True)) == ["Swim team", "saturday class"]
    html = _detail(alice_client, dana)
    assert (
        'value="Swim team, saturday class"' in html and '<span class="badge tag">Swim team' in html
    )
    too_long = alice_client.post(url, {**form, "tags": "x" * 61})
    assert too_long.status_code == 422
    assert dana.tags.count() == 2
    assert alice_client.post(url, {**form, "tags": ""}).status_code == 302
    assert not dana.tags.exists()


def test_edit_contact_rejects_unknown_type(alice_client: Client, dana: Contact) -> None:
    response = alice_client.post(
        reverse("console:contact_edit", args=[dana.pk]), {"name": "D", "number_type": "fax"}
    )
    assert response.status_code == 422
    dana.refresh_from_db()
    assert dana.number_type == "mobile"


def test_start_conversation_sends_and_opens_it(
    alice_client: Client, dana: Contact, sandbox_number: Any, alice: Any
) -> None:
    response = alice_client.post(
        reverse("console:contact_start", args=[dana.pk]),
        {"number": sandbox_number.pk, "body": "Hi Dana, checking in as promised."},
    )
    message = Message.objects.get(direction=Direction.OUTBOUND)
    assert response.status_code == 302
    assert response["Location"] == reverse("console:conversation", args=[message.conversation_id])
    assert message.conversation.contact_id == dana.pk
    assert message.conversation.number_id == sandbox_number.pk
    assert (message.status, message.sender_id) == (MessageStatus.QUEUED, alice.pk)


def test_start_conversation_with_landline_is_disabled_and_refused(
    alice_client: Client, dana: Contact, sandbox_number: Any
) -> None:
    Contact.objects.filter(pk=dana.pk).update(number_type="landline")
    html = _detail(alice_client, dana)
    assert "is a landline number and cannot receive texts" in html
    assert 'id="start-refusal"' in html
    response = alice_client.post(
        reverse("console:contact_start", args=[dana.pk]),
        {"number": sandbox_number.pk, "body": "Hi"},
    )
    assert response.status_code == 422
    assert "cannot receive texts" in response.content.decode()
    assert not Message.objects.exists()


def test_record_opt_in_requires_evidence(
    alice_client: Client, dana: Contact, sandbox_number: Any
) -> None:
    response = alice_client.post(
        reverse("console:contact_opt_in", args=[dana.pk]), {"evidence": "  "}
    )
    assert response.status_code == 422
    assert "Record how consent was given (evidence is required)" in response.content.decode()
    assert not ConsentEvent.objects.exists()


def test_record_opt_in_sends_welcome(
    alice_client: Client, dana: Contact, sandbox_number: Any, alice: Any
) -> None:
    response = alice_client.post(
        reverse("console:contact_opt_in", args=[dana.pk]),
        {"evidence": "Verbal consent at intake"},
        follow=True,
    )
    assert "Opt-in recorded. The welcome text is on its way." in response.content.decode()
    event = ConsentEvent.objects.get(kind=ConsentKind.OPT_IN)
    assert (event.source, event.actor_id, event.evidence) == (
        ConsentSource.STAFF,
        alice.pk,
        "Verbal consent at intake",
    )
    welcome = Message.objects.get(direction=Direction.OUTBOUND)
    assert welcome.kind == MessageKind.AUTOMATED
    assert "Opted in" in response.content.decode()


def test_staff_cannot_opt_in_someone_who_texted_stop(alice_client: Client, text_in: Any) -> None:
    contact = text_in("STOP").contact
    response = alice_client.post(
        reverse("console:contact_opt_in", args=[contact.pk]), {"evidence": "they said ok"}
    )
    assert response.status_code == 422
    assert (
        "This person opted out themself; only they can opt back in, by texting START"
        in response.content.decode()
    )
    assert not ConsentEvent.objects.filter(kind=ConsentKind.OPT_IN).exists()


def test_record_opt_out(alice_client: Client, dana: Contact, alice: Any) -> None:
    response = alice_client.post(
        reverse("console:contact_opt_out", args=[dana.pk]),
        {"text": "asked on the phone not to be texted"},
        follow=True,
    )
    html = response.content.decode()
    assert "Opt-out recorded." in html
    assert "opted out of texts" in html  # the start form is now disabled with the reason
    event = ConsentEvent.objects.get(kind=ConsentKind.OPT_OUT)
    assert (event.source, event.actor_id, event.text) == (
        ConsentSource.STAFF,
        alice.pk,
        "asked on the phone not to be texted",
    )


def test_new_contact_page_renders(alice_client: Client) -> None:
    response = alice_client.get(reverse("console:contact_new"))
    assert response.status_code == 200
    assert 'name="phone"' in response.content.decode()


def test_a_person_gets_another_number_with_its_own_consent(
    alice_client: Client, dana: Contact
) -> None:
    url = reverse("console:contact_add_number", args=[dana.pk])
    assert alice_client.post(url, {"phone": "(202) 555-0177"}).status_code == 302
    other = dana.other_numbers.get()
    assert (other.phone, other.name) == ("+12025550177", dana.name)
    html = _detail(alice_client, dana)
    assert "+1 202-555-0177" in html and reverse("console:contact", args=[other.pk]) in html
    assert "Another number of" in _detail(alice_client, other)
    again = alice_client.post(url, {"phone": "+12025550177"})
    assert again.status_code == 422 and "already one of this person" in again.content.decode()
    bad = alice_client.post(url, {"phone": "12"})
    assert bad.status_code == 422


def test_custom_fields_are_defined_by_managers_and_set_on_the_person(
    alice_client: Client, bob_client: Client, dana: Contact
) -> None:
    fields_url = reverse("console:custom_fields")
    assert bob_client.get(fields_url).status_code == 403
    made = alice_client.post(
        fields_url, {"name": "Level", "kind": "choice", "choices": "Guppy, Shark"}
    )
    assert made.status_code == 302
    alice_client.post(fields_url, {"name": "Birthday", "kind": "date"})
    from openline.contacts.models import CustomField

    level, birthday = CustomField.objects.order_by("name").reverse()
    url = reverse("console:contact_fields", args=[dana.pk])
    bad = alice_client.post(url, {f"field_{level.pk}": "Shark", f"field_{birthday.pk}": "soon"})
    assert bad.status_code == 422 and "not a date" in bad.content.decode()
    assert not dana.field_values.exists()  # all or nothing
    ok = alice_client.post(
        url, {f"field_{level.pk}": "Shark", f"field_{birthday.pk}": "2016-03-14"}
    )
    assert ok.status_code == 302
    assert dict(dana.field_values.values_list("field__key", "text")) == {
        "level": "Shark",
        "birthday": "2016-03-14",
    }

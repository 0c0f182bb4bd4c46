"""Consent decisions made for a person in the console: dismissing an opt-out request and
recording an opt-in need a supervisor or an admin, a written reason, and are audited."""

from __future__ import annotations

from typing import Any

from django.test import Client
from django.urls import reverse

from openline.contacts.models import ConsentEvent, ConsentKind, Contact
from openline.core.models import AuditEvent

HTMX = {"HTTP_HX_REQUEST": "true"}


def _review(client: Client, conversation: Any, **data: str) -> Any:
    url = reverse("console:conversation_consent_review", args=[conversation.pk])
    return client.post(url, {"decision": "not_opt_out", **data}, **HTMX)


def test_a_counselor_cannot_dismiss_an_opt_out_request(
    bob_client: Client, text_in: Any, bob: Any
) -> None:
    conversation = text_in("please stop texting me")
    conversation.assigned_to = bob
    conversation.status = "active"
    conversation.save()

    pane = bob_client.get(reverse("console:conversation_pane", args=[conversation.pk])).content
    assert b"Not an opt-out" not in pane
    assert b"ask a supervisor or an admin" in pane
    response = _review(bob_client, conversation, reason="they meant someone else")

    assert response.status_code == 403
    conversation.refresh_from_db()
    assert conversation.needs_consent_review
    assert not ConsentEvent.objects.filter(kind=ConsentKind.REQUEST_DISMISSED).exists()


def test_dismissing_without_a_reason_is_refused_and_says_why(
    alice_client: Client, text_in: Any
) -> None:
    conversation = text_in("please stop texting me")

    response = _review(alice_client, conversation, reason="   ")

    assert response.status_code == 422
    assert "write why this is not an opt-out" in response.content.decode().lower()
    conversation.refresh_from_db()
    assert conversation.needs_consent_review


def test_a_supervisor_dismisses_with_a_reason_kept_in_the_ledger_and_audit(
    alice_client: Client, text_in: Any, alice: Any
) -> None:
    conversation = text_in("please stop texting me")

    response = _review(alice_client, conversation, reason="Talking about a classmate")

    assert response.status_code == 200
    event = ConsentEvent.objects.get(kind=ConsentKind.REQUEST_DISMISSED)
    assert (event.evidence, event.actor) == ("Talking about a classmate", alice)
    assert AuditEvent.objects.filter(action="consent.request_dismissed", actor=alice).exists()


def test_a_counselor_cannot_record_an_opt_in(bob_client: Client, text_in: Any) -> None:
    conversation = text_in("hello")
    contact = Contact.objects.get(pk=conversation.contact_id)

    page = bob_client.get(reverse("console:contact", args=[contact.pk])).content.decode()
    assert "Record opt-in" not in page
    assert "A supervisor or an admin can record an opt-in" in page
    response = bob_client.post(
        reverse("console:contact_opt_in", args=[contact.pk]), {"evidence": "verbal, on the phone"}
    )

    assert response.status_code == 422
    assert not ConsentEvent.objects.filter(kind=ConsentKind.OPT_IN).exists()


def test_an_admin_records_an_opt_in_and_it_is_audited(
    alice_client: Client, text_in: Any, alice: Any
) -> None:
    conversation = text_in("hello")
    contact = Contact.objects.get(pk=conversation.contact_id)

    response = alice_client.post(
        reverse("console:contact_opt_in", args=[contact.pk]), {"evidence": "signed intake form"}
    )

    assert response.status_code == 302
    event = ConsentEvent.objects.get(kind=ConsentKind.OPT_IN)
    assert AuditEvent.objects.filter(
        action="consent.opt_in", actor=alice, object_id=str(event.pk)
    ).exists()


def test_nobody_in_the_console_re_opts_in_a_person_who_confirmed_their_request(
    alice_client: Client, text_in: Any
) -> None:
    conversation = text_in("please stop texting me")
    url = reverse("console:conversation_consent_review", args=[conversation.pk])
    alice_client.post(url, {"decision": "opt_out"})
    contact = Contact.objects.get(pk=conversation.contact_id)

    response = alice_client.post(
        reverse("console:contact_opt_in", args=[contact.pk]), {"evidence": "they said it's ok"}
    )

    assert response.status_code == 422
    assert "only they can opt back in" in response.content.decode()
    assert not ConsentEvent.objects.filter(kind=ConsentKind.OPT_IN).exists()

"""Sign-in, organization scoping and CSRF for every console URL."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from openline.contacts.models import ConsentEvent, Contact
from openline.core.models import User
from openline.messaging.models import (
    Conversation,
    ConversationNote,
    ConversationRead,
    Direction,
    Message,
)

GET_URLS = [
    ("console:home", None),
    ("console:inbox", "number"),
    ("console:conversation", "conversation"),
    ("console:conversation_thread", "conversation"),
    ("console:conversation_pane", "conversation"),
    ("console:conversation_notice", "conversation"),
    ("console:conversation_export_csv", "conversation"),
    ("console:conversation_print", "conversation"),
    ("console:queue", None),
    ("console:preferences", None),
    ("console:team", None),
    ("console:saved_replies", None),
    ("console:segments", None),
    ("console:contacts", None),
    ("console:contact_new", None),
    ("console:contact", "contact"),
]
POST_URLS = [
    ("console:conversation_reply", "conversation", {"body": "hello"}),
    ("console:conversation_consent_review", "conversation", {"decision": "opt_out"}),
    ("console:conversation_assume", "conversation", {}),
    ("console:conversation_transfer", "conversation", {"to": ""}),
    ("console:conversation_close", "conversation", {"wrap_up": "done"}),
    ("console:conversation_join", "conversation", {}),
    ("console:conversation_take_over", "conversation", {}),
    ("console:conversation_note", "conversation", {"body": "private"}),
    ("console:conversation_unread", "conversation", {}),
    ("console:contact_edit", "contact", {"name": "X", "number_type": "mobile"}),
    ("console:contact_start", "contact", {"number": "0", "body": "hello"}),
    ("console:contact_opt_in", "contact", {"evidence": "said yes on the phone"}),
    ("console:contact_opt_out", "contact", {"text": "no more"}),
]


def _url(name: str, kind: str | None, conversation: Conversation) -> str:
    args = {
        None: [],
        "number": [conversation.number_id],
        "conversation": [conversation.pk],
        "contact": [conversation.contact_id],
    }[kind]
    return reverse(name, args=args)


@pytest.mark.parametrize(("name", "kind"), GET_URLS)
def test_anonymous_is_sent_to_login(
    client: Client, conversation: Conversation, name: str, kind: str | None
) -> None:
    url = _url(name, kind, conversation)
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=")


@pytest.mark.parametrize(("name", "kind", "data"), POST_URLS)
def test_anonymous_cannot_post(
    client: Client, conversation: Conversation, name: str, kind: str, data: dict[str, str]
) -> None:
    messages_before = Message.objects.count()
    consent_before = ConsentEvent.objects.count()
    response = client.post(_url(name, kind, conversation), data)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")
    assert Message.objects.count() == messages_before
    assert ConsentEvent.objects.count() == consent_before


def test_background_poll_after_sign_out_redirects_the_whole_page(
    client: Client, conversation: Conversation
) -> None:
    page = reverse("console:conversation", args=[conversation.pk])
    response = client.get(
        reverse("console:conversation_thread", args=[conversation.pk]),
        headers={"HX-Request": "true", "HX-Current-URL": f"http://testserver{page}"},
    )
    assert response.status_code == 204
    assert response["HX-Redirect"] == f"/login/?next={page}"


def test_member_without_organization_gets_friendly_403(db: None) -> None:
    loner = User.objects.create_user(email="loner@example.org", password="loner-pass-1")
    client = Client()
    client.force_login(loner)
    response = client.get(reverse("console:home"))
    assert response.status_code == 403
    assert b"not part of an organization yet" in response.content


@pytest.mark.parametrize(("name", "kind"), [u for u in GET_URLS if u[1] is not None])
def test_outsider_gets_404_on_other_orgs_pages(
    charlie_client: Client, other_number: Any, conversation: Conversation, name: str, kind: str
) -> None:
    response = charlie_client.get(_url(name, kind, conversation))
    assert response.status_code == 404


@pytest.mark.parametrize(("name", "kind", "data"), POST_URLS)
def test_outsider_cannot_write_into_other_org(
    charlie_client: Client,
    other_number: Any,
    conversation: Conversation,
    name: str,
    kind: str,
    data: dict[str, str],
) -> None:
    Conversation.objects.filter(pk=conversation.pk).update(needs_consent_review=True)
    data = {**data, "number": str(other_number.pk)} if "number" in data else data
    messages_before = Message.objects.count()
    consent_before = ConsentEvent.objects.count()
    response = charlie_client.post(_url(name, kind, conversation), data)
    assert response.status_code == 404
    assert Message.objects.count() == messages_before
    assert ConsentEvent.objects.count() == consent_before
    assert not ConversationNote.objects.exists()
    assert not ConversationRead.objects.exists()
    conversation.refresh_from_db()
    assert conversation.needs_consent_review is True
    assert (conversation.status, conversation.assigned_to_id) == ("waiting", None)
    assert Contact.objects.get(pk=conversation.contact_id).name == ""


def test_outsider_cannot_send_from_other_orgs_number(
    charlie_client: Client, charlie: Any, other_number: Any, sandbox_number: Any
) -> None:
    own = Contact.objects.create(
        organization=other_number.organization, phone="+12125550111", number_type="mobile"
    )
    response = charlie_client.post(
        reverse("console:contact_start", args=[own.pk]),
        {"number": str(sandbox_number.pk), "body": "hello"},
    )
    assert response.status_code == 422
    assert b"Select a valid choice" in response.content
    assert not Message.objects.exists()


def test_reply_without_csrf_token_is_rejected(alice: Any, conversation: Conversation) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    response = client.post(
        reverse("console:conversation_reply", args=[conversation.pk]), {"body": "hi"}
    )
    assert response.status_code == 403
    assert not Message.objects.filter(direction=Direction.OUTBOUND).exists()


def test_login_page_asks_for_email_and_signs_in(client: Client, alice: Any) -> None:
    page = client.get("/login/")
    assert page.status_code == 200
    assert b'<label for="id_username">Email</label>' in page.content
    assert b'type="email"' in page.content
    response = client.post("/login/", {"username": "alice@example.org", "password": "alice-pass-1"})
    assert response.status_code == 302
    assert response["Location"] == "/"


def test_wrong_password_shows_error(client: Client, alice: Any) -> None:
    response = client.post("/login/", {"username": "alice@example.org", "password": "nope"})
    assert response.status_code == 200
    assert b'role="alert"' in response.content


def test_sign_out_is_a_post_form_in_the_top_bar(alice_client: Client, sandbox_number: Any) -> None:
    page = alice_client.get(reverse("console:home"))
    html = page.content.decode()
    assert '<form class="signout" method="post" action="/logout/">' in html
    assert 'hx-headers=\'{"X-CSRFToken": "' in html
    assert "Riverside Crisis Line" in html
    assert 'href="/sandbox/phone"' in html
    response = alice_client.post("/logout/")
    assert response.status_code == 302
    assert alice_client.get(reverse("console:home")).status_code == 302

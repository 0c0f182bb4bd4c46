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


@pytest.fixture
def sam(org: Any) -> Any:
    """A member with the staff role."""
    from openline.core.services import user_create

    return user_create(
        organization=org, email="sam@example.org", role="staff", password="sam-pass-1234"
    ).user


def _sign_in_as_sam(client: Client) -> None:
    response = client.post("/login/", {"username": "sam@example.org", "password": "sam-pass-1234"})
    assert response.status_code == 302 and response["Location"] == "/"


def test_staff_member_signs_in_and_answers_a_conversation_end_to_end(
    client: Client,
    sam: Any,
    text_in: Any,
    pipeline: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    _sign_in_as_sam(client)
    conversation = text_in("Can someone talk?")
    home = client.get(reverse("console:home")).content.decode()
    assert f'data-conversation-id="{conversation.pk}"' in home  # the waiting queue

    assumed = client.post(reverse("console:conversation_assume", args=[conversation.pk]))
    assert assumed.status_code == 302
    conversation.refresh_from_db()
    assert (conversation.status, conversation.assigned_to_id) == ("active", sam.pk)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("console:conversation_reply", args=[conversation.pk]),
            {"body": "I'm here with you."},
        )
    assert response.status_code == 302
    pipeline.run()
    reply = Message.objects.get(conversation=conversation, direction=Direction.OUTBOUND)
    assert (reply.sender_id, reply.body, reply.status) == (
        sam.pk,
        "I'm here with you.",
        "delivered",
    )

    client.post(reverse("console:conversation_note", args=[conversation.pk]), {"body": "calmer"})
    assert ConversationNote.objects.get(kind="note", conversation=conversation).author_id == sam.pk
    contacts = client.get(reverse("console:contacts"))
    assert contacts.status_code == 200 and "+1 202-555-0187" in contacts.content.decode()
    client.post(reverse("console:conversation_close", args=[conversation.pk]), {"wrap_up": "ok"})
    conversation.refresh_from_db()
    assert conversation.status == "closed"


def test_staff_member_cannot_supervise_or_administer(
    client: Client, sam: Any, bob: Any, org: Any, sue_client: Client, text_in: Any
) -> None:
    from openline.console.models import SavedReply
    from openline.core.models import Membership
    from openline.messaging.services.assignment import conversation_assume

    _sign_in_as_sam(client)
    waiting = text_in("hello?")
    bobs = text_in("is this bob?", from_number="+12025550166")
    conversation_assume(membership=Membership.objects.get(user=bob), conversation=bobs)

    # No "All" view: asking for it falls back to the queue, without bob's conversation.
    queue = client.get(reverse("console:queue"), {"view": "all"}, headers={"HX-Request": "true"})
    html = queue.content.decode()
    assert 'data-view="all"' not in html
    assert f'data-conversation-id="{waiting.pk}"' in html
    assert f'data-conversation-id="{bobs.pk}"' not in html
    supervisor = sue_client.get(
        reverse("console:queue"), {"view": "all"}, headers={"HX-Request": "true"}
    ).content.decode()
    assert f'data-conversation-id="{bobs.pk}"' in supervisor  # what staff is kept from

    # Someone else's conversation is not theirs to read, join or take over.
    assert client.get(reverse("console:conversation", args=[bobs.pk])).status_code == 403
    for name in ("console:conversation_join", "console:conversation_take_over"):
        response = client.post(reverse(name, args=[waiting.pk]), headers={"HX-Request": "true"})
        assert response.status_code == 409, name
        assert b"only supervisors and admins" in response.content.lower()
    assert Conversation.objects.get(pk=waiting.pk).assigned_to_id is None
    assert Conversation.objects.get(pk=bobs.pk).assigned_to_id == bob.pk

    # Organization settings, the team and writing saved replies are for others.
    assert client.get(reverse("console:settings")).status_code == 403
    assert client.post(reverse("console:settings"), {"name": "Hijacked"}).status_code == 403
    assert client.get(reverse("console:team")).status_code == 403
    saved = client.post(
        reverse("console:saved_replies"), {"name": "Hi", "shortcut": "hi", "body": "Hello"}
    )
    assert saved.status_code == 403
    assert not SavedReply.objects.exists()
    org.refresh_from_db()
    assert org.name == "Riverside Crisis Line"

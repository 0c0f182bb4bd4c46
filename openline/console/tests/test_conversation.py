"""The conversation page: thread, contact panel, reply, consent refusal and review, poll."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from openline.contacts.models import ConsentEvent, ConsentKind, ConsentSource
from openline.core.models import AuditEvent
from openline.messaging.models import Conversation, Direction, Message, MessageKind, MessageStatus

OPTED_OUT_REASON = "opted out of texts; they can opt back in by texting START"


def _page(client: Client, conversation: Conversation) -> str:
    response = client.get(reverse("console:conversation", args=[conversation.pk]))
    assert response.status_code == 200
    return response.content.decode()


def _reply(client: Client, conversation: Conversation, body: str, **headers: str) -> Any:
    url = reverse("console:conversation_reply", args=[conversation.pk])
    return client.post(url, {"body": body}, headers=headers or None)


def _reply_textarea(html: str) -> str:
    match = re.search(r'<fieldset( disabled)?>\s*<legend class="visually-hidden">Reply', html)
    assert match, "reply box not rendered"
    return "disabled" if match.group(1) else "enabled"


def _personal_replies(conversation: Conversation) -> int:
    return Message.objects.filter(
        conversation=conversation, direction=Direction.OUTBOUND, kind=MessageKind.PERSONAL
    ).count()


def test_conversation_page_shows_thread_contact_and_reply_box(
    alice_client: Client, conversation: Conversation, alice: Any
) -> None:
    html = _page(alice_client, conversation)
    assert "Hi, is anyone there?" in html
    assert 'class="msg msg-in"' in html
    assert "+1 202-555-0187" in html
    assert "Unknown" in html  # number type (NANP numbers are not classified)
    assert "No consent recorded" in html
    assert _reply_textarea(html) == "enabled"
    # refreshed on live events by console.js, which asks for changes since this version
    assert f'id="thread-{conversation.pk}"' in html and "data-version=" in html


def test_opening_a_conversation_is_audited(
    alice_client: Client, conversation: Conversation, alice: Any
) -> None:
    _page(alice_client, conversation)
    event = AuditEvent.objects.get(action="transcript.read.page")
    assert (event.actor_id, event.object_type, event.object_id) == (
        alice.pk,
        "conversation",
        str(conversation.pk),
    )
    assert event.organization_id == conversation.organization_id


def test_polling_the_thread_is_not_audited_again(
    alice_client: Client, conversation: Conversation
) -> None:
    _page(alice_client, conversation)
    alice_client.get(reverse("console:conversation_thread", args=[conversation.pk]))
    # (signing in is audited too)
    assert AuditEvent.objects.filter(action__startswith="transcript.").count() == 1


def test_message_times_are_in_the_organizations_zone(
    alice_client: Client, conversation: Conversation
) -> None:
    Message.objects.filter(conversation=conversation).update(
        created_at=dt.datetime(2025, 7, 4, 2, 5, tzinfo=dt.UTC)
    )
    html = _page(alice_client, conversation)
    # 02:05 UTC on July 4 is 9:05 PM on July 3 in Chicago (CDT).
    assert ">Jul 3, 9:05 PM</time>" in html
    assert "Jul 3, 2025 9:05:00 PM CDT" in html


def test_reply_is_queued_then_delivered_by_the_sandbox(
    alice_client: Client,
    conversation: Conversation,
    pipeline: Any,
    django_capture_on_commit_callbacks: Any,
    alice: Any,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = _reply(alice_client, conversation, "We're here. What's going on?")
    assert response.status_code == 302
    assert response["Location"] == reverse("console:conversation", args=[conversation.pk])
    message = Message.objects.get(conversation=conversation, direction=Direction.OUTBOUND)
    assert message.status == MessageStatus.QUEUED
    assert message.sender_id == alice.pk
    assert "queued" in _page(alice_client, conversation)
    pipeline.run()
    message.refresh_from_db()
    assert message.status == MessageStatus.DELIVERED
    html = _page(alice_client, conversation)
    assert 'class="msg msg-out"' in html
    assert '<span class="status status-delivered" data-status="delivered">delivered</span>' in html


def test_htmx_reply_returns_fresh_box_and_updated_thread(
    alice_client: Client, conversation: Conversation
) -> None:
    response = _reply(
        alice_client, conversation, "Thanks for reaching out", **{"HX-Request": "true"}
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert f'<section id="reply-box-{conversation.pk}"' in html
    assert "></textarea>" in html  # the box is emptied
    assert f'id="thread-{conversation.pk}"' in html and 'hx-swap-oob="true"' in html
    assert "Thanks for reaching out" in html


def test_empty_reply_is_refused_with_message(
    alice_client: Client, conversation: Conversation
) -> None:
    response = _reply(alice_client, conversation, "   ")
    assert response.status_code == 422
    assert "Message body is empty" in response.content.decode()
    assert _personal_replies(conversation) == 0


def test_reply_keeps_newlines_as_lf(alice_client: Client, conversation: Conversation) -> None:
    _reply(alice_client, conversation, "line one\r\nline two")
    assert Message.objects.get(direction=Direction.OUTBOUND).body == "line one\nline two"


def test_failed_message_shows_status_and_error_code(
    alice_client: Client, conversation: Conversation
) -> None:
    Message.objects.create(
        organization_id=conversation.organization_id,
        conversation=conversation,
        direction=Direction.OUTBOUND,
        body="are you ok?",
        status=MessageStatus.FAILED,
        error_code="30006",
        error_message="landline or unreachable carrier",
        created_at=conversation.last_message_at,
    )
    html = _page(alice_client, conversation)
    assert '<span class="status status-failed" data-status="failed">failed</span>' in html
    assert "error 30006" in html
    assert "Landline or unreachable carrier" in html


def test_stop_disables_reply_box_with_reason(
    alice_client: Client, text_in: Any, conversation: Conversation
) -> None:
    text_in("STOP")
    html = _page(alice_client, conversation)
    assert _reply_textarea(html) == "disabled"
    assert OPTED_OUT_REASON in html
    assert "Opted out" in html
    assert "They opted out themselves" in html


def test_reply_after_stop_is_refused_and_nothing_is_created(
    alice_client: Client, text_in: Any, conversation: Conversation
) -> None:
    text_in("STOP")
    before = Message.objects.count()
    response = _reply(alice_client, conversation, "Are you still there?")
    html = response.content.decode()
    assert response.status_code == 422
    assert OPTED_OUT_REASON in html
    assert "Are you still there?</textarea>" in html  # the typed text is kept
    assert Message.objects.count() == before
    htmx = _reply(alice_client, conversation, "Hello?", **{"HX-Request": "true"})
    assert htmx.status_code == 422
    assert "<html" not in htmx.content.decode()  # just the reply box
    assert Message.objects.count() == before


def test_start_reenables_replies(
    alice_client: Client, text_in: Any, conversation: Conversation
) -> None:
    text_in("STOP")
    text_in("START")
    html = _page(alice_client, conversation)
    assert _reply_textarea(html) == "enabled"
    assert "Opted in" in html


def test_consent_review_banner_record_opt_out(
    alice_client: Client, text_in: Any, alice: Any
) -> None:
    conversation = text_in("please stop texting me")
    assert conversation.needs_consent_review
    html = _page(alice_client, conversation)
    assert "This person may have asked to stop receiving texts" in html
    assert "<blockquote>please stop texting me</blockquote>" in html
    assert _reply_textarea(html) == "enabled"  # a person may still answer until it is decided
    url = reverse("console:conversation_consent_review", args=[conversation.pk])
    response = alice_client.post(url, {"decision": "opt_out"}, follow=True)
    html = response.content.decode()
    assert "Opt-out recorded." in html
    assert "This person may have asked" not in html
    assert _reply_textarea(html) == "disabled"
    conversation.refresh_from_db()
    assert conversation.needs_consent_review is False
    event = ConsentEvent.objects.get(kind=ConsentKind.OPT_OUT)
    # The person's own words, confirmed by staff: only the person can undo it (issue 13).
    assert (event.source, event.actor_id, event.text) == (
        ConsentSource.MESSAGE,
        alice.pk,
        "please stop texting me",
    )
    # A second submit (another tab) records nothing more.
    response = alice_client.post(url, {"decision": "opt_out"}, follow=True)
    assert "Someone already reviewed this request." in response.content.decode()
    assert ConsentEvent.objects.filter(kind=ConsentKind.OPT_OUT).count() == 1


def test_consent_review_banner_not_an_opt_out(
    alice_client: Client, text_in: Any, alice: Any
) -> None:
    conversation = text_in("please stop texting me")
    url = reverse("console:conversation_consent_review", args=[conversation.pk])
    response = alice_client.post(
        url, {"decision": "not_opt_out", "reason": "they meant their ex"}, follow=True
    )
    html = response.content.decode()
    assert "Marked as not an opt-out." in html
    assert "This person may have asked" not in html
    assert _reply_textarea(html) == "enabled"
    conversation.refresh_from_db()
    assert conversation.needs_consent_review is False
    assert ConsentEvent.objects.filter(kind=ConsentKind.REQUEST_DISMISSED, actor=alice).exists()
    assert not ConsentEvent.objects.filter(kind=ConsentKind.OPT_OUT).exists()


def test_consent_review_rejects_unknown_decision(alice_client: Client, text_in: Any) -> None:
    conversation = text_in("please stop texting me")
    url = reverse("console:conversation_consent_review", args=[conversation.pk])
    assert alice_client.post(url, {"decision": "maybe"}).status_code == 400
    conversation.refresh_from_db()
    assert conversation.needs_consent_review is True


def _poll_url(html: str) -> str:
    """The refresh console.js asks for: the thread's changes since the version on screen."""
    match = re.search(
        r'id="thread-(\d+)" class="thread" data-version="([^"]+)" data-state="([^"]+)"', html
    )
    assert match
    pk, version, state = match.groups()
    return reverse("console:conversation_thread", args=[pk]) + f"?v={version}&s={state}"


def test_thread_poll_is_204_until_something_changes(
    alice_client: Client, text_in: Any, conversation: Conversation
) -> None:
    poll = _poll_url(_page(alice_client, conversation))
    assert alice_client.get(poll).status_code == 204
    text_in("are you there?")
    response = alice_client.get(poll)
    html = response.content.decode()
    assert response.status_code == 200
    assert "are you there?" in html
    assert "hx-swap-oob" not in html  # only the thread changed
    assert alice_client.get(_poll_url(html)).status_code == 204


def test_thread_poll_swaps_reply_box_when_person_opts_out(
    alice_client: Client, text_in: Any, conversation: Conversation
) -> None:
    poll = _poll_url(_page(alice_client, conversation))
    text_in("STOP")
    html = alice_client.get(poll).content.decode()
    box = f'<section id="reply-box-{conversation.pk}" class="reply-box" aria-label="Reply"'
    assert box + ' hx-swap-oob="true">' in html
    assert OPTED_OUT_REASON in html
    assert _reply_textarea(html) == "disabled"
    assert "hx-preserve" in html  # what the counselor typed stays in the box
    assert f'id="consent-panel-{conversation.pk}"' in html
    assert f'id="consent-review-{conversation.pk}" hx-swap-oob="true"' in html


def test_a_change_while_the_thread_renders_is_fetched_by_the_next_refresh(
    alice_client: Client, conversation: Conversation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A status change that lands after the messages were read must leave the page with an
    older version than the server's, or the next refresh answers 204 and the old status
    stays on screen (seen as a reply stuck at 'sent')."""
    from django.utils import timezone

    from openline.console.views import conversations as views
    from openline.messaging import selectors
    from openline.messaging.models import Message

    read_messages = views._timeline

    def timeline_then_a_change(conv: Conversation) -> list[Any]:
        items = read_messages(conv)
        Message.objects.filter(conversation=conv).update(status_changed_at=timezone.now())
        return items

    monkeypatch.setattr(views, "_timeline", timeline_then_a_change)
    poll = _poll_url(_page(alice_client, conversation))
    monkeypatch.setattr(views, "_timeline", read_messages)
    assert f"v={selectors.thread_version(conversation=conversation)}&" not in poll
    assert alice_client.get(poll).status_code == 200  # the change is fetched

"""The pane's actions over HTTP (assume, transfer, close, join, take over, notes), saved
replies, preferences, exports and the notice a notification may show."""

from __future__ import annotations

import csv
import io
import re
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from openline.console.models import SavedReply
from openline.contacts.models import Contact
from openline.core.models import AuditEvent, Membership
from openline.messaging.models import Conversation, ConversationNote, Direction, Message

HTMX = {"HX-Request": "true"}


def _post(client: Client, name: str, conversation: Conversation, data: Any = None) -> Any:
    return client.post(reverse(name, args=[conversation.pk]), data or {}, headers=HTMX)


def _fresh(conversation: Conversation) -> Conversation:
    return Conversation.objects.get(pk=conversation.pk)


def test_assume_from_the_pane_returns_the_pane_with_the_outcome(
    bob_client: Client, bob: Any, conversation: Conversation
) -> None:
    response = _post(bob_client, "console:conversation_assume", conversation)
    assert response.status_code == 200
    html = response.content.decode()
    assert (
        f'id="pane-{conversation.pk}"' in html and "It&#x27;s yours." in html and "With you" in html
    )
    assert _fresh(conversation).assigned_to_id == bob.pk


def test_losing_assume_is_409_naming_the_holder(
    bob_client: Client, dora_client: Client, conversation: Conversation
) -> None:
    _post(bob_client, "console:conversation_assume", conversation)
    response = _post(dora_client, "console:conversation_assume", conversation)
    assert response.status_code == 403  # no longer hers to see
    assert "Already taken: bob@example.org has it." in response.content.decode()


def test_counselor_cannot_open_someone_elses_active_conversation(
    bob_client: Client, dora_client: Client, conversation: Conversation
) -> None:
    _post(bob_client, "console:conversation_assume", conversation)
    for name in (
        "console:conversation",
        "console:conversation_pane",
        "console:conversation_thread",
        "console:conversation_export_csv",
        "console:conversation_print",
        "console:conversation_notice",
    ):
        response = dora_client.get(reverse(name, args=[conversation.pk]))
        assert response.status_code == 403, name
        assert "Hi, is anyone there" not in response.content.decode()
    reply = dora_client.post(
        reverse("console:conversation_reply", args=[conversation.pk]), {"body": "hi"}
    )
    assert reply.status_code == 403
    assert not Message.objects.filter(direction=Direction.OUTBOUND).exists()


def test_transfer_to_a_colleague_closes_the_tab_and_leaves_a_private_note(
    bob_client: Client, bob: Any, dora: Any, conversation: Conversation
) -> None:
    _post(bob_client, "console:conversation_assume", conversation)
    dora_membership = Membership.objects.get(user=dora)
    response = _post(
        bob_client,
        "console:conversation_transfer",
        conversation,
        {"to": str(dora_membership.pk), "note": "she knows this caller"},
    )
    assert response.status_code == 200
    assert response["HX-Trigger"] == "ol:pane-gone"
    assert _fresh(conversation).assigned_to_id == dora.pk
    assert "she knows this caller" in ConversationNote.objects.get(kind="transfer").body
    assert not Message.objects.filter(direction=Direction.OUTBOUND).exists()


def test_transfer_back_to_the_queue_from_the_pane_sends_nothing(
    bob_client: Client, bob: Any, conversation: Conversation
) -> None:
    _post(bob_client, "console:conversation_assume", conversation)
    response = _post(
        bob_client,
        "console:conversation_transfer",
        conversation,
        {"to": "", "note": "needs a Spanish speaker"},
    )
    assert response.status_code == 200
    html = response.content.decode()
    # back in the queue, so still in the counselor's views: the pane says where it went
    assert "Transferred to the queue." in html and "In the queue" in html
    assert 'data-action="assume"' in html
    fresh = _fresh(conversation)
    assert (fresh.status, fresh.assigned_to_id) == ("waiting", None)
    note = ConversationNote.objects.get(kind="transfer")
    assert note.body == "→ the queue\nneeds a Spanish speaker" and note.author_id == bob.pk
    assert not Message.objects.filter(direction=Direction.OUTBOUND).exists()


def test_transfer_to_a_member_at_their_limit_shows_why_in_the_pane(
    bob_client: Client,
    dora_client: Client,
    bob: Any,
    dora: Any,
    text_in: Any,
    conversation: Conversation,
) -> None:
    Membership.objects.filter(user=dora).update(max_conversations=1)
    hers = text_in("hello", from_number="+12025550301")
    _post(dora_client, "console:conversation_assume", hers)
    _post(bob_client, "console:conversation_assume", conversation)
    response = _post(
        bob_client,
        "console:conversation_transfer",
        conversation,
        {"to": str(Membership.objects.get(user=dora).pk), "note": "for you"},
    )
    assert response.status_code == 409
    html = response.content.decode()
    assert f'id="pane-{conversation.pk}"' in html  # still bob's: his pane, with the reason
    assert (
        '<p class="form-error pane-flash" role="alert">Cannot transfer: dora@example.org already'
        " has 1 active conversation (their limit is 1); choose someone else or the queue.</p>"
    ) in html
    assert _fresh(conversation).assigned_to_id == bob.pk
    assert not ConversationNote.objects.filter(kind="transfer").exists()


def test_supervisor_takes_over_from_the_pane(
    bob_client: Client, sue_client: Client, sue: Any, conversation: Conversation
) -> None:
    _post(bob_client, "console:conversation_assume", conversation)
    response = _post(sue_client, "console:conversation_take_over", conversation)
    assert response.status_code == 200
    html = response.content.decode()
    assert "You took over this conversation." in html and "With you" in html
    assert f'id="reply-body-{conversation.pk}"' in html and "Monitoring: read-only" not in html
    assert _fresh(conversation).assigned_to_id == sue.pk
    assert ConversationNote.objects.filter(
        kind="event", body="took over the conversation", author=sue
    ).exists()
    pane = bob_client.get(reverse("console:conversation_pane", args=[conversation.pk]))
    assert pane.status_code == 403  # no longer his


def test_transfer_to_another_organizations_member_is_not_a_choice(
    bob_client: Client, bob: Any, charlie: Any, conversation: Conversation
) -> None:
    _post(bob_client, "console:conversation_assume", conversation)
    outsider = Membership.objects.get(user=charlie)
    response = _post(bob_client, "console:conversation_transfer", conversation, {"to": outsider.pk})
    assert response.status_code == 409
    assert _fresh(conversation).assigned_to_id == bob.pk


def test_close_with_wrap_up(bob_client: Client, conversation: Conversation) -> None:
    _post(bob_client, "console:conversation_assume", conversation)
    response = _post(bob_client, "console:conversation_close", conversation, {"wrap_up": "ok now"})
    assert response.status_code == 200
    assert _fresh(conversation).status == "closed"
    assert ConversationNote.objects.get(kind="wrap_up").body == "ok now"
    html = bob_client.get(reverse("console:conversation_pane", args=[conversation.pk])).content
    assert b"This conversation is closed" in html and b"reply-body" not in html


def test_supervisor_monitors_then_joins(
    bob_client: Client, sue_client: Client, conversation: Conversation
) -> None:
    _post(bob_client, "console:conversation_assume", conversation)
    pane = sue_client.get(reverse("console:conversation_pane", args=[conversation.pk]))
    html = pane.content.decode()
    assert "Monitoring: read-only" in html and "reply-body" not in html
    assert AuditEvent.objects.filter(action="transcript.monitor.pane").exists()
    joined = _post(sue_client, "console:conversation_join", conversation).content.decode()
    assert "You joined" in joined and f'id="reply-body-{conversation.pk}"' in joined


def test_counselor_cannot_join_or_take_over(
    bob_client: Client, dora_client: Client, bob: Any, conversation: Conversation
) -> None:
    for name in ("console:conversation_join", "console:conversation_take_over"):
        response = _post(dora_client, name, conversation)
        assert response.status_code == 409, name
        assert b"only supervisors and admins" in response.content.lower()


def test_note_is_shown_as_staff_only_and_never_sent(
    bob_client: Client, conversation: Conversation
) -> None:
    html = _post(
        bob_client, "console:conversation_note", conversation, {"body": "sounded calmer"}
    ).content.decode()
    assert "sounded calmer" in html and "staff only" in html
    assert not Message.objects.filter(direction=Direction.OUTBOUND).exists()
    empty = _post(bob_client, "console:conversation_note", conversation, {"body": " "})
    assert empty.status_code == 409


def test_reply_to_waiting_conversation_assumes_it(
    bob_client: Client, bob: Any, conversation: Conversation
) -> None:
    response = bob_client.post(
        reverse("console:conversation_reply", args=[conversation.pk]), {"body": "I'm here"}
    )
    assert response.status_code == 302
    assert _fresh(conversation).assigned_to_id == bob.pk


def test_notice_names_who_and_inbox_never_the_text(
    bob_client: Client, conversation: Conversation
) -> None:
    data = bob_client.get(reverse("console:conversation_notice", args=[conversation.pk])).json()
    assert data == {
        "conversation_id": conversation.pk,
        "label": "+1 202-555-0187",
        "inbox": "Main line",
        "waiting": True,
    }


def test_export_csv_has_the_whole_history_escapes_formulas_and_is_audited(
    alice_client: Client, alice: Any, text_in: Any, conversation: Conversation
) -> None:
    text_in('=HYPERLINK("http://evil")')
    _post(alice_client, "console:conversation_note", conversation, {"body": "a note"})
    response = alice_client.get(reverse("console:conversation_export_csv", args=[conversation.pk]))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["time", "type", "direction_or_kind", "author", "status", "text"]
    texts = [r[5] for r in rows[1:]]
    assert texts[0].startswith("Hi, is anyone there?")
    assert '\'=HYPERLINK("http://evil")' in texts
    assert rows[-1][1:4] == ["note", "Note", "alice@example.org"]
    assert AuditEvent.objects.filter(action="transcript.read.export", actor=alice).exists()


def test_printable_page_is_audited(
    alice_client: Client, alice: Any, conversation: Conversation
) -> None:
    response = alice_client.get(reverse("console:conversation_print", args=[conversation.pk]))
    html = response.content.decode()
    assert "Conversation with +1 202-555-0187" in html and "Hi, is anyone there?" in html
    assert "data-print" in html and "console/print.js" in html  # no inline script (CSP)
    assert AuditEvent.objects.filter(action="transcript.read.print", actor=alice).exists()


def test_saved_replies_are_written_by_supervisors_and_filled_in_for_the_counselor(
    sue_client: Client, bob_client: Client, bob: Any, org: Any, conversation: Conversation
) -> None:
    bob.display_name = "Bob"
    bob.save()
    response = sue_client.post(
        reverse("console:saved_replies"),
        {"name": "Greeting", "shortcut": "hi", "body": "Hi, I'm {counselor} from {organization}."},
    )
    assert response.status_code == 302
    assert (
        bob_client.post(
            reverse("console:saved_replies"), {"name": "X", "shortcut": "x", "body": "x"}
        ).status_code
        == 403
    )
    html = bob_client.get(reverse("console:conversation_pane", args=[conversation.pk])).content
    assert b'data-shortcut="hi"' in html
    assert b"Hi, I&#x27;m Bob from Riverside Crisis Line." in html


def test_saved_reply_shortcut_is_unique_and_scoped(
    sue_client: Client, charlie_client: Client, org: Any
) -> None:
    SavedReply.objects.create(organization=org, name="A", shortcut="hi", body="a")
    response = sue_client.post(
        reverse("console:saved_replies"), {"name": "B", "shortcut": "hi", "body": "b"}
    )
    assert response.status_code == 422
    assert b"already uses /hi" in response.content
    mine = SavedReply.objects.get()
    assert charlie_client.get(reverse("console:saved_reply", args=[mine.pk])).status_code == 404
    assert charlie_client.post(
        reverse("console:saved_reply_delete", args=[mine.pk])
    ).status_code in (403, 404)
    assert b"Greeting" not in charlie_client.get(reverse("console:saved_replies")).content
    assert SavedReply.objects.count() == 1


def test_preferences_switch_notifications_per_person(
    bob_client: Client, dora_client: Client, bob: Any
) -> None:
    form = bob_client.get(reverse("console:preferences")).content.decode()
    assert "New conversation alert" in form and "New message alert" in form
    response = bob_client.post(
        reverse("console:preferences"), {"notify_new_conversation": "on", "notify_desktop": "on"}
    )
    assert response.status_code == 302
    membership = Membership.objects.get(user=bob)
    assert (
        membership.notify_new_conversation,
        membership.notify_new_message,
        membership.notify_desktop,
        membership.notify_sound,
    ) == (True, False, True, False)
    page = bob_client.get(reverse("console:home")).content.decode()
    assert 'data-notify-sound="0"' in page and 'data-notify-new="1"' in page
    assert 'data-notify-message="0"' in page
    # the other way round, and only for the person who chose it
    bob_client.post(reverse("console:preferences"), {"notify_new_message": "on"})
    page = bob_client.get(reverse("console:home")).content.decode()
    assert 'data-notify-new="0"' in page and 'data-notify-message="1"' in page
    hers = dora_client.get(reverse("console:home")).content.decode()
    assert 'data-notify-new="1"' in hers and 'data-notify-message="1"' in hers


def test_start_conversation_from_contacts_is_held_by_the_writer(
    bob_client: Client, bob: Any, org: Any, sandbox_number: Any
) -> None:
    dana = Contact.objects.create(organization=org, phone="+12025550199", number_type="mobile")
    response = bob_client.post(
        reverse("console:contact_start", args=[dana.pk]),
        {"number": str(sandbox_number.pk), "body": "Checking in as promised."},
    )
    assert response.status_code == 302
    conversation = Conversation.objects.get(contact=dana)
    assert (conversation.status, conversation.assigned_to_id) == ("active", bob.pk)


def test_start_conversation_cannot_write_into_someone_elses(
    bob_client: Client, dora_client: Client, conversation: Conversation, sandbox_number: Any
) -> None:
    _post(bob_client, "console:conversation_assume", conversation)
    response = dora_client.post(
        reverse("console:contact_start", args=[conversation.contact_id]),
        {"number": str(sandbox_number.pk), "body": "hello"},
    )
    assert response.status_code == 422
    assert b"has this conversation" in response.content
    assert not Message.objects.filter(direction=Direction.OUTBOUND).exists()


def test_start_conversation_at_the_limit_is_refused_on_the_contact_page(
    bob_client: Client, bob: Any, org: Any, sandbox_number: Any, conversation: Conversation
) -> None:
    Membership.objects.filter(user=bob).update(max_conversations=1)
    _post(bob_client, "console:conversation_assume", conversation)
    dana = Contact.objects.create(organization=org, phone="+12025550199", number_type="mobile")
    response = bob_client.post(
        reverse("console:contact_start", args=[dana.pk]),
        {"number": str(sandbox_number.pk), "body": "Checking in as promised."},
    )
    assert response.status_code == 422
    html = response.content.decode()
    assert (
        '<ul class="errorlist" id="start-body-error"><li>You already have 1 active conversation'
        " (the limit is 1); close or transfer one first</li></ul>"
    ) in html
    assert "Checking in as promised." in html  # the draft is kept
    assert not Conversation.objects.filter(contact=dana).exists()
    assert not Message.objects.filter(direction=Direction.OUTBOUND).exists()


def test_start_conversation_into_my_own_open_one_is_not_refused_at_the_limit(
    bob_client: Client, bob: Any, sandbox_number: Any, conversation: Conversation
) -> None:
    Membership.objects.filter(user=bob).update(max_conversations=1)
    _post(bob_client, "console:conversation_assume", conversation)
    response = bob_client.post(
        reverse("console:contact_start", args=[conversation.contact_id]),
        {"number": str(sandbox_number.pk), "body": "Still here for you."},
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("console:conversation", args=[conversation.pk])
    sent = Message.objects.get(direction=Direction.OUTBOUND)
    assert (sent.conversation_id, sent.body) == (conversation.pk, "Still here for you.")


def _section(html: str, start: str, end: str) -> str:
    """The part of ``html`` from ``start`` up to the next ``end``."""
    match = re.search(re.escape(start) + "(.*?)" + re.escape(end), html, re.S)
    assert match, f"{start!r} not rendered"
    return match.group(1)


def test_reopened_conversation_pane_shows_the_earlier_history(
    bob_client: Client, text_in: Any, conversation: Conversation
) -> None:
    _post(bob_client, "console:conversation_assume", conversation)
    bob_client.post(
        reverse("console:conversation_reply", args=[conversation.pk]), {"body": "I'm here, Sam."}
    )
    _post(bob_client, "console:conversation_close", conversation, {"wrap_up": "safe now"})
    later = text_in("me again, it got worse")
    assert later.pk != conversation.pk
    html = bob_client.get(reverse("console:conversation_pane", args=[later.pk])).content.decode()
    earlier = _section(html, '<details class="earlier" open>', "</details>")
    assert "Earlier conversations with +1 202-555-0187 (2 recent messages)" in earlier
    assert earlier.index("Hi, is anyone there?") < earlier.index("I&#x27;m here, Sam.")
    assert "me again" not in earlier
    assert "me again, it got worse" in _section(html, f'id="thread-{later.pk}"', "</ol>")


def test_first_conversation_pane_has_no_earlier_history(
    bob_client: Client, conversation: Conversation
) -> None:
    html = bob_client.get(reverse("console:conversation_pane", args=[conversation.pk])).content
    assert b"Earlier conversations with" not in html


def test_pane_contact_panel_shows_name_consent_history_and_past_conversations(
    bob_client: Client, text_in: Any, conversation: Conversation
) -> None:
    Contact.objects.filter(pk=conversation.contact_id).update(name="Sam Ortiz")
    _post(bob_client, "console:conversation_assume", conversation)
    text_in("STOP")
    text_in("START")
    _post(bob_client, "console:conversation_close", conversation)
    later = text_in("me again")
    html = bob_client.get(reverse("console:conversation_pane", args=[later.pk])).content.decode()
    panel = _section(html, '<aside class="contact-panel"', "</aside>")
    assert f'<h3 id="contact-heading-{later.pk}">Sam Ortiz</h3>' in panel
    assert "+1 202-555-0187" in panel
    history = _section(panel, '<h4 class="subhead">History</h4>', "</ol>")
    kinds = re.findall(r'<span class="history-kind">([^<]+)</span>', history)
    assert kinds == ["Opt-in", "Opt-out"]  # newest first
    assert "<q>START</q>" in history and "<q>STOP</q>" in history
    past = _section(panel, "<h3>Past conversations</h3>", "</ol>")
    assert f'data-open-conversation="{conversation.pk}"' in past and "· closed" in past
    assert f'data-open-conversation="{later.pk}"' not in past  # only the earlier ones
    first = bob_client.get(reverse("console:conversation_pane", args=[conversation.pk]))
    first_past = _section(first.content.decode(), "<h3>Past conversations</h3>", "</ol>")
    assert f'data-open-conversation="{later.pk}"' in first_past


@pytest.mark.parametrize("view", ["waiting", "mine"])
def test_pane_query_count_is_bounded(
    bob_client: Client,
    text_in: Any,
    conversation: Conversation,
    view: str,
    django_assert_max_num_queries: Any,
) -> None:
    for i in range(20):
        text_in(f"message {i}")
    if view == "mine":
        _post(bob_client, "console:conversation_assume", conversation)
    with django_assert_max_num_queries(30):
        response = bob_client.get(reverse("console:conversation_pane", args=[conversation.pk]))
    assert response.content.decode().count('class="msg msg-in"') == 21


def test_team_page_sets_default_and_personal_limits(
    alice_client: Client, bob_client: Client, alice: Any, bob: Any, org: Any
) -> None:
    bob_membership = Membership.objects.get(user=bob)
    assert bob_client.get(reverse("console:team")).status_code == 403
    response = alice_client.post(
        reverse("console:team"), {"default_limit": "3", f"limit_{bob_membership.pk}": "7"}
    )
    assert response.status_code == 302
    bob_membership.refresh_from_db()
    org.refresh_from_db()
    assert (org.max_conversations_per_counselor, bob_membership.conversation_limit) == (3, 7)
    assert Membership.objects.get(user=alice).conversation_limit == 3
    bad = alice_client.post(reverse("console:team"), {"default_limit": "0"})
    assert bad.status_code == 422 and b"between 1 and 50" in bad.content
    assert AuditEvent.objects.filter(action="organization.conversation_limits").count() == 1

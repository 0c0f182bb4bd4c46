"""Every read of a transcript is audited once per person, conversation and view session.

The safety net: every URL pattern (and WebSocket route) is classified here as returning a
transcript, returning message text that is deliberately not a transcript read (with the
reason), or returning no message text. A new pattern in none of the lists fails, so whoever
adds it decides. Each transcript pattern is requested for real by someone allowed to read it
and must write exactly one audit event (exports: one per export); each page said to carry no
message text is fetched and must not contain any.

A console view session is the signed-in Django session; an API token's lasts an hour from
its last recorded read (openline.core.services)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.http import HttpResponse
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from openline.console.routing import websocket_urlpatterns
from openline.core.models import AuditEvent, Membership
from openline.core.services import api_token_create
from openline.messaging import selectors
from openline.messaging.models import Conversation, ConversationNote, Message
from openline.messaging.services import assignment

HTMX = {"HX-Request": "true"}
MARKER = "heron-7f3a cannot sleep again"
NOTE_MARKER = "wren-51c2 called the school"

# Returns a conversation's text: each is requested below and must be audited.
TRANSCRIPT = {
    "console:conversation": "the conversation page",
    "console:conversation_pane": "the workspace pane, its live refresh included",
    "console:conversation_thread": "the live thread fragment",
    "console:conversation_reply": "the reply answers with the refreshed thread",
    "console:conversation_note": "answers with the pane",
    "console:conversation_assume": "answers with the pane",
    "console:conversation_transfer": "answers with the pane (or its refusal in it)",
    "console:conversation_close": "answers with the pane",
    "console:conversation_join": "answers with the pane",
    "console:conversation_take_over": "answers with the pane",
    "console:conversation_take_next": "answers with the pane of the conversation it took",
    "console:conversation_consent_review": "answers with the pane",
    "console:conversation_export_csv": "the whole transcript as CSV",
    "console:conversation_print": "the whole transcript, printable",
    "api-1:list_messages": "the API's message list",
}

# Returns message text, deliberately not audited as a transcript read.
EXCLUDED = {
    "console:home": "the queue's one-line preview (80 characters of the last message) of "
    "conversations the member may open, for triage: not a transcript; auditing it would "
    "record every listed conversation for every member and bury the real reads",
    "console:queue": "the same queue list, refreshed live",
    "sandbox:phone": "the phone simulator: the simulated phone's own screen (the texter's "
    "side, like the web-chat visitor), for sandbox numbers only, which carry no real person",
    "sandbox:thread": "the phone simulator's own messages, as above",
}

# Returns no message text (checked below for every one a GET reaches).
NO_MESSAGE_TEXT = {
    "forms:pane_contact_form": "the contact form's section (answers, no message text)",
    "forms:pane_risk_assessment": "the risk assessment's section (answers, no message text)",
    "api-1:list_form_responses": "forms answered (answers, no message text); audited as a "
    "transcript read all the same, being what the person said",
    "healthz": "health checks",
    "login": "sign-in",
    "account:password_reset": "the reset form, or a redirect",
    "account:password_reset_done": "a fixed sentence",
    "account:password_reset_confirm": "the new-password form, or that the link no longer works",
    "account:password_reset_complete": "a fixed sentence",
    "account:invitations": "pending invitations: addresses, roles, who invited, expiry",
    "account:invitation_resend": "a redirect",
    "account:invitation_withdraw": "a redirect",
    "account:invitation_accept": "the invitation's organization, role and address, a form",
    "account:switch_organization": "a redirect",
    "account:sign_out_everywhere": "a redirect",
    "logout": "sign-out",
    "api-1:openapi-json": "the API description",
    "api-1:openapi-view": "the API docs page",
    "api-1:api-root": "the API root",
    "api/docs": "a redirect to the API docs",
    "api-1:send_message": "answers with the new message's id and status, never a body",
    "api-1:list_conversations": "conversation rows without any message",
    "api-1:lookup_contact": "a contact and its consent state (no text)",
    "api-1:get_contact": "a contact and its consent state (no text)",
    "api-1:update_contact": "a contact and its consent state (no text)",
    "api-1:create_contact": "a contact and its consent state (no text)",
    "api-1:record_consent": "the consent state (no text)",
    "api-1:get_credits": "the credit balance (numbers only)",
    "api-1:create_broadcast": "a broadcast: the organization's own text (merge fields "
    "unfilled), its audience and counts, never a person's text",
    "api-1:list_broadcasts": "broadcasts (as above)",
    "api-1:get_broadcast": "a broadcast (as above)",
    "api-1:preview_broadcast": "counts, segments and credits",
    "api-1:send_broadcast": "a broadcast (as above)",
    "api-1:pause_broadcast": "a broadcast (as above)",
    "api-1:resume_broadcast": "a broadcast (as above)",
    "api-1:cancel_broadcast": "a broadcast (as above)",
    "api-1:upload_recording": "a recording's id, name and length",
    "api-1:list_broadcast_messages": "recipients, senders, statuses and errors, never the texts",
    "billing:credits": "credits: balances, spending by day and the ledger's own notes",
    "sandbox:phone_list": "the list of sandbox numbers",
    "sandbox:send": "the simulated carrier's answer to a text sent from the simulator",
    "voice:hook": "a provider's voice callback (signed): a broadcast call's script, which "
    "is the organization's own announcement, never a conversation's texts",
    "chat_widget_js": "the widget's script",
    "chat_widget_demo": "a page to try the widget on",
    "chat_config": "the widget's settings",
    "chat_start": "a new chat's token (the visitor's chat itself flows over its socket)",
    "chat_survey": "the survey's outcome",
    "availability:shifts": "shifts",
    "availability:inbox_state": "inbox states",
    "availability:shift_new": "shifts",
    "availability:shift_delete": "shifts",
    "availability:shift_sign_up": "shifts",
    "availability:shift_withdraw": "shifts",
    "availability:inbox_switch": "inbox states",
    "availability:responses": "the organization's own auto-response texts",
    "console:offline_report": "times, inboxes and people, never the texts",
    "console:offline_follow_up": "a redirect after assuming or assigning",
    "availability:my_shifts": "shifts",
    "availability:feed_rotate": "a redirect",
    "availability:feed": "a calendar of shifts",
    "alerts:settings": "alert settings and the log of alerts sent (who, when, status)",
    "alerts:calculator": "when alerts would go out",
    "alerts:mine": "the member's own alert phone",
    "alerts:mine_code": "sends a confirmation code to the member's own alert phone",
    "alerts:mine_confirm": "checks that code",
    "alerts:after_hours_code": "sends a confirmation code to an inbox's after-hours phone",
    "alerts:after_hours_confirm": "checks that code",
    "console:inbox": "a redirect to the filtered queue",
    "console:conversation_unread": "204 or a redirect",
    "console:conversation_typing": "204",
    "console:conversation_notice": "who and which inbox, never the text",
    "console:segments": "the segment count of the draft being typed",
    "console:system_health": "parked inbound events, never their text",
    "console:settings": "organization settings",
    "console:preferences": "the member's preferences",
    "console:team": "the team",
    "console:team_member_deactivate": "what deactivating a member does (counts), then the "
    "shifts it left with nobody",
    "console:team_member_reactivate": "a redirect",
    "audit:log": "audit events: who, when, which action on what object, a short detail that "
    "never holds message content, the address and browser",
    "audit:export": "the same events as CSV (a POST; the export is audited)",
    "audit:conversation_readers": "who read a transcript: names, times and counts, not its text",
    "audit:tokens": "the organization's API tokens (names, scopes, dates); a new one's secret",
    "audit:token_revoke": "asks to confirm revoking a token, or a redirect",
    "reports:index": "counts, durations and shares; a form field's answer labels, never "
    "free-text answers or message text",
    "reports:summary": "the same figures and tables for one month",
    "reports:export": "one report's table as CSV (a POST; the export is audited)",
    "console:chat_settings": "web chat widgets",
    "console:chat_widget_questions": "a widget's questions",
    "console:saved_replies": "the organization's saved replies",
    "console:risk_phrases": "the organization's risk phrases (its own settings)",
    "console:risk_phrase_remove": "the risk phrases page (as above), or a redirect",
    "console:risk_phrases_reset": "a redirect",
    "console:risk_phrases_try": "whether a sample the member typed matches (POST only; the "
    "sample is theirs, never a conversation's, and is not stored)",
    "console:saved_reply": "a saved reply",
    "console:saved_reply_delete": "a redirect",
    "console:contacts": "the contact directory",
    "console:contact_new": "a form",
    "console:contact": "contact details, their conversations' dates and the consent ledger "
    "(the keyword or request that changed consent, for the record), not a transcript",
    "console:contact_edit": "the contact page (as above)",
    "console:contact_start": "the contact page, or a redirect to the new conversation",
    "console:contact_opt_in": "the contact page, or a redirect",
    "console:contact_opt_out": "the contact page, or a redirect",
    "console:contact_import_new": "the upload form and the recent imports (file names, counts)",
    "console:contact_import": "a contact import: its columns, the file's first rows and the "
    "problems of its rows (contact details from the uploaded file, never a message)",
    "console:contact_import_columns": "the import page (as above), or a redirect",
    "console:contact_import_progress": "row counts",
    "console:contact_import_accept": "the import page (as above), or a redirect",
    "console:contact_import_cancel": "a redirect",
    "console:contacts_export": "contacts as CSV: names, numbers, types, consent states, tags, "
    "notes and custom fields, never a message (the export is audited)",
    "console:contact_add_number": "the contact page, or a redirect",
    "console:contact_fields": "the contact page, or a redirect",
    "console:custom_fields": "the organization's contact fields",
    "campaigns:list": "broadcasts: names and states",
    "campaigns:new": "a form",
    "campaigns:detail": "a broadcast: the organization's own text, counts and the log of "
    "recipients, statuses and errors, never a person's text",
    "campaigns:people": "a redirect",
    "campaigns:send": "a redirect or the broadcast page (as above)",
    "campaigns:control": "a redirect",
    "campaigns:progress": "counts",
    "campaigns:log_csv": "recipients, statuses and errors (the export is audited)",
    "campaigns:save_segment": "a redirect or the broadcast page (as above)",
    "campaigns:segment_delete": "a redirect",
    "campaigns:recording_upload": "a recording's id, name, length and address (JSON)",
    "campaigns:recording_wav": "a voice broadcast's recorded message (audio), for the provider",
    "campaigns:recording_mp3": "a voice broadcast's recorded message (audio), for the provider",
    "api-1:create_appointment": "an appointment: times, place, staff, states, its reminders' "
    "due times, states and reasons, and the kind of answer (confirmed...), never a text",
    "api-1:put_appointment": "an appointment (as above)",
    "api-1:list_appointments": "appointments without their reminders (as above)",
    "api-1:get_appointment": "an appointment (as above)",
    "api-1:cancel_appointment": "an appointment (as above)",
    "appointments:day": "a day's appointments: patients, times, places and the states of "
    "their reminders and replies (delivered, confirmed, cancelled...), never a message's text",
    "appointments:call_list": "unconfirmed appointments with the patients' numbers and their "
    "reminders' states, never a message's text",
    "appointments:new": "a form, or a redirect",
    "appointments:detail": "an appointment: its reminders' and reply's states and times and who "
    "changed it (the reply's meaning, never its text)",
    "appointments:rules": "reminder rules (the organization's own templates) and its limits",
    "appointments:rule_edit": "a reminder rule: the organization's own template filled in for a "
    "sample appointment (first name, date, time, place), never a person's text",
    "appointments:import": "the upload form",
    "appointments:import_preview": "an appointment import: the uploaded file's rows (patients' "
    "names, phones, times, places) and their problems, never a message",
    "drips:list": "campaigns: names, states and counts",
    "drips:new": "a form",
    "drips:detail": "a campaign: the organization's own texts, who is scheduled, statuses and "
    "whether someone replied (a link, never the reply)",
    "drips:step_new": "a redirect or the campaign page (as above)",
    "drips:step_delete": "a redirect",
    "drips:control": "a redirect",
    "console:do_not_call": "the voice do-not-call list: numbers, contacts, dates and staff's "
    "reasons, never a message",
    "console:do_not_call_remove": "the list (as above), or a redirect",
    "security:home": "the member's second-factor state and their sign-ins",
    "security:verify": "a form for a second-factor code",
    "security:setup": "a QR code and a form to set up an authenticator app",
    "security:recovery_codes": "new recovery codes (POST only)",
    "security:disable": "the security page (POST only)",
    "security:password": "a form to change one's password",
    "security:member_sign_ins": "a member's sign-ins: times, addresses, browsers",
    "security:member_reset": "a confirmation to reset a member's second factor",
    "forms:list": "the organization's forms: names, kinds, versions, counts",
    "forms:screener_add": "a redirect",
    "forms:uses": "which form each inbox uses",
    "forms:taxonomies": "taxonomies: names and terms",
    "forms:taxonomy": "a taxonomy's terms",
    "forms:detail": "a form's questions and a preview, counts of responses, never an answer",
    "forms:archive": "a redirect",
    "forms:section_add": "the form page (as above), or a redirect",
    "forms:section": "the form page (as above), or a redirect",
    "forms:field_add": "a question's form",
    "forms:field_edit": "a question's form",
    "forms:field_action": "the form page (as above), or a redirect",
    "sandbox:calls": "the simulator's ringing calls: ids, the caller's number and states",
    "sandbox:call": "the simulated phone's side of a call: a broadcast call's script (the "
    "organization's own announcement) or its goodbye, never a conversation's texts",
    "forms:rescue": "the imminent-risk checklist: steps, who ticked them and when, staff notes",
    "forms:rescue_start": "the checklist's section (POST only)",
    "forms:rescue_step": "the checklist's section (POST only)",
    "forms:rescue_end": "the checklist's section (POST only)",
}

WEBSOCKETS = {
    "ws/console/": "no text: events carry ids and states only (test_consumer)",
    "ws/chat/<str:public_id>/": "excluded: the web-chat visitor reading their own chat, "
    "not a staff read of a transcript",
}


def _patterns(
    resolver: URLResolver, prefix: str = "", namespace: str = ""
) -> Iterator[tuple[str, str]]:
    """(key, route) for every URL pattern: the key is its namespaced name, or its route."""
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            space = namespace
            if entry.namespace:
                space = f"{namespace}:{entry.namespace}" if namespace else entry.namespace
            yield from _patterns(entry, prefix + str(entry.pattern), space)
        elif isinstance(entry, URLPattern):
            route = prefix + str(entry.pattern)
            name = f"{namespace}:{entry.name}" if namespace and entry.name else entry.name
            yield (name or route), route


ALL_PATTERNS = dict(_patterns(get_resolver()))


def test_every_url_pattern_is_classified_for_message_text() -> None:
    lists = [set(TRANSCRIPT), set(EXCLUDED), set(NO_MESSAGE_TEXT)]
    assert not (lists[0] & lists[1] or lists[0] & lists[2] or lists[1] & lists[2])
    unclassified = sorted(set(ALL_PATTERNS) - set().union(*lists))
    assert not unclassified, (
        f"new URL patterns {unclassified}: does each return message text? Put it in "
        "TRANSCRIPT (and audit it), EXCLUDED (with why) or NO_MESSAGE_TEXT"
    )
    gone = sorted(set().union(*lists) - set(ALL_PATTERNS))
    assert not gone, f"classified but no longer routed: {gone}"


def test_every_websocket_route_is_classified_for_message_text() -> None:
    routes = {str(route.pattern) for route in websocket_urlpatterns}
    assert routes == set(WEBSOCKETS)


# --- each transcript pattern, requested for real ---------------------------------------------


@dataclass
class World:
    conversation: Conversation
    clients: dict[str, Client]
    members: dict[str, Membership]
    api: Client
    api_token_id: int
    api_headers: dict[str, str] = field(default_factory=dict)


@pytest.fixture
def world(
    text_in: Any,
    alice: Any,
    bob: Any,
    sue: Any,
    alice_client: Client,
    bob_client: Client,
    sue_client: Client,
) -> World:
    conversation = text_in(MARKER)
    Message.objects.filter(conversation=conversation).update(received_offline=True)
    ConversationNote.objects.create(
        organization_id=conversation.organization_id,
        conversation=conversation,
        author=alice,
        kind="note",
        body=NOTE_MARKER,
        created_at=conversation.created_at,
    )
    token, secret = api_token_create(organization=conversation.organization, name="audit test")
    members = {m.user.email.split("@")[0]: m for m in Membership.objects.select_related("user")}
    return World(
        conversation=conversation,
        clients={"alice": alice_client, "bob": bob_client, "sue": sue_client},
        members=members,
        api=Client(),
        api_token_id=token.pk,
        api_headers={"HTTP_AUTHORIZATION": f"Bearer {secret}"},
    )


@dataclass(frozen=True)
class Read:
    """One way of reading: who (a member's name, or "api"), the request, and the event."""

    who: str
    send: Callable[[World], HttpResponse]
    action: str
    every_time: bool = False  # exports: each one is its own event


def _get(name: str, who: str, **params: str) -> Callable[[World], HttpResponse]:
    def send(world: World) -> HttpResponse:
        url = reverse(name, args=[world.conversation.pk])
        return world.clients[who].get(url, params, headers=HTMX)

    return send


def _post(name: str, who: str, data: dict[str, str]) -> Callable[[World], HttpResponse]:
    def send(world: World) -> HttpResponse:
        url = reverse(name, args=[world.conversation.pk])
        return world.clients[who].post(url, data, headers=HTMX)

    return send


def _held_by_bob(send: Callable[[World], HttpResponse]) -> Callable[[World], HttpResponse]:
    def held(world: World) -> HttpResponse:
        conversation = Conversation.objects.get(pk=world.conversation.pk)
        if conversation.status == "waiting":
            assignment.conversation_assume(
                membership=world.members["bob"], conversation=conversation
            )
        return send(world)

    return held


def _take_next(world: World) -> HttpResponse:
    """Take next, with the conversation back in the queue first (the second read too)."""
    conversation = Conversation.objects.get(pk=world.conversation.pk)
    if conversation.status != "waiting":
        assignment.conversation_transfer(
            membership=world.members["bob"], conversation=conversation, to=None
        )
    return world.clients["bob"].post(reverse("console:conversation_take_next"), headers=HTMX)


def _api_messages(world: World) -> HttpResponse:
    url = f"/api/v1/conversations/{world.conversation.pk}/messages"
    return world.api.get(url, **world.api_headers)


READS = {
    "console:conversation": Read("bob", _get("console:conversation", "bob"), "read.page"),
    "console:conversation_pane": Read(
        "bob", _get("console:conversation_pane", "bob", refresh="1"), "read.pane"
    ),
    "console:conversation_thread": Read(
        "bob", _get("console:conversation_thread", "bob"), "read.thread"
    ),
    "console:conversation_reply": Read(
        "bob", _post("console:conversation_reply", "bob", {"body": "We're here."}), "read.action"
    ),
    "console:conversation_note": Read(
        "bob", _post("console:conversation_note", "bob", {"body": "calmer"}), "read.action"
    ),
    "console:conversation_assume": Read(
        "bob", _post("console:conversation_assume", "bob", {}), "read.action"
    ),
    "console:conversation_transfer": Read(
        "bob",
        _held_by_bob(_post("console:conversation_transfer", "bob", {"to": "nobody"})),
        "read.action",
    ),
    "console:conversation_close": Read(
        "bob", _held_by_bob(_post("console:conversation_close", "bob", {})), "read.action"
    ),
    "console:conversation_join": Read(
        "sue", _held_by_bob(_post("console:conversation_join", "sue", {})), "read.action"
    ),
    "console:conversation_take_over": Read(
        "sue", _held_by_bob(_post("console:conversation_take_over", "sue", {})), "read.action"
    ),
    "console:conversation_take_next": Read("bob", _take_next, "read.action"),
    "console:conversation_consent_review": Read(
        "sue",
        _post("console:conversation_consent_review", "sue", {"decision": "opt_out"}),
        "read.action",
    ),
    "console:conversation_export_csv": Read(
        "bob", _get("console:conversation_export_csv", "bob"), "read.export", every_time=True
    ),
    "console:conversation_print": Read(
        "bob", _get("console:conversation_print", "bob"), "read.print", every_time=True
    ),
    "api-1:list_messages": Read("api", _api_messages, "read.api"),
}


def test_every_transcript_pattern_has_a_real_read() -> None:
    assert set(READS) == set(TRANSCRIPT)


def _transcript_events(world: World, who: str) -> list[str]:
    actor = (
        {"api_token_id": world.api_token_id}
        if who == "api"
        else {"actor_id": world.members[who].user_id}
    )
    events = AuditEvent.objects.filter(
        organization_id=world.conversation.organization_id,
        object_type="conversation",
        object_id=str(world.conversation.pk),
        action__startswith="transcript.",
        **actor,
    )
    return list(events.order_by("id").values_list("action", flat=True))


@pytest.mark.parametrize("name", sorted(TRANSCRIPT))
def test_reading_a_transcript_is_audited_once_per_view_session(world: World, name: str) -> None:
    read = READS[name]
    first = read.send(world)
    assert first.status_code in (200, 409), first.content[:300]
    assert MARKER in first.content.decode(), f"{name} did not return the transcript"
    assert _transcript_events(world, read.who) == [f"transcript.{read.action}"]

    again = read.send(world)
    assert MARKER in again.content.decode()
    expected = 2 if read.every_time else 1
    assert _transcript_events(world, read.who) == [f"transcript.{read.action}"] * expected


# --- and the rest carry no message text -------------------------------------------------------


def _kwargs(route: str, world: World) -> dict[str, Any]:
    conversation = world.conversation
    known = {
        "conversation_id": conversation.pk,
        "contact_id": conversation.contact_id,
        "number_id": conversation.number_id,
        "webhook_key": conversation.number.webhook_key,
        "provider_slug": conversation.number.provider,
        # Not worth real rows here: a miss answers 404, which carries no text either.
        "shift_id": 999999,
        "widget_id": 999999,
        "reply_id": 999999,
        "broadcast_id": 999999,
        "import_id": 999999,
        "segment_id": 999999,
        "appointment_id": 999999,
        "rule_id": 999999,
        "campaign_id": 999999,
        "step_id": 999999,
        "membership_id": world.members["bob"].pk,
        "external_id": "nope",
        "action": "pause",
        "public_id": "nope",
        "token": "nope",
        "token_id": 999999,
        "uidb64": "nope",
        "secret": "nope",
        "invitation_id": 999999,
        "form_id": 999999,
        "taxonomy_id": 999999,
        "section_key": "nope",
        "field_key": "nope",
    }
    return {name: known[name] for name in re.findall(r"<(?:\w+:)?(\w+)>", route)}


@pytest.mark.parametrize("name", sorted(NO_MESSAGE_TEXT))
def test_pages_said_to_carry_no_message_text_carry_none(world: World, name: str) -> None:
    route = ALL_PATTERNS[name]
    url = "/" + route
    for key, value in _kwargs(route, world).items():
        url = re.sub(rf"<(\w+:)?{key}>", str(value), url)
    if name.startswith("api-1:"):
        response = world.api.get(url, {"phone": "+12025550187"}, **world.api_headers)
    else:
        response = world.clients["alice"].get(url, {"view": "all"})
    assert response.status_code < 500, (name, response.status_code)
    body = response.content.decode(errors="replace")
    assert MARKER not in body and NOTE_MARKER not in body, name


# --- what a refresh costs, and what a view session is -----------------------------------------


def _writes(client: Client, url: str) -> tuple[int, int, str]:
    """How many queries a request ran on the audit log and writing the session, its body."""
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, headers=HTMX)
    sql = [q["sql"].lower() for q in queries.captured_queries]
    audit = len([q for q in sql if "core_auditevent" in q])
    session = len([q for q in sql if "django_session" in q and not q.startswith("select")])
    return audit, session, response.content.decode()


def test_a_refresh_after_the_first_read_costs_no_audit_or_session_write(world: World) -> None:
    bob_client = world.clients["bob"]
    conversation_id = world.conversation.pk
    bob_client.get(reverse("console:conversation_pane", args=[conversation_id]))
    audit, session, body = _writes(
        bob_client, reverse("console:conversation_thread", args=[conversation_id])
    )
    assert MARKER in body
    assert audit == 0
    # No more session writes than a request that reads no transcript (whatever sign-in
    # itself keeps in the session).
    _, baseline, _ = _writes(
        bob_client, reverse("console:conversation_notice", args=[conversation_id])
    )
    assert session == baseline
    assert len(_transcript_events(world, "bob")) == 1


def test_pane_refreshes_and_thread_polls_write_one_event_a_new_sign_in_another(
    world: World, bob: Any
) -> None:
    pane = reverse("console:conversation_pane", args=[world.conversation.pk])
    thread = reverse("console:conversation_thread", args=[world.conversation.pk])
    bob_client = world.clients["bob"]
    bob_client.get(pane)
    for _ in range(3):
        bob_client.get(pane, {"refresh": "1"}, headers=HTMX)
        bob_client.get(thread, headers=HTMX)
    assert _transcript_events(world, "bob") == ["transcript.read.pane"]

    elsewhere = Client()  # another browser: another sign-in, another view session
    elsewhere.force_login(bob)
    elsewhere.get(thread, headers=HTMX)
    assert _transcript_events(world, "bob") == ["transcript.read.pane", "transcript.read.thread"]


def test_two_people_reading_the_same_conversation_are_each_audited(world: World) -> None:
    _get("console:conversation_pane", "bob")(world)
    _get("console:conversation_pane", "sue")(world)
    assert _transcript_events(world, "bob") == ["transcript.read.pane"]
    assert _transcript_events(world, "sue") == ["transcript.read.pane"]


def test_supervisor_reading_someone_elses_conversation_is_audited_as_monitoring(
    world: World,
) -> None:
    _held_by_bob(_get("console:conversation_pane", "sue"))(world)
    assert _transcript_events(world, "sue") == ["transcript.monitor.pane"]


def test_an_export_does_not_stand_in_for_reading_in_the_console(world: World) -> None:
    _get("console:conversation_export_csv", "bob")(world)
    _get("console:conversation_pane", "bob")(world)
    _get("console:conversation_pane", "bob")(world)
    assert _transcript_events(world, "bob") == ["transcript.read.export", "transcript.read.pane"]


def test_api_reads_are_audited_once_an_hour_per_token_and_conversation(world: World) -> None:
    for _ in range(3):
        assert _api_messages(world).status_code == 200
    assert _transcript_events(world, "api") == ["transcript.read.api"]
    AuditEvent.objects.filter(api_token_id=world.api_token_id).update(
        created_at=AuditEvent.objects.get(api_token_id=world.api_token_id).created_at
        - timedelta(minutes=61)
    )
    _api_messages(world)
    assert _transcript_events(world, "api") == ["transcript.read.api"] * 2


def test_refused_reads_are_not_audited(
    world: World, dora_client: Client, charlie_client: Client, other_org: Any
) -> None:
    _held_by_bob(_get("console:conversation_pane", "bob"))(world)
    reads = AuditEvent.objects.exclude(action="api_token.created")  # making one is audited
    before = reads.count()
    pane = reverse("console:conversation_pane", args=[world.conversation.pk])
    assert dora_client.get(pane).status_code == 403  # another counselor's conversation
    assert charlie_client.get(pane).status_code == 404  # another organization's
    _, secret = api_token_create(organization=other_org, name="theirs")
    url = f"/api/v1/conversations/{world.conversation.pk}/messages"
    assert Client().get(url, HTTP_AUTHORIZATION=f"Bearer {secret}").status_code == 404
    assert reads.count() == before


# --- earlier conversations shown with a new one -----------------------------------------------


@pytest.fixture
def three_visits(text_in: Any, bob: Any, dora: Any) -> tuple[Conversation, ...]:
    """The same person: first with dora, then with bob, now waiting again."""
    members = {m.user_id: m for m in Membership.objects.all()}
    held = []
    for who, text in ((dora, "dora's visit: my brother hurt me"), (bob, "bob's visit: better")):
        conversation = text_in(text)
        assignment.conversation_assume(membership=members[who.pk], conversation=conversation)
        assignment.conversation_close(membership=members[who.pk], conversation=conversation)
        held.append(conversation)
    return held[0], held[1], text_in("it's me again")


def test_new_conversation_shows_a_counselor_only_the_history_they_may_open(
    bob_client: Client, three_visits: tuple[Conversation, ...], bob: Any
) -> None:
    doras, bobs, new = three_visits
    response = bob_client.get(reverse("console:conversation_pane", args=[new.pk]))
    html = response.content.decode()
    assert "bob&#x27;s visit: better" in html
    assert "dora&#x27;s visit" not in html
    assert (
        "One earlier conversation isn't shown because you didn't handle it. "
        "A supervisor can read it if you need the background."
    ) in html
    # the same rule as opening it directly
    assert bob_client.get(reverse("console:conversation", args=[doras.pk])).status_code == 403
    reads = AuditEvent.objects.filter(actor=bob, action__startswith="transcript.")
    assert sorted(reads.values_list("object_id", "action")) == sorted(
        [(str(new.pk), "transcript.read.pane"), (str(bobs.pk), "transcript.read.history")]
    )


def test_new_conversation_shows_a_supervisor_all_earlier_history_audited(
    sue_client: Client, three_visits: tuple[Conversation, ...], sue: Any
) -> None:
    doras, bobs, new = three_visits
    pane = reverse("console:conversation_pane", args=[new.pk])
    html = sue_client.get(pane).content.decode()
    assert "dora&#x27;s visit" in html and "bob&#x27;s visit" in html
    assert "isn't shown" not in html
    sue_client.get(pane, {"refresh": "1"}, headers=HTMX)
    reads = AuditEvent.objects.filter(actor=sue, action="transcript.read.history")
    assert sorted(reads.values_list("object_id", flat=True)) == sorted(
        [str(doras.pk), str(bobs.pk)]
    )


def test_counselor_with_no_earlier_conversation_of_their_own_is_told_without_the_text(
    dora_client: Client, text_in: Any, bob: Any
) -> None:
    first = text_in("first time, please help")
    bob_membership = Membership.objects.get(user=bob)
    assignment.conversation_assume(membership=bob_membership, conversation=first)
    assignment.conversation_close(membership=bob_membership, conversation=first)
    again = text_in("again")
    html = dora_client.get(reverse("console:conversation_pane", args=[again.pk])).content.decode()
    assert "first time, please help" not in html
    assert "One earlier conversation isn't shown" in html
    assert "recent message" not in html


def test_history_nobody_held_is_shown_to_every_counselor_and_audited(
    bob_client: Client, text_in: Any, bob: Any
) -> None:
    """System texts, or a chat left in the queue: never anyone's caseload, and what a reply
    to them needs as background."""
    first = text_in("Reminder: group at 7.")
    Conversation.objects.filter(pk=first.pk).update(status="closed", assigned_to=None)
    again = text_in("can I bring a friend?")
    html = bob_client.get(reverse("console:conversation_pane", args=[again.pk])).content.decode()
    assert "Reminder: group at 7." in html and "isn't shown" not in html
    assert bob_client.get(reverse("console:conversation", args=[first.pk])).status_code == 200
    history = AuditEvent.objects.get(actor=bob, action="transcript.read.history")
    assert history.object_id == str(first.pk)


@pytest.mark.parametrize("role", ["counselor", "supervisor"])
def test_history_filter_agrees_with_who_may_open_a_conversation(
    text_in: Any, bob: Any, dora: Any, sue: Any, role: str
) -> None:
    reader = Membership.objects.get(user=bob if role == "counselor" else sue)
    cases = []
    for index, (status, holder) in enumerate(
        [(s, h) for s in ("waiting", "active", "closed") for h in (None, bob, dora)]
    ):
        conversation = text_in("hello", from_number=f"+1202555013{index}")
        Conversation.objects.filter(pk=conversation.pk).update(status=status, assigned_to=holder)
        cases.append(Conversation.objects.get(pk=conversation.pk))
    readable = set(
        Conversation.objects.filter(selectors.readable_by(reader)).values_list("pk", flat=True)
    )
    for conversation in cases:
        access = assignment.conversation_access(membership=reader, conversation=conversation)
        assert (conversation.pk in readable) == access.read, (
            conversation.status,
            conversation.assigned_to_id,
        )

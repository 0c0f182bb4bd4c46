"""The audit log page and its CSV (admins only), and who read a conversation (supervisors
and admins): filters, bad filters, streaming, tenant isolation."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from openline.core.models import AuditEvent, Membership
from openline.core.services import api_token_create, audit_record, audit_transcript_export
from openline.messaging.models import Conversation
from openline.messaging.services import assignment

LOG = reverse("audit:log")
EXPORT = reverse("audit:export")
SECRET_TEXT = "my sister's address is 12 Elm"


def _event(org: Any, action: str, actor: Any = None, at: datetime | None = None, **f: Any) -> int:
    audit_record(organization_id=org.pk, actor_id=actor.pk if actor else None, action=action, **f)
    event = AuditEvent.objects.latest("id")
    if at is not None:
        AuditEvent.objects.filter(pk=event.pk).update(created_at=at)
    return event.pk


def _shown(response: Any, among: dict[str, int] | None = None) -> list[int]:
    """The events a page lists, newest first; only those of ``among`` when given (signing
    the test clients in writes sign-in events of its own)."""
    import re

    found = [int(pk) for pk in re.findall(r'data-audit-event="(\d+)"', response.content.decode())]
    return [pk for pk in found if among is None or pk in among.values()]


def _csv(response: Any) -> list[list[str]]:
    assert response.streaming
    text = b"".join(response).decode()
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:])))


@pytest.fixture
def events(org: Any, other_org: Any, alice: Any, bob: Any, sue: Any, charlie: Any) -> dict:
    """Events around midnight in Chicago (org's zone) on 1-2 March 2026 (UTC-6)."""
    return {
        "sign_in": _event(
            org, "auth.sign_in", bob, datetime(2026, 3, 1, 14, tzinfo=UTC),
            ip_address="192.0.2.7",
            user_agent="Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
        ),
        "late_read": _event(  # 23:30 on 1 March in Chicago
            org, "transcript.read.pane", bob, datetime(2026, 3, 2, 5, 30, tzinfo=UTC),
            object_type="conversation", object_id=41,
        ),
        "early_monitor": _event(  # 00:30 on 2 March in Chicago
            org, "transcript.monitor.page", sue, datetime(2026, 3, 2, 6, 30, tzinfo=UTC),
            object_type="conversation", object_id=41,
        ),
        "settings": _event(
            org, "organization.update", alice, datetime(2026, 3, 3, 12, tzinfo=UTC),
            object_type="organization", object_id=org.pk, detail="welcome text",
        ),
        "theirs": _event(
            other_org, "auth.sign_in", charlie, datetime(2026, 3, 1, 14, tzinfo=UTC)
        ),
    }  # fmt: skip


# --- who may see it -------------------------------------------------------------------------


def test_only_admins_see_the_log_and_export_it(
    events: dict, bob_client: Client, sue_client: Client, alice_client: Client
) -> None:
    for client in (bob_client, sue_client):
        assert client.get(LOG).status_code == 403
        assert client.post(EXPORT).status_code == 403
    assert not AuditEvent.objects.filter(action="audit.export").exists()
    assert alice_client.get(LOG).status_code == 200
    assert Client().get(LOG).status_code == 302  # signed out: to the sign-in page


def test_another_organizations_admin_sees_none_of_these_events(
    events: dict, charlie_client: Client, bob: Any
) -> None:
    page = charlie_client.get(LOG)
    assert events["theirs"] in _shown(page)
    assert _shown(page, events) == [events["theirs"]]
    rows = _csv(charlie_client.post(EXPORT))
    assert len(rows) > 2 and {row[1] for row in rows[1:]} == {"charlie@example.org"}
    # someone of another organization is not a person this filter knows
    refused = charlie_client.get(LOG, {"person": bob.pk})
    assert refused.status_code == 422
    assert "Choose a member of this organization" in refused.content.decode()


# --- the page -------------------------------------------------------------------------------


def test_the_log_shows_who_what_when_where_in_the_organizations_zone(
    org: Any, events: dict, alice_client: Client
) -> None:
    token, _ = api_token_create(organization=org, name="CRM sync")
    _event(org, "transcript.read.api", None, api_token_id=token.pk,
           object_type="conversation", object_id=41)  # fmt: skip
    html = alice_client.get(LOG).content.decode()
    assert _shown(alice_client.get(LOG), events) == [
        events["settings"],
        events["early_monitor"],
        events["late_read"],
        events["sign_in"],
    ]
    assert "2026-03-01 08:00:00" in html  # 14:00 UTC, in Chicago
    assert "API token CRM sync" in html and "Read a transcript through the API" in html
    assert "Monitored a transcript on its page" in html
    assert f'href="{reverse("console:conversation", args=[41])}"' in html
    assert "Organization " in html and "welcome text" in html
    assert "192.0.2.7" in html and "Firefox 128 on Linux" in html


def test_filter_by_person_includes_deactivated_members(
    org: Any, events: dict, alice_client: Client, sue: Any
) -> None:
    Membership.objects.filter(user=sue).update(is_active=False)
    page = alice_client.get(LOG)
    assert "sue@example.org (deactivated)" in page.content.decode()
    assert _shown(alice_client.get(LOG, {"person": sue.pk}), events) == [events["early_monitor"]]


def test_filter_by_action_or_area(events: dict, alice_client: Client) -> None:
    assert _shown(alice_client.get(LOG, {"action": "auth.sign_in"}), events) == [events["sign_in"]]
    assert _shown(alice_client.get(LOG, {"action": "area:transcripts"}), events) == [
        events["early_monitor"], events["late_read"]
    ]  # fmt: skip
    assert _shown(alice_client.get(LOG, {"action": "area:settings"}), events) == [
        events["settings"]
    ]
    html = alice_client.get(LOG).content.decode()
    assert '<optgroup label="Sign-in and security">' in html


def test_filter_by_conversation(events: dict, alice_client: Client) -> None:
    assert _shown(alice_client.get(LOG, {"conversation": "41"}), events) == [
        events["early_monitor"], events["late_read"]
    ]  # fmt: skip
    assert _shown(alice_client.get(LOG, {"conversation": "42"}), events) == []


def test_dates_are_whole_days_in_the_organizations_zone(events: dict, alice_client: Client) -> None:
    first = {"date_from": "2026-03-01", "date_to": "2026-03-01"}
    assert _shown(alice_client.get(LOG, first), events) == [events["late_read"], events["sign_in"]]
    assert _shown(alice_client.get(LOG, {"date_from": "2026-03-02"}), events) == [
        events["settings"], events["early_monitor"]
    ]  # fmt: skip
    assert _shown(alice_client.get(LOG, {"date_to": "2026-02-28"}), events) == []


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"conversation": "abc"}, "conversation", "A conversation is a number"),
        ({"conversation": "0"}, "conversation", "greater than or equal to 1"),
        ({"conversation": "9" * 30}, "conversation", "less than or equal to"),
        ({"date_from": "yesterday"}, "date_from", "Enter a date like"),
        ({"date_to": "2026-02-30"}, "date_to", "Enter a date like"),
        ({"date_to": "9999-12-31"}, "date_to", "Enter a date between"),
        ({"date_from": "0001-01-01"}, "date_from", "Enter a date between"),
        ({"date_from": "2026-03-02", "date_to": "2026-03-01"}, "date_to", "comes before"),
        ({"person": "abc"}, "person", "Choose a member"),
        ({"person": "999999"}, "person", "Choose a member"),
        ({"action": "drop table"}, "action", "Choose an action"),
    ],
)
def test_bad_filters_are_explained_next_to_the_field(
    events: dict, alice_client: Client, params: dict, field: str, message: str
) -> None:
    page = alice_client.get(LOG, params)
    assert page.status_code == 422
    html = page.content.decode()
    assert f'id="id_{field}-error"' in html
    assert message in html.split(f'id="id_{field}-error">')[1].split("</p>")[0]
    assert _shown(page) == []
    exported = alice_client.post(EXPORT, params)
    assert exported.status_code == 422
    assert not AuditEvent.objects.filter(action="audit.export").exists()


def test_the_log_is_paginated_keeping_its_filters_in_bounded_queries(
    org: Any, alice: Any, alice_client: Client
) -> None:
    def queries(params: dict) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert alice_client.get(LOG, params).status_code == 200
        return len(captured)

    for _ in range(3):
        _event(org, "organization.update", alice)
    few = queries({"action": "organization.update"})
    for _ in range(57):
        _event(org, "organization.update", alice)
    assert queries({"action": "organization.update"}) == few
    first = alice_client.get(LOG, {"action": "organization.update"})
    assert len(_shown(first)) == 50
    assert "action=organization.update&amp;page=2" in first.content.decode()
    second = alice_client.get(LOG, {"action": "organization.update", "page": "2"})
    assert len(_shown(second)) == 10


# --- the CSV --------------------------------------------------------------------------------


def test_the_export_is_a_streamed_post_with_the_filters_and_is_audited(
    org: Any, events: dict, alice: Any, alice_client: Client, text_in: Any
) -> None:
    text_in(SECRET_TEXT)
    assert alice_client.get(EXPORT).status_code == 405
    response = alice_client.post(EXPORT, {"action": "area:transcripts", "date_from": "2026-03-01"})
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert 'filename="audit-log-' in response["Content-Disposition"]
    rows = _csv(response)
    assert rows[0][:5] == ["time", "person", "email", "api_token", "action"]
    assert [row[4] for row in rows[1:]] == ["transcript.monitor.page", "transcript.read.pane"]
    assert rows[2][0] == "2026-03-01T23:30:00-06:00"  # the organization's time, with its zone
    assert rows[2][5] == "Read a transcript in the workspace"
    export = AuditEvent.objects.get(action="audit.export")
    assert export.actor_id == alice.pk and export.organization_id == org.pk
    assert "action=area:transcripts" in export.detail and "date_from=2026-03-01" in export.detail
    everything = b"".join(alice_client.post(EXPORT)).decode()
    assert SECRET_TEXT not in everything and "audit.export" in everything


def test_the_export_is_sent_in_pieces_as_the_events_are_read(
    org: Any, alice: Any, alice_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    from openline.console.views import audit
    from openline.core import streaming

    monkeypatch.setattr(audit, "EXPORT_CHUNK", 7)
    monkeypatch.setattr(streaming, "LINES_PER_PIECE", 7)
    for _ in range(30):
        _event(org, "organization.update", alice)
    response = alice_client.post(EXPORT, {"action": "organization.update"})
    pieces = list(response)
    assert len(pieces) == 1 + 5  # the byte-order mark, then 31 lines 7 at a time
    rows = list(csv.reader(io.StringIO(b"".join(pieces).decode()[1:])))
    assert len(rows) == 31 and {row[4] for row in rows[1:]} == {"organization.update"}


# --- who read a conversation ----------------------------------------------------------------


def _readers_url(conversation: Conversation) -> str:
    return reverse("audit:conversation_readers", args=[conversation.pk])


def test_supervisors_see_who_read_a_conversation_without_its_text(
    org: Any, text_in: Any, bob: Any, sue: Any, bob_client: Client, sue_client: Client
) -> None:
    conversation = text_in(SECRET_TEXT)
    bob_membership = Membership.objects.get(user=bob)
    assignment.conversation_assume(membership=bob_membership, conversation=conversation)
    bob_client.get(reverse("console:conversation", args=[conversation.pk]))
    sue_client.get(reverse("console:conversation_pane", args=[conversation.pk]))  # monitoring
    audit_transcript_export(organization_id=org.pk, actor_id=sue.pk,
                            conversation_id=conversation.pk, how="print")  # fmt: skip
    page = sue_client.get(_readers_url(conversation))
    assert page.status_code == 200
    html = page.content.decode()
    assert SECRET_TEXT not in html
    assert f'data-reader="user-{bob.pk}"' in html and f'data-reader="user-{sue.pk}"' in html
    sue_row = html.split(f'data-reader="user-{sue.pk}"')[1].split("</tr>")[0]
    assert "sue@example.org" in sue_row and "monitoring" in sue_row and "printed" in sue_row
    bob_row = html.split(f'data-reader="user-{bob.pk}"')[1].split("</tr>")[0]
    assert "monitoring" not in bob_row and "<td>1" in bob_row


def test_the_conversation_page_offers_read_by_to_supervisors_only(
    conversation: Conversation, sue_client: Client, alice_client: Client, bob_client: Client
) -> None:
    url = reverse("console:conversation_pane", args=[conversation.pk])
    for client in (sue_client, alice_client):
        html = client.get(url).content.decode()
        assert "data-readers-section" in html and _readers_url(conversation) in html
    assert "data-readers-section" not in bob_client.get(url).content.decode()
    assert bob_client.get(_readers_url(conversation)).status_code == 403


def test_nobody_reads_another_organizations_readers(
    conversation: Conversation, charlie_client: Client, sue_client: Client
) -> None:
    assert charlie_client.get(_readers_url(conversation)).status_code == 404
    missing = reverse("audit:conversation_readers", args=[999999])
    assert sue_client.get(missing).status_code == 404
    empty = sue_client.get(_readers_url(conversation)).content.decode()
    assert "Nobody has read this transcript yet" in empty


def test_events_about_a_person_name_them_if_they_are_a_member(
    org: Any, alice: Any, bob: Any, charlie: Any, alice_client: Client
) -> None:
    about_bob = _event(org, "member.role_changed", alice, object_type="user", object_id=bob.pk,
                       detail="counselor → supervisor")  # fmt: skip
    odd = _event(org, "member.role_changed", alice, object_type="user", object_id=charlie.pk)
    html = alice_client.get(LOG, {"action": "member.role_changed"}).content.decode()
    bob_row = html.split(f'data-audit-event="{about_bob}"')[1].split("</tr>")[0]
    assert "bob@example.org" in bob_row and "Changed a role" in bob_row
    odd_row = html.split(f'data-audit-event="{odd}"')[1].split("</tr>")[0]
    assert "charlie@example.org" not in odd_row and f"User {charlie.pk}" in odd_row

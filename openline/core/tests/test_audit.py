"""Reading the audit log (core.audit): labels, the filtered log and who read a transcript."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from openline.core.audit import (
    ACTION_LABELS,
    AREA_ACTIONS,
    action_choices,
    action_label,
    audit_events,
    conversation_readers,
)
from openline.core.models import AuditEvent
from openline.core.services import (
    TRANSCRIPT_EXPORTS,
    TRANSCRIPT_READS,
    api_token_create,
    audit_record,
    audit_transcript_export,
    transcript_action,
)

APP = Path(__file__).resolve().parents[2]

# Named by the issue's helpers (the common brief); written by the sign-in, team and
# security code.
BRIEF_ACTIONS = [
    "auth.sign_in",
    "auth.sign_in_failed",
    "auth.second_factor_failed",
    "auth.recovery_code_used",
    "auth.sign_out_everywhere",
    "auth.password_reset",
    "auth.password_changed",
    "second_factor.enabled",
    "second_factor.disabled",
    "second_factor.reset",
    "recovery_codes.regenerated",
    "member.invited",
    "member.invitation_resent",
    "member.invitation_withdrawn",
    "member.joined",
    "member.role_changed",
    "member.limit_changed",
    "member.deactivated",
    "member.reactivated",
    "api_token.created",
    "api_token.revoked",
    "audit.export",
    "organization.second_factor_rule",
]

_NAME = r'"([a-z_]+\.[a-z_.]+)"'


def _sources() -> list[str]:
    return [
        path.read_text()
        for path in APP.rglob("*.py")
        if "tests" not in path.parts and "migrations" not in path.parts
    ]


def _written_actions() -> tuple[set[str], set[str]]:
    """Action names the code writes (literals), and the fixed starts of f-string ones."""
    names: set[str] = set()
    starts: set[str] = set()
    for text in _sources():
        for line in re.findall(r"\baction\s*=\s*([^\n]+)", text):
            names.update(re.findall(_NAME, line))
            starts.update(re.findall(r'f"([a-z_.]+)\{', line))
        # helpers that take the action as an argument: _audit(x, actor, "a.b"), audit(...)
        for call in re.findall(r"\b_?audit(?:_consent)?\(([^()]*)\)", text):
            names.update(re.findall(_NAME, call))
        names.update(re.findall(r"AUDIT_ACTION = " + _NAME, text))
    return names, starts


def test_every_action_the_code_writes_has_a_label() -> None:
    names, starts = _written_actions()
    assert len(names) > 40  # the scan finds them (it would pass vacuously otherwise)
    assert not sorted(names - set(ACTION_LABELS))
    for start in starts:
        assert any(label.startswith(start) for label in ACTION_LABELS), start


def test_transcript_actions_and_the_issues_actions_have_labels() -> None:
    for how in TRANSCRIPT_READS + TRANSCRIPT_EXPORTS:
        for monitoring in (False, True):
            assert transcript_action(how, monitoring=monitoring) in ACTION_LABELS
    assert not [name for name in BRIEF_ACTIONS if name not in ACTION_LABELS]
    assert action_label("transcript.monitor.pane") == "Monitored a transcript in the workspace"
    assert action_label("api_token.revoked") == "Revoked an API token"


def test_an_unknown_action_still_reads() -> None:
    assert action_label("widget.colour_changed") == "Widget: colour changed"
    assert action_label("x") == "X"


def test_the_action_filter_groups_every_labelled_action_by_area() -> None:
    grouped = [value for _, options in action_choices() for value, _ in options]
    assert set(ACTION_LABELS) <= set(grouped)
    assert "area:transcripts" in grouped and "area:sign-in" in grouped
    assert len(grouped) == len(set(grouped))


# --- the filtered log ---------------------------------------------------------------------


def _event(org: Any, action: str, actor: Any = None, **fields: Any) -> AuditEvent:
    audit_record(
        organization_id=org.pk, actor_id=actor.pk if actor else None, action=action, **fields
    )
    return AuditEvent.objects.latest("id")


def _at(event: AuditEvent, moment: datetime) -> None:
    AuditEvent.objects.filter(pk=event.pk).update(created_at=moment)


def _ids(events: Any) -> list[int]:
    return [event.pk for event in events]


@pytest.fixture
def log(org: Any, other_org: Any, alice: Any, bob: Any, charlie: Any) -> dict[str, AuditEvent]:
    events = {
        "sign_in": _event(org, "auth.sign_in", alice, ip_address="192.0.2.7"),
        "read": _event(org, "transcript.read.pane", bob, object_type="conversation", object_id=41),
        "monitor": _event(
            org, "transcript.monitor.page", alice, object_type="conversation", object_id=41
        ),
        "other_read": _event(
            org, "transcript.read.pane", bob, object_type="conversation", object_id=410
        ),
        "settings": _event(
            org, "organization.update", alice, object_type="organization", object_id=org.pk
        ),
        "theirs": _event(
            other_org, "transcript.read.pane", charlie, object_type="conversation", object_id=41
        ),
    }
    start = datetime(2026, 3, 1, 12, tzinfo=UTC)
    for hours, event in enumerate(events.values()):
        _at(event, start + timedelta(hours=hours))
    return events


def test_the_log_is_the_organizations_own_newest_first(
    org: Any, log: dict[str, AuditEvent]
) -> None:
    found = _ids(audit_events(org.pk))
    assert found == [log[k].pk for k in ("settings", "other_read", "monitor", "read", "sign_in")]


def test_the_log_filters_by_person(org: Any, alice: Any, log: dict[str, AuditEvent]) -> None:
    assert _ids(audit_events(org.pk, actor_id=alice.pk)) == [
        log["settings"].pk,
        log["monitor"].pk,
        log["sign_in"].pk,
    ]


def test_the_log_filters_by_action_prefix_or_area(org: Any, log: dict[str, AuditEvent]) -> None:
    assert _ids(audit_events(org.pk, action="auth.sign_in")) == [log["sign_in"].pk]
    assert _ids(audit_events(org.pk, action="auth.")) == [log["sign_in"].pk]
    transcripts = [log["other_read"].pk, log["monitor"].pk, log["read"].pk]
    assert _ids(audit_events(org.pk, action="transcript.")) == transcripts
    assert _ids(audit_events(org.pk, action="area:transcripts")) == transcripts
    assert _ids(audit_events(org.pk, action="area:settings")) == [log["settings"].pk]
    assert "organization.update" in AREA_ACTIONS["settings"]
    assert _ids(audit_events(org.pk, action="area:nowhere")) == []
    assert _ids(audit_events(org.pk, action="transcript")) == []  # exact, not a prefix


def test_the_log_filters_by_conversation(org: Any, log: dict[str, AuditEvent]) -> None:
    assert _ids(audit_events(org.pk, conversation_id=41)) == [log["monitor"].pk, log["read"].pk]


def test_the_log_filters_by_time_with_an_exclusive_end(
    org: Any, log: dict[str, AuditEvent]
) -> None:
    since = datetime(2026, 3, 1, 13, tzinfo=UTC)
    until = datetime(2026, 3, 1, 15, tzinfo=UTC)
    assert _ids(audit_events(org.pk, since=since, until=until)) == [
        log["monitor"].pk,
        log["read"].pk,
    ]


def test_the_log_names_people_and_tokens_in_one_query(org: Any, alice: Any, bob: Any) -> None:
    token, _ = api_token_create(organization=org, name="crm")
    for n in range(5):
        _event(org, "transcript.read.pane", alice if n % 2 else bob)
        audit_record(
            organization_id=org.pk,
            actor_id=None,
            api_token_id=token.pk,
            action="transcript.read.api",
        )
    with CaptureQueriesContext(connection) as queries:
        names = [
            (e.actor and str(e.actor), e.api_token and e.api_token.name)
            for e in audit_events(org.pk)
        ]
    assert len(queries) == 1
    assert ("alice@example.org", None) in names and (None, "crm") in names


# --- who read a conversation ----------------------------------------------------------------


def _read(org: Any, who: Any, action: str, conversation_id: int = 7, **fields: Any) -> None:
    audit_record(
        organization_id=org.pk,
        actor_id=who.pk if who else None,
        action=action,
        object_type="conversation",
        object_id=conversation_id,
        **fields,
    )


def test_readers_are_counted_per_person_and_token(
    org: Any, other_org: Any, alice: Any, bob: Any, sue: Any, charlie: Any
) -> None:
    token, _ = api_token_create(organization=org, name="crm")
    _read(org, bob, "transcript.read.pane")
    _read(org, bob, "transcript.read.thread")  # a new view session
    _read(org, sue, "transcript.monitor.pane")
    audit_transcript_export(
        organization_id=org.pk, actor_id=sue.pk, conversation_id=7, how="export"
    )
    audit_transcript_export(organization_id=org.pk, actor_id=sue.pk, conversation_id=7, how="print")
    _read(org, None, "transcript.read.api", api_token_id=token.pk)
    _read(org, alice, "transcript.read.pane", conversation_id=8)  # another conversation
    _read(org, alice, "conversation.take_over")  # not a read
    _read(other_org, charlie, "transcript.read.pane")  # another organization's
    base = datetime(2026, 3, 1, 12, tzinfo=UTC)
    for minutes, event in enumerate(
        AuditEvent.objects.exclude(object_type="api_token").order_by("id")
    ):
        _at(event, base + timedelta(minutes=minutes))

    with CaptureQueriesContext(connection) as queries:
        readers = conversation_readers(org.pk, 7)
    assert len(queries) == 1
    assert [r.name for r in readers] == ["bob@example.org", "sue@example.org", "API token crm"]
    bob_r, sue_r, api_r = readers
    assert (bob_r.views, bob_r.monitored, bob_r.exports, bob_r.prints) == (2, False, 0, 0)
    assert (bob_r.first_at, bob_r.last_at) == (base, base + timedelta(minutes=1))
    assert (sue_r.views, sue_r.monitored, sue_r.exports, sue_r.prints) == (1, True, 1, 1)
    assert sue_r.last_at == base + timedelta(minutes=4)
    assert (api_r.api_token_id, api_r.actor_id, api_r.views) == (token.pk, None, 1)
    assert conversation_readers(other_org.pk, 7)[0].name == "charlie@example.org"
    assert conversation_readers(org.pk, 9) == []

"""System health: admins see their organization's parked inbound events (never the text,
never the whole phone number) and retry them; nobody else does."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from openline.contacts.models import ConsentEvent, ConsentKind
from openline.core.models import AuditEvent
from openline.messaging.models import InboundEvent, Message, MessageKind
from openline.messaging.services import inbound, parked
from openline.messaging.services.inbound import MAX_ATTEMPTS

from .conftest import PERSON

URL = reverse("console:system_health")
SECRET = "my secret words for the counselor"


class KeywordBug:
    """Keyword handling raising, as a bug in it would, until it is "fixed"."""

    def __init__(self) -> None:
        self.real = inbound.apply_keyword
        self.fixed = False

    def __call__(self, **kwargs: Any) -> Any:
        if self.fixed:
            return self.real(**kwargs)
        raise RuntimeError("a bug in keyword handling")


@pytest.fixture
def bug(monkeypatch: pytest.MonkeyPatch) -> KeywordBug:
    fault = KeywordBug()
    monkeypatch.setattr(inbound, "apply_keyword", fault)
    return fault


def _event(number: Any, body: str, **fields: Any) -> InboundEvent:
    return InboundEvent.objects.create(
        organization_id=number.organization_id,
        number=number,
        provider=number.provider,
        provider_message_id=f"SM{InboundEvent.objects.count():014d}",
        from_number=PERSON,
        body=body,
        received_at=timezone.now() - timedelta(minutes=30),
        **fields,
    )


@pytest.fixture
def parked_stop(conversation: Any, sandbox_number: Any, pipeline: Any, bug: KeywordBug) -> Any:
    """The person (in a conversation already) texts STOP; processing it fails every time."""
    event = _event(sandbox_number, "STOP")
    pipeline.run()
    event.refresh_from_db()
    assert (event.processed_at, event.attempts) == (None, MAX_ATTEMPTS)
    return event


@pytest.fixture
def parked_text(sandbox_number: Any) -> InboundEvent:
    """Another parked event, whose text must never show."""
    return _event(sandbox_number, SECRET, attempts=MAX_ATTEMPTS)


def _page(client: Client) -> str:
    response = client.get(URL)
    assert response.status_code == 200
    return response.content.decode()


def _applied(sandbox_number: Any, event: InboundEvent) -> bool:
    event.refresh_from_db()
    opted_out = ConsentEvent.objects.filter(
        organization_id=sandbox_number.organization_id, phone=PERSON, kind=ConsentKind.OPT_OUT
    ).exists()
    confirmations = Message.objects.filter(kind=MessageKind.CONSENT).count()
    return event.processed_at is not None and opted_out and confirmations == 1


def test_admin_sees_parked_events_without_text_or_whole_phone(
    parked_stop, parked_text, alice_client
):
    html = _page(alice_client)

    assert 'data-parked-count="2"' in html
    for event in (parked_stop, parked_text):
        assert f'data-parked-event="{event.pk}"' in html
    assert "Phone ending 0187" in html
    assert "Main line" in html  # the inbox
    assert SECRET not in html and "STOP" not in html
    for whole in ("+12025550187", "202-555-0187", "2025550187", "(202) 555-0187"):
        assert whole not in html


def test_nav_shows_system_health_to_admins_only(alice_client, bob_client, sandbox_number):
    assert URL in _page(alice_client)
    assert URL not in bob_client.get(reverse("console:home")).content.decode()


def test_another_organizations_admin_sees_none_and_cannot_retry_them(parked_stop, charlie_client):
    html = _page(charlie_client)
    assert 'data-parked-count="0"' in html
    assert f'data-parked-event="{parked_stop.pk}"' not in html

    response = charlie_client.post(URL, {"event": str(parked_stop.pk)}, follow=True)
    assert "Nothing to retry" in response.content.decode()
    assert InboundEvent.objects.get(pk=parked_stop.pk).attempts == MAX_ATTEMPTS
    assert not AuditEvent.objects.filter(action=parked.AUDIT_ACTION).exists()


@pytest.mark.parametrize("who", ["bob_client", "sue_client"])
def test_counselors_and_supervisors_get_403(parked_stop, request, who):
    client = request.getfixturevalue(who)

    assert client.get(URL).status_code == 403
    assert client.post(URL, {"event": str(parked_stop.pk)}).status_code == 403
    assert client.post(URL).status_code == 403
    assert InboundEvent.objects.get(pk=parked_stop.pk).attempts == MAX_ATTEMPTS


def test_anonymous_is_sent_to_login_and_cannot_retry(parked_stop, client):
    assert client.get(URL)["Location"].startswith("/login/?next=")
    client.post(URL)
    assert InboundEvent.objects.get(pk=parked_stop.pk).attempts == MAX_ATTEMPTS


def test_retry_needs_the_csrf_token(parked_stop, alice):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(alice)

    assert strict.post(URL).status_code == 403
    assert InboundEvent.objects.get(pk=parked_stop.pk).attempts == MAX_ATTEMPTS


def test_retry_now_applies_the_stop_after_the_fix_and_is_audited(
    parked_stop, parked_text, bug, alice, alice_client, sandbox_number, pipeline
):
    bug.fixed = True

    response = pipeline.run(lambda: alice_client.post(URL, {"event": str(parked_stop.pk)}))

    assert response.status_code == 302
    assert _applied(sandbox_number, parked_stop)
    assert InboundEvent.objects.get(pk=parked_text.pk).attempts == MAX_ATTEMPTS  # only that one
    audit = AuditEvent.objects.get(action=parked.AUDIT_ACTION)
    assert (audit.organization_id, audit.actor_id, audit.object_id) == (
        sandbox_number.organization_id,
        alice.pk,
        str(parked_stop.pk),
    )
    html = _page(alice_client)
    assert "Retrying 1 text now" in html
    assert f'data-parked-event="{parked_stop.pk}"' not in html


def test_retry_all_retries_every_parked_event(
    parked_stop, parked_text, bug, alice_client, sandbox_number, pipeline
):
    bug.fixed = True

    pipeline.run(lambda: alice_client.post(URL))

    assert _applied(sandbox_number, parked_stop)
    assert InboundEvent.objects.get(pk=parked_text.pk).processed_at is not None
    assert AuditEvent.objects.filter(action=parked.AUDIT_ACTION).count() == 2
    assert 'data-parked-count="0"' in _page(alice_client)


def test_retry_all_with_nothing_parked_says_so(alice_client, sandbox_number):
    response = alice_client.post(URL, follow=True)

    assert "Nothing to retry: no texts are parked." in response.content.decode()
    assert not AuditEvent.objects.filter(action=parked.AUDIT_ACTION).exists()


@pytest.mark.parametrize("bad", ["abc", "12x", "²", "9" * 19, "-1"])
def test_a_malformed_event_number_is_a_400_and_changes_nothing(parked_stop, alice_client, bad):
    response = alice_client.post(URL, {"event": bad})

    assert response.status_code == 400
    assert "That is not an event number." in response.content.decode()
    assert InboundEvent.objects.get(pk=parked_stop.pk).attempts == MAX_ATTEMPTS


def test_a_huge_event_number_that_fits_the_pattern_finds_nothing(parked_stop, alice_client):
    response = alice_client.post(URL, {"event": "9" * 18}, follow=True)

    assert "Nothing to retry" in response.content.decode()
    assert InboundEvent.objects.get(pk=parked_stop.pk).attempts == MAX_ATTEMPTS


def test_page_reads_many_parked_events_in_a_fixed_number_of_queries(
    sandbox_number, alice_client, django_assert_max_num_queries
):
    for _ in range(30):
        _event(sandbox_number, "hi", attempts=MAX_ATTEMPTS)

    with django_assert_max_num_queries(8):
        html = _page(alice_client)
    assert html.count("data-parked-event=") == 30

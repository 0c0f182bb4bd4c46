"""Who may use the phone simulator: a signed-in member of the organization that owns the
sandbox number (alice, its admin, or bob, its counselor), and nobody else. charlie, an
admin of another organization, gets "not found" for alice's numbers and cannot text them;
a visitor who is not signed in is sent to sign in."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from django.conf import settings
from django.shortcuts import resolve_url
from django.test import Client

from openline.messaging.models import InboundEvent
from openline.providers.sandbox.provider import phone_token

PERSON = "+12025550133"


def _page(key: str) -> str:
    return f"/sandbox/phone/{key}"


def _send(client: Client, number: Any, body: str = "hello", **extra: Any) -> Any:
    fields = {"From": PERSON, "Body": body, "MessageId": f"sim-{body[:20]}-{PERSON}"}
    return client.post(_page(number.webhook_key) + "/send", fields, **extra)


def _config(response: Any) -> dict[str, Any]:
    html = response.content.decode()
    match = re.search(r'<script id="sandbox-config" type="application/json">(.*?)</script>', html)
    assert match, "the page carries its configuration as JSON"
    return json.loads(match.group(1))


def _signed_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


# --- anonymous visitors ---------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_anonymous_visitor_is_sent_to_sign_in_and_cannot_send_or_read(
    client: Client, sandbox_number: Any
) -> None:
    page = client.get(_page(sandbox_number.webhook_key) + "?phone=%2B12025550133")
    assert page.status_code == 302
    login = resolve_url(settings.LOGIN_URL)
    assert page["Location"].startswith(f"{login}?next=/sandbox/phone/")

    thread = client.get(_page(sandbox_number.webhook_key) + "/thread", {"phone": PERSON})
    assert thread.status_code == 401
    assert "Sign in again" in thread.json()["error"]

    sent = _send(client, sandbox_number)
    assert sent.status_code == 401
    assert "signed out" in sent.json()["error"]
    assert not InboundEvent.objects.exists()


# --- the owner and a member -------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("who", ["alice", "bob"])
def test_member_of_the_owning_organization_texts_the_number_and_reads_the_thread(
    who: str, request: pytest.FixtureRequest, sandbox_number: Any
) -> None:
    client = _signed_in(request.getfixturevalue(who))
    assert client.get(_page(sandbox_number.webhook_key)).status_code == 200

    sent = _send(client, sandbox_number, body="Is anyone there tonight?")
    assert sent.status_code == 200, sent.content
    assert sent.json() == {"sent": True}
    event = InboundEvent.objects.get()
    assert (event.number_id, event.from_number, event.body) == (
        sandbox_number.pk,
        PERSON,
        "Is anyone there tonight?",
    )

    thread = client.get(_page(sandbox_number.webhook_key) + "/thread", {"phone": PERSON})
    assert [m["body"] for m in thread.json()["messages"]] == ["Is anyone there tonight?"]


@pytest.mark.django_db(transaction=True)
def test_member_sends_only_to_the_number_of_the_address_whatever_the_form_says(
    sandbox_number: Any, alice: Any
) -> None:
    """The page cannot pick another number: ``To`` is the address's number, always."""
    client = _signed_in(alice)
    fields = {"From": PERSON, "To": "+12125550199", "Body": "hi", "MessageId": "sim-to-test-1"}
    response = client.post(_page(sandbox_number.webhook_key) + "/send", fields)
    assert response.status_code == 200, response.content
    assert InboundEvent.objects.get().number_id == sandbox_number.pk


@pytest.mark.django_db(transaction=True)
def test_send_explains_why_intake_refused_a_text_and_stores_nothing(
    sandbox_number: Any, alice: Any
) -> None:
    client = _signed_in(alice)
    too_long = _send(client, sandbox_number, body="x" * 1601)
    assert too_long.status_code == 413
    assert "1601 characters" in too_long.json()["error"]

    fields = {"From": "555", "Body": "hello", "MessageId": "sim-bad-phone-1"}
    bad_phone = client.post(_page(sandbox_number.webhook_key) + "/send", fields)
    assert bad_phone.status_code == 400
    assert "invalid From number" in bad_phone.json()["error"]

    no_id = client.post(_page(sandbox_number.webhook_key) + "/send", {"From": PERSON})
    assert no_id.status_code == 400
    assert "MessageId" in no_id.json()["error"]
    assert not InboundEvent.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_send_needs_the_pages_csrf_token(sandbox_number: Any, alice: Any) -> None:
    """A signed-in member's browser must not be made to text from another site's page."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    assert _send(client, sandbox_number, body="forged").status_code == 403
    assert not InboundEvent.objects.exists()

    token = _config(client.get(_page(sandbox_number.webhook_key)))["csrfToken"]
    sent = _send(client, sandbox_number, body="real", HTTP_X_CSRFTOKEN=token)
    assert sent.status_code == 200, sent.content
    assert InboundEvent.objects.get().body == "real"


@pytest.mark.django_db
def test_send_and_thread_answer_only_their_methods(sandbox_number: Any, alice: Any) -> None:
    client = _signed_in(alice)
    assert client.get(_page(sandbox_number.webhook_key) + "/send").status_code == 405
    thread = _page(sandbox_number.webhook_key) + "/thread?phone=%2B12025550133"
    assert client.post(thread).status_code == 405


# --- an outsider (a member of another organization) ------------------------------------


@pytest.mark.django_db(transaction=True)
def test_outsider_cannot_open_read_or_text_another_organizations_number(
    sandbox_number: Any, charlie: Any, other_number: Any
) -> None:
    client = _signed_in(charlie)
    key = sandbox_number.webhook_key
    page = client.get(_page(key))
    assert page.status_code == 404
    assert sandbox_number.e164 not in page.content.decode()

    thread = client.get(_page(key) + "/thread", {"phone": PERSON})
    assert thread.status_code == 404
    assert "no sandbox number of your organization" in thread.json()["error"]

    sent = _send(client, sandbox_number, body="not yours")
    assert sent.status_code == 404
    assert not InboundEvent.objects.exists()

    # ...while charlie's own number works for charlie.
    assert client.get(_page(other_number.webhook_key)).status_code == 200
    assert _send(client, other_number, body="mine").status_code == 200
    assert InboundEvent.objects.get().number_id == other_number.pk


@pytest.mark.django_db
def test_outsider_does_not_read_texts_already_in_another_organizations_thread(
    sandbox_number: Any, charlie: Any
) -> None:
    from django.utils import timezone

    InboundEvent.objects.create(
        organization_id=sandbox_number.organization_id,
        number=sandbox_number,
        provider="sandbox",
        provider_message_id="sim-secret-1",
        from_number=PERSON,
        body="something private",
        received_at=timezone.now(),
    )
    response = _signed_in(charlie).get(
        _page(sandbox_number.webhook_key) + "/thread", {"phone": PERSON}
    )
    assert response.status_code == 404
    assert "something private" not in response.content.decode()


@pytest.mark.django_db
def test_signed_in_person_without_an_organization_is_refused_everywhere(
    sandbox_number: Any,
) -> None:
    from openline.core.models import User

    loner = User.objects.create_user(email="loner@example.org", password="loner-pass-123")
    client = _signed_in(loner)
    key = sandbox_number.webhook_key
    assert client.get("/sandbox/phone").status_code == 403
    assert client.get(_page(key)).status_code == 403
    assert client.get(_page(key) + "/thread", {"phone": PERSON}).status_code == 403
    assert _send(client, sandbox_number).status_code == 403
    assert not InboundEvent.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_deactivated_number_takes_no_simulated_texts(sandbox_number: Any, alice: Any) -> None:
    sandbox_number.is_active = False
    sandbox_number.save()
    client = _signed_in(alice)
    assert client.get(_page(sandbox_number.webhook_key)).status_code == 404
    assert _send(client, sandbox_number).status_code == 404
    assert not InboundEvent.objects.exists()


# --- the way in: the console's navigation ------------------------------------------------


@pytest.mark.django_db
def test_member_reaches_the_simulator_from_the_console_navigation(
    sandbox_number: Any, other_number: Any, bob: Any
) -> None:
    client = _signed_in(bob)
    home = client.get("/").content.decode()
    assert re.search(r'<a href="/sandbox/phone"[^>]*>Phone simulator</a>', home)
    listing = client.get("/sandbox/phone").content.decode()
    assert f'href="{_page(sandbox_number.webhook_key)}"' in listing
    assert other_number.webhook_key not in listing
    assert client.get(_page(sandbox_number.webhook_key)).status_code == 200


@pytest.mark.django_db(transaction=True)
def test_the_intake_endpoint_still_takes_the_numbers_token_directly(
    sandbox_number: Any,
) -> None:
    """The provider side is unchanged: intake verifies the number's token (the server's
    send, the simulated carrier and the scale-out tests post it)."""
    from openline.providers.twilio.tests.support import asgi_request

    fields = {"From": PERSON, "To": sandbox_number.e164, "Body": "hi", "MessageId": "sim-direct"}
    path = f"/hooks/sandbox/{sandbox_number.webhook_key}/inbound"
    headers = {"X-Sandbox-Token": phone_token(sandbox_number)}
    assert asgi_request("POST", path, data=fields, headers=headers).status_code == 200
    assert asgi_request("POST", path, data=fields).status_code == 403

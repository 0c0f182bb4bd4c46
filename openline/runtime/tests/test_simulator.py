from __future__ import annotations

import json
import re
from typing import Any

import pytest
from django.core import signing

from openline.contacts.phones import normalize_phone
from openline.messaging.models import (
    Conversation,
    ConversationStatus,
    Direction,
    InboundEvent,
    Message,
    MessageStatus,
)
from openline.messaging.services.outbound import message_send
from openline.providers.sandbox.models import SandboxMessage
from openline.providers.sandbox.provider import TOKEN_SALT, phone_token
from openline.providers.services import number_add
from openline.providers.twilio.tests.support import asgi_request
from openline.runtime.simulator import random_phone

SEEKER = "+12025550111"


def _config(response: Any) -> dict[str, Any]:
    html = response.content.decode()
    match = re.search(r'<script id="sandbox-config" type="application/json">(.*?)</script>', html)
    assert match, "the page carries its configuration as JSON"
    return json.loads(match.group(1))


def _text_in(number: Any, *, body: str, phone: str = SEEKER, token: str | None = None) -> Any:
    """Post as the simulator page does: straight to the real intake endpoint."""
    fields = {"From": phone, "To": number.e164, "Body": body, "MessageId": f"msg-{body[:20]}-x"}
    return asgi_request(
        "POST",
        f"/hooks/sandbox/{number.webhook_key}/inbound",
        data=fields,
        headers={"X-Sandbox-Token": phone_token(number) if token is None else token},
    )


# --- the list of numbers (signed-in staff) ---------------------------------------------


@pytest.mark.django_db
def test_phone_list_requires_sign_in(client: Any, sandbox_number: Any) -> None:
    from django.conf import settings
    from django.shortcuts import resolve_url

    response = client.get("/sandbox/phone")
    assert response.status_code == 302
    assert response["Location"].startswith(resolve_url(settings.LOGIN_URL) + "?next=")
    assert sandbox_number.webhook_key not in response.content.decode()


@pytest.mark.django_db
def test_phone_list_links_only_own_organizations_sandbox_numbers(
    client: Any, alice: Any, org: Any, sandbox_number: Any, other_number: Any
) -> None:
    twilio = number_add(
        organization=org,
        provider="twilio",
        e164="+12025550177",
        config={"account_sid": "AC" + "1" * 32, "auth_token": "secret"},
    )
    client.force_login(alice)
    html = client.get("/sandbox/phone").content.decode()
    assert f'href="/sandbox/phone/{sandbox_number.webhook_key}"' in html
    assert other_number.webhook_key not in html
    assert twilio.webhook_key not in html and twilio.e164 not in html


@pytest.mark.django_db
def test_outsider_does_not_see_another_organizations_numbers(
    client: Any, charlie: Any, sandbox_number: Any, other_number: Any
) -> None:
    client.force_login(charlie)
    html = client.get("/sandbox/phone").content.decode()
    assert sandbox_number.webhook_key not in html
    assert sandbox_number.e164 not in html
    assert f'href="/sandbox/phone/{other_number.webhook_key}"' in html


@pytest.mark.django_db
def test_phone_list_stays_within_query_budget(
    client: Any, alice: Any, org: Any, sandbox_number: Any, django_assert_max_num_queries: Any
) -> None:
    for i in range(5):
        number_add(organization=org, provider="sandbox", e164=f"+1202555016{i}")
    client.force_login(alice)
    client.get("/sandbox/phone")  # a session's first request may write it: not measured
    with django_assert_max_num_queries(6):
        response = client.get("/sandbox/phone")
    assert response.content.decode().count('href="/sandbox/phone/') == 6


# --- the simulator page (members of the number's organization) ---------------------------


@pytest.mark.django_db
def test_simulator_page_sends_through_the_server_and_never_holds_the_phone_token(
    client: Any, alice: Any, sandbox_number: Any
) -> None:
    client.force_login(alice)
    response = client.get(f"/sandbox/phone/{sandbox_number.webhook_key}")
    assert response.status_code == 200
    assert response["Referrer-Policy"] == "no-referrer"
    assert "no-store" in response["Cache-Control"]
    config = _config(response)
    assert config["to"] == sandbox_number.e164
    assert config["sendUrl"] == f"/sandbox/phone/{sandbox_number.webhook_key}/send"
    assert config["threadUrl"] == f"/sandbox/phone/{sandbox_number.webhook_key}/thread"
    assert config["csrfToken"]
    assert normalize_phone(config["defaultPhone"]) == config["defaultPhone"]
    assert config["defaultPhone"] != sandbox_number.e164
    html = response.content.decode()
    assert "X-CSRFToken" in html and "MessageId" in html and "randomUUID" in html
    # The token would let anyone who copied it text the number without signing in.
    assert "X-Sandbox-Token" not in html and "/hooks/" not in html
    assert "token" not in config
    for value in config.values():
        with pytest.raises(signing.BadSignature):
            signing.loads(str(value), salt=TOKEN_SALT)


@pytest.mark.django_db
def test_simulator_page_prefills_a_phone_given_in_the_link(
    client: Any, alice: Any, sandbox_number: Any
) -> None:
    client.force_login(alice)
    url = f"/sandbox/phone/{sandbox_number.webhook_key}?phone=(202) 555-0188"
    assert _config(client.get(url))["initialPhone"] == "+12025550188"
    bad = f"/sandbox/phone/{sandbox_number.webhook_key}?phone=not-a-phone"
    assert _config(client.get(bad))["initialPhone"] == ""


@pytest.mark.django_db
def test_simulator_page_is_not_found_for_unknown_inactive_or_non_sandbox_numbers(
    client: Any, alice: Any, org: Any, sandbox_number: Any
) -> None:
    client.force_login(alice)
    twilio = number_add(
        organization=org,
        provider="twilio",
        e164="+12025550177",
        config={"account_sid": "AC" + "1" * 32, "auth_token": "secret"},
    )
    assert client.get("/sandbox/phone/no-such-key").status_code == 404
    assert client.get(f"/sandbox/phone/{twilio.webhook_key}").status_code == 404
    assert (
        client.get(f"/sandbox/phone/{twilio.webhook_key}/thread?phone=%2B12025550111").status_code
        == 404
    )
    sandbox_number.is_active = False
    sandbox_number.save()
    assert client.get(f"/sandbox/phone/{sandbox_number.webhook_key}").status_code == 404


def test_random_phone_is_a_valid_fictional_us_number() -> None:
    for _ in range(50):
        phone = random_phone(avoid="+12025550142")
        assert re.fullmatch(r"\+120255501\d\d", phone)
        assert phone != "+12025550142"
        assert normalize_phone(phone) == phone


# --- the thread endpoint ----------------------------------------------------------------


@pytest.mark.django_db
def test_thread_rejects_an_invalid_phone_with_a_json_error(
    client: Any, alice: Any, sandbox_number: Any
) -> None:
    client.force_login(alice)
    url = f"/sandbox/phone/{sandbox_number.webhook_key}/thread"
    for query in ("", "?phone=", "?phone=12", "?phone=hello"):
        response = client.get(url + query)
        assert response.status_code == 400
        assert response["Content-Type"] == "application/json"
        assert response.json()["error"].startswith("invalid phone")


@pytest.mark.django_db
def test_thread_shows_only_this_phones_texts_with_this_number_in_order(
    client: Any, alice: Any, org: Any, sandbox_number: Any, other_number: Any
) -> None:
    from django.utils import timezone

    now = timezone.now()
    delta = timezone.timedelta

    def inbound(number: Any, phone: str, body: str, seconds: int) -> InboundEvent:
        return InboundEvent.objects.create(
            organization_id=number.organization_id,
            number=number,
            provider="sandbox",
            provider_message_id=f"id-{body}",
            from_number=phone,
            body=body,
            received_at=now + delta(seconds=seconds),
            processed_at=now if seconds < 5 else None,
        )

    inbound(sandbox_number, SEEKER, "first", 0)
    inbound(sandbox_number, SEEKER, "third", 10)
    inbound(sandbox_number, "+12025550112", "someone else", 3)
    inbound(other_number, SEEKER, "other org", 4)
    reply = SandboxMessage.objects.create(
        organization=org,
        number=sandbox_number,
        to=SEEKER,
        body="second",
        provider_message_id="SB1",
        status="delivered",
    )
    SandboxMessage.objects.filter(pk=reply.pk).update(created_at=now + delta(seconds=5))
    SandboxMessage.objects.create(
        organization=org,
        number=sandbox_number,
        to="+12025550112",
        body="not yours",
        provider_message_id="SB2",
    )

    client.force_login(alice)
    response = client.get(
        f"/sandbox/phone/{sandbox_number.webhook_key}/thread", {"phone": "+1 (202) 555-0111"}
    )
    assert response.status_code == 200
    data = response.json()
    assert data["phone"] == SEEKER and data["number"] == sandbox_number.e164
    got = [(m["direction"], m["body"], m["status"]) for m in data["messages"]]
    assert got == [
        ("sent", "first", "delivered"),
        ("received", "second", "delivered"),
        ("sent", "third", "sent"),
    ]


# --- end to end through the real intake ---------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_simulated_text_becomes_a_conversation_and_the_reply_is_delivered_to_the_phone(
    client: Any, bob: Any, org: Any, sandbox_number: Any, pipeline: Any
) -> None:
    response = _text_in(sandbox_number, body="I need someone to talk to")
    assert response.status_code == 200, response.text
    pipeline.run()

    conversation = Conversation.objects.get(number=sandbox_number)
    assert conversation.status == ConversationStatus.WAITING
    assert conversation.contact.phone == SEEKER
    [inbound] = conversation.messages.all()
    assert (inbound.direction, inbound.body) == (Direction.INBOUND, "I need someone to talk to")

    reply = pipeline.run(
        lambda: message_send(
            organization_id=org.pk, conversation=conversation, body="I'm here. What's going on?"
        )
    )
    reply.refresh_from_db()
    assert reply.status == MessageStatus.DELIVERED
    delivered = SandboxMessage.objects.get(provider_message_id=reply.provider_message_id)
    assert (delivered.to, delivered.body, delivered.status) == (
        SEEKER,
        "I'm here. What's going on?",
        "delivered",
    )

    client.force_login(bob)
    thread = client.get(
        f"/sandbox/phone/{sandbox_number.webhook_key}/thread", {"phone": SEEKER}
    ).json()["messages"]
    assert [(m["direction"], m["status"]) for m in thread] == [
        ("sent", "delivered"),
        ("received", "delivered"),
    ]


@pytest.mark.django_db(transaction=True)
def test_intake_refuses_a_bad_or_foreign_phone_token_and_stores_nothing(
    sandbox_number: Any, other_number: Any
) -> None:
    assert _text_in(sandbox_number, body="hi", token="").status_code == 403
    assert _text_in(sandbox_number, body="hi", token="forged:token").status_code == 403
    foreign = phone_token(other_number)
    response = _text_in(sandbox_number, body="hi", token=foreign)
    assert response.status_code == 403
    assert "another number" in response.text
    assert not InboundEvent.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_intake_explains_why_a_simulated_text_was_refused(sandbox_number: Any) -> None:
    too_long = _text_in(sandbox_number, body="x" * 1601)
    assert too_long.status_code == 413
    assert "1601 characters" in too_long.text
    bad_phone = _text_in(sandbox_number, body="hello", phone="555")
    assert bad_phone.status_code == 400
    assert "invalid From number" in bad_phone.text
    assert not InboundEvent.objects.exists()
    assert not Message.objects.exists()

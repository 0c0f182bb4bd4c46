"""The phone simulator in a real Chromium against the real ASGI app served by uvicorn."""

from __future__ import annotations

from typing import Any

import pytest

from conftest import wait_for
from openline.messaging.models import Conversation, InboundEvent
from openline.messaging.services.outbound import message_send

pytestmark = pytest.mark.browser


def _open_signed_in(page: Any, url: str, email: str, password: str) -> None:
    """Open the simulator as a trainer does: sent to sign in first, then back to it."""
    page.goto(url)
    assert "/login/" in page.url
    page.fill("#id_username", email)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url(url)


def test_volunteer_texts_from_the_simulator_and_sees_the_counselors_reply(
    page: Any, live_asgi: str, org: Any, bob: Any, sandbox_number: Any, pipeline: Any
) -> None:
    from playwright.sync_api import expect

    url = f"{live_asgi}/sandbox/phone/{sandbox_number.webhook_key}?phone=%2B12025550133"
    _open_signed_in(page, url, "bob@example.org", "bob-pass-12")
    expect(page.locator("#my-phone")).to_have_value("+12025550133")
    page.fill("#body", "Is anyone there tonight?")
    page.click("#send")
    sent = page.locator(".bubble.sent")
    expect(sent).to_have_text("Is anyone there tonight?")
    expect(page.locator("#body")).to_have_value("")

    event = wait_for(lambda: InboundEvent.objects.first())
    assert (event.from_number, event.body) == ("+12025550133", "Is anyone there tonight?")
    assert len(event.provider_message_id) == 36  # a UUID from the page

    pipeline.run()
    conversation = Conversation.objects.get(number=sandbox_number)
    pipeline.run(
        lambda: message_send(
            organization_id=org.pk, conversation=conversation, body="Yes. I'm Sam, a volunteer."
        )
    )
    received = page.locator(".bubble.received")
    expect(received).to_have_text("Yes. I'm Sam, a volunteer.", timeout=5000)
    expect(page.locator(".meta.received-meta")).to_contain_text("delivered")
    expect(page.locator(".meta.sent-meta")).to_contain_text("delivered")


def test_simulator_shows_why_intake_refused_a_text(
    page: Any, live_asgi: str, alice: Any, sandbox_number: Any
) -> None:
    from playwright.sync_api import expect

    url = f"{live_asgi}/sandbox/phone/{sandbox_number.webhook_key}"
    _open_signed_in(page, url, "alice@example.org", "alice-pass-1")
    page.fill("#body", "x" * 1601)
    expect(page.locator("#counter")).to_have_text("1601 / 1600")
    page.click("#send")
    expect(page.locator("#error")).to_contain_text("Not sent (413)")
    expect(page.locator("#error")).to_contain_text("the limit is 1600")

    page.fill("#my-phone", "555")
    page.fill("#body", "hello")
    page.click("#send")
    expect(page.locator("#error")).to_contain_text("Not sent (400): invalid From number")
    assert not InboundEvent.objects.exists()


def test_signed_out_simulator_says_so_instead_of_sending(
    page: Any, live_asgi: str, alice: Any, sandbox_number: Any
) -> None:
    from playwright.sync_api import expect

    url = f"{live_asgi}/sandbox/phone/{sandbox_number.webhook_key}"
    _open_signed_in(page, url, "alice@example.org", "alice-pass-1")
    page.context.clear_cookies(name="sessionid")  # the session ended (signed out elsewhere)
    page.fill("#body", "still there?")
    page.click("#send")
    expect(page.locator("#error")).to_contain_text("Not sent (401): You are signed out")
    assert not InboundEvent.objects.exists()

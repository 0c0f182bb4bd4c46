"""Risk first, in Chromium: two people text; the second writes a risk phrase; the counselor's
Waiting list puts the second first with its reason, live, and Take next opens it. The real
ASGI app, inbound processor and task worker run; the test only drives browsers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from conftest import WATCH_CSP

pytestmark = pytest.mark.browser

LIVE = 5_000  # ms
Page = Any


@pytest.fixture
def counselor_and_phone(
    browser: Any, live_asgi: str, background_workers: None, bob: Any, sandbox_number: Any
) -> Iterator[tuple[Page, Any]]:
    contexts: list[Any] = []

    def context(width: int, height: int) -> Page:
        made = browser.new_context(viewport={"width": width, "height": height})
        made.add_init_script(WATCH_CSP)
        contexts.append(made)
        return made.new_page()

    counselor = context(1280, 900)
    counselor.goto(f"{live_asgi}/login/")
    counselor.fill("#id_username", "bob@example.org")
    counselor.fill("#id_password", "bob-pass-12")
    counselor.click("button[type=submit]")
    counselor.wait_for_function("document.body.dataset.liveState === 'open'", timeout=LIVE)

    def phone(sender: str) -> Page:
        page = context(390, 844)
        page.goto(f"{live_asgi}/sandbox/phone/{sandbox_number.webhook_key}?phone=%2B{sender[1:]}")
        page.fill("#id_username", "bob@example.org")
        page.fill("#id_password", "bob-pass-12")
        page.click("button[type=submit]")
        return page

    yield counselor, phone
    for made in contexts:
        made.close()


def _text(phone: Page, body: str) -> None:
    phone.fill("#body", body)
    phone.click("#send")


def test_a_risk_phrase_puts_its_conversation_first_with_its_reason_and_take_next_opens_it(
    counselor_and_phone: tuple[Page, Any],
) -> None:
    from playwright.sync_api import expect

    from openline.messaging.models import Conversation

    counselor, phone = counselor_and_phone
    _text(phone("+12025550177"), "hi, is anyone there?")
    rows = counselor.locator("#queue .queue-row")
    expect(rows).to_have_count(1, timeout=LIVE)
    _text(phone("+12025550178"), "I have pills here")
    expect(rows).to_have_count(2, timeout=LIVE)

    first = rows.first
    expect(first).to_contain_text("+1 202-555-0178")
    expect(first.locator(".badge-priority-2")).to_have_text("High")
    expect(first.locator("[data-priority-reason]")).to_have_text("· Risk phrase: “pills”")
    expect(rows.nth(1)).to_contain_text("+1 202-555-0177")
    expect(rows.nth(1).locator("[data-priority-reason]")).to_have_count(0)

    risky = Conversation.objects.get(contact__phone="+12025550178")
    counselor.get_by_role("button", name="Take next").click()
    pane = counselor.locator(f'.pane[data-conversation-id="{risky.pk}"]')
    expect(pane).to_be_visible(timeout=LIVE)
    expect(pane.locator(".thread")).to_contain_text("I have pills here")
    expect(pane.locator(".pane-head")).to_contain_text("With you", timeout=LIVE)
    # It left the Waiting list; the calm one is still there.
    expect(rows).to_have_count(1, timeout=LIVE)
    expect(rows.first).to_contain_text("+1 202-555-0177")
    risky.refresh_from_db()
    assert risky.status == "active" and risky.assigned_to.email == "bob@example.org"  # type: ignore[union-attr]

    counselor.get_by_role("button", name="Take next").click()
    expect(counselor.locator(".pane-tabs [data-tab]")).to_have_count(2, timeout=LIVE)
    expect(rows).to_have_count(0, timeout=LIVE)
    counselor.get_by_role("button", name="Take next").click()
    expect(counselor.locator(".toast").last).to_have_text(
        "Nobody is waiting right now.", timeout=LIVE
    )
    assert counselor.evaluate("window.__csp") == []

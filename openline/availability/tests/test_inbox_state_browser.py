"""The inbox's online state in a real console (Chromium): the badge above the queue and the
table on the shifts page change without a reload when a shift is staffed and when the
switch takes the inbox offline."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.browser
LIVE = 5_000


def _sign_in(browser: Any, url: str, email: str, password: str) -> Any:
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.goto(f"{url}/login/")
    page.fill("#id_username", email)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_function("document.body.dataset.liveState === 'open'", timeout=LIVE)
    return page


def test_state_changes_reach_the_console_live(
    browser: Any, live_asgi: str, alice: Any, sue: Any, sandbox_number: Any, put_online: Any
) -> None:
    from playwright.sync_api import expect

    from openline.availability.services import availability_set

    console = _sign_in(browser, live_asgi, "sue@example.org", "supervisor-pass-123")
    badge = console.locator(f'[data-inbox-badge="{sandbox_number.pk}"]')
    expect(badge).to_have_text("Main line: offline")

    shifts = _sign_in(browser, live_asgi, "alice@example.org", "alice-pass-1")
    shifts.goto(f"{live_asgi}/shifts/")
    shifts.wait_for_function("document.body.dataset.liveState === 'open'", timeout=LIVE)
    row = shifts.locator(f'#inbox-states tr[data-inbox="{sandbox_number.pk}"]')
    expect(row).to_have_attribute("data-online", "0")

    put_online(sandbox_number, sue)  # someone signs up for a shift covering now
    expect(badge).to_have_text("Main line: online", timeout=LIVE)
    expect(badge).to_have_class("badge badge-active")
    expect(console.locator("#toasts")).to_contain_text("Main line is online now.")
    expect(row).to_have_attribute("data-online", "1", timeout=LIVE)

    availability_set(
        organization_id=sandbox_number.organization_id,
        actor_id=alice.pk,
        number_id=sandbox_number.pk,
        mode="offline",
    )
    expect(badge).to_have_text("Main line: offline", timeout=LIVE)
    expect(row).to_have_attribute("data-online", "0", timeout=LIVE)
    expect(row).to_contain_text("switched offline")

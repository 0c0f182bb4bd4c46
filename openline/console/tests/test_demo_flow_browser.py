"""The demo, end to end in Chromium: a person texts the sandbox number from the phone
simulator, a counselor sees it in the console and replies, the person texts STOP, and the
counselor's reply box turns off with the reason. Everything runs live: the real ASGI app,
the inbound processor and the task worker threads; the test only drives the browsers."""

from __future__ import annotations

import os
from typing import Any

import pytest

from conftest import ARTIFACTS

pytestmark = pytest.mark.browser


def _shot(page: Any, name: str) -> None:
    os.makedirs(ARTIFACTS, exist_ok=True)
    page.screenshot(path=os.path.join(ARTIFACTS, f"demo-{name}.png"), full_page=True)


def test_text_reply_stop_disables_reply_box(
    browser: Any,
    live_asgi: str,
    background_workers: None,
    bob: Any,
    sandbox_number: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from playwright.sync_api import expect

    phone = browser.new_context(viewport={"width": 390, "height": 844}).new_page()
    console = browser.new_context(viewport={"width": 1280, "height": 860}).new_page()

    console.goto(f"{live_asgi}/login/")
    console.fill("#id_username", "bob@example.org")
    console.fill("#id_password", "bob-pass-12")
    console.click("button[type=submit]")
    expect(console.locator("#queue")).to_contain_text("Nobody is waiting")

    phone.goto(f"{live_asgi}/sandbox/phone/{sandbox_number.webhook_key}?phone=%2B12025550133")
    # The simulator is for members: sign in, and it comes back.
    phone.fill("#id_username", "bob@example.org")
    phone.fill("#id_password", "bob-pass-12")
    phone.click("button[type=submit]")
    phone.fill("#body", "hi, is anyone there? I need someone to talk to")
    phone.click("#send")
    expect(phone.locator(".meta.sent-meta")).to_contain_text("delivered", timeout=10_000)

    row = console.locator(".conv-row", has_text="+1 202-555-0133")
    expect(row).to_contain_text("I need someone to talk to")  # live, no reload
    _shot(console, "1-inbox")
    row.click()

    console.fill(".pane .reply-body", "Hi, I'm Bob. I'm here and listening.")
    expect(console.locator(".pane .segment-counter")).to_contain_text("1 segment")
    console.click(".pane .reply-box button[type=submit]")
    expect(console.locator(".pane .reply-body")).to_have_value("")  # sent: the box is cleared
    expect(phone.locator(".bubble.received")).to_have_text(
        "Hi, I'm Bob. I'm here and listening.", timeout=10_000
    )
    expect(phone.locator(".meta.received-meta").last).to_contain_text("delivered")
    expect(console.locator(".thread")).to_contain_text("delivered", timeout=10_000)
    _shot(console, "2-replied")

    phone.fill("#body", "STOP")
    phone.click("#send")
    expect(phone.locator(".bubble.received").last).to_contain_text("unsubscribed", timeout=10_000)
    refusal = console.locator(".pane .notice-stop")
    expect(refusal).to_contain_text("opted out of texts", timeout=10_000)
    expect(console.locator(".pane .reply-body")).to_be_disabled()
    _shot(console, "3-opted-out")
    _shot(phone, "4-phone")
    server_errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert not server_errors, [r.getMessage() for r in server_errors]

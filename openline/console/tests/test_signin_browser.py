"""Signing in and the console's Content-Security-Policy, in Chromium against the real ASGI
app: using the console (live socket, workspace, htmx fragments, shifts, settings, contacts,
the printable page) reports no CSP violation, and a console whose sign-in ended goes to the
sign-in page by itself, saying why."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from conftest import WATCH_CSP

pytestmark = pytest.mark.browser

LIVE = 5_000  # ms
Page = Any


@pytest.fixture
def console(browser: Any, live_asgi: str, bob: Any) -> Iterator[Page]:
    """Bob's console, signed in through the sign-in page; CSP reports are collected from
    the page and from Chromium's console."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.add_init_script(WATCH_CSP)
    page = context.new_page()
    page.csp_console = []  # type: ignore[attr-defined]
    page.on(
        "console",
        lambda m: "Content Security Policy" in m.text and page.csp_console.append(m.text),
    )
    page.goto(f"{live_asgi}/login/")
    page.fill("#id_username", "bob@example.org")
    page.fill("#id_password", "bob-pass-12")
    page.click("button[type=submit]")
    page.wait_for_function("document.body.dataset.liveState === 'open'", timeout=LIVE)
    yield page
    context.close()


def _violations(page: Page) -> list[str]:
    return list(page.evaluate("window.__csp || []")) + page.csp_console


def test_using_the_console_reports_no_content_security_policy_violation(
    console: Page, live_asgi: str, sandbox_number: Any, text_in: Any, org: Any
) -> None:
    from playwright.sync_api import expect

    conversation_id = text_in("hi, is anyone there?", from_number="+12025550133").pk
    response = console.goto(f"{live_asgi}/")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    console.wait_for_function("document.body.dataset.liveState === 'open'", timeout=LIVE)
    row = console.locator(".conv-row", has_text="+1 202-555-0133")
    expect(row).to_contain_text("is anyone there?", timeout=LIVE)
    # The pane, its thread and reply box (htmx without eval). A click that lands while a
    # live refresh swaps the queue list in is lost, as a person's would be: click again.
    reply = console.locator(".pane .reply-body")
    for _ in range(3):
        row.click()
        try:
            expect(reply).to_be_visible(timeout=LIVE)
            break
        except AssertionError:
            continue
    console.fill(".pane .reply-body", "Hi, I'm Bob.")
    expect(console.locator(".pane .segment-counter")).to_contain_text("1 segment")
    assert _violations(console) == []

    for path in (
        "/shifts/",
        "/contacts/",
        "/preferences/",
        f"/conversations/{conversation_id}/print",
    ):
        console.goto(f"{live_asgi}{path}")
        console.wait_for_load_state("networkidle")
        assert _violations(console) == [], path
    console.goto(f"{live_asgi}/contacts/")
    console.fill("#id_q", "202")  # a search fragment
    expect(console.locator("#contact-results")).to_contain_text("202-555-0133")
    assert _violations(console) == []


def test_a_console_whose_sign_in_ended_goes_to_the_sign_in_page(
    console: Page, live_asgi: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nobody touched it for the idle timeout: the socket is closed and the page leaves
    what it showed for the sign-in page (no click needed)."""
    from django.contrib.sessions.backends.db import SessionStore
    from playwright.sync_api import expect

    from openline.console import consumers
    from openline.core import security

    monkeypatch.setattr(consumers, "RECHECK_SECONDS", 0.2)
    console.goto(f"{live_asgi}/")  # the socket now rechecks every 0.2 s
    console.wait_for_function("document.body.dataset.liveState === 'open'", timeout=LIVE)
    console.wait_for_load_state("networkidle")  # its catch-up refresh is done: quiet now
    key = next(c["value"] for c in console.context.cookies() if c["name"] == "sessionid")
    session = SessionStore(key)
    session[security.ACTIVE_AT] -= timedelta(minutes=31).total_seconds()
    session.save()

    console.wait_for_url("**/login/?next=/", timeout=LIVE)
    expect(console.locator("main")).to_contain_text("signed out after 30 minutes without activity")
    assert _violations(console) == []


@pytest.fixture
def quick_hashing(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def test_repeated_failed_sign_ins_get_a_clear_paused_page(
    quick_hashing: None, browser: Any, live_asgi: str, bob: Any
) -> None:
    from playwright.sync_api import expect

    assert bob.password.startswith("md5$")  # quick to refuse (settings came first)
    page = browser.new_page()
    page.goto(f"{live_asgi}/login/")
    for _ in range(5):
        page.fill("#id_username", "bob@example.org")
        page.fill("#id_password", "not-my-password")
        with page.expect_navigation() as answer:
            page.click("button[type=submit]")
    assert answer.value.status == 429
    expect(page.locator("#sign-in-paused")).to_contain_text(
        "signing in is paused for about a minute"
    )
    page.fill("#id_password", "bob-pass-12")  # the email is kept in the form
    with page.expect_navigation() as again:
        page.click("button[type=submit]")
    assert again.value.status == 429  # even the right password waits, and is told so
    expect(page.locator("#sign-in-paused")).to_be_visible()

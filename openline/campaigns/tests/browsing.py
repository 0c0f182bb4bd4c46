"""What the campaigns' Chromium tests share: a signed-in console page and a phone
simulator page on the live server."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

LIVE = 5_000  # ms: what reaches a screen (socket, the simulator's 1 s poll), on a slow machine


def sign_in(
    browser: Browser,
    url: str,
    email: str,
    password: str,
    *,
    microphone: bool = False,
    record_frames: bool = False,
) -> Page:
    """A console page signed in as ``email``, its live socket open. ``record_frames``: the
    WebSocket frames it receives collect in ``page.frames_received``."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    if microphone:
        context.grant_permissions(["microphone"], origin=url)
    page = context.new_page()
    if record_frames:
        frames: list[Any] = []
        page.frames_received = frames  # type: ignore[attr-defined]
        # Playwright takes Python functions as handlers, not a bound builtin like append.
        page.on("websocket", lambda ws: ws.on("framereceived", lambda f: frames.append(f)))
    page.goto(f"{url}/login/")
    page.fill("#id_username", email)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_function("document.body.dataset.liveState === 'open'", timeout=LIVE)
    return page


def phone(browser: Browser, url: str, number: Any, sender: str) -> Page:
    """The phone simulator for ``sender`` texting ``number`` (it is for members: signed in
    as Bob, the counselor)."""
    page = browser.new_context(viewport={"width": 390, "height": 844}).new_page()
    page.goto(f"{url}/sandbox/phone/{number.webhook_key}?phone=%2B{sender[1:]}")
    page.fill("#id_username", "bob@example.org")
    page.fill("#id_password", "bob-pass-12")
    page.click("button[type=submit]")
    page.wait_for_selector("#body")
    return page

"""The second factor in Chromium against the real ASGI app: a member whose organization
requires it sets up an app from the QR page and saves their recovery codes; a member who
has one signs in, is asked for the code, and lands in the live console. No page breaks
the Content-Security-Policy (the QR code is inline SVG, no script or style)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from django_otp.plugins.otp_totp.models import TOTPDevice

from conftest import WATCH_CSP
from openline.core.second_factor import totp_begin, totp_confirm
from openline.core.tests.second_factor_support import app_code, wrong_code

pytestmark = pytest.mark.browser

LIVE = 5_000  # ms
Page = Any


@pytest.fixture
def page(browser: Any) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.add_init_script(WATCH_CSP)
    yield context.new_page()
    context.close()


def _sign_in(page: Page, base: str, email: str, password: str) -> None:
    page.goto(f"{base}/login/")
    page.fill("#id_username", email)
    page.fill("#id_password", password)
    page.click("button[type=submit]")


def test_a_member_sets_up_the_required_second_factor_then_works(
    page: Page, live_asgi: str, bob: Any, org: Any
) -> None:
    from playwright.sync_api import expect

    org.require_second_factor = "everyone"
    org.save()
    _sign_in(page, live_asgi, "bob@example.org", "bob-pass-12")
    page.wait_for_url("**/security/setup/?next=/")
    expect(page.locator("#totp-qr svg")).to_be_visible()
    expect(page.locator("#totp-secret")).to_have_text(re.compile(r"^[A-Z2-7]{4}( [A-Z2-7]{4}){7}$"))
    device = TOTPDevice.objects.get(user=bob, confirmed=False)
    page.fill("#id_code", wrong_code(device))
    page.click("button:has-text('Turn on')")
    expect(page.locator(".form-error")).to_contain_text("That code is not right")
    page.wait_for_timeout(1100)  # the device's throttle after a wrong code
    page.fill("#id_code", app_code(device))
    page.click("button:has-text('Turn on')")
    expect(page.locator("#recovery-codes li")).to_have_count(10)
    page.click("text=I have saved them: continue")
    page.wait_for_function("document.body.dataset.liveState === 'open'", timeout=LIVE)
    assert page.url == f"{live_asgi}/"
    assert page.evaluate("window.__csp") == []


def test_a_member_with_a_second_factor_is_asked_for_the_code_at_sign_in(
    page: Page, live_asgi: str, bob: Any
) -> None:
    from playwright.sync_api import expect

    pending, _ = totp_begin(user=bob)
    device, _ = totp_confirm(user=bob, device_id=pending.pk, code=app_code(pending))
    _sign_in(page, live_asgi, "bob@example.org", "bob-pass-12")
    page.wait_for_url("**/security/verify/?next=/")
    expect(page.locator("h1")).to_have_text("Confirm it's you")
    expect(page.locator("#use-recovery-code summary")).to_be_visible()
    page.fill("#id_code", app_code(device))
    page.click("button:has-text('Confirm')")
    page.wait_for_function("document.body.dataset.liveState === 'open'", timeout=LIVE)
    assert page.url == f"{live_asgi}/"
    assert page.evaluate("window.__csp") == []

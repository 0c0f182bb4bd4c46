"""A volunteer's whole life in the team, in Chromium against the real ASGI app, worker and
sandbox carrier: the organization requires a second factor of every member; the admin sets
up their own, invites a counselor by e-mail; the counselor follows the e-mailed link, sets
a password and a second factor, goes on shift and answers a text from the phone simulator;
the admin deactivates them mid-shift: their console socket closes and the page goes to the
sign-in page at once, the conversation is back in the queue with a note, and the audit log
shows each step. Screenshots in test-artifacts/team-lifecycle-*.png."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any

import pytest
from django.core import mail
from django_otp.plugins.otp_totp.models import TOTPDevice

from conftest import ARTIFACTS, WATCH_CSP
from openline.core.models import AuditEvent, Membership, User
from openline.core.tests.second_factor_support import app_code
from openline.messaging.models import Conversation

pytestmark = pytest.mark.browser

LIVE = 5_000  # ms: what reaches a screen over the socket, on a slow machine
NORA = "nora@example.org"
NORA_PASSWORD = "quiet-harbor-lantern-42"
Page = Any


@pytest.fixture
def contexts(browser: Any, caplog: pytest.LogCaptureFixture) -> Iterator[Any]:
    """New browser contexts (one per person), each watching for CSP violations; no server
    errors logged by the end."""
    opened: list[Any] = []

    def new(width: int = 1280) -> Page:
        context = browser.new_context(viewport={"width": width, "height": 900})
        context.add_init_script(WATCH_CSP)
        opened.append(context)
        return context.new_page()

    yield new
    for context in opened:
        context.close()
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert not errors, errors


def _shot(page: Page, name: str) -> None:
    os.makedirs(ARTIFACTS, exist_ok=True)
    page.screenshot(path=os.path.join(ARTIFACTS, f"team-lifecycle-{name}.png"), full_page=True)


def _set_up_second_factor(page: Page, user: User) -> None:
    """On the set-up page: type the code the app would show, keep the recovery codes."""
    from playwright.sync_api import expect

    expect(page.locator("#totp-qr svg")).to_be_visible()
    device = TOTPDevice.objects.get(user=user, confirmed=False)
    page.fill("#id_code", app_code(device))
    page.click("button:has-text('Turn on')")
    expect(page.locator("#recovery-codes li")).to_have_count(10)
    page.click("text=I have saved them: continue")
    page.wait_for_function("document.body.dataset.liveState === 'open'", timeout=LIVE)


def _invitation_link() -> str:
    (message,) = [m for m in mail.outbox if NORA in m.to]
    match = re.search(r"https?://\S+/invitations/\S+/", message.body)
    assert match, message.body
    return match.group(0)


def test_invited_counselor_sets_up_works_a_text_and_is_deactivated_mid_shift(
    contexts: Any,
    live_asgi: str,
    background_workers: None,
    alice: User,
    org: Any,
    sandbox_number: Any,
    put_online: Any,
    settings: Any,
) -> None:
    from playwright.sync_api import expect

    settings.PUBLIC_URL = live_asgi  # where the e-mailed link points
    org.require_second_factor = "everyone"
    org.save(update_fields=["require_second_factor"])

    # The admin signs in and is led to set up their own second factor first.
    admin = contexts()
    admin.goto(f"{live_asgi}/login/")
    admin.fill("#id_username", "alice@example.org")
    admin.fill("#id_password", "alice-pass-1")
    admin.click("button[type=submit]")
    admin.wait_for_url("**/security/setup/**")
    _set_up_second_factor(admin, alice)

    # Team › Invite people: a counselor, by e-mail.
    admin.goto(f"{live_asgi}/team/")
    admin.get_by_role("link", name="Invite people").click()
    admin.fill("#id_email", NORA)
    admin.select_option("#id_role", "counselor")
    admin.click("button:has-text('Send invitation')")
    expect(admin.locator("#pending-invitations")).to_contain_text(NORA)
    _shot(admin, "1-invited")

    # The counselor follows the link, chooses a name and a password, then a second factor.
    nora_page = contexts()
    nora_page.goto(_invitation_link())
    nora_page.fill("#id_display_name", "Nora Quinn")
    nora_page.fill("#id_password", NORA_PASSWORD)
    nora_page.fill("#id_password_again", NORA_PASSWORD)
    nora_page.click("button[type=submit]")
    nora_page.wait_for_url("**/security/setup/**")
    nora = User.objects.get(email=NORA)
    _set_up_second_factor(nora_page, nora)
    membership = Membership.objects.get(user=nora, organization=org)
    assert (membership.role, membership.is_active) == ("counselor", True)
    _shot(nora_page, "2-joined")

    # On shift now; a person texts in from the phone simulator (the admin's browser).
    put_online(sandbox_number, nora)
    phone = admin.context.new_page()
    phone.goto(f"{live_asgi}/sandbox/phone/{sandbox_number.webhook_key}?phone=%2B12025550133")
    phone.fill("#body", "is anyone there tonight?")
    phone.click("#send")
    row = nora_page.locator("#queue .queue-row", has_text="+1 202-555-0133")
    expect(row).to_contain_text("is anyone there tonight?", timeout=LIVE)
    row.get_by_role("button", name="Assume").click()
    pane = nora_page.locator(".pane")
    expect(pane.locator(".pane-head")).to_contain_text("With you", timeout=LIVE)
    pane.locator(".reply-body").fill("Hi, I'm Nora. I'm here.")
    pane.locator(".reply-box button[type=submit]").click()
    received = phone.locator(".bubble.received")
    expect(received).to_have_text("Hi, I'm Nora. I'm here.", timeout=10_000)
    conversation = Conversation.objects.get(organization=org, assigned_to=nora)
    _shot(nora_page, "3-working")

    # Mid-shift, the admin deactivates her from the team page.
    admin.goto(f"{live_asgi}/team/")
    admin.locator(f"#member-{membership.pk}").get_by_role("link", name="Deactivate").click()
    assert "1 conversation they hold goes back" in admin.inner_text("#deactivation-effects")
    admin.get_by_role("button", name=f"Deactivate {nora}").click()
    admin.wait_for_selector("#uncovered-shifts")
    _shot(admin, "4-deactivated")

    # Her console is closed at once (not at the minute's recheck) and she is signed out.
    nora_page.wait_for_url("**/login/**", timeout=LIVE)
    fresh = Conversation.objects.get(pk=conversation.pk)
    assert (fresh.status, fresh.assigned_to_id) == ("waiting", None)
    nora_page.goto(f"{live_asgi}/")
    assert "/login/" in nora_page.url

    # The conversation waits in the admin's queue for someone else.
    admin.goto(f"{live_asgi}/")
    admin.click("#queue nav a[data-view=all]")
    back = admin.locator("#queue .queue-row", has_text="+1 202-555-0133")
    expect(back).to_contain_text("Waiting", timeout=LIVE)

    # The audit log shows all of it.
    admin.goto(f"{live_asgi}/audit/")
    log = admin.locator("table")
    for label in (
        "Invited someone",
        "Joined the organization",
        "Turned on the second factor",
        "Signed in",
        "Read a transcript",
        "Deactivated a member",
    ):
        expect(log).to_contain_text(label)
    _shot(admin, "5-audit")
    actions = set(
        AuditEvent.objects.filter(organization=org, actor=nora).values_list("action", flat=True)
    )
    assert {"member.joined", "second_factor.enabled", "auth.sign_in"} <= actions
    assert any(action.startswith("transcript.read.") for action in actions)
    assert AuditEvent.objects.filter(
        organization=org, actor=alice, action="member.deactivated"
    ).exists()
    for page in (admin, nora_page):
        assert page.evaluate("window.__csp") == []

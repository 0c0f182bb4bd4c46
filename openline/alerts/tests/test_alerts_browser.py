"""Shifts and SMS alerts end to end, in Chromium against the real ASGI app: an admin sets up
a shift, an on-call shift and the alert policy; a counselor and a supervisor give their
phones and confirm each with the code texted to it; a help seeker texts from the phone
simulator; the counselor's simulated handset
gets the alert and a reminder, the supervisor's the escalation; the counselor assumes the
conversation and nothing more is sent.

The clock is pinned (``clock``: Monday 3 March 2025, 09:00 in Chicago). The live server
runs in this process, so its pages, the intake and the sweep all read the same clock; the
test moves it forward and runs the sweep itself (the scheduler does every 10 s)."""

from __future__ import annotations

import os
from typing import Any

import pytest

from conftest import ARTIFACTS, Clock, wait_for
from openline.alerts.models import Alert, AlertKind
from openline.alerts.sweep import alerts_sweep
from openline.alerts.tests.conftest import texted_codes
from openline.availability.models import Shift, ShiftKind
from openline.messaging.models import Conversation, ConversationStatus, InboundEvent

pytestmark = pytest.mark.browser
LIVE = 5_000
HELP_SEEKER = "+12025550133"
SECRET = "I can't stop thinking about ending it"
BOB_PHONE = "+13125550101"
SUE_PHONE = "+13125550102"
DAY = "2025-03-03"  # the clock's day, in Chicago


def _shot(page: Any, name: str) -> None:
    os.makedirs(ARTIFACTS, exist_ok=True)
    page.screenshot(path=os.path.join(ARTIFACTS, f"alerts-{name}.png"), full_page=True)


def _context(browser: Any, width: int, height: int) -> Any:
    # The organization's zone, so that the simulator's times read like the clock's.
    return browser.new_context(
        viewport={"width": width, "height": height}, timezone_id="America/Chicago"
    )


def _log_in(browser: Any, live: str, email: str, password: str, width: int = 1280) -> Any:
    page = _context(browser, width, 860).new_page()
    page.goto(f"{live}/login/")
    page.fill("#id_username", email)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_function("document.body.dataset.liveState === 'open'", timeout=LIVE)
    return page


def _handset(browser: Any, live: str, number: Any, phone: str) -> Any:
    """A simulated phone: the simulator page of ``number`` as ``phone``."""
    from playwright.sync_api import expect

    page = _context(browser, 390, 844).new_page()
    page.goto(f"{live}/sandbox/phone/{number.webhook_key}?phone={phone.replace('+', '%2B')}")
    # The simulator is for members: sign in (alice), and it comes back.
    page.fill("#id_username", "alice@example.org")
    page.fill("#id_password", "alice-pass-1")
    page.click("button[type=submit]")
    expect(page.locator("#my-phone")).to_have_value(phone)
    return page


def _new_shift(admin: Any, live: str, *, inbox: str, kind: str, places: str) -> None:
    from playwright.sync_api import expect

    admin.goto(f"{live}/shifts/new")
    admin.locator("#id_number").select_option(label=inbox)
    admin.locator("#id_kind").select_option(label=kind)
    admin.fill("#id_start_date", DAY)
    admin.fill("#id_start_time", "08:00")  # an hour before the clock
    admin.fill("#id_end_time", "13:00")
    admin.fill("#id_places", places)
    admin.get_by_role("button", name="Create shift").click()
    expect(admin.locator(".flash")).to_contain_text("Shift created.")


def _assign(admin: Any, shift: Shift, user: Any) -> None:
    from playwright.sync_api import expect

    row = admin.locator(f"tr[data-shift='{shift.pk}']")
    row.locator("select[name=user]").select_option(str(user.pk))
    row.get_by_role("button", name="Assign", exact=True).click()
    expect(admin.locator(".flash")).to_contain_text("Signed up.")
    expect(admin.locator(f"tr[data-shift='{shift.pk}']")).to_contain_text(str(user))


def _give_phone(page: Any, live: str, pipeline: Any, phone: str, e164: str) -> None:
    """My alerts, as the person themselves: their phone and their permission, then the code
    the sandbox carrier delivered to that phone (read from its message store)."""
    from playwright.sync_api import expect

    from openline.providers.sandbox.models import SandboxMessage

    page.goto(f"{live}/alerts/me")
    banner = page.locator("[data-alerts-banner]")
    expect(banner).to_have_attribute("data-alerts-banner", "missing")
    page.get_by_label("Mobile number").fill(phone)
    page.get_by_label("I permit SMS to this phone").check()
    expect(page.get_by_label("New conversation alert by SMS")).to_be_checked()
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".flash")).to_contain_text(f"We texted a code to {e164}")
    # Saved, but not confirmed: alerts do not reach this phone yet.
    expect(banner).to_have_attribute("data-alerts-banner", "missing")
    expect(banner).to_contain_text("confirm your number")
    pipeline.run()  # dispatch: the sandbox carrier delivers the code to the simulated phone
    [delivered] = SandboxMessage.objects.filter(to=e164).values_list("body", flat=True)
    code = texted_codes(e164)[-1]
    assert code in delivered and "your code to confirm alerts for" in delivered
    page.get_by_label("Code from the text").fill(code)
    _shot(page, "0-my-alerts-confirm-code")
    page.get_by_role("button", name="Confirm").click()
    expect(page.locator(".flash")).to_contain_text("Your number is confirmed")
    expect(banner).to_have_attribute("data-alerts-banner", "configured")
    expect(banner).to_contain_text("Alerts configured")


def _received(handset: Any) -> Any:
    """The texts a handset got, but for the code that confirmed it."""
    return handset.locator(".bubble.received").filter(has_not_text="your code to confirm")


def test_on_shift_counselor_gets_alert_and_reminder_supervisor_the_escalation_until_assumed(
    clock: Clock, browser: Any, live_asgi: str, pipeline: Any, org: Any, alice: Any,
    bob: Any, sue: Any, sandbox_number: Any,
) -> None:  # fmt: skip
    from playwright.sync_api import expect

    live = live_asgi

    def sweep() -> None:
        pipeline.run(alerts_sweep)  # the sweep, then dispatch to the sandbox carrier

    # 1. The admin makes today's normal shift of Main line and an on-call shift for every
    # inbox, and assigns bob and sue from the week view.
    admin = _log_in(browser, live, "alice@example.org", "alice-pass-1")
    _new_shift(admin, live, inbox="Main line", kind="Normal", places="2")
    _new_shift(
        admin, live, inbox="All inboxes (on call only)", kind="On call / support", places="1"
    )
    normal = Shift.objects.get(kind=ShiftKind.NORMAL)
    oncall = Shift.objects.get(kind=ShiftKind.ONCALL)
    assert (normal.number_id, oncall.number_id) == (sandbox_number.pk, None)
    admin.goto(f"{live}/shifts/")
    expect(admin.locator("#week-heading")).to_contain_text("3 March 2025")
    inbox_state = admin.locator(f"#inbox-states tr[data-inbox='{sandbox_number.pk}']")
    expect(inbox_state).to_have_attribute("data-online", "0")
    _assign(admin, normal, bob)
    _assign(admin, oncall, sue)
    expect(inbox_state).to_have_attribute("data-online", "1")
    expect(inbox_state).to_contain_text("Online now")

    # The alert policy; the calculator follows the form before it is saved.
    admin.goto(f"{live}/alerts/")
    calculator = admin.locator("#alert-calculator")
    expect(calculator).to_contain_text("Alerts are off")
    admin.get_by_label("Send SMS alerts for waiting conversations").check()
    admin.get_by_label("Reminder frequency").select_option(label="Every 1 min")
    admin.get_by_label("Number of reminders").select_option(label="1")
    admin.get_by_label("Escalate to on-call / support").select_option(label="After 2")
    expect(calculator.locator("tbody tr")).to_have_count(3)
    expect(calculator.locator("tbody tr").nth(1)).to_contain_text("1 min")
    expect(calculator.locator("tbody tr").nth(1)).to_contain_text("Reminder 1")
    expect(calculator.locator("tbody tr").nth(2)).to_contain_text("2 min")
    expect(calculator.locator("tbody tr").nth(2)).to_contain_text("Escalation")
    # Nobody has given a phone yet: on shift, but unreachable.
    expect(calculator).to_contain_text("0 people on a normal shift of Main line and 0 on call")
    expect(calculator.locator("[data-total]")).to_have_text("0")
    admin.get_by_role("button", name="Save alert settings").click()
    expect(admin.locator(".flash")).to_contain_text("Alert settings saved for Main line.")

    # 2. Bob and sue give their phones and permission, each in their own login.
    counselor = _log_in(browser, live, "bob@example.org", "bob-pass-12")
    _give_phone(counselor, live, pipeline, "(312) 555-0101", BOB_PHONE)
    supervisor = _log_in(browser, live, "sue@example.org", "supervisor-pass-123")
    _give_phone(supervisor, live, pipeline, "312-555-0102", SUE_PHONE)
    supervisor.context.close()

    # Now the calculator counts them: bob gets the alert and the reminder, sue the
    # escalation.
    admin.reload()
    expect(calculator).to_contain_text("1 person on a normal shift of Main line and 1 on call")
    expect(calculator.locator("[data-total]")).to_have_text("3")
    expect(admin.get_by_label("Reminder frequency")).to_have_value("1")
    _shot(admin, "1-settings-calculator")

    # 3. A help seeker texts Main line from the phone simulator.
    counselor.goto(f"{live}/")
    counselor.wait_for_function("document.body.dataset.liveState === 'open'", timeout=LIVE)
    seeker = _handset(browser, live, sandbox_number, HELP_SEEKER)
    bobs_phone = _handset(browser, live, sandbox_number, BOB_PHONE)
    sues_phone = _handset(browser, live, sandbox_number, SUE_PHONE)
    seeker.fill("#body", SECRET)
    seeker.click("#send")
    expect(seeker.locator(".bubble.sent")).to_have_text(SECRET)
    wait_for(lambda: InboundEvent.objects.filter(from_number=HELP_SEEKER).exists())
    pipeline.run()
    conversation = Conversation.objects.get(number=sandbox_number, contact__phone=HELP_SEEKER)
    assert conversation.status == ConversationStatus.WAITING
    assert not conversation.opened_offline  # bob is on shift: the inbox is online
    row = counselor.locator(f"#queue .queue-row[data-conversation-id='{conversation.pk}']")
    expect(row).to_contain_text("Main line", timeout=LIVE)

    # 4. The first sweep: the new-conversation alert reaches bob's phone, and only his.
    sweep()
    link = f"/conversations/{conversation.pk}/"
    expect(_received(bobs_phone)).to_have_count(1, timeout=LIVE)
    codes = bobs_phone.locator(".bubble.received").filter(has_text="your code to confirm")
    expect(codes).to_have_count(1)  # the code came before any alert, from the same number
    alert = _received(bobs_phone).first
    expect(alert).to_contain_text("is waiting in Main line (just now)")
    expect(alert).to_contain_text(link)
    expect(alert).not_to_contain_text(SECRET)
    expect(alert).not_to_contain_text("555-0133")
    expect(alert).not_to_contain_text("5550133")
    sweep()  # again at the same moment: nothing new
    assert Alert.objects.count() == 1

    # A minute later: the reminder, to bob again.
    clock.advance(minutes=1)
    sweep()
    expect(_received(bobs_phone)).to_have_count(2, timeout=LIVE)
    reminder = _received(bobs_phone).nth(1)
    expect(reminder).to_contain_text("is waiting in Main line (waiting 1 min)")
    expect(reminder).to_contain_text(link)
    expect(reminder).not_to_contain_text(SECRET)
    _shot(bobs_phone, "2-counselor-phone-alert-and-reminder")
    expect(_received(sues_phone)).to_have_count(0)

    # Two minutes unanswered: the escalation, to sue on call.
    clock.advance(minutes=1)
    sweep()
    expect(_received(sues_phone)).to_have_count(1, timeout=LIVE)
    escalation = _received(sues_phone).first
    expect(escalation).to_contain_text("OpenLine escalation: nobody has answered")
    expect(escalation).to_contain_text("in Main line (waiting 2 min)")
    expect(escalation).to_contain_text(link)
    expect(escalation).not_to_contain_text(SECRET)
    _shot(sues_phone, "3-supervisor-phone-escalation")

    # 5. Bob assumes the conversation from the queue; from then on nothing is sent.
    row.get_by_role("button", name="Assume").click()
    wait_for(
        lambda: Conversation.objects.filter(
            pk=conversation.pk, status=ConversationStatus.ACTIVE, assigned_to=bob
        ).exists()
    )
    for _ in range(10):
        clock.advance(minutes=1)
        sweep()
    sweep()
    kinds = sorted(Alert.objects.values_list("kind", "attempt", "phone", "user_id"))
    assert kinds == sorted(
        [
            (AlertKind.NEW, 1, BOB_PHONE, bob.pk),
            (AlertKind.REMINDER, 2, BOB_PHONE, bob.pk),
            (AlertKind.ESCALATION, 3, SUE_PHONE, sue.pk),
        ]
    )
    assert all(a.message_id and not a.refused for a in Alert.objects.all())
    # The handsets, re-read from the server after those sweeps, show nothing new.
    for handset, count in ((bobs_phone, 2), (sues_phone, 1)):
        handset.reload()
        expect(_received(handset)).to_have_count(count, timeout=LIVE)
    admin.reload()
    log = admin.locator("[data-alert-log] tbody tr")
    expect(log).to_have_count(3)
    expect(log.filter(has_text="Escalation")).to_contain_text("sue@example.org")
    seeker.reload()
    expect(seeker.locator(".bubble.sent")).to_have_text(SECRET)
    expect(_received(seeker).filter(has_text="OpenLine")).to_have_count(0)

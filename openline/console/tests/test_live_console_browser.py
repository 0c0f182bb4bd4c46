"""The live console in Chromium: a counselor and a supervisor in two browser contexts, a
person on the sandbox phone simulator, and an outsider from another organization. Nothing
is reloaded by hand: every change reaches the screens over the WebSocket. The real ASGI
app, inbound processor and task worker run live; the test only drives browsers."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest

from conftest import ARTIFACTS

pytestmark = pytest.mark.browser

LIVE = 5_000  # ms: "within a second", with room for a loaded, slower CI machine
Page = Any


def _shot(page: Page, name: str) -> None:
    os.makedirs(ARTIFACTS, exist_ok=True)
    page.screenshot(path=os.path.join(ARTIFACTS, f"console-{name}.png"), full_page=True)


@pytest.fixture
def live(
    browser: Any, live_asgi: str, background_workers: None, caplog: pytest.LogCaptureFixture
) -> Iterator[dict[str, Any]]:
    """Open pages; each records every WebSocket frame it receives. No server errors."""
    pages: list[Page] = []

    def sign_in(email: str, password: str, *, width: int = 1280) -> Page:
        page = browser.new_context(viewport={"width": width, "height": 900}).new_page()
        page.frames_received = []  # type: ignore[attr-defined]
        page.on(
            "websocket",
            lambda ws: ws.on("framereceived", lambda f: page.frames_received.append(f)),
        )
        page.goto(f"{live_asgi}/login/")
        page.fill("#id_username", email)
        page.fill("#id_password", password)
        page.click("button[type=submit]")
        page.wait_for_function("document.body.dataset.liveState === 'open'", timeout=LIVE)
        pages.append(page)
        return page

    def phone(number: Any, sender: str) -> Page:
        page = browser.new_context(viewport={"width": 390, "height": 844}).new_page()
        page.goto(f"{live_asgi}/sandbox/phone/{number.webhook_key}?phone=%2B{sender[1:]}")
        # The simulator is for members: sign in (bob), and it comes back.
        page.fill("#id_username", "bob@example.org")
        page.fill("#id_password", "bob-pass-12")
        page.click("button[type=submit]")
        pages.append(page)
        return page

    yield {"sign_in": sign_in, "phone": phone, "url": live_asgi}
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert not errors, errors


def _text(phone: Page, body: str) -> None:
    phone.fill("#body", body)
    phone.click("#send")


def _row(page: Page, label: str) -> Any:
    return page.locator("#queue .queue-row", has_text=label)


def _events(page: Page) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for frame in page.frames_received:
        events.extend(json.loads(frame)["events"])
    return events


def test_text_appears_live_assume_reply_delivered_stop_and_outsider_sees_nothing(
    live: dict[str, Any],
    bob: Any,
    sue: Any,
    charlie: Any,
    sandbox_number: Any,
    other_number: Any,
) -> None:
    from playwright.sync_api import expect

    counselor = live["sign_in"]("bob@example.org", "bob-pass-12")
    supervisor = live["sign_in"]("sue@example.org", "supervisor-pass-123")
    outsider = live["sign_in"]("charlie@example.org", "charlie-pass")
    supervisor.click("#queue nav a[data-view=all]")
    expect(supervisor.locator("#queue")).to_have_attribute("data-view", "all")
    phone = live["phone"](sandbox_number, "+12025550133")

    _text(phone, "hi, is anyone there? I need someone to talk to")
    for page in (counselor, supervisor):
        row = _row(page, "+1 202-555-0133")
        expect(row).to_contain_text("I need someone to talk to", timeout=LIVE)
        expect(row.locator(".dot-unread")).to_have_count(1)
    _shot(counselor, "1-waiting")

    _row(counselor, "+1 202-555-0133").get_by_role("button", name="Assume").click()
    pane = counselor.locator(".pane")
    expect(pane.locator(".pane-head")).to_contain_text("With you", timeout=LIVE)
    # the supervisor sees who has it, live
    expect(_row(supervisor, "+1 202-555-0133")).to_contain_text("bob@example.org", timeout=LIVE)
    expect(_row(supervisor, "+1 202-555-0133")).to_contain_text("Active")

    pane.locator(".reply-body").fill("Hi, I'm Bob. I'm here and listening.")
    expect(pane.locator(".segment-counter")).to_contain_text("1 segment")
    pane.locator(".reply-box button[type=submit]").click()
    expect(phone.locator(".bubble.received")).to_have_text(
        "Hi, I'm Bob. I'm here and listening.", timeout=10_000
    )
    expect(pane.locator(".msg-out .status").last).to_have_text("delivered", timeout=LIVE)
    _shot(counselor, "2-replied")
    _shot(supervisor, "3-supervisor-all")

    _text(phone, "STOP")
    expect(pane.locator(".reply-body")).to_be_disabled(timeout=LIVE)
    expect(pane.locator(".reply-box")).to_contain_text("opted out of texts")
    _shot(counselor, "4-opted-out")

    # The outsider's socket was open the whole time and heard nothing of it.
    assert _events(outsider) == []
    assert {e["organization_id"] for e in _events(supervisor)} == {sandbox_number.organization_id}
    seen = {e["type"] for e in _events(counselor)}
    assert {"conversation.created", "conversation.assigned", "message.status"} <= seen


def test_two_counselors_race_to_assume_and_exactly_one_wins(
    live: dict[str, Any], bob: Any, dora: Any, sandbox_number: Any
) -> None:
    from playwright.sync_api import expect

    pages = {
        "bob": live["sign_in"]("bob@example.org", "bob-pass-12"),
        "dora": live["sign_in"]("dora@example.org", "counselor-pass-123"),
    }
    _text(live["phone"](sandbox_number, "+12025550144"), "can someone help")
    buttons = {}
    for name, page in pages.items():
        row = _row(page, "+1 202-555-0144")
        expect(row).to_be_visible(timeout=LIVE)
        buttons[name] = row.get_by_role("button", name="Assume")
    # Both clicks go out before either answer comes back.
    for button in buttons.values():
        button.dispatch_event("click")
    winners = []
    for name, page in pages.items():
        page.wait_for_function(
            "document.querySelector('.pane') || document.querySelector('.toast-error')",
            timeout=LIVE,
        )
        if page.locator(".pane").count():
            winners.append(name)
        else:
            loser_toast = page.locator(".toast-error")
    assert len(winners) == 1, winners
    expect(loser_toast).to_contain_text(f"Already taken: {winners[0]}@example.org has it.")
    _shot(pages["bob"], "5-race-bob")
    _shot(pages["dora"], "5-race-dora")


def test_mark_unread_survives_reload(live: dict[str, Any], bob: Any, sandbox_number: Any) -> None:
    from playwright.sync_api import expect

    counselor = live["sign_in"]("bob@example.org", "bob-pass-12")
    _text(live["phone"](sandbox_number, "+12025550155"), "hello")
    row = _row(counselor, "+1 202-555-0155")
    expect(row.locator(".dot-unread")).to_have_count(1, timeout=LIVE)
    row.locator("a.conv-row").click()  # opening it reads it
    expect(counselor.locator(".pane")).to_be_visible()
    expect(row.locator(".dot-read")).to_have_count(1, timeout=LIVE)
    counselor.reload()
    expect(_row(counselor, "+1 202-555-0155").locator(".dot-read")).to_have_count(1)
    _row(counselor, "+1 202-555-0155").get_by_role("button", name="Mark unread").click()
    expect(_row(counselor, "+1 202-555-0155").locator(".dot-unread")).to_have_count(1)
    counselor.reload()
    expect(_row(counselor, "+1 202-555-0155").locator(".dot-unread")).to_have_count(1)
    counselor.check("input[name=unread]")
    expect(counselor.locator("#queue .queue-row")).to_have_count(1)


def test_dropped_connection_catches_up_without_duplicates(
    live: dict[str, Any], bob: Any, sandbox_number: Any
) -> None:
    from playwright.sync_api import expect

    counselor = live["sign_in"]("bob@example.org", "bob-pass-12")
    phone = live["phone"](sandbox_number, "+12025550166")
    _text(phone, "first")
    _row(counselor, "+1 202-555-0166").get_by_role("button", name="Assume").click()
    pane = counselor.locator(".pane")
    expect(pane.locator(".thread")).to_contain_text("first", timeout=LIVE)

    counselor.evaluate("window.OpenLine.dropConnection()")
    counselor.wait_for_function("document.body.dataset.liveState === 'closed'")
    _text(phone, "second, while you were away")
    expect(phone.locator(".bubble.sent").last).to_contain_text("second")
    counselor.wait_for_timeout(1000)
    expect(pane.locator(".thread")).not_to_contain_text("second")  # really missed

    counselor.evaluate("window.OpenLine.resumeConnection()")
    expect(pane.locator(".thread")).to_contain_text("second", timeout=LIVE)
    expect(pane.locator(".msg-in", has_text="second")).to_have_count(1)
    expect(counselor.locator("#queue .queue-row")).to_have_count(0)  # it is not waiting
    expect(counselor.locator("#count-mine")).to_have_text("1")


def test_socket_reconnects_by_itself_after_a_drop(
    live: dict[str, Any], bob: Any, sandbox_number: Any
) -> None:
    from playwright.sync_api import expect

    counselor = live["sign_in"]("bob@example.org", "bob-pass-12")
    counselor.evaluate("window.OpenLine.dropConnection(false)")  # a blip, not held
    counselor.wait_for_function("document.body.dataset.liveState === 'closed'")
    counselor.wait_for_function("document.body.dataset.liveState === 'open'", timeout=5_000)
    _text(live["phone"](sandbox_number, "+12025550122"), "after the blip")
    expect(_row(counselor, "+1 202-555-0122")).to_have_count(1, timeout=LIVE)


def test_phone_sized_screen_opens_one_conversation_with_a_way_back(
    live: dict[str, Any], bob: Any, sandbox_number: Any
) -> None:
    from playwright.sync_api import expect

    counselor = live["sign_in"]("bob@example.org", "bob-pass-12", width=390)
    _text(live["phone"](sandbox_number, "+12025550177"), "are you there")
    _row(counselor, "+1 202-555-0177").locator("a.conv-row").click()
    expect(counselor.locator(".pane")).to_be_visible()
    expect(counselor.locator("#queue-column")).to_be_hidden()
    _shot(counselor, "6-phone-sized")
    counselor.get_by_role("button", name="Back to the list").click()
    expect(counselor.locator("#queue-column")).to_be_visible()


def test_keyboard_search_and_open(live: dict[str, Any], bob: Any, sandbox_number: Any) -> None:
    from playwright.sync_api import expect

    counselor = live["sign_in"]("bob@example.org", "bob-pass-12")
    _text(live["phone"](sandbox_number, "+12025550188"), "my landlord locked me out")
    expect(_row(counselor, "+1 202-555-0188")).to_be_visible(timeout=LIVE)
    counselor.keyboard.press("/")
    counselor.keyboard.type("landlord")
    expect(counselor.locator("#queue .queue-row")).to_have_count(1)
    counselor.keyboard.press("Escape")
    counselor.locator("#main").focus()
    counselor.keyboard.press("j")
    counselor.keyboard.press("Enter")
    expect(counselor.locator(".pane")).to_contain_text("locked me out")


def test_keyboard_moves_up_switches_tabs_and_sends(
    live: dict[str, Any], bob: Any, sandbox_number: Any
) -> None:
    from playwright.sync_api import expect

    counselor = live["sign_in"]("bob@example.org", "bob-pass-12")
    first, second = (live["phone"](sandbox_number, s) for s in ("+12025550191", "+12025550192"))
    _text(first, "first caller")
    expect(_row(counselor, "+1 202-555-0191")).to_be_visible(timeout=LIVE)
    _text(second, "second caller")
    expect(_row(counselor, "+1 202-555-0192")).to_be_visible(timeout=LIVE)
    links = [_row(counselor, f"+1 202-555-019{i}").locator("a.conv-row") for i in (1, 2)]

    # j, j goes down to the second (oldest first); k comes back up to the first
    counselor.locator("#main").focus()
    counselor.keyboard.press("j")
    counselor.keyboard.press("j")
    expect(links[1]).to_be_focused()
    counselor.keyboard.press("k")
    expect(links[0]).to_be_focused()
    counselor.keyboard.press("Enter")
    panes = [
        counselor.locator(".pane", has_text=text) for text in ("first caller", "second caller")
    ]
    expect(panes[0]).to_be_visible()
    links[1].click()
    expect(panes[1]).to_be_visible()
    expect(panes[0]).to_be_hidden()

    tabs = counselor.locator(".pane-tabs [data-tab]")
    expect(tabs).to_have_count(2)
    counselor.keyboard.press("Alt+1")
    expect(tabs.nth(0)).to_have_attribute("aria-selected", "true")
    expect(tabs.nth(1)).to_have_attribute("aria-selected", "false")
    expect(panes[0]).to_be_visible()
    expect(panes[1]).to_be_hidden()
    counselor.keyboard.press("Alt+2")
    expect(tabs.nth(1)).to_have_attribute("aria-selected", "true")
    expect(panes[1]).to_be_visible()
    expect(panes[0]).to_be_hidden()
    counselor.keyboard.press("Alt+1")
    expect(panes[0]).to_be_visible()

    box = panes[0].locator(".reply-body")
    box.click()
    box.type("I'm here with you.")
    box.press("Enter")  # a plain Enter is a new line, not a send
    box.press("Control+Enter")
    expect(first.locator(".bubble.received")).to_have_text("I'm here with you.", timeout=10_000)
    expect(panes[0].locator(".msg-out")).to_contain_text("I'm here with you.", timeout=LIVE)
    expect(panes[0].locator(".reply-body")).to_have_value("")
    expect(second.locator(".bubble.received")).to_have_count(0)


# Records what the page would show on the desktop and play, and pretends the console is
# in a background window (desktop notifications are for when it is not in front).
RECORDERS = """
window.__shown = []; window.__beeps = 0;
window.Notification = function (title, options) {
  window.__shown.push({title: title, body: options && options.body});
  this.close = function () {};
};
window.Notification.permission = "granted";
window.Notification.requestPermission = function () { return Promise.resolve("granted"); };
window.AudioContext = function () {
  return {
    currentTime: 0, destination: {},
    createOscillator: function () {
      return {frequency: {}, connect: function () {}, start: function () { window.__beeps++; },
              stop: function () {}};
    },
    createGain: function () { return {gain: {}, connect: function () {}}; }
  };
};
document.hasFocus = function () { return false; };
"""


def _notices_asked(page: Page) -> list[str]:
    """Every request for what a notification may say: made only when one is to pop up."""
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if r.url.endswith("/notice") else None)
    return asked


def _nothing_popped_up(page: Page, asked: list[str]) -> None:
    page.wait_for_timeout(300)  # room for a request already made to be reported
    assert asked == []
    assert page.locator(".toast").count() == 0
    assert page.evaluate("[window.__shown, window.__beeps]") == [[], 0]


def test_notifications_toast_desktop_and_sound_without_message_content(
    live: dict[str, Any], bob: Any, dora: Any, sue: Any, sandbox_number: Any
) -> None:
    from playwright.sync_api import expect

    from openline.core.models import Membership

    Membership.objects.filter(user=dora).update(notify_sound=False, notify_desktop=False)
    # Sue has desktop notifications and sound on, but no new conversation alert.
    Membership.objects.filter(user=sue).update(notify_new_conversation=False)
    pages = {}
    for name, password in (
        ("bob", "bob-pass-12"),
        ("dora", "counselor-pass-123"),
        ("sue", "supervisor-pass-123"),
    ):
        page = live["sign_in"](f"{name}@example.org", password)
        page.add_init_script(RECORDERS)
        page.reload()
        page.wait_for_function("document.body.dataset.liveState === 'open'")
        pages[name] = page
    sue_asked = _notices_asked(pages["sue"])
    phone = live["phone"](sandbox_number, "+12025550199")
    _text(phone, "my secret problem")

    bob_page = pages["bob"]
    expect(bob_page.locator(".toast")).to_contain_text("+1 202-555-0199 is waiting", timeout=LIVE)
    expect(pages["dora"].locator(".toast")).to_contain_text("is waiting", timeout=LIVE)
    shown = bob_page.evaluate("window.__shown")
    assert shown == [{"title": "Someone is waiting", "body": "+1 202-555-0199 · Main line"}]
    assert bob_page.evaluate("window.__beeps") == 1
    assert pages["dora"].evaluate("window.__shown") == []  # switched off for her
    assert pages["dora"].evaluate("window.__beeps") == 0
    # Sue's list shows the new conversation (the same event), but nothing pops up for her.
    expect(_row(pages["sue"], "+1 202-555-0199")).to_be_visible(timeout=LIVE)
    _nothing_popped_up(pages["sue"], sue_asked)

    _row(bob_page, "+1 202-555-0199").get_by_role("button", name="Assume").click()
    expect(bob_page.locator(".pane")).to_be_visible()
    _text(phone, "another private detail")
    expect(bob_page.locator(".toast", has_text="New message from")).to_have_text(
        "New message from +1 202-555-0199 · Main line", timeout=LIVE
    )
    bob_page.wait_for_function("window.__shown.length === 2", timeout=LIVE)
    assert bob_page.evaluate("window.__shown")[1] == {
        "title": "New message",
        "body": "+1 202-555-0199 · Main line",
    }
    assert bob_page.evaluate("window.__beeps") == 2
    everything = json.dumps(bob_page.evaluate("window.__shown"))
    everything += bob_page.locator("#toasts").inner_text()
    assert "secret" not in everything and "private" not in everything
    _shot(bob_page, "7-notification")

    # Bob switches the new message alert off on his preferences page.
    bob_page.goto(f"{live['url']}/preferences/")
    bob_page.get_by_label("New message alert").uncheck()
    bob_page.get_by_role("button", name="Save").click()
    expect(bob_page.locator("body")).to_contain_text("Preferences saved.")
    bob_page.goto(f"{live['url']}/")
    bob_page.wait_for_function("document.body.dataset.liveState === 'open'", timeout=LIVE)
    pane = bob_page.locator(".pane")
    expect(pane).to_be_visible()  # restored from before
    bob_asked = _notices_asked(bob_page)
    _text(phone, "a third worry")
    expect(pane.locator(".thread")).to_contain_text("a third worry", timeout=LIVE)
    _nothing_popped_up(bob_page, bob_asked)


def test_saved_reply_by_shortcut_and_from_the_menu(
    live: dict[str, Any], bob: Any, org: Any, sandbox_number: Any
) -> None:
    from playwright.sync_api import expect

    from openline.console.models import SavedReply

    bob.display_name = "Bob"
    bob.save()
    SavedReply.objects.create(
        organization=org, name="Greeting", shortcut="hi", body="Hi, I'm {counselor}."
    )
    SavedReply.objects.create(
        organization=org, name="Resources", shortcut="res", body="{organization} can help."
    )
    counselor = live["sign_in"]("bob@example.org", "bob-pass-12")
    _text(live["phone"](sandbox_number, "+12025550111"), "hello")
    _row(counselor, "+1 202-555-0111").get_by_role("button", name="Assume").click()
    box = counselor.locator(".pane .reply-body")
    box.click()
    box.type("/hi")
    box.press("Tab")
    expect(box).to_have_value("Hi, I'm Bob.")
    counselor.locator(".pane .saved-replies").select_option(label="Resources (/res)")
    expect(box).to_have_value("Hi, I'm Bob.Riverside Crisis Line can help.")
    expect(counselor.locator(".pane .segment-counter")).to_contain_text("1 segment")


def test_a_slow_refresh_of_one_conversation_does_not_hold_up_another(
    live: dict[str, Any], bob: Any, sandbox_number: Any
) -> None:
    """Every list and conversation refreshes on its own: while one conversation's refresh
    hangs, a text in another open conversation still shows, and the hung one lands once
    its answer comes. (htmx keeps one request lock per source element and keeps only the
    last queued request, so refreshes that shared a lock could silently drop each other.)"""
    from playwright.sync_api import expect

    counselor = live["sign_in"]("bob@example.org", "bob-pass-12")
    first, second = (live["phone"](sandbox_number, s) for s in ("+12025550171", "+12025550172"))
    _text(first, "one")
    _text(second, "two")
    # Both texts listed first: a click on a row the second text's list refresh then
    # replaces would be lost.
    for label, body in (("+1 202-555-0171", "one"), ("+1 202-555-0172", "two")):
        expect(_row(counselor, label)).to_contain_text(body, timeout=LIVE)
    ids = []
    for label in ("+1 202-555-0171", "+1 202-555-0172"):
        _row(counselor, label).get_by_role("button", name="Assume").click()
        pane = counselor.locator(".pane:visible")
        expect(pane.locator(".pane-head")).to_contain_text(label, timeout=LIVE)
        ids.append(pane.get_attribute("data-conversation-id"))
        # the list refresh that follows moves rows; the next click waits for it to land
        taken = _row(counselor, label).get_by_role("button", name="Assume")
        expect(taken).to_have_count(0, timeout=LIVE)
    counselor.click("#queue nav a[data-view=mine]")
    expect(_row(counselor, "+1 202-555-0172")).to_be_visible()
    held: list[Any] = []
    counselor.route(f"**/conversations/{ids[0]}/thread?*", lambda route: held.append(route))

    _text(first, "first, answered slowly")
    for _ in range(LIVE // 50):  # route handlers run while playwright waits
        if held:
            break
        counselor.wait_for_timeout(50)
    assert held, "the first conversation's refresh was never asked for"

    _text(second, "second, while the first hangs")
    threads = [counselor.locator(f"#thread-{i}") for i in ids]
    expect(threads[1]).to_contain_text("second, while the first hangs", timeout=LIVE)
    expect(_row(counselor, "+1 202-555-0172")).to_contain_text("second, while", timeout=LIVE)
    assert "first, answered slowly" not in (threads[0].text_content() or "")

    for route in held:
        route.continue_()
    counselor.unroute(f"**/conversations/{ids[0]}/thread?*")
    expect(threads[0]).to_contain_text("first, answered slowly", timeout=LIVE)

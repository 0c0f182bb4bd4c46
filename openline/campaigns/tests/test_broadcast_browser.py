"""Broadcasts in Chromium (issue 15), as an admin does them: tag people on their contact
page, compose a broadcast to a tag minus an exclusion tag, read who is selected and who
can be texted, meet the red credit warning with the buttons off, add credits on the
Credits page, schedule the broadcast, send another now and watch its progress bar finish
live; meanwhile one recipient replies from the phone simulator (the reply waits in a
counselor's queue) and another texts STOP while it is still sending and gets nothing more.
A second test shows who waits for their sending hours.

Importing contacts from a CSV file is driven in Chromium by
openline/contacts/tests/test_imports_browser.py, voice broadcasts (sent, scheduled) by
test_voice_browser.py.

The real ASGI app, the inbound processor and the task worker run live; the test only
drives browsers. The live server does not run the scheduler (its ten-second loop starts
scheduled broadcasts), so the scheduled broadcast is checked as scheduled and the one
that goes out is sent now. The sending window is open all day, so the time of day does
not matter; the second test builds a window that is open in New York and closed in
Honolulu whatever the time is."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from conftest import ARTIFACTS
from openline.campaigns.tests import browsing

pytestmark = pytest.mark.browser

LIVE = 5_000  # ms: what reaches a screen over the socket, with room for a slow machine
Page = Any

BODY = "Hi {first_name}, the pool reopens Monday at 7."
ALL_DAY = (time(0, 0), time(23, 59, 59, 999_999))


def _shot(page: Page, name: str) -> None:
    os.makedirs(ARTIFACTS, exist_ok=True)
    page.screenshot(path=os.path.join(ARTIFACTS, f"broadcast-{name}.png"), full_page=True)


@pytest.fixture
def slow_number(org: Any) -> Any:
    """The sandbox inbox, sending one segment every two seconds: a broadcast to eight
    people takes over ten seconds, long enough for someone to text STOP while it is still
    going (the last one is reached some eight seconds after the first)."""
    from openline.providers.services import number_add

    return number_add(
        organization=org,
        provider="sandbox",
        e164="+12025550142",
        name="Main line",
        segments_per_second=0.5,
    )


@pytest.fixture
def live(
    browser: Any,
    live_asgi: str,
    background_workers: None,
    alice: Any,
    bob: Any,
    caplog: pytest.LogCaptureFixture,
) -> Iterator[dict[str, Any]]:
    """Open pages (each records the WebSocket frames it receives); no server errors."""

    def sign_in(email: str, password: str) -> Page:
        return browsing.sign_in(browser, live_asgi, email, password, record_frames=True)

    def phone(number: Any, sender: str) -> Page:
        return browsing.phone(browser, live_asgi, number, sender)

    yield {"sign_in": sign_in, "phone": phone, "url": live_asgi}
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert not errors, errors


def _person(
    org: Any, admin: Any, phone: str, name: str, tags: str = "", opt_in: bool = True
) -> Any:
    from openline.contacts.models import ConsentSource
    from openline.contacts.services.consent import consent_record_opt_in
    from openline.contacts.services.contacts import contact_create
    from openline.contacts.services.tags import contact_set_tags

    contact = contact_create(organization_id=org.pk, phone=phone, name=name)
    contact_set_tags(contact=contact, names=[t for t in tags.split(",") if t])
    if opt_in:
        consent_record_opt_in(
            organization_id=org.pk,
            phone=phone,
            source=ConsentSource.STAFF,
            evidence="signed the pool registration form",
            actor_id=admin.pk,
        )
    return contact


@pytest.fixture
def swimmers(org: Any, alice: Any, slow_number: Any) -> dict[str, Any]:
    """The pool's people, all in Washington (America/New_York). Ann and Tess have no tags
    yet: the admin tags them in the test. Zed is made last, so the broadcast reaches him
    last (recipients go out in the order they were added)."""
    from openline.campaigns.models import SendingWindow

    SendingWindow.objects.create(organization=org, start=ALL_DAY[0], end=ALL_DAY[1])
    people = {"ann": _person(org, alice, "+12025550111", "Ann Lee")}
    for key, phone, name in (
        ("ben", "+12025550112", "Ben Ortiz"),
        ("cat", "+12025550113", "Cat Wu"),
        ("dan", "+12025550114", "Dan Roe"),
        ("eve", "+12025550115", "Eve Park"),
        ("fay", "+12025550116", "Fay Diaz"),
        ("gus", "+12025550117", "Gus Kim"),
    ):
        people[key] = _person(org, alice, phone, name, "swim")
    people["tess"] = _person(org, alice, "+12025550118", "Tess Marsh")  # a lifeguard
    people["olive"] = _person(org, alice, "+12025550119", "Olive Hart", "swim", opt_in=False)
    people["hal"] = _person(org, alice, "+12025550120", "Hal Yun", "yoga")
    people["zed"] = _person(org, alice, "+12025550121", "Zed Stone", "swim")
    return people


def _tag_on_contact_page(page: Page, url: str, name: str, tags: str) -> None:
    from playwright.sync_api import expect

    page.goto(f"{url}/contacts/")
    page.get_by_role("link", name=name).click()
    expect(page.locator("h1")).to_have_text(name)
    page.get_by_label("Tags").fill(tags)
    page.get_by_role("button", name="Save").click()
    expect(page.locator("body")).to_contain_text("Contact saved.")
    badges = page.locator(".content-head .badge.tag")
    expect(badges).to_have_text(sorted(t.strip() for t in tags.split(",")))


def _compose(page: Page, url: str, name: str, *, tag: str, leave_out: str = "") -> None:
    from playwright.sync_api import expect

    page.goto(f"{url}/broadcasts/")
    page.get_by_role("link", name="New broadcast").click()
    page.get_by_label("Name").fill(name)
    page.get_by_label("Message").fill(BODY)
    expect(page.locator("#broadcast-counter")).to_contain_text("1 segment")
    page.locator("#field-include_tags").get_by_label(tag, exact=True).check()
    if leave_out:
        page.locator("#field-exclude_tags").get_by_label(leave_out, exact=True).check()
    page.locator("#field-numbers").get_by_label("Main line").check()


def _progress(page: Page) -> Any:
    return page.locator("#broadcast-progress")


def _events(page: Page, kind: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for frame in page.frames_received:
        events.extend(e for e in json.loads(frame)["events"] if e["type"] == kind)
    return events


def _text(phone: Page, body: str) -> None:
    phone.fill("#body", body)
    phone.click("#send")


def _fresh_thread(phone: Page) -> None:
    """Let the simulator poll its thread once more (it does every second)."""
    with phone.expect_response(lambda r: "/thread?" in r.url, timeout=LIVE):
        pass


def test_admin_tags_composes_adds_credits_schedules_sends_and_a_stop_mid_way_gets_nothing(
    live: dict[str, Any], org: Any, slow_number: Any, swimmers: dict[str, Any]
) -> None:
    from playwright.sync_api import expect

    from openline.campaigns.models import (
        Broadcast,
        BroadcastRecipient,
        BroadcastStatus,
        RecipientStatus,
    )
    from openline.contacts.models import ConsentEvent, ConsentKind
    from openline.providers.sandbox.models import SandboxMessage

    url = live["url"]
    admin = live["sign_in"]("alice@example.org", "alice-pass-1")

    # 1. Tags on the contact page: Ann joins the swimmers; Tess swims but is staff.
    _tag_on_contact_page(admin, url, "Ann Lee", "swim")
    _shot(admin, "01-contact-tagged")
    _tag_on_contact_page(admin, url, "Tess Marsh", "swim, staff")

    # 2. Compose to "swim", leaving out "staff".
    _compose(admin, url, "Pool reopening (scheduled)", tag="swim", leave_out="staff")
    _shot(admin, "02-compose")
    admin.get_by_role("button", name="Preview").click()

    # 3. The draft: 9 selected (Tess left out by her tag, Hal has no swim tag), 8 can be
    # texted (Olive never opted in); 8 credits needed, none available: the red warning.
    expect(admin.locator("h1")).to_have_text("Pool reopening (scheduled)")
    expect(admin.get_by_test_id("selected")).to_have_text("9")
    expect(admin.get_by_test_id("eligible")).to_have_text("8")
    expect(admin.locator("tr[data-reason=no_opt_in]")).to_contain_text("No opt-in on record")
    expect(admin.locator("tr[data-reason=no_opt_in] td").last).to_have_text("1")
    for reason in ("opted_out", "not_textable", "opt_out_pending"):
        expect(admin.locator(f"tr[data-reason={reason}] td").last).to_have_text("0")
    people = admin.locator("#people table.people")
    expect(people).to_contain_text("Ann Lee")
    expect(people).not_to_contain_text("Tess Marsh")
    expect(people).not_to_contain_text("Hal Yun")
    sample = admin.get_by_test_id("sample").inner_text()
    assert sample == "Hi Ann, the pool reopens Monday at 7.\nReply STOP to opt out."
    expect(admin.get_by_test_id("needed")).to_have_text("8")
    expect(admin.get_by_test_id("available")).to_have_text("0")
    shortfall = admin.get_by_test_id("shortfall")
    expect(shortfall).to_contain_text("Not enough credits: 8 short")
    assert shortfall.evaluate("e => getComputedStyle(e).color") == "rgb(164, 40, 44)"  # red
    send_now = admin.get_by_role("button", name="Send now to 8")
    schedule = admin.get_by_role("button", name="Schedule")
    expect(send_now).to_be_disabled()
    expect(schedule).to_be_disabled()
    draft_url = admin.url
    _shot(admin, "03-draft-short-of-credits")

    # 4. Add credits on the Credits page, from the warning's link.
    shortfall.get_by_role("link", name="Add credits").click()
    expect(admin.locator("h1")).to_have_text("Credits")
    admin.get_by_label("Kind").select_option(label="Purchase")
    admin.get_by_label("Credits", exact=True).fill("20")
    admin.get_by_label("Note").fill("Invoice 2024-117")
    admin.get_by_role("button", name="Add credits").click()
    expect(admin.locator("body")).to_contain_text("20 credits added.")
    expect(admin.get_by_test_id("available")).to_have_text("20")
    expect(admin.locator("table.credit-ledger")).to_contain_text("Invoice 2024-117")
    _shot(admin, "04-credits-added")

    # 5. Back on the draft: no warning, the buttons work. Schedule it two hours ahead, in
    # the organization's time zone (Chicago).
    admin.goto(draft_url)
    expect(admin.get_by_test_id("available")).to_have_text("20")
    expect(admin.get_by_test_id("shortfall")).to_have_count(0)
    expect(send_now).to_be_enabled()
    expect(admin.locator("label[for=id_scheduled_for]")).to_contain_text("America/Chicago")
    chicago = ZoneInfo("America/Chicago")
    when = (timezone.now() + timedelta(hours=2)).astimezone(chicago).replace(second=0)
    admin.get_by_label("Send at").fill(when.strftime("%Y-%m-%dT%H:%M"))
    schedule.click()
    expect(admin.locator("body")).to_contain_text("Scheduled.")
    expect(_progress(admin).locator(".badge")).to_have_text("Scheduled")
    shown = f"{when:%a} {when.day} {when:%b %Y, %H:%M}"
    expect(admin.locator("main")).to_contain_text(f"Goes out at {shown} (America/Chicago)")
    scheduled = Broadcast.objects.get(name="Pool reopening (scheduled)")
    assert scheduled.status == BroadcastStatus.SCHEDULED
    assert scheduled.scheduled_for == when.replace(microsecond=0)
    _shot(admin, "05-scheduled")
    admin.get_by_role("link", name="← Broadcasts").click()
    row = admin.locator("table.broadcast-list tr", has_text="Pool reopening (scheduled)")
    expect(row).to_contain_text(f"Scheduled for {when:%a} {when.day} {when:%b, %H:%M}")
    admin.get_by_role("link", name="Credits", exact=True).click()
    expect(admin.get_by_test_id("reserved")).to_have_text("8")
    expect(admin.get_by_test_id("available")).to_have_text("12")

    # 6. Two people have their phones open; a counselor watches the queue.
    counselor = live["sign_in"]("bob@example.org", "bob-pass-12")
    expect(counselor.locator("#queue")).to_contain_text("Nobody is waiting")
    ann = live["phone"](slow_number, swimmers["ann"].phone)
    zed = live["phone"](slow_number, swimmers["zed"].phone)

    # 7. A second broadcast to the same people, sent now.
    _compose(admin, url, "Pool reopening", tag="swim", leave_out="staff")
    admin.get_by_role("button", name="Preview").click()
    expect(admin.get_by_test_id("eligible")).to_have_text("8")
    expect(admin.get_by_test_id("available")).to_have_text("12")
    admin.get_by_role("button", name="Send now to 8").click()
    expect(admin.locator("body")).to_contain_text("Sending.")
    progress = _progress(admin)
    expect(progress).to_have_attribute("data-total", "8")
    broadcast = Broadcast.objects.get(name="Pool reopening")
    admin.evaluate("window.__samePage = true")  # gone if the page were reloaded
    seen_done: set[str] = set()

    def watch() -> str:
        done = progress.get_attribute("data-done") or ""
        seen_done.add(done)
        return done

    # Ann is first in line: her phone gets the text, with the opt-out line.
    expect(ann.locator(".bubble.received")).to_have_text(
        "Hi Ann, the pool reopens Monday at 7.\nReply STOP to opt out.", timeout=10_000
    )
    watch()
    # Zed is last in line: he texts STOP while it is still sending. Once it is taken in
    # ("delivered" under his bubble), the broadcast has not reached him yet.
    _text(zed, "STOP")
    expect(zed.locator(".meta.sent-meta").last).to_contain_text("delivered", timeout=LIVE)
    zed_recipient = BroadcastRecipient.objects.get(broadcast=broadcast, contact=swimmers["zed"])
    assert zed_recipient.status == RecipientStatus.PENDING
    assert progress.get_attribute("data-status") == "sending"
    assert int(watch()) < 8
    _shot(admin, "06-sending")

    # 8. The bar fills live, with no reload, to all 8 done: 7 delivered, Zed refused.
    deadline = timezone.now() + timedelta(seconds=30)
    while progress.get_attribute("data-status") != "finished" and timezone.now() < deadline:
        watch()
        admin.wait_for_timeout(100)
    expect(progress).to_have_attribute("data-status", "finished")
    assert watch() == "8"
    assert progress.locator("dd[data-bucket=delivered]").inner_text() == "7"
    assert progress.locator("dd[data-bucket=refused]").inner_text() == "1"
    assert progress.locator("dd[data-bucket=pending]").inner_text() == "0"
    expect(progress.locator("svg.progress-bar")).to_have_attribute("aria-label", "8 of 8 finished")
    expect(progress.locator(".badge")).to_have_text("Finished")
    assert admin.evaluate("window.__samePage") is True
    # It moved on the screen, not just at the end, and over the console's socket.
    assert {d for d in seen_done if d.isdigit() and 0 < int(d) < 8}, seen_done
    heard = [e["broadcast_id"] for e in _events(admin, "broadcast.progress")]
    assert broadcast.pk in heard, "no broadcast.progress event reached the console's socket"

    # 9. The log: Zed was not sent it, because he opted out.
    log = admin.locator("#broadcast-log")
    zed_row = log.locator("tbody tr", has_text="Zed Stone")
    expect(zed_row).to_contain_text("Not sent", timeout=LIVE)
    expect(zed_row).to_contain_text("Zed Stone opted out of texts")
    expect(log.locator("tbody tr", has_text="Delivered")).to_have_count(7, timeout=LIVE)
    _shot(admin, "07-finished")
    # He was refused after his STOP, when the broadcast reached him; nothing went to him.
    stop = ConsentEvent.objects.get(phone=swimmers["zed"].phone, kind=ConsentKind.OPT_OUT)
    zed_recipient.refresh_from_db()
    assert zed_recipient.status == RecipientStatus.REFUSED and zed_recipient.message_id is None
    assert zed_recipient.queued_at is not None and stop.created_at < zed_recipient.queued_at
    broadcast.refresh_from_db()
    assert broadcast.started_at is not None and broadcast.started_at < stop.created_at
    # His phone shows the opt-out confirmation (it may queue behind the broadcast's texts
    # on the slow number) and nothing else.
    received = zed.locator(".bubble.received")
    expect(received).to_contain_text("unsubscribed", timeout=20_000)
    _fresh_thread(zed)
    expect(received).to_have_count(1)
    _shot(zed, "08-phone-after-stop")
    # The carrier took the text to the seven others only: not to Zed, nor to Tess (left
    # out by tag), Olive (no opt-in) or Hal (not tagged).
    pool_to = set(SandboxMessage.objects.filter(body__contains="pool").values_list("to", flat=True))
    texted = ("ann", "ben", "cat", "dan", "eve", "fay", "gus")
    assert pool_to == {swimmers[key].phone for key in texted}

    # 10. Ann replies from her phone; it waits in the counselor's queue. The broadcast
    # itself put nobody in the queue.
    expect(counselor.locator("#queue .queue-row")).to_have_count(0)
    _text(ann, "Is the gym open too?")
    row = counselor.locator("#queue .queue-row", has_text="Ann Lee")
    expect(row).to_contain_text("Is the gym open too?", timeout=LIVE)
    expect(counselor.locator("#queue .queue-row")).to_have_count(1)
    _shot(counselor, "09-reply-in-queue")
    _shot(ann, "10-phone-reply")

    # 11. Credits: the sent broadcast settled (its reservation released); the scheduled
    # one still holds its 8.
    admin.goto(f"{url}/credits/")
    expect(admin.get_by_test_id("reserved")).to_have_text("8")


def test_people_outside_their_sending_hours_wait_and_the_draft_says_until_when(
    live: dict[str, Any], org: Any, alice: Any, slow_number: Any
) -> None:
    """A window open around the present time in New York (whatever the time is) is closed
    in Honolulu, five or six hours behind: the Honolulu swimmer waits, and the draft says
    until when, in the organization's time (Chicago)."""
    from playwright.sync_api import expect

    from openline.billing.models import CreditKind
    from openline.billing.services import credits_add
    from openline.campaigns.models import SendingWindow

    now = timezone.now()
    new_york = now.astimezone(ZoneInfo("America/New_York"))
    minute = new_york.replace(second=0, microsecond=0)
    start = max(minute - timedelta(hours=2), minute.replace(hour=0, minute=0)).time()
    end = min(minute + timedelta(hours=2), new_york.replace(hour=23, minute=59, second=59))
    SendingWindow.objects.create(organization=org, start=start, end=end.time())
    honolulu = ZoneInfo("Pacific/Honolulu")
    local = now.astimezone(honolulu)
    opens = datetime.combine(local.date(), start, tzinfo=honolulu)
    if opens <= now:
        opens += timedelta(days=1)
    until = opens.astimezone(ZoneInfo("America/Chicago"))
    _person(org, alice, "+12025550131", "Nia Cole", "swim")  # New York: open now
    _person(org, alice, "+18085550132", "Kai Akana", "swim")  # Honolulu: closed now
    credits_add(
        organization_id=org.pk, credits=5, note="allowance", actor_id=alice.pk,
        kind=CreditKind.ALLOWANCE,
    )  # fmt: skip

    admin = live["sign_in"]("alice@example.org", "alice-pass-1")
    _compose(admin, live["url"], "Swim meet", tag="swim")
    admin.get_by_role("button", name="Preview").click()
    waiting = admin.get_by_test_id("waiting")
    expect(waiting).to_contain_text("Outside their sending hours now, so they wait")
    expect(waiting.locator("li")).to_have_text(
        f"1 in Pacific/Honolulu until {until:%a} {until.day} {until:%b, %H:%M} (your time)"
    )
    expect(waiting.locator("time")).to_have_attribute("datetime", opens.isoformat())
    expect(admin.get_by_role("button", name="Send now to 2")).to_be_enabled()
    _shot(admin, "11-waiting-for-sending-hours")

    # Leaving Kai out by hand: nobody waits any more.
    admin.locator("#people tr", has_text="Kai Akana").get_by_role(
        "button", name="Leave out"
    ).click()
    expect(admin.get_by_test_id("eligible")).to_have_text("1")
    expect(admin.get_by_test_id("waiting")).to_have_count(0)
    expect(admin.locator("ul.removed")).to_contain_text("Kai Akana")

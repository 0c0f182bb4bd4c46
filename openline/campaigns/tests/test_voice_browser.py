"""Voice broadcasts in Chromium (issue 15), as an admin sends them: compose a call read
aloud, read who can be called (a landline too) and who is left out (the do-not-call list,
a mobile without consent), meet the credit warning, send it; one person's call rings in the
phone simulator, which answers it, hears the text and presses 9; the progress bar finishes
with answered, voicemail and busy calls; the number is then on the do-not-call list page.
A second test records a message with the (fake) microphone, converted to WAV in the page,
then uploads a WAV file instead, sends it to a landline and answers and hangs up in the
simulator, which plays the recording.

The real ASGI app, the inbound processor and the task worker run live (the sandbox carrier
is a task: it rings each call for OPENLINE_SANDBOX_RING_SECONDS, then ends the ones nobody
answered by their test suffix: 0001 busy, 0003 voicemail)."""

from __future__ import annotations

import io
import os
import wave
from collections.abc import Iterator
from datetime import time
from typing import Any

import pytest

from conftest import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, _wait_for_function
from openline.campaigns.tests import browsing

pytestmark = pytest.mark.browser

LIVE = 5_000
CALL = 20_000  # ms: a call is placed at the number's rate, then rings
Page = Any
SAY = "The pool is closed today because of the storm."
MAIN_LINE = "+12025550142"
# Chromium's stand-in microphone (a beeping tone) and no permission prompt.
FAKE_MEDIA = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]


def _shot(page: Page, name: str) -> None:
    os.makedirs(ARTIFACTS, exist_ok=True)
    page.screenshot(path=os.path.join(ARTIFACTS, f"voice-{name}.png"), full_page=True)


def _wav(seconds: float, rate: int = 8000) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as audio:
        audio.setnchannels(1)
        audio.setsampwidth(2)
        audio.setframerate(rate)
        audio.writeframes(b"\x10\x00\xf0\xff" * int(seconds * rate / 2))
    return buffer.getvalue()


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The suite's Chromium, with a fake microphone the pages may use without asking."""
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    monkeypatch.setattr("playwright.sync_api.Page.wait_for_function", _wait_for_function)
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS + FAKE_MEDIA
        )
        yield instance
        instance.close()


@pytest.fixture
def live(
    browser: Any,
    live_asgi: str,
    background_workers: None,
    settings: Any,
    caplog: pytest.LogCaptureFixture,
) -> Iterator[dict[str, Any]]:
    settings.OPENLINE_SANDBOX_RING_SECONDS = 6  # long enough to answer, short to wait for

    def sign_in(email: str, password: str) -> Page:
        return browsing.sign_in(browser, live_asgi, email, password, microphone=True)

    def phone(number: Any, phone: str) -> Page:
        return browsing.phone(browser, live_asgi, number, phone)

    yield {"sign_in": sign_in, "phone": phone, "url": live_asgi}
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert not errors, errors


@pytest.fixture
def main_line(org: Any) -> Any:
    from openline.providers.services import number_add

    number = number_add(
        organization=org, provider="sandbox", e164=MAIN_LINE, name="Main line",
        segments_per_second=10,
    )  # fmt: skip
    number.calls_per_second = 2.0
    number.save(update_fields=["calls_per_second"])
    return number


def _person(org: Any, admin: Any, phone: str, name: str, kind: str, opt_in: bool) -> Any:
    from openline.contacts.models import ConsentSource
    from openline.contacts.services.consent import consent_record_opt_in
    from openline.contacts.services.contacts import contact_create
    from openline.contacts.services.tags import contact_set_tags

    contact = contact_create(organization_id=org.pk, phone=phone, name=name, number_type=kind)
    contact_set_tags(contact=contact, names=["swim"])
    if opt_in:
        consent_record_opt_in(
            organization_id=org.pk, phone=phone, source=ConsentSource.STAFF,
            evidence="signed the pool registration form", actor_id=admin.pk,
        )  # fmt: skip
    return contact


@pytest.fixture
def families(org: Any, alice: Any, bob: Any, main_line: Any) -> dict[str, Any]:
    from openline.campaigns.models import SendingWindow
    from openline.contacts.models import ConsentSource, NumberType
    from openline.contacts.services.voice import voice_opt_out_record

    SendingWindow.objects.create(organization=org, start=time(0, 0), end=time(23, 59, 59))
    mobile, landline = NumberType.MOBILE, NumberType.LANDLINE
    people = {
        "ann": _person(org, alice, "+12025550111", "Ann Lee", mobile, True),  # answers here
        "ben": _person(org, alice, "+12025550001", "Ben Ortiz", mobile, True),  # busy
        "cat": _person(org, alice, "+12025550003", "Cat Wu", mobile, True),  # voicemail
        "eve": _person(org, alice, "+12025550112", "Eve Park", landline, False),  # a landline
        "fay": _person(org, alice, "+12025550113", "Fay Diaz", mobile, False),  # no consent
        "hal": _person(org, alice, "+12025550114", "Hal Yun", mobile, True),  # do not call
    }
    voice_opt_out_record(
        organization_id=org.pk, phone=people["hal"].phone, source=ConsentSource.STAFF,
        actor_id=alice.pk, text="asked at the front desk not to be called",
    )  # fmt: skip
    return people


def _compose_call(page: Page, url: str, name: str) -> None:
    from playwright.sync_api import expect

    page.goto(f"{url}/broadcasts/")
    page.get_by_role("link", name="New broadcast").click()
    page.get_by_label("Name").fill(name)
    expect(page.get_by_label("Message", exact=True)).to_be_visible()
    page.get_by_label("Voice call").check()
    expect(page.get_by_label("Message", exact=True)).to_be_hidden()
    expect(page.locator("#voice-message")).to_be_visible()
    page.locator("#field-include_tags").get_by_label("swim", exact=True).check()
    page.locator("#field-numbers").get_by_label("Main line").check()


def _credits(org: Any, admin: Any, n: int) -> None:
    from openline.billing.models import CreditKind
    from openline.billing.services import credits_add

    credits_add(
        organization_id=org.pk, credits=n, note="invoice 7", actor_id=admin.pk,
        kind=CreditKind.PURCHASE,
    )  # fmt: skip


def test_a_call_read_aloud_rings_in_the_simulator_where_9_puts_the_number_on_the_list(
    live: dict[str, Any], org: Any, alice: Any, main_line: Any, families: dict[str, Any]
) -> None:
    from playwright.sync_api import expect

    from openline.campaigns.models import Broadcast
    from openline.contacts.selectors import voice_do_not_call_entry
    from openline.messaging.models import Call

    url = live["url"]
    admin = live["sign_in"]("alice@example.org", "alice-pass-1")

    # 1. Compose a call read aloud in English.
    _compose_call(admin, url, "Pool closed (call)")
    admin.get_by_label("Or a text read aloud").fill(SAY)
    expect(admin.locator("#say-length")).to_have_text(
        "About 9 seconds read aloud, with the “press 9” line."
    )
    admin.get_by_label("Read in").select_option(label="English (US)")
    _shot(admin, "01-compose-read-aloud")
    admin.get_by_role("button", name="Preview").click()

    # 2. The draft: 6 selected; Ann, Ben, Cat and Eve's landline can be called; Hal is on
    # the do-not-call list and Fay's mobile has no consent. No credits yet: the warning.
    expect(admin.locator("h1")).to_have_text("Pool closed (call)")
    expect(admin.get_by_test_id("channel")).to_have_text("Voice call")
    expect(admin.get_by_test_id("voice-text")).to_have_text(SAY)
    expect(admin.get_by_test_id("selected")).to_have_text("6")
    expect(admin.get_by_test_id("eligible")).to_have_text("4")
    dnc = admin.locator("tr[data-reason=do_not_call]")
    expect(dnc).to_contain_text("On the voice do-not-call list")
    expect(dnc.locator("td").last).to_have_text("1")
    no_consent = admin.locator("tr[data-reason=no_opt_in]")
    expect(no_consent).to_contain_text("Mobile number with no consent on record")
    expect(no_consent.locator("td").last).to_have_text("1")
    expect(admin.get_by_test_id("seconds")).to_have_text("9")
    expect(admin.get_by_test_id("minutes")).to_have_text("1")
    expect(admin.get_by_test_id("needed")).to_have_text("4")
    shortfall = admin.get_by_test_id("shortfall")
    expect(shortfall).to_contain_text("Not enough credits: 4 short")
    assert shortfall.evaluate("e => getComputedStyle(e).color") == "rgb(164, 40, 44)"  # red
    expect(admin.get_by_role("button", name="Send now to 4")).to_be_disabled()
    _shot(admin, "02-draft-short-of-credits")

    # 3. With credits, it goes; Ann has the simulator open on her phone.
    _credits(org, alice, 10)
    admin.reload()
    expect(admin.get_by_test_id("shortfall")).to_have_count(0)
    ann = live["phone"](main_line, families["ann"].phone)
    admin.get_by_role("button", name="Send now to 4").click()
    expect(admin.locator("body")).to_contain_text("Sending.")
    progress = admin.locator("#broadcast-progress")
    expect(progress).to_have_attribute("data-total", "4")

    # 4. Ann's phone rings; she answers, sees the text, presses 9.
    incoming = ann.locator("#call-incoming")
    expect(incoming).to_be_visible(timeout=CALL)
    expect(incoming).to_contain_text("Incoming call from +1 202-555-0142")
    _shot(ann, "03-phone-ringing")
    ann.get_by_role("button", name="Answer").click()
    active = ann.locator("#call-active")
    expect(active).to_be_visible()
    expect(ann.locator("#call-text")).to_have_text(SAY)
    expect(active).to_contain_text("On a call with +1 202-555-0142")
    call = Call.objects.get(phone=families["ann"].phone)
    assert call.answered_by == "human"
    _shot(ann, "04-phone-on-the-call")
    ann.get_by_role("button", name="Press 9").click()
    ended = ann.locator("#call-ended")
    expect(ended).to_contain_text("You will not get these calls again. Goodbye.")
    expect(ended).to_contain_text("Call ended")
    _shot(ann, "05-phone-pressed-9")

    # 5. The bar finishes: Ann and Eve answered, Cat's voicemail, Ben busy.
    expect(progress).to_have_attribute("data-status", "finished", timeout=30_000)
    counts = {b: progress.locator(f"dd[data-bucket={b}]") for b in ("answered", "voicemail")}
    expect(counts["answered"]).to_have_text("2")
    expect(counts["voicemail"]).to_have_text("1")
    expect(progress.locator("dd[data-bucket=busy]")).to_have_text("1")
    expect(progress.locator("svg.progress-bar")).to_have_attribute("aria-label", "4 of 4 finished")
    log = admin.locator("#broadcast-log")
    ann_row = log.locator("tbody tr", has_text="Ann Lee")
    expect(ann_row).to_contain_text("Pressed 9", timeout=LIVE)
    expect(ann_row.locator(".outcome")).to_have_text("Answered")
    expect(log.locator("tbody tr", has_text="Ben Ortiz").locator(".outcome")).to_have_text("Busy")
    cat_row = log.locator("tbody tr", has_text="Cat Wu")
    expect(cat_row.locator(".outcome")).to_have_text("Voicemail")
    _shot(admin, "06-finished")
    log.get_by_role("link", name="Voicemail", exact=True).click()
    expect(admin.locator("#broadcast-log tbody tr")).to_have_count(1)
    expect(admin.locator("#broadcast-log tbody tr")).to_contain_text("Cat Wu")
    broadcast = Broadcast.objects.get(name="Pool closed (call)")
    assert broadcast.status == "finished"

    # 6. Ann's number is on the do-not-call list, for good.
    entry = voice_do_not_call_entry(organization_id=org.pk, phone=families["ann"].phone)
    assert entry is not None and entry.source == "keypress"
    admin.get_by_role("link", name="Contacts", exact=True).click()
    admin.get_by_role("link", name="Do-not-call list").click()
    expect(admin.locator("h1")).to_have_text("Do-not-call list")
    row = admin.locator("table.do-not-call tr", has_text="Ann Lee")
    expect(row).to_contain_text("Pressed 9 on a call from +12025550142")
    expect(row).to_contain_text("Cannot be removed")
    hal = admin.locator("table.do-not-call tr", has_text="Hal Yun")
    expect(hal).to_contain_text("asked at the front desk not to be called")
    _shot(admin, "07-do-not-call-list")


def test_a_recorded_then_uploaded_message_plays_in_the_simulator_and_hanging_up_bills_it(
    live: dict[str, Any],
    org: Any,
    alice: Any,
    main_line: Any,
    families: dict[str, Any],
    tmp_path: Any,
) -> None:
    from playwright.sync_api import expect

    from openline.campaigns.models import VoiceRecording
    from openline.messaging.models import Call

    url = live["url"]
    _credits(org, alice, 10)
    admin = live["sign_in"]("alice@example.org", "alice-pass-1")
    _compose_call(admin, url, "Storm message")

    # 1. Record two seconds with the microphone: converted to WAV in the page.
    admin.get_by_role("button", name="Record").click()
    expect(admin.locator("#record-clock")).to_be_visible()
    admin.wait_for_timeout(2_300)
    admin.get_by_role("button", name="Stop recording").click()
    status = admin.locator("#recording-status")
    expect(status).to_have_text("Recording ready: “Storm message”, 3 seconds.", timeout=LIVE)
    recorded = VoiceRecording.objects.get()
    assert recorded.content_type == "audio/wav" and recorded.audio[:4] == b"RIFF"
    assert 2 <= recorded.seconds <= 3
    with wave.open(io.BytesIO(bytes(recorded.audio))) as audio:
        assert (audio.getframerate(), audio.getnchannels(), audio.getsampwidth()) == (8000, 1, 2)
        assert max(audio.readframes(audio.getnframes())) > 0  # the fake microphone's tone
    expect(admin.get_by_label("Or a text read aloud")).to_be_disabled()
    _shot(admin, "08-recorded")

    # 2. A file that is not a sound is refused; then a WAV file replaces the recording.
    admin.get_by_role("button", name="Remove the recording").click()
    expect(admin.get_by_label("Or a text read aloud")).to_be_enabled()
    admin.set_input_files(
        "#recording-file", files=[{"name": "notes.wav", "mimeType": "audio/wav",
                                   "buffer": b"this is not audio"}],
    )  # fmt: skip
    expect(admin.locator("#recording-error")).to_have_text(
        "Upload a WAV or MP3 file (phones play only those)."
    )
    path = tmp_path / "storm-warning.wav"
    path.write_bytes(_wav(4))
    admin.set_input_files("#recording-file", str(path))
    expect(status).to_have_text("Recording ready: “storm-warning”, 4 seconds.")
    expect(admin.locator("#recording-error")).to_be_hidden()
    _shot(admin, "09-uploaded")
    # Only Eve's landline gets this one.
    number_type = "Number type (mobile, landline, voip, unknown)"
    admin.get_by_label("Condition 1: what").select_option(label=number_type)
    admin.get_by_label("Condition 1: value").fill("landline")
    admin.get_by_role("button", name="Preview").click()

    # 3. The draft plays the recording; it goes to Eve.
    player = admin.get_by_test_id("voice-recording")
    expect(player).to_contain_text("Plays the recording “storm-warning” (4 seconds)")
    src = player.locator("audio").get_attribute("src") or ""
    uploaded = VoiceRecording.objects.get(name="storm-warning")
    assert src == f"/broadcasts/recordings/{uploaded.token}.wav"
    fetched = admin.evaluate(
        "src => fetch(src).then(r => [r.status, r.headers.get('content-type')])", src
    )
    assert fetched == [200, "audio/wav"]
    expect(admin.get_by_test_id("eligible")).to_have_text("1")
    expect(admin.get_by_test_id("seconds")).to_have_text("7")
    _shot(admin, "10-draft-with-recording")
    eve = live["phone"](main_line, families["eve"].phone)
    admin.get_by_role("button", name="Send now to 1").click()

    # 4. Eve answers: the page plays the recording; she hangs up.
    expect(eve.locator("#call-incoming")).to_be_visible(timeout=CALL)
    eve.get_by_role("button", name="Answer").click()
    expect(eve.locator("#call-text")).to_have_text("Playing the recorded message…")
    eve.wait_for_function(
        "src => document.getElementById('call-audio').currentSrc.endsWith(src)",
        arg=src,
        timeout=LIVE,
    )
    eve.wait_for_timeout(1_200)
    _shot(eve, "11-phone-playing-recording")
    eve.get_by_role("button", name="Hang up").click()
    expect(eve.locator("#call-ended")).to_contain_text("Call ended")
    progress = admin.locator("#broadcast-progress")
    expect(progress).to_have_attribute("data-status", "finished", timeout=30_000)
    expect(progress.locator("dd[data-bucket=answered]")).to_have_text("1")
    call = Call.objects.get(phone=families["eve"].phone)
    assert call.outcome == "answered" and call.duration >= 1 and not call.opted_out
    row = admin.locator("#broadcast-log tbody tr", has_text="Eve Park")
    expect(row.locator(".duration")).to_have_text(f"{call.duration} s", timeout=LIVE)
    _shot(admin, "12-recording-finished")


def test_a_call_is_scheduled_in_the_organizations_time_zone_and_reserves_its_minutes(
    live: dict[str, Any], org: Any, alice: Any, main_line: Any, families: dict[str, Any]
) -> None:
    """A voice broadcast scheduled from its draft, like a text one (the live server runs no
    scheduler, so it is checked as scheduled: broadcasts_tick starts either kind)."""
    from datetime import timedelta
    from zoneinfo import ZoneInfo

    from django.utils import timezone
    from playwright.sync_api import expect

    from openline.campaigns.models import Broadcast, BroadcastStatus

    url = live["url"]
    admin = live["sign_in"]("alice@example.org", "alice-pass-1")
    _credits(org, alice, 10)
    _compose_call(admin, url, "Storm closure (call)")
    admin.get_by_label("Or a text read aloud").fill(SAY)
    admin.get_by_role("button", name="Preview").click()
    expect(admin.get_by_test_id("eligible")).to_have_text("4")
    expect(admin.locator("label[for=id_scheduled_for]")).to_contain_text(org.timezone)
    zone = ZoneInfo(org.timezone)
    when = (timezone.now() + timedelta(hours=2)).astimezone(zone).replace(second=0)
    admin.get_by_label("Send at").fill(when.strftime("%Y-%m-%dT%H:%M"))
    admin.get_by_role("button", name="Schedule").click()
    expect(admin.locator("body")).to_contain_text("Scheduled.")
    shown = f"{when:%a} {when.day} {when:%b %Y, %H:%M}"
    expect(admin.locator("main")).to_contain_text(f"Goes out at {shown} ({org.timezone})")
    _shot(admin, "10-call-scheduled")
    scheduled = Broadcast.objects.get(name="Storm closure (call)")
    assert (scheduled.channel, scheduled.status) == ("voice", BroadcastStatus.SCHEDULED)
    assert scheduled.scheduled_for == when.replace(microsecond=0)
    admin.get_by_role("link", name="Credits", exact=True).click()
    expect(admin.get_by_test_id("reserved")).to_have_text("4")  # a minute for each of 4

"""The widget in Chromium, embedded in a page served from a second origin (another port),
and a counselor in the console in a second browser context. Nothing is reloaded by hand
except where the test says so; everything else arrives over the WebSockets."""

from __future__ import annotations

import contextlib
import http.server
import os
import threading
from collections.abc import Callable, Iterator
from datetime import time
from typing import Any

import pytest

from conftest import ARTIFACTS

pytestmark = pytest.mark.browser
LIVE = 5_000
HOSTILE = '<img src=x onerror="window.pwned=1"><script>window.pwned=2</script>'


def _shot(page: Any, name: str) -> None:
    os.makedirs(ARTIFACTS, exist_ok=True)
    page.screenshot(path=os.path.join(ARTIFACTS, f"chat-{name}.png"), full_page=True)


@pytest.fixture
def site() -> Iterator[Callable[[str, str], str]]:
    """Serves host pages from their own ports: another origin than OpenLine's."""
    servers: list[http.server.HTTPServer] = []

    def serve(openline: str, widget_id: str) -> str:
        page = (
            "<!doctype html><html><head><title>Example help site</title>"
            "<style>button{background:lime!important;font-size:40px!important}</style></head>"
            "<body><h1>Example help site</h1><p>Our services.</p>"
            f'<script src="{openline}/widget.js" data-widget="{widget_id}" defer></script>'
            "</body></html>"
        ).encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(page)))
                self.end_headers()
                self.wfile.write(page)

            def log_message(self, *args: Any) -> None:
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


def _staffed_shift_at(number: Any, admin: Any, opens: time) -> None:
    """A staffed one-off shift tomorrow at ``opens``, local time."""
    from datetime import timedelta
    from zoneinfo import ZoneInfo

    from django.utils import timezone

    from openline.availability.services import shift_create, shift_sign_up

    zone = ZoneInfo(number.organization.timezone)
    tomorrow = timezone.now().astimezone(zone).date() + timedelta(days=1)
    shift = shift_create(
        organization_id=number.organization_id, actor_id=admin.pk, number_id=number.pk,
        kind="normal", start_date=tomorrow, start_time=opens, duration_minutes=8 * 60,
    )  # fmt: skip
    shift_sign_up(
        organization_id=number.organization_id, actor_id=admin.pk, shift_id=shift.pk,
        occurrence_start=shift.first_start,
    )  # fmt: skip


def _widget(number: Any, admin: Any, origin: str, put_online: Any = None, opens: Any = None) -> Any:
    """A widget; its inbox online now when ``put_online`` (the shared fixture) is given,
    else offline with a staffed shift starting at ``opens``, if given."""
    from openline.chat.services import widget_create

    if put_online is not None:
        put_online(number, admin)
    elif opens is not None:
        _staffed_shift_at(number, admin, opens)
    return widget_create(
        organization_id=number.organization_id,
        actor_id=admin.pk,
        number_id=number.pk,
        display_name="Talk to us",
        allowed_origins=[origin],
        greeting="Hi, you can talk to us here.",
        offline_text="Chat is closed. Call 988 any time.",
        color="#7a2e8e",
    )


def _survey_form(widget: Any) -> None:
    """The widget's inbox gets a post-chat survey form of several kinds, with show-if."""
    from openline.forms.models import Form, FormUse, FormVersion

    fields = [
        {"key": "helpful", "label": "How helpful was this?", "kind": "scale", "required": True},
        {"key": "about", "label": "What was it about?", "kind": "choice",
         "options": [{"value": "money", "label": "Money"}, {"value": "family", "label": "Family"}]},
        {"key": "who", "label": "Who in your family?", "kind": "text", "required": True,
         "show_if": {"field": "about", "values": ["family"]}},
        {"key": "ways", "label": "How did you hear of us?", "kind": "multi_choice",
         "options": [{"value": "school", "label": "School"}, {"value": "web", "label": "The web"}]},
        {"key": "area", "label": "Where do you live?", "kind": "taxonomy",
         "options": [{"value": "n", "label": "North"}, {"value": "s", "label": "South"}]},
        {"key": "age", "label": "Your age", "kind": "number", "min": 10},
        {"key": "more", "label": "Anything else?", "kind": "long_text"},
    ]  # fmt: skip
    org = widget.organization
    form = Form.objects.create(organization=org, name="After the chat")
    form.current_version = FormVersion.objects.create(
        organization=org, form=form, number=1, schema={"sections": [{"fields": fields}]}
    )
    form.save()
    FormUse.objects.create(
        organization=org, number_id=widget.number_id, purpose="post_survey", form=form
    )


def test_visitor_chats_with_a_counselor_across_origins_through_a_drop_and_a_reload(
    browser: Any, live_asgi: str, site: Any, alice: Any, bob: Any, sandbox_number: Any,
    put_online: Any, caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    from playwright.sync_api import expect

    from openline.chat.models import ChatSession
    from openline.chat.questions import question_create
    from openline.forms.models import FormResponse

    host = site(live_asgi, "pending")  # the port is known first; the page is made below
    widget = _widget(sandbox_number, alice, host, put_online)
    host = site(live_asgi, widget.public_id)
    widget.allowed_origins = [host]
    widget.save()
    for question in (
        {"stage": "pre", "kind": "choice", "prompt": "What is it about?", "required": True,
         "options_text": "Money\nThinking about suicide | urgent"},
        {"stage": "pre", "kind": "yesno", "prompt": "Are you safe?", "options_text": "No | high"},
    ):  # fmt: skip
        question_create(widget=widget, actor_id=alice.pk, **question)
    _survey_form(widget)

    console = browser.new_context(viewport={"width": 1280, "height": 860}).new_page()
    console.goto(f"{live_asgi}/login/")
    console.fill("#id_username", "bob@example.org")
    console.fill("#id_password", "bob-pass-12")
    console.click("button[type=submit]")
    console.wait_for_function("document.body.dataset.liveState === 'open'", timeout=LIVE)

    visitor_context = browser.new_context(viewport={"width": 390, "height": 844})
    visitor = visitor_context.new_page()
    visitor.goto(host)
    launcher = visitor.get_by_role("button", name="Chat with us")
    expect(launcher).to_be_visible(timeout=LIVE)
    # The host page's styles do not reach into the widget.
    assert launcher.evaluate("b => getComputedStyle(b).backgroundColor") == "rgb(122, 46, 142)"
    launcher.click()
    panel = visitor.get_by_role("dialog")
    expect(panel).to_contain_text("Hi, you can talk to us here.")
    visitor.get_by_label("Your first name (optional)").fill("Sam")
    visitor.get_by_role("button", name="Start chat").click()  # a required answer is missing
    expect(panel.get_by_role("alert")).to_have_text("Please answer: What is it about?")
    expect(visitor.get_by_role("radio", name="Money")).to_be_focused()
    visitor.get_by_role("radio", name="Thinking about suicide").check()
    visitor.get_by_role("group", name="Are you safe?").get_by_role("radio", name="No").check()
    _shot(visitor, "0-visitor-pre-chat")
    visitor.get_by_role("button", name="Start chat").click()
    expect(panel).to_contain_text("You are number 1 in line", timeout=LIVE)
    box = visitor.get_by_role("textbox", name="Message")
    expect(box).to_be_focused()
    box.fill(HOSTILE)
    box.press("Enter")
    box.fill("I need someone to talk to")
    box.press("Enter")
    _shot(visitor, "1-visitor-waiting")

    row = console.locator("#queue .queue-row", has_text="Sam")
    expect(row).to_contain_text("Web chat", timeout=LIVE)
    expect(row).to_contain_text("Urgent")  # the triage answer's priority
    row.get_by_role("button", name="Assume").click()
    pane = console.locator(".pane")
    expect(pane.locator("[data-prechat]")).to_contain_text("Thinking about suicide", timeout=LIVE)
    expect(panel).to_contain_text("A counselor has joined", timeout=LIVE)
    expect(pane.locator(".thread")).to_contain_text(HOSTILE, timeout=LIVE)  # as text
    pane.locator(".reply-body").press_sequentially("Hi Sam, ")  # the visitor sees typing
    expect(panel).to_contain_text("The counselor is typing", timeout=LIVE)
    pane.locator(".reply-body").fill("Hi Sam, I'm Bob. I'm here.")
    pane.locator(".reply-box button[type=submit]").click()
    log = visitor.get_by_role("log", name="Messages")
    expect(log).to_contain_text("Hi Sam, I'm Bob. I'm here.", timeout=LIVE)
    expect(panel).not_to_contain_text("The counselor is typing")
    expect(pane.locator(".msg-out .status").last).to_have_text("delivered", timeout=LIVE)
    _shot(console, "2-console")

    # The network drops: what the counselor sends meanwhile and what the visitor types
    # meanwhile both arrive once it is back, once.
    visitor_context.set_offline(True)
    visitor.evaluate("() => window.dispatchEvent(new Event('offline'))")
    pane.locator(".reply-body").fill("Are you still there?")
    pane.locator(".reply-box button[type=submit]").click()
    expect(pane.locator(".thread")).to_contain_text("Are you still there?", timeout=LIVE)
    box.fill("typed while offline")
    box.press("Enter")
    visitor_context.set_offline(False)
    expect(log).to_contain_text("Are you still there?", timeout=15_000)
    expect(pane.locator(".thread")).to_contain_text("typed while offline", timeout=15_000)

    # A reload resumes the same chat: everything once, nothing lost.
    visitor.reload()
    visitor.get_by_role("button", name="Chat with us").click()
    log = visitor.get_by_role("log", name="Messages")
    expect(log).to_contain_text("typed while offline", timeout=LIVE)
    expect(log.locator(".msg")).to_have_count(5)
    assert visitor.evaluate("() => window.pwned") is None  # the hostile text stayed text
    assert console.evaluate("() => window.pwned") is None
    _shot(visitor, "3-visitor-after-reload")

    visitor.get_by_role("button", name="End chat").click()
    expect(panel).to_contain_text("You ended the chat")
    expect(pane.locator(".thread")).to_contain_text("The visitor ended the chat.", timeout=LIVE)
    expect(pane.locator(".pane-head")).to_contain_text("Closed")
    _shot(console, "5-console-ended")

    # The post-chat survey (the inbox's form): a required answer, show-if as the visitor
    # answers, then stored with the conversation as a form response.
    survey = panel.locator("form.survey")
    expect(survey).to_contain_text("How helpful was this?")
    survey.get_by_role("button", name="Send answers").click()
    expect(panel.get_by_role("alert")).to_have_text("Please answer: How helpful was this?")
    expect(survey.get_by_role("radio", name="1", exact=True)).to_be_focused()
    survey.get_by_role("radio", name="6").check()
    who = survey.get_by_label("Who in your family? (required)")
    expect(who).to_be_hidden()
    survey.get_by_role("radio", name="Family").check()
    expect(who).to_be_visible()
    survey.get_by_role("button", name="Send answers").click()
    expect(panel.get_by_role("alert")).to_have_text("Please answer: Who in your family?")
    expect(who).to_be_focused()
    who.fill("My brother")
    survey.get_by_role("radio", name="Money").check()  # hidden again: its answer is not sent
    expect(who).to_be_hidden()
    ways = survey.get_by_role("group", name="How did you hear of us?")
    ways.get_by_role("checkbox", name="School").check()
    ways.get_by_role("checkbox", name="The web").check()
    survey.get_by_label("Where do you live?").select_option("South")
    survey.get_by_label("Your age").fill("17")
    survey.get_by_label("Anything else?").fill("Thank you, Bob\nReally.")
    _shot(visitor, "6-visitor-survey")
    survey.get_by_role("button", name="Send answers").click()
    expect(panel).to_contain_text("Thank you for your answers.", timeout=LIVE)
    expect(survey).to_be_hidden()
    session = ChatSession.objects.get(widget=widget)
    response = FormResponse.objects.get(conversation_id=session.conversation_id)
    assert (response.purpose, response.channel, response.status) == (
        "post_survey",
        "chat",
        "complete",
    )
    assert list(response.answers.order_by("id").values_list("field_key", "value")) == [
        ("helpful", "6"),
        ("about", "money"),
        ("ways", "school"),
        ("ways", "web"),
        ("area", "s"),
        ("age", "17"),
        ("more", "Thank you, Bob\nReally."),
    ]
    console.goto(f"{live_asgi}/conversations/{session.conversation_id}/")
    answers = console.locator('[data-purpose="post_survey"]')
    expect(answers).to_contain_text("School, The web")
    expect(answers).not_to_contain_text("Who in your family?")
    assert session.conversation.priority == 3
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert not errors, errors


def test_offline_inbox_shows_next_opening_then_opens_with_a_shift_and_disallowed_origin(
    browser: Any, live_asgi: str, site: Any, alice: Any, sandbox_number: Any, put_online: Any
) -> None:
    from playwright.sync_api import expect

    host = site(live_asgi, "pending")
    widget = _widget(sandbox_number, alice, host, opens=time(9, 0))
    allowed = site(live_asgi, widget.public_id)
    elsewhere = site(live_asgi, widget.public_id)
    widget.allowed_origins = [allowed]
    widget.save()

    page = browser.new_context().new_page()
    page.clock.install()  # so the test can move the widget's timers forward
    page.goto(allowed)
    page.get_by_role("button", name="Chat with us").click()
    panel = page.get_by_role("dialog")
    expect(panel).to_contain_text("Chat is closed. Call 988 any time.")
    expect(panel).to_contain_text("We open again tomorrow at 9:00 AM.")
    expect(page.get_by_role("button", name="Start chat")).to_be_hidden()
    _shot(page, "4-offline")

    # A shift starts (someone signs up for one covering now): opening the panel again
    # offers the chat, without reloading the page.
    page.get_by_role("button", name="Minimize chat").click()
    put_online(sandbox_number, alice)
    page.get_by_role("button", name="Chat with us").click()
    expect(page.get_by_role("button", name="Start chat")).to_be_visible(timeout=LIVE)
    expect(panel).to_contain_text("Hi, you can talk to us here.")
    expect(panel).not_to_contain_text("We open again")

    # With the panel left open, a shift ending (or starting) shows within 30 s.
    from django.utils import timezone as dj_timezone

    from openline.availability.models import ShiftSignUp

    page.clock.fast_forward("00:31")  # the page's timers, not the server's clock
    expect(page.get_by_role("button", name="Start chat")).to_be_visible()
    now = dj_timezone.now()
    ShiftSignUp.objects.filter(occurrence_start__lte=now, occurrence_end__gt=now).delete()
    page.clock.fast_forward("00:31")
    expect(page.get_by_role("button", name="Start chat")).to_be_hidden(timeout=LIVE)
    expect(panel).to_contain_text("We open again tomorrow at 9:00 AM.")

    other = browser.new_context().new_page()
    other.goto(elsewhere)
    other.wait_for_load_state("networkidle")
    assert other.locator("[data-openline-chat]").count() == 0  # refused: nothing shown


def test_quick_exit_replaces_the_page_and_forgets_the_chat(
    browser: Any, live_asgi: str, site: Any, alice: Any, sandbox_number: Any, put_online: Any
) -> None:
    from playwright.sync_api import expect

    host = site(live_asgi, "pending")
    widget = _widget(sandbox_number, alice, host, put_online=put_online)
    host = site(live_asgi, widget.public_id)
    neutral = site(live_asgi, "none") + "/weather"  # stands in for a neutral site
    widget.allowed_origins = [host]
    widget.quick_exit_url = neutral
    widget.save()

    page = browser.new_context().new_page()
    page.goto(f"{host}/first-page")
    page.goto(host)
    page.get_by_role("button", name="Chat with us").click()
    page.get_by_role("button", name="Start chat").click()
    expect(page.get_by_role("textbox", name="Message")).to_be_focused()
    assert page.evaluate("() => Object.keys(sessionStorage).length") == 1  # the chat's token
    page.get_by_role("button", name="Quick exit").focus()
    page.keyboard.press("Enter")  # works from the keyboard
    page.wait_for_url(neutral)
    page.go_back()  # the chat page was replaced, not left in the history
    page.wait_for_url(f"{host}/first-page")
    page.goto(host)
    assert page.evaluate("() => Object.keys(sessionStorage).length") == 0


def test_a_busy_widget_says_so_with_other_ways_to_get_help_instead_of_a_chat_box(
    browser: Any, live_asgi: str, site: Any, alice: Any, sandbox_number: Any,
    put_online: Any, caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    from playwright.sync_api import expect

    from openline.chat import limits
    from openline.chat.services import ChatError, chat_end, chat_start
    from openline.messaging.models import Conversation

    host = site(live_asgi, "pending")
    widget = _widget(sandbox_number, alice, host, put_online=put_online)
    host = site(live_asgi, widget.public_id)
    widget.allowed_origins = [host]
    widget.max_waiting = 1
    widget.busy_text = "You can also text 988, any time."
    widget.save()
    busy = "All our counselors are busy right now. Please try again in a few minutes."

    page = browser.new_context().new_page()
    page.clock.install()  # so the test can move the widget's timers forward
    page.goto(host)
    launcher = page.get_by_role("button", name="Chat with us")
    expect(launcher).to_be_visible(timeout=LIVE)  # the first configuration has come
    # Opening looks again; the place is taken only once that answer is in, so the visitor
    # meets "busy" when starting, not already from this look.
    with page.expect_response(lambda r: r.url.endswith("/config")):
        launcher.click()
    panel = page.get_by_role("dialog")
    expect(panel).to_contain_text("Hi, you can talk to us here.")
    expect(page.get_by_role("button", name="Start chat")).to_be_visible()
    first = chat_start(widget=widget, origin=host)  # someone else takes the only place
    page.get_by_role("button", name="Start chat").click()
    expect(panel).to_contain_text(busy)
    expect(panel).to_contain_text("You can also text 988, any time.")  # other ways to help
    expect(panel).not_to_contain_text("Chat is closed")  # not the offline text
    expect(page.get_by_role("button", name="Start chat")).to_be_hidden()
    expect(page.get_by_role("button", name="Quick exit")).to_be_visible()
    assert Conversation.objects.count() == 1  # this visitor did not join the line
    _shot(page, "5-busy")

    # A newcomer sees it before typing anything.
    newcomer = browser.new_context().new_page()
    newcomer.goto(host)
    newcomer.get_by_role("button", name="Chat with us").click()
    expect(newcomer.get_by_role("dialog")).to_contain_text(busy)
    expect(newcomer.get_by_role("button", name="Start chat")).to_be_hidden()

    # The place frees up: within 30 s the chat box is back, without a reload.
    chat_end(session=first.session)
    page.clock.fast_forward("00:31")
    expect(page.get_by_role("button", name="Start chat")).to_be_visible(timeout=LIVE)
    expect(panel).to_contain_text("Hi, you can talk to us here.")
    expect(panel).not_to_contain_text(busy)

    # Too many starts from this connection: a calm note, and the button waits.
    widget.starts_per_address_per_minute = 1
    widget.save()
    with contextlib.suppress(ChatError):  # books this address's one start, if still free
        limits.chat_start_throttle(widget=widget, address="127.0.0.1")
    page.get_by_role("button", name="Start chat").click()
    expect(panel).to_contain_text("Several chats were started from your connection just now.")
    expect(page.get_by_role("button", name="Start chat")).to_be_disabled()
    assert Conversation.objects.count() == 1
    page.clock.fast_forward("01:01")
    expect(page.get_by_role("button", name="Start chat")).to_be_enabled()
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert not errors, errors  # turning visitors away is no server error

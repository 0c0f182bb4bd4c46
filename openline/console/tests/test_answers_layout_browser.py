"""Pre-chat and survey answers in the conversation pane, measured in Chromium at every width
the console supports (desktop, and the phone layout below 800 px): each question and each
answer is a few lines of readable width, never a column one letter wide."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from conftest import ARTIFACTS

pytestmark = pytest.mark.browser

LONG_QUESTION = (
    "What would you most like to talk about with a counselor today, in your own words "
    "or by choosing one of these?"
)
LONELY = "Feeling lonely or low"
# 390: a phone (console.css stacks the panels below 800 px); then common desktop widths.
WIDTHS = (390, 1024, 1280, 1440)

# Lines of text and width of every <dt>/<dd> in a section, from the browser's own layout:
# the client rectangles of its contents, grouped into lines by vertical overlap (a badge
# is taller than the text beside it, but on the same line).
MEASURE = """(section) => Array.from(section.querySelectorAll("dt, dd")).map((el) => {
  const range = document.createRange();
  range.selectNodeContents(el);
  const rects = Array.from(range.getClientRects()).filter((r) => r.width > 0)
    .sort((a, b) => a.top - b.top);
  let lines = 0, bottom = -Infinity;
  for (const r of rects) {
    if (r.top >= bottom - 1) { lines += 1; bottom = r.bottom; }
    else { bottom = Math.max(bottom, r.bottom); }
  }
  const box = el.getBoundingClientRect();
  return {tag: el.tagName.toLowerCase(), text: el.textContent.trim(), lines: lines,
          width: box.width, overflows: el.scrollWidth > el.clientWidth + 1,
          fontSize: parseFloat(getComputedStyle(el).fontSize)};
})"""


def _shot(page: Any, name: str) -> None:
    os.makedirs(ARTIFACTS, exist_ok=True)
    page.screenshot(path=os.path.join(ARTIFACTS, f"answers-{name}.png"), full_page=True)


@pytest.fixture
def chats(alice: Any, org: Any, online_inbox: Any) -> Iterator[dict[str, Any]]:
    """A waiting chat with pre-chat answers, and an ended one with its survey answered."""
    from openline.chat.questions import question_create
    from openline.chat.services import chat_end, chat_start, widget_create
    from openline.chat.survey import survey_submit
    from openline.forms.models import Form, FormUse, FormVersion

    widget = widget_create(
        organization_id=org.pk,
        actor_id=alice.pk,
        number_id=online_inbox.pk,
        display_name="Talk to us",
        allowed_origins=["https://www.example.org"],
    )

    def ask(stage: str, kind: str, prompt: str, options: str = "") -> str:
        question = question_create(
            widget=widget,
            actor_id=alice.pk,
            stage=stage,
            kind=kind,
            prompt=prompt,
            options_text=options,
        )
        return str(question.pk)

    # An answer without a priority badge (the badge does not wrap, so it keeps a minimum
    # width) and one with.
    about = ask("pre", "choice", LONG_QUESTION, f"{LONELY}\nSomething else")
    upset = ask("pre", "choice", "How upset do you feel right now?", "Very upset | high\nA bit")
    name = ask("pre", "text", "Name")
    safe = ask("pre", "yesno", "Are you safe right now?")
    # The survey after the chat: the inbox's post_survey form.
    form = Form.objects.create(organization=org, name="After the chat")
    fields = [
        {"key": "helped", "kind": "scale",
         "label": "How much did this chat help you, from 1 (not at all) to 7?"},
        {"key": "again", "kind": "text",
         "label": "Anything you would like us to know for next time?"},
    ]  # fmt: skip
    form.current_version = FormVersion.objects.create(
        organization=org, form=form, number=1, schema={"sections": [{"fields": fields}]}
    )
    form.save()
    FormUse.objects.create(organization=org, number=online_inbox, purpose="post_survey", form=form)
    answers = {about: LONELY, upset: "Very upset", name: "Sam", safe: "Yes"}

    def start() -> Any:
        return chat_start(widget=widget, origin="https://www.example.org", answers=answers)

    waiting = start().session
    ended = start().session
    chat_end(session=ended)
    ended.refresh_from_db()
    survey_submit(session=ended, raw={"helped": "6", "again": "Thank you for listening to me."})
    yield {"waiting": waiting.conversation_id, "ended": ended.conversation_id}


def _readable(items: list[dict[str, Any]], where: str) -> None:
    """Every question and answer at least twelve characters wide (a phrase per line, not a
    letter), inside its box, and on one or two lines (the long question: four)."""
    assert items, f"{where}: no answers shown"
    problems = []
    for item in items:
        what = f"{item['tag']} {item['text'][:40]!r}"
        if item["width"] < 12 * item["fontSize"]:
            problems.append(f"{what} is {item['width']:.0f}px wide")
        if item["overflows"]:
            problems.append(f"{what} spills out of its box")
        limit = 4 if item["text"].startswith(LONG_QUESTION[:20]) else 2
        if item["lines"] > limit:
            problems.append(f"{what} takes {item['lines']} lines")
    assert not problems, f"{where}: " + "; ".join(problems)


def _sign_in(browser: Any, live: str) -> Any:
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.goto(f"{live}/login/")
    page.fill("#id_username", "alice@example.org")
    page.fill("#id_password", "alice-pass-1")
    page.click("button[type=submit]")
    page.wait_for_selector("#queue")
    return page


@pytest.mark.parametrize("width", WIDTHS)
def test_pre_chat_and_survey_answers_read_as_phrases_at_every_console_width(
    browser: Any, live_asgi: str, chats: dict[str, Any], width: int
) -> None:
    from playwright.sync_api import expect

    page = _sign_in(browser, live_asgi)
    page.set_viewport_size({"width": width, "height": 900})

    # In the workspace: the counselor opens the waiting chat from the queue.
    page.goto(f"{live_asgi}/")
    page.locator(f'#queue [data-open-conversation="{chats["waiting"]}"]').first.click()
    prechat = page.locator(f"#pane-{chats['waiting']} [data-prechat]")
    expect(prechat).to_contain_text(LONELY)
    expect(prechat).to_be_visible()
    shown = prechat.evaluate(MEASURE)
    assert LONELY in [i["text"].split("\n")[0].strip() for i in shown if i["tag"] == "dd"][0]
    _shot(page, f"workspace-{width}")
    _readable(shown, f"pre-chat in the workspace at {width}px")

    # On the conversation's own page: the ended chat, with both sets of answers.
    page.goto(f"{live_asgi}/conversations/{chats['ended']}/")
    for section in ("[data-prechat]", '[data-purpose="post_survey"]'):
        answers = page.locator(f"#pane-{chats['ended']} {section}")
        expect(answers).to_be_visible()
        _readable(answers.evaluate(MEASURE), f"{section} on the page at {width}px")
    _shot(page, f"page-{width}")

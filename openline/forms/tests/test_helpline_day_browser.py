"""Issue 18 end to end, in Chromium against the real ASGI app, worker and sandbox carrier:

the admin builds a contact form with show-if logic in the builder and makes it the inbox's
required contact form; one texter answers the pre-conversation survey by text while held out
of the queue; another texts a risk phrase and goes straight to the top of the queue with its
reason; the counselor takes next, completes the risk screener (high) and, after closing is
refused for the missing contact form, the contact form (a show-if question appears), closes;
the texter answers the post-conversation survey; the reports page shows the conversation in
its charts and its CSVs. Screenshots in test-artifacts/helpline-day-*.png."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import ARTIFACTS, WATCH_CSP, wait_for
from openline.forms.models import Form, FormResponse
from openline.forms.services import (
    form_create,
    form_create_screener,
    form_schema_save,
    form_use_set,
)
from openline.messaging.models import Conversation, Direction, Message

pytestmark = pytest.mark.browser

LIVE = 10_000  # ms: what reaches a screen over the socket, on a slow (shared) machine
CALM = "+12025550141"
RISKY = "+12025550142"
Page = Any

PRE_SURVEY = {
    "sections": [
        {
            "key": "before",
            "title": "",
            "fields": [
                {
                    "key": "age_group",
                    "label": "How old are you?",
                    "kind": "choice",
                    "required": True,
                    "remember": True,
                    "options": [
                        {"value": "under_18", "label": "Under 18"},
                        {"value": "18_24", "label": "18 to 24"},
                        {"value": "25_plus", "label": "25 or older"},
                    ],
                },
                {
                    "key": "on_your_mind",
                    "label": "What's on your mind?",
                    "kind": "choice",
                    "required": True,
                    "options": [
                        {"value": "low", "label": "Feeling low", "severity": 1},
                        {"value": "relationships", "label": "Relationships"},
                        {"value": "other", "label": "Something else"},
                    ],
                },
            ],
        }
    ]
}
POST_SURVEY = {
    "sections": [
        {
            "key": "after",
            "title": "",
            "fields": [
                {
                    "key": "helpful",
                    "label": "How helpful was this conversation?",
                    "kind": "scale",
                    "required": True,
                }
            ],
        }
    ]
}


@pytest.fixture
def contexts(browser: Any, caplog: pytest.LogCaptureFixture) -> Iterator[Any]:
    """New browser contexts (one per person), each watching for CSP violations; no server
    errors logged by the end."""
    opened: list[Any] = []

    def new() -> Page:
        context = browser.new_context(viewport={"width": 1400, "height": 950})
        context.add_init_script(WATCH_CSP)
        opened.append(context)
        return context.new_page()

    yield new
    for context in opened:
        for page in context.pages:
            assert page.evaluate("window.__csp") == [], page.url
        context.close()
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert not errors, errors


def _shot(page: Page, name: str) -> None:
    os.makedirs(ARTIFACTS, exist_ok=True)
    page.screenshot(path=os.path.join(ARTIFACTS, f"helpline-day-{name}.png"), full_page=True)


def _sign_in(page: Page, live: str, email: str, password: str) -> None:
    page.goto(f"{live}/login/")
    page.fill("#id_username", email)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live}/**")


def _build_contact_form(admin: Page, live: str) -> Form:
    """Forms › New form, three questions (one shown only for Crisis), then Inbox uses."""
    from playwright.sync_api import expect

    admin.goto(f"{live}/")
    admin.click("nav[aria-label=Main] a:has-text('Forms')")
    admin.fill("#id_new-name", "Contact form")
    admin.click("button:has-text('New form')")
    expect(admin.locator("h1")).to_have_text("Contact form", timeout=LIVE)

    admin.click("a:has-text('Add a question')")
    admin.fill("#id_label", "Reason for contact")
    admin.select_option("#id_kind", "choice")
    admin.check("#id_required")
    admin.fill("#id_options", "Housing\nFood\nCrisis")
    admin.click("button:has-text('Add question')")
    expect(admin.locator("[data-question=reason_for_contact]")).to_be_visible(timeout=LIVE)

    admin.click("a:has-text('Add a question')")
    admin.fill("#id_label", "Safety plan made?")
    admin.select_option("#id_kind", "yesno")
    admin.check("#id_required")
    admin.select_option("#id_show_if_field", "reason_for_contact")
    admin.check("#show-if-reason_for_contactcrisis")
    admin.click("button:has-text('Add question')")
    expect(admin.locator("[data-question=safety_plan_made] [data-condition]")).to_have_text(
        "Shown when “Reason for contact” is Crisis", timeout=LIVE
    )
    _shot(admin, "1-contact-form")

    admin.click("a:has-text('Inbox uses')")
    admin.select_option("#id_contact", label="Contact form")
    admin.check("#id_required")
    admin.click("button:has-text('Save forms for')")
    expect(admin.locator(".flash")).to_contain_text("Forms saved", timeout=LIVE)
    return Form.objects.get(name="Contact form")


def _surveys_and_screener(org: Any, number: Any, admin_id: int) -> None:
    """The two text surveys and the risk screener for the inbox (set up through the same
    services the builder uses; the builder itself is exercised above)."""
    pre = form_create(organization_id=org.pk, actor_id=admin_id, name="Before we talk")
    form_schema_save(form=pre, actor_id=admin_id, schema=PRE_SURVEY)
    post = form_create(organization_id=org.pk, actor_id=admin_id, name="After we talk")
    form_schema_save(form=post, actor_id=admin_id, schema=POST_SURVEY)
    screener = form_create_screener(organization_id=org.pk, actor_id=admin_id)
    for purpose, form in (("pre_survey", pre), ("post_survey", post), ("risk", screener)):
        form_use_set(number=number, purpose=purpose, form=form, actor_id=admin_id)


def _phone(page: Page, live: str, number: Any, phone: str) -> Page:
    page.goto(f"{live}/sandbox/phone/{number.webhook_key}?phone=%2B{phone[1:]}")
    return page


def _text(phone: Page, body: str) -> None:
    phone.fill("#body", body)
    phone.click("#send")


def _expect_received(phone: Page, count: int, contains: str) -> None:
    from playwright.sync_api import expect

    received = phone.locator(".bubble.received")
    expect(received).to_have_count(count, timeout=LIVE)
    expect(received.nth(count - 1)).to_contain_text(contains)


def test_a_helpline_day_from_the_form_builder_to_the_reports(
    contexts: Any,
    live_asgi: str,
    background_workers: None,
    org: Any,
    alice: Any,
    bob: Any,
    sandbox_number: Any,
    put_online: Any,
) -> None:
    from playwright.sync_api import expect

    admin = contexts()
    _sign_in(admin, live_asgi, "alice@example.org", "alice-pass-1")
    contact_form = _build_contact_form(admin, live_asgi)
    _surveys_and_screener(org, sandbox_number, alice.pk)
    put_online(sandbox_number, bob)

    counselor = contexts()
    _sign_in(counselor, live_asgi, "bob@example.org", "bob-pass-12")
    queue = counselor.locator("#queue")

    # A texter answers the pre-conversation survey, out of the queue until it ends.
    calm = _phone(admin.context.new_page(), live_asgi, sandbox_number, CALM)
    _text(calm, "hi, can I talk to someone?")
    _expect_received(calm, 1, "How old are you?")
    expect(calm.locator(".bubble.received").first).to_contain_text("SKIP")
    assert not queue.locator(".queue-row", has_text="202-555-0141").count()
    _text(calm, "2")
    _expect_received(calm, 2, "What's on your mind?")

    # Meanwhile a text with a risk phrase goes straight to the queue, with its reason.
    risky = _phone(admin.context.new_page(), live_asgi, sandbox_number, RISKY)
    _text(risky, "I took a lot of pills tonight")
    risky_row = queue.locator(".queue-row", has_text="202-555-0142")
    expect(risky_row).to_contain_text("Risk phrase: “pills”", timeout=LIVE)
    assert not queue.locator(".queue-row", has_text="202-555-0141").count()

    _text(calm, "1")  # Feeling low: the last question
    _expect_received(calm, 3, "counselor")
    calm_row = queue.locator(".queue-row", has_text="202-555-0141")
    expect(calm_row).to_contain_text("Survey", timeout=LIVE)
    rows = queue.locator(".queue-row")
    expect(rows.first).to_contain_text("202-555-0142")  # risk first, though it came later
    expect(rows.nth(1)).to_contain_text("202-555-0141")
    _shot(counselor, "2-risk-first-queue")
    pre = FormResponse.objects.get(purpose="pre_survey")
    assert pre.status == "complete"
    assert dict(pre.answers.values_list("field_key", "value")) == {
        "age_group": "18_24",
        "on_your_mind": "low",
    }

    # Take next: the risky conversation.
    counselor.click("[data-take-next] button")
    conversation = Conversation.objects.get(contact__phone=RISKY, channel="sms")
    pane = counselor.locator(f"#pane-{conversation.pk}")
    expect(pane.locator(".pane-head")).to_contain_text("With you", timeout=LIVE)

    # The risk screener: yes to 1, 2 and 4 (intent) is high risk.
    screener = pane.locator(f"#form-risk-{conversation.pk}")
    for key, answer in (
        ("wish_dead", "Yes"),
        ("thoughts", "Yes"),
        ("method", "No"),
        ("intent", "Yes"),
        ("plan", "No"),
        ("behaviour", "No"),
    ):
        field = screener.locator(f'[data-field="{key}"]')
        expect(field).to_be_visible(timeout=LIVE)
        field.get_by_label(answer, exact=True).check()
    screener.get_by_role("button", name="Mark complete").click()
    expect(pane.locator(f"#risk-{conversation.pk}")).to_have_text("Risk: high", timeout=LIVE)
    assert Conversation.objects.get(pk=conversation.pk).risk_level == 3

    # Closing before the required contact form is complete is refused, naming what is missing.
    pane = counselor.locator(f"#pane-{conversation.pk}")
    pane.locator("summary", has_text="Close").click()
    pane.locator("[data-action=close]").click()
    expect(pane.locator(".pane-flash")).to_contain_text("Reason for contact", timeout=LIVE)
    _shot(counselor, "3-close-refused")

    form = pane.locator(f"#form-contact-{conversation.pk}")
    plan = form.locator('[data-field="safety_plan_made"]')
    expect(plan).to_be_hidden()
    form.get_by_label("Crisis").check()
    expect(plan).to_be_visible()  # show-if
    plan.get_by_label("Yes", exact=True).check()
    form.get_by_role("button", name="Mark complete").click()
    expect(
        counselor.locator(f"#form-contact-{conversation.pk} [data-form-status]")
    ).to_contain_text("Complete", timeout=LIVE)
    _shot(counselor, "4-forms-complete")
    pane = counselor.locator(f"#pane-{conversation.pk}")
    pane.locator("summary", has_text="Close").click()
    pane.locator("[data-action=close]").click()
    wait_for(
        lambda: Conversation.objects.get(pk=conversation.pk).status == "closed",
        what="the conversation to close",
    )

    # The texter answers the post-conversation survey.
    _expect_received(risky, 1, "How helpful was this conversation?")
    _text(risky, "6")
    post = wait_for(
        lambda: FormResponse.objects.filter(purpose="post_survey", status="complete").first(),
        what="the post-survey answer",
    )
    assert list(post.answers.values_list("field_key", "value")) == [("helpful", "6")]
    assert post.conversation_id == conversation.pk
    # Nobody waits on that clear answer: the conversation its reply opened is closed.
    wait_for(
        lambda: (
            not Conversation.objects.filter(contact__phone=RISKY).exclude(status="closed").exists()
        ),
        what="the reply's conversation to close",
    )
    assert not Message.objects.filter(
        conversation__contact__phone__in=[CALM, RISKY], direction=Direction.OUTBOUND,
        status="failed",
    ).exists()  # fmt: skip

    # The reports page shows it, in charts and tables, and its CSVs.
    admin.goto(f"{live_asgi}/reports/?form={contact_form.pk}&field=reason_for_contact")
    charts = admin.locator("canvas[data-chart]")
    expect(charts.first).to_be_visible(timeout=LIVE)
    admin.wait_for_function(
        "n => document.querySelectorAll('canvas[data-chart][data-drawn]').length === n",
        arg=charts.count(),
        timeout=LIVE,
    )
    risk_table = admin.locator("[data-report-table=risk_levels]")
    expect(risk_table.locator("tr", has_text="High")).to_contain_text("1")
    field_table = admin.locator("[data-report-table=form_field]")
    expect(field_table.locator("tr", has_text="Crisis")).to_contain_text("1")
    volume = admin.locator("[data-report-table=volume_by_day]")
    expect(volume).to_contain_text("2")
    _shot(admin, "5-reports")

    with admin.expect_download() as download:
        admin.locator("#report-risk_levels .report-export button").click()
    rows = list(csv.reader(io.StringIO(Path(download.value.path()).read_text("utf-8"))))
    assert any(row and row[0] == "High" and "1" in row[1:] for row in rows), rows
    with admin.expect_download() as download:
        admin.locator("#report-form_field .report-export button").click()
    rows = list(csv.reader(io.StringIO(Path(download.value.path()).read_text("utf-8"))))
    assert any("Crisis" in row and "1" in row for row in rows), rows

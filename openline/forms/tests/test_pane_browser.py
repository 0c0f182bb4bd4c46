"""The contact form in Chromium: a counselor fills it in in the pane, a show-if question
appears, what she is typing survives a live refresh of the pane, closing is refused while
a required answer is missing (the message in the pane), she completes it and closes."""

from __future__ import annotations

import os
from typing import Any

import pytest
from django.db import transaction

from conftest import ARTIFACTS, WATCH_CSP
from openline.campaigns.tests.browsing import LIVE, sign_in
from openline.forms.models import FormResponse
from openline.forms.tests.pane_support import assume, contact_form
from openline.messaging.models import Conversation, RiskLevel
from openline.messaging.services.priority import conversation_set_risk_level

pytestmark = pytest.mark.browser
__all__ = ["contact_form"]  # fixture


def test_counselor_fills_the_contact_form_in_the_pane_and_closes_once_complete(
    browser: Any,
    live_asgi: str,
    bob: Any,
    sandbox_number: Any,
    contact_form: Any,
    text_in: Any,
) -> None:
    from playwright.sync_api import expect

    conversation = text_in(sandbox_number, "+12025550187", "is anyone there?").conversation
    assume(bob, conversation)
    page = sign_in(browser, live_asgi, "bob@example.org", "bob-pass-12")
    page.evaluate(WATCH_CSP)  # from here on
    page.click("#queue nav a[data-view=mine]")
    page.locator(f'#queue [data-open-conversation="{conversation.pk}"]').click()
    pane = page.locator(f"#pane-{conversation.pk}")
    section = pane.locator(f"#form-contact-{conversation.pk}")
    expect(section).to_contain_text("Contact form", timeout=LIVE)

    other = section.locator('[data-field="reason_other"]')
    expect(other).to_be_hidden()
    section.get_by_label("Something else").check()
    expect(other).to_be_visible()  # show-if, in the browser
    expect(section.locator(".form-autosave")).to_have_text("Draft saved.", timeout=LIVE)

    # the long pick-list narrows as you type (not an answer: nothing saved for it)
    search = section.get_by_label("Search Topic (2-1-1)")
    search.fill("pantr")
    options = f"Array.from(document.querySelectorAll('#ff-contact-{conversation.pk}-topic option'))"
    texts = page.evaluate(options + ".filter(o => !o.hidden).map(o => o.text)")
    assert texts == ["Choose…", "Food pantries"]

    # typed, not saved yet (no change event): a live refresh of the pane keeps it
    field = section.get_by_label("What else?")
    field.click()
    field.press_sequentially("rent is due")
    with transaction.atomic():
        conversation_set_risk_level(conversation=conversation, risk_level=RiskLevel.LOW)
    expect(pane.locator(f"#risk-{conversation.pk}")).to_have_text("Risk: low", timeout=LIVE)
    field = pane.locator(f"#form-contact-{conversation.pk}").get_by_label("What else?")
    expect(field).to_have_value("rent is due")
    expect(field).to_be_focused()

    pane.locator("summary", has_text="Close").click()
    pane.locator("[data-action=close]").click()
    expect(pane.locator(".pane-flash")).to_contain_text(
        "Before closing: Complete the contact form:", timeout=LIVE
    )
    expect(pane.locator(".pane-flash")).to_contain_text("Age group")
    assert Conversation.objects.get(pk=conversation.pk).status == "active"
    os.makedirs(ARTIFACTS, exist_ok=True)
    page.screenshot(path=os.path.join(ARTIFACTS, "forms-pane-refused.png"), full_page=True)

    section = pane.locator(f"#form-contact-{conversation.pk}")
    expect(section.get_by_label("What else?")).to_have_value("rent is due")
    section.get_by_label("18 or over").check()
    section.get_by_role("button", name="Mark complete").click()
    expect(pane.locator(f"#form-contact-{conversation.pk}")).to_contain_text(
        "Complete.", timeout=LIVE
    )
    response = FormResponse.objects.get(conversation=conversation)
    assert response.status == "complete"
    assert dict(response.answers.values_list("field_key", "value")) == {
        "reason": "other",
        "reason_other": "rent is due",
        "age_group": "adult",
    }

    pane.locator("summary", has_text="Close").click()
    pane.locator("[data-action=close]").click()
    page.wait_for_function(
        f"!document.querySelector('#pane-{conversation.pk}')"
        f" || document.querySelector('#status-{conversation.pk}').textContent === 'Closed'",
        timeout=LIVE,
    )
    assert Conversation.objects.get(pk=conversation.pk).status == "closed"
    # Chromium leaves an empty style="" on the page's controls after the refused close's
    # swap; htmx is configured not to carry style attributes across (console/_skeleton).
    assert page.evaluate("window.__csp") == []

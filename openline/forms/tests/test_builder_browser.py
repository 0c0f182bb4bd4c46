"""Building a contact form in Chromium, as an admin does it: a new form, a required single
choice, a long text and a yes/no shown only for one answer of the first, then the inbox's
contact form, required before closing. The preview follows the show-if logic; no
Content-Security-Policy violation and no server error on the way."""

from __future__ import annotations

import os
from typing import Any

import pytest

from conftest import ARTIFACTS, WATCH_CSP

pytestmark = pytest.mark.browser

WAIT = 10_000  # ms


def _shot(page: Any, name: str) -> None:
    os.makedirs(ARTIFACTS, exist_ok=True)
    page.screenshot(path=os.path.join(ARTIFACTS, f"form-builder-{name}.png"), full_page=True)


def test_an_admin_builds_a_contact_form_with_show_if_and_makes_it_required(
    browser: Any,
    live_asgi: str,
    org: Any,
    alice: Any,
    sandbox_number: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from playwright.sync_api import expect

    from openline.forms.models import Form, FormUse
    from openline.forms.schema import schema_load

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.add_init_script(WATCH_CSP)
    page = context.new_page()
    page.goto(f"{live_asgi}/login/")
    page.fill("#id_username", "alice@example.org")
    page.fill("#id_password", "alice-pass-1")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_asgi}/**")

    page.click("nav[aria-label=Main] a:has-text('Forms')")
    page.fill("#id_new-name", "Contact form")
    page.click("button:has-text('New form')")
    expect(page.locator("h1")).to_have_text("Contact form", timeout=WAIT)

    page.click("a:has-text('Add a question')")
    page.fill("#id_label", "Reason for contact")
    page.select_option("#id_kind", "choice")
    expect(page.locator("#id_min")).to_be_hidden()  # only a number's limits show for numbers
    page.check("#id_required")
    page.fill("#id_options", "Housing\nFood\nCrisis")
    page.click("button:has-text('Add question')")
    expect(page.locator("[data-question=reason_for_contact]")).to_be_visible(timeout=WAIT)

    page.click("a:has-text('Add a question')")
    page.fill("#id_label", "What was done")
    page.select_option("#id_kind", "long_text")
    expect(page.locator("#id_options")).to_be_hidden()
    page.click("button:has-text('Add question')")
    expect(page.locator("[data-question=what_was_done]")).to_be_visible(timeout=WAIT)

    page.click("a:has-text('Add a question')")
    page.fill("#id_label", "Safety plan made?")
    page.select_option("#id_kind", "yesno")
    # A show-if question without its answers is refused next to the field.
    page.select_option("#id_show_if_field", "reason_for_contact")
    page.click("button:has-text('Add question')")
    expect(page.locator("[data-error-for=show_if_values]")).to_be_visible(timeout=WAIT)
    page.select_option("#id_show_if_field", "reason_for_contact")
    expect(page.locator("[data-show-if-for=what_was_done]")).to_have_count(0)  # no options
    page.check("#show-if-reason_for_contactcrisis")
    _shot(page, "question")
    page.click("button:has-text('Add question')")
    expect(page.locator("[data-question=safety_plan_made] [data-condition]")).to_have_text(
        "Shown when “Reason for contact” is Crisis", timeout=WAIT
    )

    # The preview shows the yes/no only once Crisis is chosen.
    preview = page.locator("[data-preview]")
    expect(preview.locator("[data-preview-field=safety_plan_made]")).to_be_hidden()
    preview.locator("#preview-reason_for_contact").select_option("crisis")
    expect(preview.locator("[data-preview-field=safety_plan_made]")).to_be_visible()
    _shot(page, "form")
    preview.locator("#preview-reason_for_contact").select_option("food")
    expect(preview.locator("[data-preview-field=safety_plan_made]")).to_be_hidden()

    page.click("a:has-text('Inbox uses')")
    page.select_option("#id_contact", label="Contact form")
    page.check("#id_required")
    page.click("button:has-text('Save forms for')")
    expect(page.locator(".flash")).to_contain_text("Forms saved", timeout=WAIT)
    _shot(page, "uses")

    form = Form.objects.select_related("current_version").get(organization=org)
    assert form.current_version is not None and form.current_version.number == 1
    schema = schema_load(form.current_version.schema)
    reason, done, plan = list(schema.fields())
    assert (reason.key, reason.kind, reason.required) == ("reason_for_contact", "choice", True)
    assert [(o.value, o.label) for o in reason.options] == [
        ("housing", "Housing"),
        ("food", "Food"),
        ("crisis", "Crisis"),
    ]
    assert (done.key, done.kind, done.required) == ("what_was_done", "long_text", False)
    assert (plan.key, plan.kind) == ("safety_plan_made", "yesno")
    assert plan.show_if is not None
    assert (plan.show_if.field, plan.show_if.values) == ("reason_for_contact", ("crisis",))
    use = FormUse.objects.get(number=sandbox_number)
    assert (use.purpose, use.form_id, use.required) == ("contact", form.pk, True)

    assert page.evaluate("window.__csp") == []
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert not errors, errors
    context.close()

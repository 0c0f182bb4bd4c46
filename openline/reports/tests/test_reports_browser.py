"""The reports pages in Chromium under the console's Content-Security-Policy: Chart.js
draws every chart from its data block, a report downloads as CSV, and the monthly summary
renders with its print button."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from conftest import WATCH_CSP
from openline.forms.models import Form, FormAnswer, FormResponse, FormVersion
from openline.reports.tests.conftest import conversation_at, message_at

pytestmark = pytest.mark.browser
# The print dialog would block a headless page: the button's call is recorded instead.
STUB_PRINT = "window.print = function () { window.__printed = true; };"


def _forms(org: Any, conversation: Any) -> None:
    reason = {
        "key": "reason",
        "label": "Reason",
        "kind": "choice",
        "options": [{"value": "housing", "label": "Housing"}, {"value": "food", "label": "Food"}],
    }
    for name, field in (("Intake", reason), ("Other", {**reason, "key": "other"})):
        form = Form.objects.create(organization=org, name=name)
        version = FormVersion.objects.create(
            organization=org, form=form, number=1, schema={"sections": [{"fields": [field]}]}
        )
    intake = Form.objects.get(organization=org, name="Intake")
    version = intake.versions.get()
    response = FormResponse.objects.create(
        organization=org, form=intake, version=version, purpose="contact", channel="console",
        conversation=conversation, status="complete",
    )  # fmt: skip
    FormAnswer.objects.create(
        organization=org, response=response, form=intake, field_key="reason", value="housing"
    )


def _sign_in(browser: Any, url: str) -> Any:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    context.add_init_script(WATCH_CSP)
    context.add_init_script(STUB_PRINT)
    page = context.new_page()
    page.goto(f"{url}/login/")
    page.fill("#id_username", "alice@example.org")
    page.fill("#id_password", "alice-pass-1")
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/**")
    return page


def test_the_reports_page_draws_its_charts_downloads_a_csv_and_prints_a_summary(
    browser: Any, live_asgi: str, org: Any, alice: Any, bob: Any, sandbox_number: Any
) -> None:
    start = timezone.now() - timedelta(hours=3)
    answered = conversation_at(org, sandbox_number, start, assigned_to=bob, assigned_at=start)
    message_at(answered, start)
    conversation_at(
        org, sandbox_number, start, status="closed", closed_at=start + timedelta(minutes=10)
    )
    _forms(org, answered)

    page = _sign_in(browser, live_asgi)
    page.click("nav >> text=Reports")
    page.wait_for_url(f"{live_asgi}/reports/")
    charts = page.locator("canvas[data-chart]")
    expected = charts.count()
    assert expected >= 8
    page.wait_for_function(
        "n => document.querySelectorAll('canvas[data-chart][data-drawn]').length === n",
        arg=expected,
        timeout=10_000,
    )
    assert page.evaluate("typeof window.Chart") == "function"
    box = page.locator("#report-answered canvas").bounding_box()
    assert box is not None and box["width"] > 100 and box["height"] > 100
    assert page.locator("#report-answered table").get_attribute("class") == "table report-table"
    assert page.evaluate("window.__csp") == []

    with page.expect_download() as download:
        page.click("#report-answered button:has-text('Download CSV')")
    path = download.value.path()
    with open(path, encoding="utf-8-sig") as handle:
        rows = list(csv.reader(io.StringIO(handle.read())))
    assert rows[0] == ["Outcome", "Conversations", "Share"]
    assert ["Answered", "1", "50%"] in rows and ["Abandoned", "1", "50%"] in rows

    page.select_option("#id_form", label="Intake")
    assert page.locator("#id_field optgroup[label='Other']").get_attribute("disabled") is not None
    page.select_option("#id_field", value="reason")
    page.click(".report-filters button[type=submit]")
    card = page.locator("#report-form_field")
    card.locator("canvas[data-drawn]").wait_for(timeout=10_000)
    assert "Intake: Reason" in card.locator("h2").inner_text()
    assert "Housing" in card.locator("table").inner_text()
    assert page.evaluate("window.__csp") == []

    page.click("text=Monthly summary")
    page.wait_for_url(f"{live_asgi}/reports/summary/")
    assert page.locator("h1").inner_text().startswith("Monthly summary: ")
    assert page.locator("section[data-report]").count() >= 12
    assert page.locator("section[data-report='answered'] table").count() == 1
    page.click("button:has-text('Print / Save as PDF')")
    assert page.evaluate("window.__printed") is True
    assert page.evaluate("window.__csp") == []

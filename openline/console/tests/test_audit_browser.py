"""The audit pages in Chromium: the conversation's "Read by" loads when opened (htmx under
the console's Content-Security-Policy), and the audit log explains a bad filter."""

from __future__ import annotations

from typing import Any

import pytest

from openline.core.services import audit_record

pytestmark = pytest.mark.browser


def _sign_in(browser: Any, url: str, email: str, password: str) -> Any:
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.goto(f"{url}/login/")
    page.fill("#id_username", email)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/**")
    return page


def test_read_by_loads_when_opened_and_the_log_explains_bad_filters(
    browser: Any, live_asgi: str, conversation: Any, alice: Any, bob: Any, sue: Any
) -> None:
    audit_record(organization_id=conversation.organization_id, actor_id=bob.pk,
                 action="transcript.read.pane", object_type="conversation",
                 object_id=conversation.pk)  # fmt: skip
    page = _sign_in(browser, live_asgi, "sue@example.org", "supervisor-pass-123")
    page.goto(f"{live_asgi}/conversations/{conversation.pk}/")
    section = page.locator("[data-readers-section]")
    assert section.locator("[data-reader]").count() == 0  # not fetched until opened
    section.locator("summary").click()
    row = section.locator(f'[data-reader="user-{bob.pk}"]')
    row.wait_for(timeout=5_000)
    assert "bob@example.org" in row.inner_text()

    admin = _sign_in(browser, live_asgi, "alice@example.org", "alice-pass-1")
    admin.goto(f"{live_asgi}/audit/")
    admin.fill("#id_conversation", "abc")
    admin.click(".audit-filters button[type=submit]")
    admin.locator("#id_conversation-error").wait_for(timeout=5_000)
    assert "A conversation is a number" in admin.locator("#id_conversation-error").inner_text()
    admin.fill("#id_conversation", str(conversation.pk))
    admin.click(".audit-filters button[type=submit]")
    admin.locator("[data-action='transcript.read.pane']").first.wait_for(timeout=5_000)

"""Deactivating a counselor mid-shift, in Chromium: the admin goes through the team page's
confirmation, the counselor's open console is sent to the sign-in page at once (its socket
closed by the deactivation, not by the minute's recheck), and their conversation is back
in the queue."""

from __future__ import annotations

import os
from typing import Any

import pytest

from conftest import ARTIFACTS
from openline.campaigns.tests.browsing import LIVE, sign_in
from openline.core.models import Membership
from openline.messaging.models import Conversation
from openline.messaging.services.assignment import conversation_assume

pytestmark = pytest.mark.browser


def test_admin_deactivates_a_counselor_whose_console_is_open(
    browser: Any,
    live_asgi: str,
    alice: Any,
    bob: Any,
    org: Any,
    sandbox_number: Any,
    put_online: Any,
    text_in: Any,
) -> None:
    put_online(sandbox_number, bob)
    conversation = text_in("are you there?")
    conversation_assume(membership=Membership.objects.get(user=bob), conversation=conversation)
    bobs = sign_in(browser, live_asgi, "bob@example.org", "bob-pass-12")
    admin = sign_in(browser, live_asgi, "alice@example.org", "alice-pass-1")

    admin.goto(f"{live_asgi}/team/")
    os.makedirs(ARTIFACTS, exist_ok=True)
    admin.screenshot(path=os.path.join(ARTIFACTS, "team-page.png"), full_page=True)
    row = admin.locator(f"#member-{Membership.objects.get(user=bob).pk}")
    row.get_by_role("link", name="Deactivate").click()
    assert "1 conversation they hold goes back" in admin.inner_text("#deactivation-effects")
    admin.get_by_role("button", name="Deactivate bob@example.org").click()
    admin.wait_for_selector("#uncovered-shifts")
    assert "On now (Main line)" in admin.inner_text("#uncovered-shifts")
    admin.screenshot(path=os.path.join(ARTIFACTS, "team-deactivated.png"), full_page=True)

    bobs.wait_for_url("**/login/**", timeout=LIVE)
    fresh = Conversation.objects.get(pk=conversation.pk)
    assert (fresh.status, fresh.assigned_to_id) == ("waiting", None)

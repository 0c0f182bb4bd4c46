"""The imminent-risk checklist in Chromium: a counselor starts it from the conversation's
pane (with a confirm) and ticks two steps; the supervisor's console, open on the queue,
shows the notification at once and, opened on the conversation, who ticked what and when;
the supervisor on shift is texted. The real ASGI app, socket and workers run live."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from conftest import WATCH_CSP, wait_for

pytestmark = pytest.mark.browser

LIVE = 5_000  # ms
Page = Any
TEXTER = "+13125550144"


@pytest.fixture
def sign_in(
    browser: Any, live_asgi: str, background_workers: None, caplog: pytest.LogCaptureFixture
) -> Iterator[Callable[[str, str], Page]]:
    pages: list[Page] = []

    def open_as(email: str, password: str) -> Page:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.add_init_script(WATCH_CSP)
        page = context.new_page()
        page.on("dialog", lambda dialog: dialog.accept())
        page.goto(f"{live_asgi}/login/")
        page.fill("#id_username", email)
        page.fill("#id_password", password)
        page.click("button[type=submit]")
        page.wait_for_function("document.body.dataset.liveState === 'open'", timeout=LIVE)
        pages.append(page)
        return page

    yield open_as
    for page in pages:
        assert page.evaluate("window.__csp") == []
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert not errors, errors


def _held_conversation(sandbox_number: Any, org: Any, bob: Any) -> Any:
    """A text from someone, assumed by bob (the inbound processor runs live)."""
    from django.utils import timezone

    from openline.core.models import Membership
    from openline.messaging.models import Conversation, InboundEvent
    from openline.messaging.services import assignment

    InboundEvent.objects.create(
        organization_id=org.pk,
        number=sandbox_number,
        provider=sandbox_number.provider,
        provider_message_id="RESCUE0001",
        from_number=TEXTER,
        body="i can't do this anymore",
        received_at=timezone.now(),
    )
    conversation = wait_for(
        lambda: Conversation.objects.filter(contact__phone=TEXTER).first(),
        what="the text's conversation",
    )
    membership = Membership.objects.get(user=bob, organization=org)
    return assignment.conversation_assume(membership=membership, conversation=conversation)


def test_counselor_starts_and_ticks_steps_and_the_supervisor_is_told_live(
    sign_in: Callable[[str, str], Page],
    live_asgi: str,
    put_online: Callable[..., Any],
    org: Any,
    alice: Any,
    bob: Any,
    sue: Any,
    sandbox_number: Any,
) -> None:
    from playwright.sync_api import expect

    from openline.alerts.models import Alert, AlertKind
    from openline.alerts.tests.conftest import give_confirmed_phone
    from openline.forms.models import RiskStep

    put_online(sandbox_number, sue)
    give_confirmed_phone(org, sue, "+13125559044")
    conversation = _held_conversation(sandbox_number, org, bob)
    supervisor = sign_in("sue@example.org", "supervisor-pass-123")
    counselor = sign_in("bob@example.org", "bob-pass-12")
    counselor.goto(f"{live_asgi}/conversations/{conversation.pk}/")
    section = counselor.locator(f"#rescue-{conversation.pk}")
    expect(section).to_contain_text("Imminent risk")

    section.get_by_role("button", name="Imminent risk").click()  # the confirm is accepted
    expect(section.locator(".rescue-step")).to_have_count(5, timeout=LIVE)
    toast = supervisor.locator("#toasts .toast", has_text="Imminent risk")
    expect(toast).to_contain_text(sandbox_number.label, timeout=LIVE)
    expect(toast.locator("a")).to_have_attribute("href", f"/conversations/{conversation.pk}/")

    # A note typed for a later step, not saved yet, survives the redraws ticking brings.
    later = RiskStep.objects.get(checklist__conversation=conversation, key="supervisor")
    typed = "Sue is on her way to the phone"
    counselor.fill(f"#rescue-note-{later.pk}", typed)
    for key in ("location", "emergency"):
        step = RiskStep.objects.get(checklist__conversation=conversation, key=key)
        section = counselor.locator(f"#rescue-{conversation.pk}")
        section.locator(f"#rescue-done-{step.pk}").check()
        expect(counselor.locator(f"#rescue-step-{step.pk}")).to_contain_text(
            "Done by bob@example.org at", timeout=LIVE
        )
    expect(counselor.locator(f"#rescue-note-{later.pk}")).to_have_value(typed)
    later.refresh_from_db()
    assert later.note == ""  # kept in the page, not saved until they save it
    done = wait_for(
        lambda: (
            RiskStep.objects.filter(
                checklist__conversation=conversation, done_at__isnull=False
            ).count()
            == 2
        ),
        what="two steps done",
    )
    assert done
    assert Alert.objects.filter(kind=AlertKind.RESCUE, user=sue).count() == 1

    supervisor.goto(f"{live_asgi}/conversations/{conversation.pk}/")
    shown = supervisor.locator(f"#rescue-{conversation.pk}")
    expect(shown).to_contain_text("Read-only")
    expect(shown.locator(".rescue-who")).to_have_count(2)
    expect(shown.locator(".rescue-who").first).to_contain_text("Done by bob@example.org at")
    zone = datetime.now(ZoneInfo(org.timezone)).tzname()  # Chicago's CST or CDT, not UTC
    expect(shown.locator(".rescue-who").first).to_contain_text(f" {zone}")
    expect(shown.locator("input[type=checkbox]")).to_have_count(0)

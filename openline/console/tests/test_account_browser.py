"""In Chromium against the real ASGI app: an admin invites someone from the invitations
page, the invited person follows the e-mailed link, chooses a name and password and lands in
the console; a person in two organizations switches with the header's switcher; the reset
page is reachable from the sign-in page. No page reports a Content-Security-Policy
violation."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any

import pytest
from django.core import mail

from conftest import ARTIFACTS, WATCH_CSP, wait_for
from openline.core.models import Membership

pytestmark = pytest.mark.browser

Page = Any


@pytest.fixture(autouse=True)
def _mail(settings: Any, live_asgi: str) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.PUBLIC_URL = live_asgi


@pytest.fixture
def new_page(browser: Any) -> Iterator[Any]:
    contexts: list[Any] = []

    def make() -> Page:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.add_init_script(WATCH_CSP)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


def _sign_in(page: Page, live: str, email: str, password: str) -> None:
    page.goto(f"{live}/login/")
    page.fill("#id_username", email)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live}/")


def _shot(page: Page, name: str) -> None:
    os.makedirs(ARTIFACTS, exist_ok=True)
    page.screenshot(path=os.path.join(ARTIFACTS, f"account-{name}.png"), full_page=True)


def _no_violations(page: Page) -> None:
    assert page.evaluate("window.__csp || []") == []


def test_an_invited_person_joins_from_the_emailed_link(
    new_page: Any, live_asgi: str, alice: Any, org: Any
) -> None:
    admin = new_page()
    _sign_in(admin, live_asgi, "alice@example.org", "alice-pass-1")
    admin.goto(f"{live_asgi}/team/invitations/")
    admin.fill("#id_email", "erin@example.org")
    admin.select_option("#id_role", "counselor")
    admin.click("text=Send invitation")
    admin.wait_for_selector("#pending-invitations")
    assert "erin@example.org" in admin.inner_text("#pending-invitations")
    _shot(admin, "invitations")
    _no_violations(admin)

    wait_for(lambda: mail.outbox, what="the invitation e-mail")
    link = re.search(r"(http\S+/invitations/\S+/)", str(mail.outbox[0].body))
    assert link
    erin = new_page()
    erin.goto(link.group(1))
    erin.fill("#id_display_name", "Erin Example")
    erin.fill("#id_password", "kestrel harbour morning 7")
    erin.fill("#id_password_again", "kestrel harbour morning 7")
    _shot(erin, "accept")
    erin.click("button[type=submit]")
    erin.wait_for_url(f"{live_asgi}/")
    assert "Welcome to Riverside Crisis Line" in erin.inner_text("body")
    _no_violations(erin)
    assert Membership.objects.get(user__email="erin@example.org").organization_id == org.pk


def test_switching_organization_from_the_header(
    new_page: Any, live_asgi: str, alice: Any, other_org: Any
) -> None:
    Membership.objects.create(organization=other_org, user=alice, role="counselor")
    page = new_page()
    _sign_in(page, live_asgi, "alice@example.org", "alice-pass-1")
    _shot(page, "switcher")
    page.select_option("#org-switch", str(other_org.pk))
    page.click(".org-switcher button")
    page.wait_for_url(f"{live_asgi}/")
    assert page.eval_on_selector("#org-switch", "s => s.selectedOptions[0].text") == (
        "Hilltop Clinic"
    )
    assert "Hilltop Clinic" in page.title()
    _no_violations(page)


def test_the_reset_page_from_the_sign_in_page(new_page: Any, live_asgi: str, alice: Any) -> None:
    page = new_page()
    page.goto(f"{live_asgi}/login/")
    page.click("text=Forgot your password?")
    page.fill("#id_email", "alice@example.org")
    _shot(page, "reset")
    page.click("text=Send the link")
    page.wait_for_selector("#reset-sent")
    wait_for(lambda: mail.outbox, what="the reset e-mail")
    assert mail.outbox[0].to == ["alice@example.org"]
    _no_violations(page)

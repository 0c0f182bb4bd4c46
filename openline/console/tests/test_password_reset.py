"""Password reset by e-mail: the link points at OPENLINE_PUBLIC_URL whatever Host a request
claims, works once and for an hour, the answer is the same for every address, an address
gets at most three e-mails an hour, and a reset is audited and ends the other sessions."""

from __future__ import annotations

import email
import re
from collections.abc import Iterator
from datetime import timedelta
from email.message import Message
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from django.contrib.auth.tokens import default_token_generator
from django.core import mail
from django.test import Client
from django.urls import reverse

from conftest import free_port, wait_for
from openline.core.accounts import PASSWORD_RESETS_PER_HOUR
from openline.core.models import AuditEvent, Membership

RESET = "/account/password-reset/"
NEW_PASSWORD = "heron lantern quietly 42"
LINK = re.compile(r"(https?://[^/\s]+)(/account/password-reset/[^\s]+/)")


@pytest.fixture(autouse=True)
def _setup(settings: Any) -> None:
    settings.PUBLIC_URL = "https://line.example.org"
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


def _ask(client: Client, address: str, **extra: Any) -> Any:
    return client.post(RESET, {"email": address}, **extra)


def _link(body: str) -> tuple[str, str]:
    found = LINK.search(body)
    assert found, body
    return found.group(1), found.group(2)


def _sign_in(client: Client, email_address: str, password: str) -> Any:
    return client.post("/login/", {"username": email_address, "password": password})


def _set_password(client: Client, path: str, password: str = NEW_PASSWORD) -> Any:
    form = client.get(path)
    assert form.status_code == 302, form.status_code  # to the page without the token
    return client.post(form["Location"], {"new_password1": password, "new_password2": password})


# --- through a real SMTP server -----------------------------------------------------------------


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp(settings: Any) -> Iterator[Inbox]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    yield inbox
    controller.stop()


def test_a_reset_email_through_smtp_sets_a_new_password_once(smtp: Inbox, alice: Any) -> None:
    browser = Client()
    sent = _ask(browser, "alice@example.org")
    assert sent.status_code == 302 and sent["Location"] == reverse("account:password_reset_done")

    wait_for(lambda: smtp.messages, what="the reset e-mail at the SMTP server")
    message = smtp.messages[0]
    assert message["To"] == "alice@example.org"
    assert "Reset your OpenLine password" in message["Subject"]
    payload = message.get_payload(decode=True)
    assert isinstance(payload, bytes)
    origin, path = _link(payload.decode())
    assert origin == "https://line.example.org"

    done = _set_password(browser, path)
    assert done.status_code == 302
    assert done["Location"] == reverse("account:password_reset_complete")

    signed_in = _sign_in(Client(), "alice@example.org", NEW_PASSWORD)
    assert signed_in.status_code == 302 and signed_in["Location"] == "/"
    assert _sign_in(Client(), "alice@example.org", "alice-pass-1").status_code == 200

    again = Client().get(path, follow=True)
    assert "This link no longer works" in again.content.decode()
    assert "new_password1" not in again.content.decode()


# --- the link ----------------------------------------------------------------------------------


def test_the_link_uses_the_public_url_not_the_requests_host(alice: Any) -> None:
    _ask(Client(), "alice@example.org", HTTP_HOST="evil.example.net")
    assert len(mail.outbox) == 1
    origin, _ = _link(str(mail.outbox[0].body))
    assert origin == "https://line.example.org"
    assert "evil.example.net" not in str(mail.outbox[0].body)


def test_an_http_public_url_gives_an_http_link(settings: Any, alice: Any) -> None:
    settings.PUBLIC_URL = "http://127.0.0.1:8123"
    _ask(Client(), "alice@example.org")
    assert _link(str(mail.outbox[0].body))[0] == "http://127.0.0.1:8123"


def test_the_link_expires_after_the_reset_timeout(
    alice: Any, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _ask(Client(), "alice@example.org")
    _, path = _link(str(mail.outbox[0].body))
    now = default_token_generator._now()
    later = now + timedelta(seconds=settings.PASSWORD_RESET_TIMEOUT + 5)
    monkeypatch.setattr(default_token_generator, "_now", lambda: later)
    page = Client().get(path)
    assert page.status_code == 200
    assert "This link no longer works" in page.content.decode()
    monkeypatch.setattr(default_token_generator, "_now", lambda: now + timedelta(seconds=60))
    assert Client().get(path).status_code == 302  # within the hour it still works


def test_a_weak_password_is_refused_next_to_the_field(alice: Any) -> None:
    _ask(Client(), "alice@example.org")
    _, path = _link(str(mail.outbox[0].body))
    browser = Client()
    form_url = browser.get(path)["Location"]
    refused = browser.post(form_url, {"new_password1": "short", "new_password2": "short"})
    assert refused.status_code == 422
    assert "too short" in refused.content.decode()
    refused = browser.post(
        form_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD + "x"}
    )
    assert refused.status_code == 422
    assert (
        browser.post(
            form_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
        ).status_code
        == 302
    )


# --- the same answer for everyone ------------------------------------------------------------


def test_the_answer_is_the_same_for_known_unknown_and_deactivated_addresses(
    alice: Any, bob: Any, org: Any
) -> None:
    Membership.objects.filter(user=bob).update(is_active=False)
    answers = {
        address: _ask(Client(), address)
        for address in ("alice@example.org", "nobody@example.org", "bob@example.org")
    }
    for response in answers.values():
        assert response.status_code == 302
        assert response["Location"] == reverse("account:password_reset_done")
    # Only alice, who may sign in somewhere, gets an e-mail: bob is deactivated everywhere.
    assert [m.to for m in mail.outbox] == [["alice@example.org"]]
    page = Client().get(reverse("account:password_reset_done"))
    assert "If the address you entered belongs to an account" in page.content.decode()


def test_letter_case_does_not_matter(alice: Any) -> None:
    _ask(Client(), "Alice@Example.ORG")
    assert [m.to for m in mail.outbox] == [["alice@example.org"]]


def test_an_invalid_address_gets_a_field_error(db: None) -> None:
    refused = _ask(Client(), "not an address")
    assert refused.status_code == 422
    assert "Enter a valid email address" in refused.content.decode()
    assert not mail.outbox


def test_at_most_three_emails_an_hour_per_address_with_the_same_answer(alice: Any) -> None:
    answers = [
        _ask(Client(), address) for address in ["alice@example.org", "ALICE@example.org"] * 3
    ]
    assert {(r.status_code, r["Location"]) for r in answers} == {
        (302, reverse("account:password_reset_done"))
    }
    assert len(mail.outbox) == PASSWORD_RESETS_PER_HOUR == 3


def test_the_limit_is_per_address(alice: Any, bob: Any) -> None:
    for _ in range(4):
        _ask(Client(), "alice@example.org")
    _ask(Client(), "bob@example.org")
    assert [m.to[0] for m in mail.outbox].count("bob@example.org") == 1


# --- after the reset -----------------------------------------------------------------------------


def test_a_reset_is_audited_in_each_active_organization_and_ends_other_sessions(
    alice: Any, org: Any, other_org: Any
) -> None:
    from openline.core.services import organization_create

    Membership.objects.create(organization=other_org, user=alice, role="counselor")
    gone = organization_create(name="Old Place", slug="old-place")
    Membership.objects.create(organization=gone, user=alice, role="staff", is_active=False)
    elsewhere = Client()
    elsewhere.force_login(alice)
    assert elsewhere.get("/").status_code == 200

    _ask(Client(), "alice@example.org")
    _, path = _link(str(mail.outbox[0].body))
    assert _set_password(Client(), path).status_code == 302

    events = AuditEvent.objects.filter(action="auth.password_reset", actor=alice)
    assert sorted(events.values_list("organization_id", flat=True)) == sorted(
        [org.pk, other_org.pk]
    )
    signed_out = elsewhere.get("/")
    assert signed_out.status_code == 302 and signed_out["Location"].startswith("/login/")


def test_the_sign_in_page_offers_the_reset(db: None) -> None:
    page = Client().get("/login/").content.decode()
    assert "Forgot your password?" in page
    assert reverse("account:password_reset") in page

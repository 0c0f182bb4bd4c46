"""Signing in: failed sign-ins pause signing in per account and per address, with a pause
that grows; a session ends after the organization's idle timeout (only what the person does
counts as activity) and 12 hours after signing in, on pages, htmx requests and the socket."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from axes.models import AccessAttempt
from channels.testing import WebsocketCommunicator
from django.db.models import F
from django.test import Client

from conftest import Clock
from openline.core import security

PASSWORDS = {"alice@example.org": "alice-pass-1", "bob@example.org": "bob-pass-12"}


@pytest.fixture(autouse=True)
def _quick_passwords(settings: Any) -> None:
    """Every refused password costs a full hash; these tests refuse many."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _sign_in(client: Client, email: str, password: str, address: str = "10.0.0.1") -> Any:
    return client.post("/login/", {"username": email, "password": password}, REMOTE_ADDR=address)


def _fail(client: Client, email: str, times: int, address: str = "10.0.0.1") -> list[int]:
    return [_sign_in(client, email, "wrong-password", address).status_code for _ in range(times)]


def _wait(seconds: float) -> None:
    """Let time pass for the throttle: its records are moved back instead."""
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - timedelta(seconds=seconds))


# --- failed sign-ins ---------------------------------------------------------------------------


def test_five_failed_sign_ins_pause_the_account_with_a_clear_page(alice: Any) -> None:
    client = Client()
    assert _fail(client, "alice@example.org", 4) == [200] * 4
    paused = _sign_in(client, "alice@example.org", "wrong-password")
    assert paused.status_code == 429
    page = paused.content.decode()
    assert "signing in is paused for" in page and "about a minute" in page
    assert 'name="password"' in page and "alice@example.org" in page  # the form is still there
    # Even the right password waits (it is not checked while paused) ...
    refused = _sign_in(Client(), "alice@example.org", PASSWORDS["alice@example.org"])
    assert refused.status_code == 429
    assert "_auth_user_id" not in refused.wsgi_request.session
    # ... and does not lengthen the pause.
    _wait(61)
    assert _sign_in(Client(), "alice@example.org", "alice-pass-1").status_code == 302


def test_the_account_is_paused_from_every_address_and_others_still_sign_in(
    alice: Any, bob: Any
) -> None:
    for n in range(5):  # a guesser spreading tries over addresses
        _fail(Client(), "alice@example.org", 1, address=f"10.0.1.{n}")
    assert _sign_in(Client(), "alice@example.org", "alice-pass-1", "10.0.2.1").status_code == 429
    assert _sign_in(Client(), "bob@example.org", "bob-pass-12", "10.0.2.2").status_code == 302


def test_an_address_trying_many_accounts_is_paused_for_every_account(alice: Any, bob: Any) -> None:
    for n in range(5):
        _fail(Client(), f"nobody{n}@example.org", 1, address="10.0.3.1")
    assert _sign_in(Client(), "bob@example.org", "bob-pass-12", "10.0.3.1").status_code == 429
    assert _sign_in(Client(), "bob@example.org", "bob-pass-12", "10.0.3.2").status_code == 302


def test_changing_the_case_of_the_email_gives_no_fresh_tries(alice: Any) -> None:
    for email in (
        "Alice@example.org",
        "ALICE@EXAMPLE.ORG",
        "alice@Example.org ",
        "aLiCe@example.org",
    ):
        _sign_in(Client(), email, "wrong-password", "10.0.4.1")
    assert _sign_in(Client(), "alice@example.org", "wrong", "10.0.4.2").status_code == 429


def test_the_pause_doubles_with_each_failure_after_the_fifth(alice: Any) -> None:
    client = Client()
    assert _fail(client, "alice@example.org", 5)[-1] == 429
    _wait(61)  # the first pause (a minute) is over: one more try is checked ...
    sixth = _sign_in(client, "alice@example.org", "wrong-password")
    assert sixth.status_code == 429 and "about 2 minutes" in sixth.content.decode()
    _wait(61)  # ... and fails, so the next pause is two minutes
    assert _sign_in(client, "alice@example.org", "alice-pass-1").status_code == 429
    _wait(60)
    assert _sign_in(client, "alice@example.org", "alice-pass-1").status_code == 302


def test_pauses_grow_from_a_minute_to_at_most_an_hour() -> None:
    minutes = [security.pause_after(n).total_seconds() / 60 for n in (5, 6, 7, 8, 10, 11, 50)]
    assert minutes == [1, 2, 4, 8, 32, 60, 60]


def test_failures_are_forgotten_an_hour_after_the_last_one(alice: Any) -> None:
    _fail(Client(), "alice@example.org", 4)
    _wait(3601)
    assert _fail(Client(), "alice@example.org", 4) == [200] * 4  # not paused: counting anew


def test_signing_in_forgives_the_accounts_own_failures(alice: Any) -> None:
    _fail(Client(), "alice@example.org", 4)
    assert _sign_in(Client(), "alice@example.org", "alice-pass-1").status_code == 302
    assert _fail(Client(), "alice@example.org", 4) == [200] * 4


# --- idle timeout and 12 hours -----------------------------------------------------------------


START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    from django.utils import timezone

    fixed = Clock(START)
    monkeypatch.setattr(timezone, "now", fixed)
    return fixed


@pytest.fixture
def bob_client(bob: Any, clock: Clock) -> Client:
    client = Client()
    client.force_login(bob)
    assert client.get("/").status_code == 200  # the session's clocks start here
    return client


def _signed_out_to_login(response: Any) -> bool:
    return response.status_code == 302 and response["Location"].startswith("/login/")


def _background(client: Client, path: str = "/queue") -> Any:
    """What the page fetches by itself: a live refresh or a poll."""
    return client.get(path, HTTP_HX_REQUEST="true", HTTP_HX_CURRENT_URL="http://testserver/")


def test_thirty_minutes_without_activity_sign_out_with_a_message(
    bob_client: Client, clock: Clock
) -> None:
    clock.advance(minutes=29)
    assert bob_client.get("/").status_code == 200
    clock.advance(minutes=30)
    response = bob_client.get("/contacts/")
    assert _signed_out_to_login(response)
    assert response["Location"] == "/login/?next=/contacts/"
    login = bob_client.get(response["Location"]).content.decode()
    assert "signed out after 30 minutes without activity" in login
    assert _signed_out_to_login(bob_client.get("/"))  # really signed out


def test_background_refreshes_do_not_keep_a_session_alive(bob_client: Client, clock: Clock) -> None:
    for _ in range(7):
        clock.advance(minutes=4)
        assert _background(bob_client).status_code == 200
    clock.advance(minutes=3)  # 31 minutes after the last page the person opened
    answer = _background(bob_client)
    assert answer.status_code == 204
    assert answer["HX-Redirect"] == "/login/?next=/"  # htmx sends the whole page there


def test_what_the_person_does_keeps_the_session_alive(bob_client: Client, clock: Clock) -> None:
    clock.advance(minutes=20)
    assert bob_client.post("/preferences/", {}).status_code in (200, 302, 422)  # any action
    clock.advance(minutes=20)
    typed = bob_client.get("/queue", HTTP_HX_REQUEST="true", HTTP_X_OPENLINE_ACTIVITY="1")
    assert typed.status_code == 200  # a search typed, a filter clicked
    clock.advance(minutes=29)
    assert bob_client.get("/").status_code == 200


def test_the_organizations_idle_timeout_is_used(bob_client: Client, org: Any, clock: Clock) -> None:
    org.idle_timeout_minutes = 10
    org.save()
    clock.advance(minutes=11)
    response = bob_client.get("/")
    assert _signed_out_to_login(response)
    assert (
        "after 10 minutes without activity" in bob_client.get(response["Location"]).content.decode()
    )


def test_a_sign_in_ends_after_twelve_hours_however_active(bob_client: Client, clock: Clock) -> None:
    for _ in range(11 * 3 + 2):  # a page every 20 minutes, for 11 h 40 min
        clock.advance(minutes=20)
        assert bob_client.get("/").status_code == 200
    clock.advance(minutes=20)
    response = bob_client.get("/")
    assert _signed_out_to_login(response)
    assert "at most 12 hours" in bob_client.get(response["Location"]).content.decode()


def test_signing_in_again_starts_the_twelve_hours_anew(bob: Any, clock: Clock) -> None:
    client = Client()
    assert _sign_in(client, "bob@example.org", "bob-pass-12").status_code == 302
    clock.advance(hours=11, minutes=50)
    assert _sign_in(client, "bob@example.org", "bob-pass-12").status_code == 302
    clock.advance(minutes=20)
    assert client.get("/").status_code == 200


# --- the console socket ------------------------------------------------------------------------


def _session_cookie(user: Any, *, signed_in_ago: timedelta, active_ago: timedelta) -> str:
    client = Client()
    client.force_login(user)
    session = client.session
    now = datetime.now(UTC)
    session[security.SIGNED_IN_AT] = (now - signed_in_ago).timestamp()
    session[security.ACTIVE_AT] = (now - active_ago).timestamp()
    session.save()
    return f"sessionid={session.session_key}"


async def _connect(cookie: str) -> WebsocketCommunicator:
    from openline.asgi import application

    headers = [
        (b"origin", b"http://testserver"),
        (b"host", b"testserver"),
        (b"cookie", cookie.encode()),
    ]
    return WebsocketCommunicator(application, "/ws/console/", headers=headers)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("fresh_channel_layer")
@pytest.mark.parametrize(
    "signed_in_ago, active_ago",
    [(timedelta(hours=1), timedelta(minutes=31)), (timedelta(hours=12), timedelta(minutes=1))],
    ids=["idle", "twelve-hours"],
)
def test_the_console_socket_refuses_an_ended_sign_in(
    bob: Any, signed_in_ago: timedelta, active_ago: timedelta
) -> None:
    cookie = _session_cookie(bob, signed_in_ago=signed_in_ago, active_ago=active_ago)

    async def run() -> None:
        ws = await _connect(cookie)
        connected, code = await ws.connect()
        assert not connected and code == 4401

    asyncio.run(run())


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("fresh_channel_layer")
def test_the_console_socket_closes_when_the_sign_in_ends(bob: Any, monkeypatch: Any) -> None:
    from django.contrib.sessions.backends.db import SessionStore

    from openline.console import consumers

    monkeypatch.setattr(consumers, "RECHECK_SECONDS", 0.05)
    cookie = _session_cookie(
        bob, signed_in_ago=timedelta(minutes=40), active_ago=timedelta(minutes=29)
    )

    def go_idle() -> None:
        session = SessionStore(cookie.split("=", 1)[1])
        session[security.ACTIVE_AT] -= 120  # nothing the person did for another 2 minutes
        session.save()

    async def run() -> None:
        ws = await _connect(cookie)
        connected, _ = await ws.connect()
        assert connected
        assert await ws.receive_nothing(timeout=0.3)  # rechecked, still fine
        await sync_to_async(go_idle)()
        output = await ws.receive_output(timeout=2)
        assert output == {"type": "websocket.close", "code": consumers.CLOSE_UNAUTHENTICATED}

    asyncio.run(run())


def test_a_scripts_polling_fetch_does_not_keep_a_session_alive() -> None:
    from django.test import RequestFactory

    from openline.core.middleware import counts_as_activity

    factory = RequestFactory()
    poll = factory.get("/sandbox/phone/abc/thread", HTTP_SEC_FETCH_MODE="cors")
    page = factory.get("/queue", HTTP_SEC_FETCH_MODE="navigate")
    clicked = factory.get("/x", HTTP_SEC_FETCH_MODE="cors", HTTP_X_OPENLINE_ACTIVITY="1")

    assert not counts_as_activity(poll)
    assert counts_as_activity(page)
    assert counts_as_activity(clicked)

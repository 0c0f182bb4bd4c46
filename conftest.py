"""Shared fixtures. Every test org has a fixed trio: alice (admin), bob (counselor) and
charlie, who belongs to another organization and must never see alice's data."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

os.environ.setdefault("OPENLINE_TESTING", "1")

# The fake Twilio server and a Twilio number pointing at it: `fake`, `number`.
pytest_plugins = ["openline.providers.twilio.tests.support"]


class Clock:
    """``timezone.now`` under a test's control (an app's ``clock`` fixture patches it in)."""

    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def __call__(self) -> datetime:
        return self.moment

    def set(self, moment: datetime) -> None:
        assert moment.tzinfo is not None
        self.moment = moment

    def advance(self, **delta: float) -> datetime:
        self.moment += timedelta(**delta)
        return self.moment


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "") -> Any:
    """Poll ``predicate`` until it returns something truthy (a server in another thread or
    process catching up); fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what or 'a condition'}")


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now (for a server subprocess)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


ROOT = os.path.dirname(os.path.abspath(__file__))


def run_cli(env: dict[str, str], *args: str) -> str:
    """Run `openline ARGS` in a subprocess with ``env``; its output, or fail with its errors."""
    done = subprocess.run(  # noqa: S603 (our own command, the test's arguments)
        [sys.executable, "-m", "openline.runtime.cli", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def shared_database_url() -> str:
    """The test database this process uses (the suite's pick: SQLite file or PostgreSQL), as
    a DATABASE_URL for the real processes a test starts to share it."""
    from urllib.parse import quote

    from django.db import connection

    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{settings['NAME']}"
    assert connection.vendor == "postgresql", connection.vendor
    user = quote(settings["USER"] or "", safe="")
    password = quote(settings["PASSWORD"] or "", safe="")
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = settings["HOST"] or "127.0.0.1"
    port = settings["PORT"] or 5432
    return f"postgres://{auth}{host}:{port}/{settings['NAME']}"


def redis_for_tests() -> str:
    """The suite's Redis (make test sets OPENLINE_TEST_REDIS_URL when one answers): skip
    without one, except in CI, which must run everything."""
    import redis

    url = os.environ.get("OPENLINE_TEST_REDIS_URL")
    problem = "no Redis here (make test sets OPENLINE_TEST_REDIS_URL when one answers)"
    if url:
        try:
            redis.Redis.from_url(url, socket_connect_timeout=2).ping()
            return url
        except redis.RedisError as exc:
            problem = f"Redis at {url} does not answer ({exc})"
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must provide Redis (OPENLINE_TEST_REDIS_URL): {problem}")
    pytest.skip(problem)


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup: None, django_db_blocker: Any) -> Iterator[None]:
    """pytest-django's, plus: background threads (intake writer, workers, live servers)
    keep their own connections, which on PostgreSQL would block dropping the test
    database; end them first."""
    yield
    from django.db import connection

    with django_db_blocker.unblock():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )


@pytest.fixture(autouse=True)
def _fresh_process_state() -> Iterator[None]:
    from django.core.cache import cache

    from openline.availability.services.watch import forget_inbox_states
    from openline.messaging.ratelimit import limiter
    from openline.runtime.testing import reset_process_state

    limiter().reset()
    reset_process_state()
    forget_inbox_states()
    cache.clear()  # per-address limits (new chats per minute) start afresh
    yield
    limiter().reset()
    reset_process_state()


@pytest.fixture
def published() -> Iterator[list[dict[str, Any]]]:
    """Real-time events published (after commit), round-tripped through JSON."""
    from openline.core import realtime

    events: list[dict[str, Any]] = []
    realtime._capture = events
    yield events
    realtime._capture = None
    json.dumps(events)


class Pipeline:
    """Runs code as if each call were its own request: commit hooks fire, then every task
    they enqueued runs (the in-process worker, without its thread)."""

    def __init__(self, capture: Callable[..., Any]) -> None:
        self._capture = capture

    def run(self, fn: Callable[[], Any] | None = None, *, include_deferred: bool = False) -> Any:
        from openline.messaging.services.inbound import inbound_process_pending
        from openline.runtime.worker import run_ready_tasks

        result = None
        with self._capture(execute=True):
            if fn is not None:
                result = fn()
        for _ in range(50):
            with self._capture(execute=True):
                done = inbound_process_pending()
            with self._capture(execute=True):
                done += run_ready_tasks(include_deferred=include_deferred)
            if not done:
                break
        return result


@pytest.fixture
def pipeline(django_capture_on_commit_callbacks: Callable[..., Any]) -> Pipeline:
    return Pipeline(django_capture_on_commit_callbacks)


@pytest.fixture
def org(db: None) -> Any:
    from openline.core.services import organization_create

    return organization_create(
        name="Riverside Crisis Line", slug="riverside", timezone_name="America/Chicago"
    )


@pytest.fixture
def other_org(db: None) -> Any:
    from openline.core.services import organization_create

    return organization_create(
        name="Hilltop Clinic", slug="hilltop", timezone_name="America/New_York"
    )


@pytest.fixture
def alice(org: Any) -> Any:
    from openline.core.services import user_create

    return user_create(
        organization=org, email="alice@example.org", role="admin", password="alice-pass-1"
    ).user


@pytest.fixture
def bob(org: Any) -> Any:
    from openline.core.services import user_create

    return user_create(
        organization=org, email="bob@example.org", role="counselor", password="bob-pass-12"
    ).user


@pytest.fixture
def charlie(other_org: Any) -> Any:
    from openline.core.services import user_create

    return user_create(
        organization=other_org, email="charlie@example.org", role="admin", password="charlie-pass"
    ).user


def _member(org: Any, email: str, role: str) -> Any:
    from openline.core.services import user_create

    return user_create(organization=org, email=email, role=role, password=f"{role}-pass-123").user


@pytest.fixture
def dora(org: Any) -> Any:
    """A second counselor, to race bob."""
    return _member(org, "dora@example.org", "counselor")


@pytest.fixture
def sue(org: Any) -> Any:
    """A supervisor."""
    return _member(org, "sue@example.org", "supervisor")


@pytest.fixture
def sandbox_number(org: Any) -> Any:
    from openline.providers.services import number_add

    return number_add(
        organization=org,
        provider="sandbox",
        e164="+12025550142",
        name="Main line",
        segments_per_second=1000,
    )


@pytest.fixture
def other_number(other_org: Any) -> Any:
    from openline.providers.services import number_add

    return number_add(
        organization=other_org,
        provider="sandbox",
        e164="+12125550199",
        name="Clinic",
        segments_per_second=1000,
    )


@pytest.fixture
def put_online(db: None) -> Callable[..., Any]:
    """Make an inbox online now (the online rule, nothing faked): a one-off normal shift
    from an hour ago for ``hours`` with ``person`` (default: an admin of its organization)
    signed up. Works under a test clock too: "now" is ``timezone.now()``."""
    from datetime import timedelta
    from zoneinfo import ZoneInfo

    from django.utils import timezone

    from openline.availability.services import shift_create, shift_sign_up
    from openline.core.models import Membership, Organization

    def make(number: Any, person: Any = None, hours: int = 24) -> Any:
        org = Organization.objects.get(pk=number.organization_id)
        admin = Membership.objects.filter(organization=org, role="admin").order_by("pk").first()
        assert admin is not None, "put_online needs an admin in the inbox's organization"
        start = (timezone.now() - timedelta(hours=1)).astimezone(ZoneInfo(org.timezone))
        shift = shift_create(
            organization_id=org.pk,
            actor_id=admin.user_id,
            number_id=number.pk,
            kind="normal",
            start_date=start.date(),
            start_time=start.time().replace(second=0, microsecond=0),
            duration_minutes=hours * 60,
            title="On now",
        )
        shift_sign_up(
            organization_id=org.pk,
            actor_id=admin.user_id,
            shift_id=shift.pk,
            occurrence_start=shift.first_start,
            user_id=(person.pk if person is not None else admin.user_id),
        )
        return shift

    return make


@pytest.fixture
def online_inbox(put_online: Callable[..., Any], alice: Any, sandbox_number: Any) -> Any:
    """The sandbox inbox, online now with alice on shift."""
    put_online(sandbox_number, alice)
    return sandbox_number


@pytest.fixture
def text_in(pipeline: Pipeline) -> Callable[..., Any]:
    """Simulate an acknowledged inbound text and process it; returns the stored Message."""
    import itertools

    from django.utils import timezone

    from openline.messaging.models import InboundEvent, Message

    counter = itertools.count(1)

    def send(number: Any, from_number: str, body: str) -> Any:
        event = InboundEvent.objects.create(
            organization_id=number.organization_id,
            number=number,
            provider=number.provider,
            provider_message_id=f"TEST{next(counter):08d}{from_number}",
            from_number=from_number,
            body=body,
            received_at=timezone.now(),
        )
        pipeline.run()
        return Message.objects.get(inbound_event=event)

    return send


# --- live server and browsers --------------------------------------------------------------

CHROMIUM = os.environ.get("OPENLINE_CHROMIUM") or next(
    (p for p in ("/usr/bin/chromium", "/usr/bin/chromium-browser") if os.path.exists(p)), None
)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = os.path.join(ROOT, "test-artifacts")
# An init script for browser contexts: every Content-Security-Policy violation a page
# reports collects in window.__csp (a test asserts it stays empty).
WATCH_CSP = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__csp.push(e.violatedDirective + " " + (e.blockedURI || "inline") + " " + e.sourceFile);
});
"""


def pytest_configure(config: Any) -> None:
    """Tests create and sign in thousands of users: PBKDF2's million rounds (about 0.3 s a
    password here) were half of the suite's time. The suite checks OpenLine's use of
    passwords, not Django's hashing cost; production keeps Django's hashers."""
    from django.conf import settings

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    if CHROMIUM:
        return
    if os.environ.get("CI") == "true":
        raise pytest.UsageError("CI must run the browser tests: install Debian's chromium")
    skip = pytest.mark.skip(reason="no Chromium here (apt-get install -y chromium)")
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def fresh_channel_layer() -> Iterator[None]:
    """A channel layer of its own for the test. The Redis layer keeps receive state and a
    receiving channel name per layer object, and a server has one event loop for its whole
    life; tests start a loop (or a whole server) each, so each gets a new layer, as a new
    server process would."""
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


class _ServerErrors(logging.Handler):
    """ERROR records logged while a live server runs, each reduced to one line naming the
    exception and the deepest OpenLine frame: a browser test that sees "Server Error (500)"
    then says why in its summary line (see pytest_runtest_makereport)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.lines: list[str] = []
        self.tracebacks: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        line = f"{record.name}: {record.getMessage()}"
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            frames = traceback.extract_tb(record.exc_info[2])
            ours = [f for f in frames if "/openline/" in f.filename] or frames
            where = f" at {ours[-1].filename}:{ours[-1].lineno}" if ours else ""
            line = f"{type(exc).__name__}: {exc}{where}"
            self.tracebacks.append("".join(traceback.format_exception(*record.exc_info)))
        self.lines.append(line)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: Any, call: Any) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    errors: _ServerErrors | None = getattr(item, "_server_errors", None)
    if not (report.failed and errors and errors.lines):
        return
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:
        crash.message = f"{crash.message}\nServer errors: {' | '.join(errors.lines[-3:])}"
    report.sections.append(("Server tracebacks", "\n".join(errors.tracebacks) or "(none)"))


@pytest.fixture
def live_asgi(
    request: pytest.FixtureRequest, transactional_db: None, fresh_channel_layer: None
) -> Iterator[str]:
    """openline.asgi.application (intake router + Django) served by uvicorn on a free port."""
    import socket
    import threading
    import time

    import uvicorn

    from openline.asgi import application

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(application, lifespan="off", log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    errors = _ServerErrors()
    request.node._server_errors = errors
    logging.getLogger().addHandler(errors)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        logging.getLogger().removeHandler(errors)
    from openline.core import realtime

    realtime.shutdown()
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()
    assert not thread.is_alive(), "the test server did not stop; it would serve the next test"


@pytest.fixture
def background_workers(live_asgi: str) -> Iterator[None]:
    """The embedded profile's inbound processor and task worker threads."""
    from openline.runtime.processing_loop import InboundProcessor
    from openline.runtime.worker import task_workers

    threads = [InboundProcessor(), *task_workers()]
    for thread in threads:
        thread.start()
    yield
    for thread in threads:
        thread.stop()
    for thread in threads:
        thread.join(timeout=10)


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop on this thread; Django would then refuse
    # the test's own (synchronous, same-thread) ORM calls.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    monkeypatch.setattr("playwright.sync_api.Page.wait_for_function", _wait_for_function)
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


def _wait_for_function(
    page: Any, expression: str, *, arg: Any = None, timeout: float | None = None, **_: Any
) -> Any:
    """Page.wait_for_function that works under the console's Content-Security-Policy:
    Playwright's own runs the expression through eval() inside the page, which the policy
    forbids; evaluate() goes through the DevTools protocol, which it does not govern."""
    from playwright.sync_api import Error

    deadline = time.monotonic() + (30_000 if timeout is None else timeout) / 1000
    failure: Error | None = None
    while True:
        try:
            value = page.evaluate(expression, arg)
        except Error as exc:
            # The page is navigating: ask the next one. Between two documents the new one
            # may have no body yet ("Cannot read properties of null"): ask again, and raise
            # that error only if it is still the answer at the deadline.
            text = str(exc)
            if "context was destroyed" in text or "navigation" in text:
                failure = None
            elif "of null" in text:
                failure = exc
            else:
                raise
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            if failure is not None:
                raise failure
            raise AssertionError(f"timed out waiting for {expression}")
        page.wait_for_timeout(50)


@pytest.fixture
def page(browser: Any, live_asgi: str) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 390, "height": 844})
    yield context.new_page()
    context.close()

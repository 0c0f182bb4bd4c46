"""The scaled-out profile (issue 3): the in-memory channel layer by default, channels-redis
when REDIS_URL is set, so several web processes share events.

The real test starts two `openline web` processes and one `openline worker` on the suite's
test database (SQLite file, or PostgreSQL when DATABASE_URL is set) with REDIS_URL pointing
to a Redis database of their own. A text posted to web process B is processed by the worker
and its events reach a counselor's console socket on web process A; an assume posted to B
reaches A as well; a member of another organization on A sees none of it. Nothing is
mocked, and every process is killed whatever happens."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import websockets

from conftest import ROOT, free_port, redis_for_tests, shared_database_url, wait_for

# Both web processes sit behind one public address, as behind a load balancer.
PUBLIC_URL = "http://openline.test"
SEEKER, OTHER_SEEKER = "+12025550131", "+12125550132"
# Marks a Redis database this test has taken (see _claim_redis_db).
CLAIM_KEY = "openline-test:scaled-out"
# How long an event may take from the webhook's answer to the console socket.
ARRIVAL_SECONDS = 5.0

LAYER_SCRIPT = """
import json
import django
django.setup()
from channels.layers import get_channel_layer
from django.conf import settings
layer = get_channel_layer()
print(json.dumps({
    "config": settings.CHANNEL_LAYERS["default"],
    "mro": [f"{c.__module__}.{c.__qualname__}" for c in type(layer).__mro__],
}))
"""


def _base_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.pop("OPENLINE_TESTING", None)
    env.update(OPENLINE_VAR_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="openline.settings")
    return env


@pytest.mark.parametrize(
    ("redis_url", "expected"),
    [
        (None, "channels.layers.InMemoryChannelLayer"),
        ("redis://127.0.0.1:6379/9", "channels_redis.core.RedisChannelLayer"),
    ],
    ids=["default-in-memory", "redis-url-channels-redis"],
)
def test_the_channel_layer_follows_redis_url(
    tmp_path: Path, redis_url: str | None, expected: str
) -> None:
    """Settings are read at import, so each case is a fresh interpreter."""
    env = _base_env(tmp_path)
    if redis_url:
        env["REDIS_URL"] = redis_url
    done = subprocess.run(
        [sys.executable, "-c", LAYER_SCRIPT],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert expected in found["mro"], found
    if redis_url:
        assert found["config"] == {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # The read timeout outlasts channels-redis's 5 s wait (see settings).
            "CONFIG": {"hosts": [{"address": redis_url, "socket_timeout": 30}]},
        }
    else:  # the embedded layer: Channels' in-memory one, nothing of Redis
        assert found["config"] == {"BACKEND": "openline.runtime.layers.EmbeddedChannelLayer"}
        assert not any(name.startswith("channels_redis") for name in found["mro"])


# --- two web processes and a worker -------------------------------------------------------


# Takes the database only while it is empty, in one step.
_CLAIM_LUA = """
if redis.call('DBSIZE') == 0 then
  return redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
end
return false
"""


@contextlib.contextmanager
def _claim_redis_db(test_url: str) -> Iterator[str]:
    """A Redis database nobody else uses, for the processes' channel layer: the suite's own
    database keeps other tests' channel-layer groups (org-1, org-2... would collide). The
    highest empty database other than the suite's is marked taken atomically, and only
    keys in it are deleted afterwards."""
    import redis

    parts = urlsplit(test_url)
    # The suite's database, and the other pass's when make test runs the two side by side.
    suites = {int(parts.path.strip("/") or 0)}
    suites |= {int(db) for db in os.environ.get("OPENLINE_TEST_REDIS_SUITES", "").split(",") if db}
    token = secrets.token_hex(8)
    for db in range(15, -1, -1):
        if db in suites:
            continue
        url = parts._replace(path=f"/{db}").geturl()
        client = redis.Redis.from_url(url)
        try:
            taken = client.eval(_CLAIM_LUA, 1, CLAIM_KEY, token, 600)
        except redis.ResponseError:  # no such database on this server
            client.close()
            continue
        if not taken:
            client.close()
            continue
        try:
            yield url
        finally:
            # Empty when taken and marked since: everything in it is this test's.
            if client.get(CLAIM_KEY) == token.encode():
                keys = list(client.scan_iter(count=1000))
                if keys:
                    client.delete(*keys)
            client.close()
        return
    pytest.fail(f"no empty Redis database left on {parts.netloc} for the scaled-out test")


def _worker_listening(url: str) -> bool:
    """The worker has subscribed to intake's wake-ups (only it subscribes in its database)."""
    import redis

    db = urlsplit(url).path.strip("/")
    with contextlib.closing(redis.Redis.from_url(url)) as client:
        return any(
            str(c.get("db")) == db and int(c.get("sub", 0)) > 0 for c in client.client_list()
        )


@pytest.fixture
def scaled_out(tmp_path: Path, transactional_db: None) -> Iterator[dict[str, Any]]:
    from django.conf import settings

    redis_test_url = redis_for_tests()
    processes: list[subprocess.Popen[bytes]] = []
    logs: dict[str, Path] = {}
    with _claim_redis_db(redis_test_url) as redis_url:
        env = _base_env(tmp_path)
        env.update(
            DATABASE_URL=shared_database_url(),
            REDIS_URL=redis_url,
            OPENLINE_PUBLIC_URL=PUBLIC_URL,
            # One deployment: one secret (sessions, sandbox phone tokens, field encryption).
            SECRET_KEY=settings.SECRET_KEY,
        )
        ports = {"a": free_port(), "b": free_port()}

        def start(name: str, *args: str) -> None:
            logs[name] = tmp_path / f"{name}.log"
            with logs[name].open("wb") as log:
                processes.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "openline.runtime.cli", *args],
                        env=env,
                        cwd=ROOT,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )

        def alive() -> None:
            for proc in processes:
                assert proc.poll() is None, f"a process ended early\n{_tails(logs)}"

        def healthy(port: int) -> Callable[[], bool]:
            def check() -> bool:
                alive()
                try:
                    return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).is_success
                except httpx.HTTPError:
                    return False

            return check

        try:
            start("worker", "worker")
            start("web-a", "web", "--port", str(ports["a"]))
            start("web-b", "web", "--port", str(ports["b"]))
            for name, port in ports.items():
                wait_for(healthy(port), 30, f"web process {name.upper()} to answer /healthz")
            wait_for(lambda: alive() or _worker_listening(redis_url), 30, "the worker to listen")
            yield {
                "a": f"http://127.0.0.1:{ports['a']}",
                "b": f"http://127.0.0.1:{ports['b']}",
                "redis_url": redis_url,
                "processes": processes,
                "logs": logs,
            }
        finally:
            for proc in processes:
                if proc.poll() is None:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
            for proc in processes:
                proc.wait(10)


def _tails(logs: dict[str, Path]) -> str:
    return "\n".join(
        f"--- {name} ---\n{path.read_text(errors='replace')[-2000:]}"
        for name, path in logs.items()
        if path.exists()
    )


def _session_cookie(user: Any) -> str:
    from django.conf import settings
    from django.test import Client

    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


class Console:
    """A console socket whose events are collected as they come."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.events: list[dict[str, Any]] = []
        self.arrived: list[float] = []  # monotonic time each event came in
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for frame in self.ws:
            events = json.loads(frame)["events"]
            self.events += events
            self.arrived += [time.monotonic()] * len(events)

    async def wait_for(
        self, match: Callable[[dict[str, Any]], bool], what: str
    ) -> tuple[dict[str, Any], float]:
        """The first event matching ``match`` and when it came, once it is here."""
        deadline = time.monotonic() + ARRIVAL_SECONDS
        while True:
            for event, arrived in zip(self.events, self.arrived, strict=True):
                if match(event):
                    return event, arrived
            if self.reader.done():
                self.reader.result()  # the socket closed: say why
                raise AssertionError(f"the socket closed before {what}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} did not arrive in {ARRIVAL_SECONDS} s: {self.events}")
            await asyncio.sleep(0.005)


async def _open(base: str, cookie: str) -> Console:
    url = base.replace("http://", "ws://") + "/ws/console/"
    headers = {"Cookie": cookie, "Origin": base}
    return Console(await websockets.connect(url, additional_headers=headers))


def _texter(number: Any, sender: str) -> Callable[[httpx.AsyncClient, str], Any]:
    """Posts a signed sandbox webhook (what the phone simulator sends) for ``number``."""
    from openline.providers.sandbox.provider import phone_token

    path, token, to = (
        f"/hooks/sandbox/{number.webhook_key}/inbound",
        phone_token(number),
        number.e164,
    )

    async def text(client: httpx.AsyncClient, base: str) -> float:
        response = await client.post(
            base + path,
            data={
                "MessageId": "SB" + secrets.token_hex(12),
                "From": sender,
                "To": to,
                "Body": "is anyone there?",
            },
            headers={"X-Sandbox-Token": token},
        )
        assert response.status_code == 200, response.text
        return time.monotonic()  # acknowledged: stored, to be processed by the worker

    return text


def test_events_cross_web_processes_through_redis(
    scaled_out: dict[str, Any],
    org: Any,
    other_org: Any,
    bob: Any,
    charlie: Any,
    sandbox_number: Any,
    other_number: Any,
) -> None:
    import redis

    a, b = scaled_out["a"], scaled_out["b"]
    bob_cookie, charlie_cookie = _session_cookie(bob), _session_cookie(charlie)
    text_org, text_other_org = _texter(sandbox_number, SEEKER), _texter(other_number, OTHER_SEEKER)
    timings: dict[str, float] = {}

    async def scenario() -> tuple[Console, Console]:
        consoles: list[Console] = []
        try:
            bob_a = await _open(a, bob_cookie)  # a counselor of org, on web process A
            consoles.append(bob_a)
            charlie_a = await _open(a, charlie_cookie)  # an admin of other_org, also on A
            consoles.append(charlie_a)
            # A's hub joined both organizations' groups in the Redis channel layer.
            with contextlib.closing(redis.Redis.from_url(scaled_out["redis_url"])) as r:
                for organization in (org, other_org):
                    assert r.exists(f"asgi:group:org-{organization.pk}"), organization.slug

            async with httpx.AsyncClient(timeout=5) as client:
                # A text to B, stored by B, processed by the worker: its events reach A.
                acked = await text_org(client, b)
                created, arrived = await bob_a.wait_for(
                    lambda e: e["type"] == "conversation.created", "conversation.created on A"
                )
                timings["conversation.created"] = arrived - acked
                conversation_id = created["conversation_id"]
                _, arrived = await bob_a.wait_for(
                    lambda e: (
                        e["type"] == "message.created"
                        and e["conversation_id"] == conversation_id
                        and e["direction"] == "in"
                    ),
                    "message.created on A",
                )
                timings["message.created"] = arrived - acked

                # An event a web process publishes itself: bob assumes it through B, as the
                # console's pane does (htmx, so the pane comes back rather than a redirect).
                csrf = secrets.token_hex(16)
                sent = time.monotonic()  # published on commit, maybe before the answer
                response = await client.post(
                    f"{b}/conversations/{conversation_id}/assume",
                    headers={
                        "Cookie": f"{bob_cookie}; csrftoken={csrf}",
                        "X-CSRFToken": csrf,
                        "Origin": b,
                        "HX-Request": "true",
                    },
                )
                assert response.status_code == 200, response.text[:500]
                assert "It&#x27;s yours." in response.text
                _, arrived = await bob_a.wait_for(
                    lambda e: (
                        e["type"] == "conversation.assigned"
                        and e["conversation_id"] == conversation_id
                        and e["assigned_to_id"] == bob.pk
                    ),
                    "conversation.assigned on A",
                )
                timings["conversation.assigned"] = arrived - sent

                # The other organization's socket on A works: its own text reaches it.
                await text_other_org(client, b)
                await charlie_a.wait_for(
                    lambda e: e["type"] == "message.created", "other_org's message.created on A"
                )
            await asyncio.sleep(0.5)  # stragglers, had anything leaked, would be here by now
        finally:
            for console in consoles:
                await console.ws.close()
                with contextlib.suppress(Exception):
                    await console.reader
        return bob_a, charlie_a

    bob_a, charlie_a = asyncio.run(scenario())

    assert {e["organization_id"] for e in bob_a.events} == {org.pk}, bob_a.events
    assert {e["organization_id"] for e in charlie_a.events} == {other_org.pk}, charlie_a.events
    # Each event once: one subscription per web process and organization.
    kinds = [e["type"] for e in bob_a.events]
    assert kinds.count("conversation.created") == 1, bob_a.events
    assert kinds.count("conversation.assigned") == 1, bob_a.events
    for proc in scaled_out["processes"]:
        assert proc.poll() is None, _tails(scaled_out["logs"])
    print(
        "arrival on A, after B acknowledged the text / since the assume was sent: "
        + ", ".join(f"{kind} {seconds * 1000:.0f} ms" for kind, seconds in timings.items())
    )

"""`openline run` the way people start it: a web process and a worker child on a fresh
SQLite var dir, driven over real sockets. A signed Twilio webhook is acknowledged by the
web process and processed by the child, and the live event reaches a console WebSocket
through the web process. A killed worker is replaced and picks up what waited; stopping
the server stops the worker. Nothing here is mocked."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from twilio.request_validator import RequestValidator

from conftest import ROOT, free_port, run_cli, wait_for

TOKEN = "f" * 32
SID = "AC" + "0" * 32
NUMBER = "+12025550100"


def _children(pid: int) -> list[int]:
    """Child processes started by any thread of ``pid``."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):  # a thread that just ended
            found += [int(p) for p in (task / "children").read_text().split()]
    return found


@pytest.fixture
def server(tmp_path: Path) -> Iterator[dict[str, Any]]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.pop("OPENLINE_TESTING", None)
    env.update(
        OPENLINE_VAR_DIR=str(tmp_path),
        OPENLINE_PUBLIC_URL=f"http://127.0.0.1:{port}",
        PORT=str(port),
        DJANGO_SETTINGS_MODULE="openline.settings",
    )

    cli = functools.partial(run_cli, env)

    cli("migrate")
    cli("org", "create", "--name", "Line", "--slug", "line")
    cli("user", "create", "--org", "line", "--email", "ann@example.org", "--role", "admin",
        "--password", "ann-pass-1234")  # fmt: skip
    number = json.loads(
        cli("number", "add", "--org", "line", "--provider", "twilio", "--number", NUMBER,
            "--config", f"account_sid={SID}", "--config", f"auth_token={TOKEN}", "--json")
    )  # fmt: skip
    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "openline.runtime.cli", "run", "--port", str(port)],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        try:
            return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(healthy, 60, "the server to answer /healthz")
        yield {"proc": proc, "base": base, "port": port, "inbound_url": number["inbound_url"],
               "log": tmp_path / "server.log"}  # fmt: skip
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def _text(server: dict[str, Any], sid: str, body: str) -> httpx.Response:
    params = {
        "MessageSid": sid,
        "AccountSid": SID,
        "From": "+12025550188",
        "To": NUMBER,
        "Body": body,
        "NumMedia": "0",
    }
    url = server["inbound_url"]
    signature = RequestValidator(TOKEN).compute_signature(url, params)
    return httpx.post(url, data=params, headers={"X-Twilio-Signature": signature}, timeout=5)


def _session_cookie(base: str) -> str:
    with httpx.Client(base_url=base, timeout=5) as client:
        client.get("/login/")
        response = client.post(
            "/login/",
            data={
                "username": "ann@example.org",
                "password": "ann-pass-1234",
                "csrfmiddlewaretoken": client.cookies["csrftoken"],
            },
        )
        assert response.status_code in (200, 302), response.text[:300]
        return "; ".join(f"{k}={v}" for k, v in client.cookies.items())


async def _next_event(ws: Any, kind: str, timeout: float = 10) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        frame = await asyncio.wait_for(ws.recv(), max(0.1, deadline - time.monotonic()))
        for event in json.loads(frame)["events"]:
            if event["type"] == kind:
                return event


def test_run_serves_from_one_process_and_works_in_a_worker_child(server: dict[str, Any]) -> None:
    proc = server["proc"]
    worker = wait_for(lambda: _children(proc.pid), 10, "the worker child")[0]
    cookie = _session_cookie(server["base"])

    async def scenario() -> None:
        url = f"ws://127.0.0.1:{server['port']}/ws/console/"
        headers = {"Cookie": cookie, "Origin": server["base"]}
        async with websockets.connect(url, additional_headers=headers) as ws:
            response = await asyncio.to_thread(_text, server, "SM" + "1" * 32, "hello there")
            assert response.status_code == 200, response.text
            event = await _next_event(ws, "message.created")
            assert event["direction"] == "in"

            # Warm, a text reaches the console within a second of its acknowledgement
            # (bench/console.py measures the distribution under load).
            response = await asyncio.to_thread(_text, server, "SM" + "3" * 32, "you there?")
            acknowledged = time.monotonic()
            assert response.status_code == 200
            event = await _next_event(ws, "message.created", timeout=5)
            assert time.monotonic() - acknowledged < 1.0
            assert event["direction"] == "in"

            # A worker that dies is replaced, and what arrived meanwhile is processed.
            os.kill(worker, signal.SIGKILL)
            await asyncio.to_thread(
                wait_for, lambda: worker not in _children(proc.pid), 10, "the worker to go"
            )
            response = await asyncio.to_thread(_text, server, "SM" + "2" * 32, "still there?")
            assert response.status_code == 200  # the web process acknowledges on its own
            event = await _next_event(ws, "message.created", timeout=20)
            assert event["direction"] == "in"

    asyncio.run(scenario())
    replacement = _children(proc.pid)
    assert replacement and worker not in replacement
    log = server["log"].read_text()
    assert log.count("the worker process stopped") == 1

    # Ctrl-C in a terminal reaches the whole process group: the server stops, its worker
    # with it, and nobody mistakes the worker's stop for a crash.
    os.killpg(proc.pid, signal.SIGINT)
    assert proc.wait(20) == 0
    assert not any(os.path.exists(f"/proc/{pid}") for pid in replacement)
    assert server["log"].read_text().count("the worker process stopped") == 1

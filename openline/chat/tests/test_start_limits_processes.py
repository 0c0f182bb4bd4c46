"""Chat start limits hold across two real `openline web` processes on the suite's database
(SQLite file or PostgreSQL), with the suite's Redis when it runs with REDIS_URL: what one
process counted, the other sees. Visitors' addresses come in X-Forwarded-For, which
uvicorn takes from a proxy on 127.0.0.1, as behind a load balancer."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import ROOT, free_port, shared_database_url, wait_for
from openline.chat.models import ChatWidget
from openline.chat.tests.conftest import ORIGIN
from openline.messaging.models import Conversation


@pytest.fixture
def two_web_processes(tmp_path: Path, transactional_db: None) -> Iterator[list[str]]:
    from django.conf import settings

    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.pop("OPENLINE_TESTING", None)
    env.update(
        OPENLINE_VAR_DIR=str(tmp_path),
        DJANGO_SETTINGS_MODULE="openline.settings",
        DATABASE_URL=shared_database_url(),
        SECRET_KEY=settings.SECRET_KEY,
    )
    if settings.REDIS_URL:  # the suite's Redis: limits shared there, not in the database
        env["REDIS_URL"] = settings.REDIS_URL
    ports = [free_port(), free_port()]
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for port in ports:
            log = (tmp_path / f"web-{port}.log").open("wb")
            processes.append(
                subprocess.Popen(  # noqa: S603 (our own command)
                    [sys.executable, "-m", "openline.runtime.cli", "web", "--port", str(port)],
                    env=env,
                    cwd=ROOT,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )  # fmt: skip
            )
        for port, proc in zip(ports, processes, strict=True):
            wait_for(lambda port=port, proc=proc: _healthy(port, proc), 30, f"web on {port}")
        yield [f"http://127.0.0.1:{port}" for port in ports]
    finally:
        for proc in processes:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def _healthy(port: int, proc: subprocess.Popen[bytes]) -> bool:
    assert proc.poll() is None, "a web process ended early"
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).is_success
    except httpx.HTTPError:
        return False


def _start(base: str, widget: Any, address: str) -> httpx.Response:
    return httpx.post(
        f"{base}/chat/{widget.public_id}/start",
        json={"name": "Sam"},
        headers={"Origin": ORIGIN, "X-Forwarded-For": address},
        timeout=10,
    )


def test_start_limits_hold_across_two_web_processes(
    two_web_processes: list[str], widget: Any
) -> None:
    a, b = two_web_processes
    ChatWidget.objects.filter(pk=widget.pk).update(
        starts_per_address_per_minute=4, starts_per_minute=6
    )
    visitor = "203.0.113.7"
    # Four from one address, two on each process: each process alone has seen two.
    assert [_start(base, widget, visitor).status_code for base in (a, b, a, b)] == [201] * 4
    over = [_start(base, widget, visitor) for base in (a, b)]
    assert [r.status_code for r in over] == [429, 429], [r.text for r in over]
    assert all(r.json()["message"].startswith("Several chats were started") for r in over)
    # Two more from other addresses make six for the widget; a seventh is refused.
    assert _start(a, widget, "198.51.100.1").status_code == 201
    assert _start(b, widget, "198.51.100.2").status_code == 201
    seventh = _start(a, widget, "198.51.100.3")
    assert seventh.status_code == 429
    assert seventh.json()["message"].startswith("Many people are starting chats")
    assert int(seventh.headers["Retry-After"]) >= 1
    assert Conversation.objects.count() == 6

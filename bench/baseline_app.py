"""Baseline for the intake benchmark: the least a webhook endpoint can do in Python.

A bare ASGI app (no framework): read the body, parse the form with urllib.parse.parse_qs,
one SQLite INSERT in autocommit mode (WAL, synchronous=NORMAL, the pragmas OpenLine uses),
answer 200 with empty TwiML. No signature check, no validation, no batching. It is served by
uvicorn exactly as `openline run` serves OpenLine (openline/runtime/cli.py: one process,
lifespan="off", access_log=False, log_level="warning", default loop and http, so uvloop and
httptools when installed).

    python bench/baseline_app.py --port 8001 --db /tmp/baseline.sqlite3

GET /healthz answers {"status": "ok", ...} with the event loop and HTTP protocol in use.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import sys
from typing import Any
from urllib.parse import parse_qs

TWIML = b'<?xml version="1.0" encoding="UTF-8"?><Response></Response>'

_db: sqlite3.Connection | None = None


def open_db(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=20)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=20000")
    conn.execute(
        "CREATE TABLE IF NOT EXISTS inbound ("
        " id INTEGER PRIMARY KEY,"
        " sid TEXT NOT NULL UNIQUE,"
        " from_number TEXT NOT NULL,"
        " to_number TEXT NOT NULL,"
        " body TEXT NOT NULL)"
    )
    return conn


def _first(form: dict[str, list[str]], name: str) -> str:
    values = form.get(name)
    return values[0] if values else ""


async def _send(send: Any, status: int, content_type: bytes, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _server_info() -> dict[str, str]:
    loop = asyncio.get_running_loop()
    protocols = [
        name.rsplit(".", 1)[-1]
        for name in ("uvicorn.protocols.http.httptools_impl", "uvicorn.protocols.http.h11_impl")
        if name in sys.modules
    ]
    return {"loop": f"{type(loop).__module__}.{type(loop).__name__}", "http": ",".join(protocols)}


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    if scope["method"] == "GET" and scope["path"] == "/healthz":
        info = {"status": "ok", **_server_info()}
        await _send(send, 200, b"application/json", json.dumps(info).encode())
        return
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    form = parse_qs(b"".join(chunks).decode("utf-8"), keep_blank_values=True)
    try:
        assert _db is not None
        _db.execute(
            "INSERT INTO inbound (sid, from_number, to_number, body) VALUES (?, ?, ?, ?)",
            (
                _first(form, "MessageSid"),
                _first(form, "From"),
                _first(form, "To"),
                _first(form, "Body"),
            ),
        )
    except sqlite3.Error as exc:
        await _send(send, 500, b"text/plain", str(exc).encode())
        return
    await _send(send, 200, b"text/xml", TWIML)


def main() -> int:
    import uvicorn

    global _db
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8001")))
    parser.add_argument("--db", required=True)
    args = parser.parse_args()
    _db = open_db(args.db)
    # The same settings as openline.runtime.cli._serve.
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        lifespan="off",
        access_log=False,
        log_level="warning",
        timeout_graceful_shutdown=5,
    )
    uvicorn.Server(config).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())

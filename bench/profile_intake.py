"""Where does the intake's time go? An in-process profile of the webhook hot path.

    .venv/bin/python bench/profile_intake.py                  # intake only
    .venv/bin/python bench/profile_intake.py --processor      # with the inbound processor
    .venv/bin/python bench/profile_intake.py --profile        # + cProfile per thread

Drives openline.asgi.application directly (ASGI calls, no sockets, so no uvicorn/HTTP
cost) with N pre-signed Twilio webhooks from C concurrent clients, in a throw-away var dir.
Reports requests/s, how the writer thread's batches went (size, time, time spent waiting
for SQLite's write lock) and, with --processor, the processor's per-event time. With
--profile it prints the top functions (cumulative, wall clock) of the event-loop thread,
the writer thread and the processor thread, each profiled on its own.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import common


class Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.values: dict[str, list[float]] = {}

    def add(self, name: str, value: float) -> None:
        with self.lock:
            self.values.setdefault(name, []).append(value)

    def line(self, name: str, unit: str = "ms", scale: float = 1000.0) -> str:
        data = sorted(self.values.get(name, []))
        if not data:
            return f"{name}: -"
        n = len(data)
        total = sum(data)
        return (
            f"{name}: n={n} total={total * scale:,.0f}{unit} mean={total / n * scale:.3f}{unit}"
            f" p50={data[n // 2] * scale:.3f} p99={data[min(n - 1, n * 99 // 100)] * scale:.3f}"
            f" max={data[-1] * scale:.3f}"
        )


def main() -> int:  # noqa: C901
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--requests", type=int, default=6000)
    parser.add_argument("-c", "--concurrency", type=int, default=32)
    parser.add_argument("--processor", action="store_true", help="run the inbound processor")
    parser.add_argument(
        "--drain",
        action="store_true",
        help="ingest with the processor stopped, then time the processor draining the backlog",
    )
    parser.add_argument("--profile", action="store_true", help="cProfile each thread")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()

    var_dir = Path(tempfile.mkdtemp(prefix="openline-profile-"))
    common.django_in_process(var_dir, port=8000)  # the Host of the ASGI calls below

    from django.db.backends.sqlite3 import base as sqlite_base
    from twilio.request_validator import RequestValidator

    from openline.asgi import application
    from openline.messaging.services import inbound as inbound_services
    from openline.runtime import intake

    bench = common.set_up_openline(provider="twilio")
    url, path = bench.number["inbound_url"], bench.inbound_path
    validator = RequestValidator(bench.token)
    froms = common.valid_from_numbers()
    requests: list[tuple[bytes, bytes]] = []
    for i in range(args.requests + 500):
        signature, body = common.twilio_webhook(
            validator,
            url,
            sid=f"SM{i:032x}",
            account_sid=bench.account_sid,
            from_=froms[i % len(froms)],
            body=common.BODIES[i % len(common.BODIES)],
        )
        requests.append((signature.encode(), body.encode()))

    # --- instrumentation (monkeypatching, in this process only) ---------------------------
    stats = Stats()
    profiles: dict[str, cProfile.Profile] = {}

    def profiled(name: str, fn: Any) -> Any:
        def wrapper(*a: Any, **kw: Any) -> Any:
            prof = profiles.setdefault(name, cProfile.Profile()) if args.profile else None
            start = time.perf_counter()
            if prof is not None:
                prof.enable()
            try:
                return fn(*a, **kw)
            finally:
                if prof is not None:
                    prof.disable()
                stats.add(name, time.perf_counter() - start)

        return wrapper

    original_batch = intake.InboundWriter._write_batch

    def write_batch(self: Any, batch: list[Any]) -> None:
        stats.add("batch_size", float(len(batch)))
        return original_batch(self, batch)

    intake.InboundWriter._write_batch = profiled("writer_batch", write_batch)  # type: ignore[method-assign]

    # time spent in BEGIN IMMEDIATE = waiting for SQLite's write lock
    original_begin = sqlite_base.DatabaseWrapper._start_transaction_under_autocommit

    def begin(self: Any) -> None:
        start = time.perf_counter()
        try:
            original_begin(self)
        finally:
            stats.add(
                f"begin_immediate[{threading.current_thread().name}]", time.perf_counter() - start
            )

    sqlite_base.DatabaseWrapper._start_transaction_under_autocommit = begin  # type: ignore[method-assign]
    original_pending = inbound_services.inbound_process_pending

    def process_pending(*a: Any, **kw: Any) -> int:
        handled = original_pending(*a, **kw)
        if handled:
            stats.add("processor_batch_size", float(handled))
        return handled

    inbound_services.inbound_process_pending = profiled("processor_batch", process_pending)

    processor = None
    if args.processor and not args.drain:
        from openline.runtime.processing_loop import InboundProcessor

        processor = InboundProcessor()
        processor.start()

    # --- drive the ASGI app ---------------------------------------------------------------
    async def one(sig: bytes, body: bytes) -> int:
        scope = {
            "type": "http",
            "method": "POST",
            "path": path,
            "query_string": b"",
            "headers": [
                (b"host", b"127.0.0.1:8000"),
                (b"content-type", b"application/x-www-form-urlencoded"),
                (b"x-twilio-signature", sig),
                (b"content-length", str(len(body)).encode()),
            ],
        }
        sent = False
        status = 0

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                await asyncio.sleep(3600)
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        await application(scope, receive, send)
        return status

    async def client(queue: list[tuple[bytes, bytes]], bad: list[int]) -> None:
        while queue:
            sig, body = queue.pop()
            start = time.perf_counter()
            status = await one(sig, body)
            stats.add("request", time.perf_counter() - start)
            if status != 200:
                bad.append(status)

    async def run(items: list[tuple[bytes, bytes]], concurrency: int) -> list[int]:
        bad: list[int] = []
        await asyncio.gather(*(client(items, bad) for _ in range(concurrency)))
        return bad

    import uvloop

    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    loop.run_until_complete(run(requests[-500:], args.concurrency))  # warm-up
    stats.values.clear()
    profiles.clear()
    work = requests[: args.requests]
    loop_prof = cProfile.Profile() if args.profile else None
    if loop_prof is not None:
        loop_prof.enable()
    start = time.perf_counter()
    bad = loop.run_until_complete(run(work, args.concurrency))
    elapsed = time.perf_counter() - start
    if loop_prof is not None:
        loop_prof.disable()
    if args.drain:
        from openline.runtime.processing_loop import InboundProcessor, wake

        drain_start = time.perf_counter()
        processor = InboundProcessor()
        processor.start()
        wake()
    if processor is not None:
        from openline.messaging.models import InboundEvent

        deadline = time.monotonic() + 120
        while (
            InboundEvent.objects.filter(processed_at__isnull=True).exists()
            and time.monotonic() < deadline
        ):
            time.sleep(0.1)
        if args.drain:
            drain = time.perf_counter() - drain_start
            print(
                f"drain: {args.requests + 500} events processed in {drain:.2f}s ="
                f" {(args.requests + 500) / drain:,.0f} events/s (no intake load)"
            )
        processor.stop()
        processor.join(timeout=5)
    print(
        f"{args.requests} requests, c={args.concurrency}, processor={args.processor}:"
        f" {args.requests / elapsed:,.0f} req/s in-process (no HTTP), {len(bad)} non-200"
    )
    for name in sorted(stats.values):
        if name.endswith("batch_size"):
            print(stats.line(name, unit="", scale=1.0))
        else:
            print(stats.line(name))
    shutil.rmtree(var_dir, ignore_errors=True)
    if args.profile:
        for name, prof in [("event loop", loop_prof), *profiles.items()]:
            out = io.StringIO()
            pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(args.top)
            print(f"\n===== {name} (cumulative, wall clock) =====")
            print("\n".join(out.getvalue().splitlines()[: args.top + 12]))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Web-chat benchmark: how many idle visitor WebSockets one OpenLine process holds, with what
memory, and the visitor -> console latency at 2,000 concurrent chats.

    make bench-chat                    # or: .venv/bin/python bench/chat.py
    .venv/bin/python bench/chat.py --quick         # a few hundred sockets, short phases (~1 min)

Phase "idle": starts `openline run` (embedded profile) on a fresh database with thousands of
waiting chats created in bulk, then opens visitor WebSockets (/ws/chat/<widget>/?token=...)
from separate client processes in steps (1,000, 2,000, ... 8,000). After each step has its
`history` frames and has settled, it records the web process's RSS (the one holding the
sockets), the worker child's, the server's CPU and how many sockets are still open.
Targets: >= 5,000 idle visitor connections with the web process under 1 GiB.

Phase "latency": with 2,000 visitor sockets and 20 console sockets open, visitors send
messages on an absolute schedule (100/s, then 200/s) and every console socket's
`message.created` is timed from the visitor's send. Target: p99 < 100 ms at 2,000 chats,
every delivery made.

Writes bench/results/chat-<UTC time>.json. See bench/README.md for how to read it.
All traffic goes to 127.0.0.1; the server and the client processes are stopped on every exit.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import resource
import signal
import sqlite3
import sys
import tempfile
import threading
import time
import traceback
from array import array
from pathlib import Path
from typing import Any
from urllib.parse import quote

import common
from common import fmt, log

TARGET_IDLE_CONNECTIONS = 5000
TARGET_RSS_MIB = 1024.0
TARGET_P99_MS = 100.0
TARGET_LATENCY_CHATS = 2000
# The page that embeds the widget, as the visitor's browser sends it in Origin. Only a
# header: nothing is fetched from it.
VISITOR_ORIGIN = "https://visitors.bench.test"
# Sessions are created before the server starts and some connect minutes later; the
# scheduler must not close them as abandoned meanwhile (the default window is 10 min).
ABANDON_MINUTES = "240"


def mib(kb: int | None) -> float | None:
    return None if kb is None else round(kb / 1024, 1)


# --- setup: the widget and its chats, in bulk -------------------------------------------------

# `chat_start` directly: the HTTP start endpoint allows 10 new chats a minute per IP.
CHATS_SNIPPET = r"""
import json, sys
import django
django.setup()
from django.db import transaction
from openline.chat import services
from openline.chat.services import chat_start, widget_create
from openline.core.models import Organization
from openline.providers.models import Number
spec = json.loads(sys.argv[1])
org = Organization.objects.get(slug=spec["org"])
number = Number.objects.get(organization=org, e164=spec["number"])
if hasattr(services, "inbox_set_chat_online"):  # the manual switch
    services.inbox_set_chat_online(
        organization_id=org.pk, actor_id=None, number_id=number.pk, online=True
    )
else:  # online by staffed shifts: a round-the-clock shift with people signed up, as the demo
    import secrets
    from openline.runtime.demo import _demo_shifts
    from openline.core.services import user_create
    for role in ("admin", "counselor"):
        user_create(organization=org, email=f"shift-{role}@bench.test", role=role,
                    password=secrets.token_urlsafe(16))
    _demo_shifts(org, number)
widget = widget_create(
    organization_id=org.pk, actor_id=None, number_id=number.pk,
    display_name="Bench chat", allowed_origins=[spec["origin"]],
    max_waiting=0,  # thousands of chats wait at once by design: no busy cap
)
tokens = []
for start in range(0, spec["count"], 500):
    with transaction.atomic():
        for _ in range(start, min(start + 500, spec["count"])):
            tokens.append(chat_start(widget=widget, origin=spec["origin"]).token)
with open(spec["out"], "w") as fh:
    json.dump({"widget": widget.public_id, "tokens": tokens}, fh)
print("OK")
"""


def create_chats(env: dict[str, str], count: int, out: Path) -> dict[str, Any]:
    spec = {"org": "bench", "number": common.TO_NUMBER, "origin": VISITOR_ORIGIN, "count": count}
    cmd = [sys.executable, "-c", CHATS_SNIPPET, json.dumps({**spec, "out": str(out)})]
    common.run_capture(cmd, env, what="creating chats", timeout=900)
    return json.loads(out.read_text())


# `--gc-log`: `openline run` with a gc callback that writes every collection of the oldest
# generation (and any other over 5 ms) to the server log, to line pauses up with latency.
GC_WRAPPER = r"""
import gc, sys, time
_start = {}
def _log(phase, info):
    gen = info["generation"]
    if phase == "start":
        _start[gen] = time.monotonic()
        return
    t = time.monotonic()
    ms = 1000 * (t - _start.get(gen, t))
    if gen == 2 or ms > 5:
        sys.stderr.write(f"BENCH_GC {t:.4f} {gen} {ms:.2f} {info['collected']}\n")
        sys.stderr.flush()
gc.callbacks.append(_log)
from openline.runtime.cli import main
sys.exit(main(sys.argv[1:]))
"""


def gc_pauses(log_path: Path) -> list[dict[str, float]]:
    out = []
    with contextlib.suppress(OSError):
        for line in log_path.read_text(errors="replace").splitlines():
            if line.startswith("BENCH_GC "):
                _, t, gen, ms, collected = line.split()
                out.append(
                    {"t": float(t), "gen": int(gen), "ms": float(ms), "freed": int(collected)}
                )
    return out


# --- /proc readings -------------------------------------------------------------------------


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak) in kB; empty if the process is gone."""
    out: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM", "Threads"):
                out[key] = int(value.split()[0])
    return out


def nofile_limit(pid: int) -> str | None:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
            if line.startswith("Max open files"):
                return " ".join(line.split()[3:5])
    return None


def established(port: int) -> int:
    """ESTABLISHED TCP connections on the server's side of `port`: an independent count of
    the sockets the server holds (/proc/net/tcp, state 01)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as fh:
            next(fh, None)
            for line in fh:
                fields = line.split(None, 4)
                if fields[3] == "01" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    count += 1
    return count


def raise_nofile() -> tuple[int, int]:
    """Soft RLIMIT_NOFILE up to the hard limit; the server and the clients inherit it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def cpu_used(meter: common.CpuMeter) -> dict[str, float]:
    """Since the meter started: CPU seconds and % of one core of each process group (web,
    worker, clients, this one), and the rest of the machine's."""
    return meter.stop().as_dict(busy=False, per_cpu=True)


# --- the visitor client process (`chat.py _visitor-client CONFIG`) ----------------------------
#
# Driven over stdin/stdout, one JSON command a line, one `REPLY {...}` line each:
#   open {target}          open sockets [0, target) not opened yet; each counts when its
#                          `history` frame arrived
#   close_to {target}      close sockets from `target` on
#   status                 sockets open, frames by type, closes by code, errors by code
#   send {rate, duration, phase, chats, seed}
#                          messages on an absolute schedule over the open sockets < chats
#   dump {path}            every send (client id, socket, sent, echoed, message id, error)
# End of stdin (the driver is gone) ends the process.


def visitor_client_main(config_path: str) -> int:
    cfg = json.loads(Path(config_path).read_text())
    common.use_uvloop()
    asyncio.run(_visitor_client(cfg))
    return 0


def _bump(counts: dict[str, int], key: object) -> None:
    counts[str(key)] = counts.get(str(key), 0) + 1


async def _visitor_client(cfg: dict[str, Any]) -> None:  # noqa: C901 -- one small server
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    loop = asyncio.get_running_loop()
    urls = [f"{cfg['url']}?token={quote(t)}&after=0" for t in cfg["tokens"]]
    n = len(urls)
    socks: list[Any] = [None] * n
    attempted = [False] * n
    closing: set[int] = set()
    frames: dict[str, int] = {}
    errors: dict[str, int] = {}
    closed_early: dict[str, int] = {}
    # client id -> [socket, sent, echoed, message id, phase, error code]
    sends: dict[str, list[Any]] = {}
    prefix = cfg["prefix"]
    counter = 0
    bodies = cfg["bodies"]
    lags = array("d")
    readers: list[asyncio.Task[None]] = []

    async def read(i: int, ws: Any, first: asyncio.Future[float | None]) -> None:
        code: object = None
        try:
            async for frame in ws:
                t = time.monotonic()
                try:
                    data = json.loads(frame)
                    kind = data.get("type", "?")
                except (ValueError, AttributeError):
                    data, kind = {}, "bad"
                _bump(frames, kind)
                if kind == "history" and not first.done():
                    first.set_result(t)
                elif kind == "message":
                    rec = sends.get(data.get("client_id") or "")
                    if rec is not None and rec[2] is None:
                        rec[2], rec[3] = t, data.get("id")
                elif kind == "error":
                    _bump(errors, data.get("code"))
                    rec = sends.get(data.get("client_id") or "")
                    if rec is not None:
                        rec[5] = data.get("code")
        except ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd else "no close frame"
        except Exception as exc:  # noqa: BLE001 -- counted, never fatal
            code = type(exc).__name__
        finally:
            socks[i] = None
            if i not in closing:
                _bump(closed_early, code)
            if not first.done():
                first.set_result(None)

    async def open_one(i: int, sem: asyncio.Semaphore, out: dict[str, Any]) -> None:
        async with sem:
            t0 = time.monotonic()
            try:
                ws = await connect(
                    urls[i],
                    origin=cfg["origin"],
                    open_timeout=60,
                    # Browsers answer the server's pings but send none of their own.
                    ping_interval=None,
                    max_queue=None,
                )
            except Exception as exc:  # noqa: BLE001 -- every failure is a finding
                _bump(out["errors"], f"{type(exc).__name__}: {exc}"[:160])
                return
            first: asyncio.Future[float | None] = loop.create_future()
            socks[i] = ws
            readers.append(loop.create_task(read(i, ws, first)))  # held: tasks are weak
            try:
                got = await asyncio.wait_for(first, 60)
            except TimeoutError:
                got = None
                _bump(out["errors"], "no history frame in 60 s")
            if got is None:
                out["failed"] += 1
                return
            out["ok"] += 1
            out["ms"].append(got - t0)

    async def cmd_open(target: int) -> dict[str, Any]:
        todo = [i for i in range(min(target, n)) if not attempted[i]]
        for i in todo:
            attempted[i] = True
        out: dict[str, Any] = {"ok": 0, "failed": 0, "errors": {}, "ms": []}
        sem = asyncio.Semaphore(cfg["connect_concurrency"])
        t0 = time.monotonic()
        await asyncio.gather(*(open_one(i, sem, out) for i in todo))
        return {
            "attempted": len(todo),
            "opened": out["ok"],
            "failed": len(todo) - out["ok"],
            "connect_errors": out["errors"],
            "connect_s": round(time.monotonic() - t0, 2),
            "connect_ms": common.dist_ms(out["ms"]),
            **status(),
        }

    async def cmd_close_to(target: int) -> dict[str, Any]:
        doomed = [i for i in range(target, n) if socks[i] is not None]
        closing.update(doomed)
        sem = asyncio.Semaphore(cfg["connect_concurrency"])

        async def close(i: int) -> None:
            async with sem:
                ws = socks[i]
                if ws is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(ws.close(), 10)

        await asyncio.gather(*(close(i) for i in doomed))
        return {"closed": len(doomed), **status()}

    async def cmd_send(rate: float, duration: float, phase: str, chats: int, seed: int) -> dict:
        nonlocal counter
        live = [i for i in range(min(chats, n)) if socks[i] is not None]
        if not live or rate <= 0:
            return {"sent": 0, "live": len(live)}
        # Every chat writes in turn, in a fixed random order: each one every len(live)/rate
        # seconds, well inside the consumer's 30 messages a minute.
        random.Random(seed).shuffle(live)
        total = max(1, int(rate * duration))
        rng = random.Random(seed + 1)
        behind: list[float] = []
        send_errors: dict[str, int] = {}
        skipped = 0
        del lags[:]
        t0 = time.monotonic() + 0.1
        last = t0
        for k in range(total):
            due = t0 + k / rate
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            i = live[k % len(live)]
            ws = socks[i]
            if ws is None:
                skipped += 1
                continue
            counter += 1
            cid = f"{prefix}{counter:08d}"
            payload = json.dumps({"type": "message", "body": rng.choice(bodies), "client_id": cid})
            t = time.monotonic()
            behind.append(max(0.0, t - due))
            sends[cid] = [i, t, None, None, phase, None]
            last = t
            try:
                await ws.send(payload)
            except Exception as exc:  # noqa: BLE001
                _bump(send_errors, type(exc).__name__)
                sends[cid][5] = f"send: {type(exc).__name__}"
        sent = total - skipped
        return {
            "live": len(live),
            "sent": sent,
            "skipped_closed": skipped,
            "send_errors": send_errors,
            "target_rps": rate,
            "achieved_rps": round((sent - 1) / (last - t0), 1) if last > t0 and sent > 1 else None,
            "behind_schedule_ms": common.dist_ms(behind),
            "loop_lag_ms": common.lag_ms(lags),
        }

    def status() -> dict[str, Any]:
        return {
            "open": sum(1 for s in socks if s is not None),
            "frames": dict(frames),
            "errors": dict(errors),
            "closed_early": dict(closed_early),
            "echoed": sum(1 for r in sends.values() if r[2] is not None),
            "sent_total": len(sends),
        }

    async def lag_monitor() -> None:
        # How late a 10 ms sleep wakes up: frames waited that long before they were stamped.
        while True:
            t = time.monotonic()
            await asyncio.sleep(0.01)
            lags.append(time.monotonic() - t - 0.01)

    commands: asyncio.Queue[str | None] = asyncio.Queue()

    def stdin_reader() -> None:
        for line in sys.stdin:
            loop.call_soon_threadsafe(commands.put_nowait, line)
        loop.call_soon_threadsafe(commands.put_nowait, None)

    threading.Thread(target=stdin_reader, daemon=True).start()
    monitor = loop.create_task(lag_monitor())
    print("READY", flush=True)
    while True:
        line = await commands.get()
        if line is None or not line.strip():
            break
        cmd = json.loads(line)
        try:
            name = cmd.pop("cmd")
            if name == "open":
                reply = await cmd_open(int(cmd["target"]))
            elif name == "close_to":
                reply = await cmd_close_to(int(cmd["target"]))
            elif name == "status":
                reply = status()
            elif name == "send":
                reply = await cmd_send(**cmd)
            elif name == "dump":
                rows = [[cid, *rec] for cid, rec in sends.items()]
                Path(cmd["path"]).write_text(json.dumps(rows))
                reply = {"rows": len(rows), **status()}
            elif name == "quit":
                break
            else:
                reply = {"error": f"unknown command {name!r}"}
        except Exception as exc:  # noqa: BLE001 -- reported to the driver
            reply = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
        print("REPLY " + json.dumps(reply), flush=True)
    monitor.cancel()
    sys.stdout.flush()
    # Thousands of sockets: leave without a closing handshake each (the kernel closes them).
    os._exit(0)


class VisitorClient(common.ClientProcess):
    """One visitor client process, driven over its stdin. Ends when its stdin closes;
    SIGKILL after a wait."""

    def __init__(self, cfg: dict[str, Any], cfg_path: Path, log_path: Path) -> None:
        super().__init__(Path(__file__), "_visitor-client", cfg, cfg_path, log_path, stdin=True)
        self.size = len(cfg["tokens"])

    def send(self, cmd: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()

    def reply(self, timeout: float) -> dict[str, Any]:
        data = json.loads(self.line("REPLY ", timeout))
        if "error" in data:
            raise RuntimeError(f"visitor client: {data['error']}\n{data.get('traceback', '')}")
        return data

    def stop(self, timeout: float = 15.0) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(OSError, ValueError):
                assert self.proc.stdin is not None
                self.proc.stdin.close()
            common.end_process(self.proc, sig=None, wait=timeout)
        self.sel.close()


class Visitors:
    """The visitor sockets, split over client processes: client k holds tokens
    [k * chunk, (k + 1) * chunk)."""

    def __init__(self, clients: list[VisitorClient], chunk: int) -> None:
        self.clients = clients
        self.chunk = chunk

    def share(self, k: int, total: int) -> int:
        return max(0, min(self.chunk, total - k * self.chunk))

    def ask_all(self, cmds: list[dict[str, Any] | None], timeout: float) -> list[dict | None]:
        for client, cmd in zip(self.clients, cmds, strict=True):
            if cmd is not None:
                client.send(cmd)
        return [
            client.reply(timeout) if cmd is not None else None
            for client, cmd in zip(self.clients, cmds, strict=True)
        ]

    def open(self, target: int) -> dict[str, Any]:
        cmds = [{"cmd": "open", "target": self.share(k, target)} for k in range(len(self.clients))]
        return merge(self.ask_all(list(cmds), timeout=600))

    def close_to(self, target: int) -> dict[str, Any]:
        cmds = [
            {"cmd": "close_to", "target": self.share(k, target)} for k in range(len(self.clients))
        ]
        return merge(self.ask_all(list(cmds), timeout=300))

    def status(self) -> dict[str, Any]:
        return merge(self.ask_all([{"cmd": "status"} for _ in self.clients], timeout=60))

    def send(self, rate: float, duration: float, phase: str, chats: int) -> dict[str, Any]:
        """Each client sends its share of `rate`, in proportion to its chats."""
        cmds: list[dict[str, Any] | None] = []
        for k in range(len(self.clients)):
            mine = self.share(k, chats)
            cmds.append(
                {"cmd": "send", "rate": rate * mine / chats, "duration": duration,
                 "phase": phase, "chats": mine, "seed": 17 + k}
                if mine else None
            )  # fmt: skip
        replies = [r for r in self.ask_all(cmds, timeout=duration + 120) if r is not None]
        if len(replies) == 1:
            return replies[0]
        out = merge(replies)
        out["target_rps"] = rate
        out["achieved_rps"] = round(sum(r.get("achieved_rps") or 0 for r in replies), 1)
        out["per_client"] = replies
        return out

    def dump(self, var_dir: Path) -> list[list[Any]]:
        paths = [var_dir / f"visitor-sends-{k}.json" for k in range(len(self.clients))]
        self.ask_all([{"cmd": "dump", "path": str(p)} for p in paths], timeout=120)
        rows: list[list[Any]] = []
        for k, path in enumerate(paths):
            for row in json.loads(path.read_text()):
                row[1] += k * self.chunk  # socket index over all clients
                rows.append(row)
        return rows

    def stop(self) -> None:
        for client in self.clients:
            client.stop()


def merge(replies: list[dict[str, Any] | None]) -> dict[str, Any]:
    """One reply for all clients: counts and count dicts summed, durations the longest,
    distributions (``*_ms``) kept per client."""
    present = [r for r in replies if r is not None]
    if len(present) == 1:
        return dict(present[0])
    out: dict[str, Any] = {}
    for reply in present:
        for key, value in reply.items():
            if key.endswith("_ms"):
                out.setdefault(key, []).append(value)
            elif isinstance(value, dict):
                into = out.setdefault(key, {})
                for k, v in value.items():
                    into[k] = into.get(k, 0) + v
            elif isinstance(value, bool) or not isinstance(value, int | float):
                out[key] = value
            elif key.endswith("_s"):
                out[key] = max(out.get(key, 0), value)
            else:
                out[key] = out.get(key, 0) + value
    return out


# --- the run -----------------------------------------------------------------------------------


class Run:
    """The server, its worker child, and the client processes, with their readings."""

    def __init__(self, server: common.Server, visitors: Visitors, consoles: common.ConsoleClient):
        self.server = server
        self.visitors = visitors
        self.consoles = consoles
        assert server.proc is not None
        self.web_pid = server.proc.pid
        self.worker_pids = sorted(common.with_children({self.web_pid}) - {self.web_pid})

    def pids(self) -> dict[str, list[int]]:
        return {
            "web": [self.web_pid],
            "worker": self.worker_pids,
            "visitor_clients": [c.proc.pid for c in self.visitors.clients],
            "console_client": [self.consoles.proc.pid],
        }

    def memory(self) -> dict[str, Any]:
        web = proc_status(self.web_pid)
        workers = [proc_status(p) for p in self.worker_pids]
        worker_kb = sum(w.get("VmRSS", 0) for w in workers)
        clients = [proc_status(c.proc.pid).get("VmRSS") for c in self.visitors.clients]
        return {
            "web_rss_mib": mib(web.get("VmRSS")),
            "web_peak_mib": mib(web.get("VmHWM")),
            "web_threads": web.get("Threads"),
            "worker_rss_mib": mib(worker_kb),
            "total_rss_mib": mib(web.get("VmRSS", 0) + worker_kb),
            "visitor_client_rss_mib": [mib(c) for c in clients],
        }

    def alive(self) -> bool:
        return self.server.proc is not None and self.server.proc.poll() is None


def run_idle(run: Run, args: argparse.Namespace, steps: list[int], out: dict[str, Any]) -> None:
    """Open visitor sockets in steps; after each, settle and read memory, CPU and counts.
    Fills `out` as it goes, so an interrupted run still reports the steps it finished."""
    out.update(steps=[], stopped=None)
    meter = common.CpuMeter(run.pids())
    time.sleep(min(args.settle, 5))
    out["before"] = {
        **run.memory(),
        "cpu": cpu_used(meter),
        "server_established": established(run.server.port),
    }
    log(
        f"  before: web {out['before']['web_rss_mib']} MiB, worker"
        f" {out['before']['worker_rss_mib']} MiB ({out['before']['server_established']}"
        " sockets: the console clients)"
    )
    for target in steps:
        t0 = time.monotonic()
        opened = run.visitors.open(target)
        connect_s = round(time.monotonic() - t0, 1)
        meter = common.CpuMeter(run.pids())
        time.sleep(args.settle)
        cpu = cpu_used(meter)
        status = run.visitors.status()
        step = {
            "target": target,
            "opened_now": opened["opened"],
            "failed_now": opened["failed"],
            "connect_errors": opened["connect_errors"],
            "connect_s": connect_s,
            "connect_ms": opened["connect_ms"],
            "open": status["open"],
            "server_established": established(run.server.port),
            "closed_early": status["closed_early"],
            "frames": status["frames"],
            "errors": status["errors"],
            **run.memory(),
            "cpu": cpu,
        }
        out["steps"].append(step)
        log(
            f"  {target:>6,} target: {step['open']:,} open ({step['server_established']:,} at"
            f" the server), {step['failed_now']} failed, connect {connect_s} s;"
            f" web {step['web_rss_mib']} MiB, worker {step['worker_rss_mib']} MiB;"
            f" CPU web {cpu['web_pct']}% worker {cpu['worker_pct']}% of a core,"
            f" other {cpu['other_pct']}%"
        )
        if step["connect_errors"]:
            log(f"    connect errors: {step['connect_errors']}")
        if step["closed_early"]:
            log(f"    closed by the server: {step['closed_early']}")
        if not run.alive():
            out["stopped"] = f"the server exited ({run.server.proc.poll()})"  # type: ignore[union-attr]
        elif status["open"] < 0.99 * target:
            out["stopped"] = f"only {status['open']:,} of {target:,} sockets open"
        elif (step["web_rss_mib"] or 0) > args.max_rss_mib:
            out["stopped"] = f"web RSS {step['web_rss_mib']} MiB > {args.max_rss_mib:g} MiB"
        if out["stopped"]:
            log(f"  ramp stopped: {out['stopped']}")
            break
    if args.hold > 0 and run.alive() and out["steps"]:
        # The top step held for longer: server pings every 20 s, nothing else happens.
        meter = common.CpuMeter(run.pids())
        time.sleep(args.hold)
        status = run.visitors.status()
        out["hold"] = {
            "seconds": args.hold,
            "open": status["open"],
            "server_established": established(run.server.port),
            "closed_early": status["closed_early"],
            **run.memory(),
            "cpu": cpu_used(meter),
        }
        h = out["hold"]
        log(
            f"  held {args.hold:g} s: {h['open']:,} open, web {h['web_rss_mib']} MiB, CPU web"
            f" {h['cpu']['web_pct']}% worker {h['cpu']['worker_pct']}%"
        )


def run_latency(
    run: Run, args: argparse.Namespace, rates: list[float], out: dict[str, Any]
) -> None:
    """Visitors write at each rate; the console client stamps every message.created."""
    out.update(chats=args.latency_chats, phases={})
    closed = run.visitors.close_to(args.latency_chats)
    opened = run.visitors.open(args.latency_chats)  # in case the ramp stopped short of it
    time.sleep(min(args.settle, 5))
    status = run.visitors.status()
    out["open"] = status["open"]
    out["closed_to_shrink"] = closed.get("closed", 0)
    out["opened_to_fill"] = opened.get("opened", 0)
    consoles = out["consoles_connected"] = args.consoles_connected
    log(
        f"latency: {status['open']:,} visitor sockets open, {consoles} console sockets;"
        f" {run.memory()['web_rss_mib']} MiB web"
    )
    total_sent = 0
    for rate in rates:
        name = f"{rate:g}/s"
        if args.warmup > 0:
            warm = run.visitors.send(rate, args.warmup, f"warmup {name}", args.latency_chats)
            total_sent += warm["sent"]
            run.consoles.wait_deliveries(
                consoles * total_sent, stall=args.stall, timeout=args.drain_timeout
            )
        meter = common.CpuMeter(run.pids())
        log(f"  {name} for {args.duration:g} s over {args.latency_chats:,} chats")
        t_begin = time.monotonic()
        sent = run.visitors.send(rate, args.duration, name, args.latency_chats)
        sent["window"] = [t_begin, time.monotonic()]
        total_sent += sent["sent"]
        drain = run.consoles.wait_deliveries(
            consoles * total_sent, stall=args.stall, timeout=args.drain_timeout
        )
        phase = {
            "send": sent,
            "drain": drain,
            "cpu": cpu_used(meter),
            **run.memory(),
        }
        out["phases"][name] = phase
        log(
            f"    sent {sent['sent']:,} (achieved {sent.get('achieved_rps')}/s), console events"
            f" {drain['count']:,} of {drain['target']:,} so far, waited {drain['waited_s']} s;"
            f" CPU web {phase['cpu']['web_pct']}%, visitors {phase['cpu']['visitor_clients_pct']}%"
            f", consoles {phase['cpu']['console_client_pct']}%, other {phase['cpu']['other_pct']}%"
        )


def analyse(
    *,
    db_path: Path,
    sends: list[list[Any]],
    console_data: list[tuple[array, array]],
    live: list[int],
    phases: list[str],
) -> dict[str, Any]:
    """Join each console socket's (message id, received) with the visitor's send through the
    stored message's provider_message_id, `chat:<session>:<client id>`."""
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=20)
    rows = conn.execute(
        "SELECT id, provider_message_id, created_at FROM messaging_message"
        " WHERE provider_message_id LIKE 'chat:%'"
    ).fetchall()
    ended = conn.execute(
        "SELECT COUNT(*), SUM(abandoned) FROM chat_chatsession WHERE ended_at IS NOT NULL"
    ).fetchone()
    conn.close()
    by_cid = {row[0]: row for row in sends}  # cid, socket, sent, echoed, mid, phase, error
    mid_to_cid: dict[int, str] = {}
    created: dict[str, float] = {}
    mono = common.db_clock()
    for mid, key, created_at in rows:
        cid = key.rsplit(":", 1)[-1]
        mid_to_cid[mid] = cid
        created[cid] = mono(created_at)
    per_phase: dict[str, Any] = {}
    latencies: dict[str, list[float]] = {p: [] for p in phases}
    last: dict[str, float] = {}
    first: dict[str, float] = {}
    seen_pairs: set[tuple[int, int]] = set()
    duplicates: dict[str, int] = {p: 0 for p in phases}
    per_second: dict[str, dict[int, list[float]]] = {p: {} for p in phases}
    t_first = {
        p: min((r[2] for r in sends if r[5] == p), default=0.0) for p in phases
    }  # fmt: skip
    for i in live:
        ids, stamps = console_data[i]
        for mid, t in zip(ids, stamps, strict=True):
            cid = mid_to_cid.get(mid)
            rec = by_cid.get(cid) if cid else None
            if rec is None or rec[5] not in latencies:
                continue  # warm-up traffic
            phase = rec[5]
            if (i, mid) in seen_pairs:
                duplicates[phase] += 1
                continue
            seen_pairs.add((i, mid))
            lat = t - rec[2]
            latencies[phase].append(lat)
            last[cid] = max(last.get(cid, -1.0), lat)
            first[cid] = min(first.get(cid, 1e9), lat)
            per_second[phase].setdefault(int(rec[2] - t_first[phase]), []).append(lat)
    for phase in phases:
        recs = [r for r in sends if r[5] == phase]
        stored = [r for r in recs if r[0] in created]
        expected = len(live) * len(stored)
        errors: dict[str, int] = {}
        for r in recs:
            if r[6]:
                _bump(errors, r[6])
        per_phase[phase] = {
            "sent": len(recs),
            "echoed": sum(1 for r in recs if r[3] is not None),
            "stored": len(stored),
            "refused": errors,
            "consoles": len(live),
            "expected_deliveries": expected,
            "delivered": len(latencies[phase]),
            "missing": expected - len(latencies[phase]),
            "duplicates": duplicates[phase],
            "ms": common.dist_ms(latencies[phase], (50, 90, 99, 99.9)),
            "last_console_ms": common.dist_ms(
                [last[r[0]] for r in stored if r[0] in last], (50, 99)
            ),
            "visitor_echo_ms": common.dist_ms(
                [r[3] - r[2] for r in recs if r[3] is not None], (50, 99)
            ),
            "breakdown_ms": {
                # The service stamps created_at inside its transaction: the time before it
                # is the consumer's wait for the database thread.
                "send_to_created_at": common.dist_ms(
                    [created[r[0]] - r[2] for r in stored], (50, 99)
                ),
                "created_at_to_first_console": common.dist_ms(
                    [r[2] + first[r[0]] - created[r[0]] for r in stored if r[0] in first],
                    (50, 99),
                ),
            },
            "per_second": common.per_second_ms(per_second[phase]),
        }
    return {
        "phases": per_phase,
        "chats_ended": int(ended[0] or 0),
        "chats_abandoned": int(ended[1] or 0),
    }


def summarize(results: dict[str, Any], rates: list[float]) -> dict[str, Any]:
    idle = results.get("idle", {})
    steps = idle.get("steps", [])
    # Held: every socket of the step open, and the web process under the memory target.
    held = [
        s["open"]
        for s in steps
        if s["open"] >= s["target"] and (s["web_rss_mib"] or 1e9) <= TARGET_RSS_MIB
    ]
    best = max(held, default=0)
    at_5000 = next((s for s in steps if s["target"] >= TARGET_IDLE_CONNECTIONS), None)
    lat = results.get("latency", {})
    joined = lat.get("joined", {}).get("phases", {})
    main_phase = joined.get(f"{rates[0]:g}/s") if rates else None
    main_send = lat.get("phases", {}).get(f"{rates[0]:g}/s", {}).get("send", {}) if rates else {}
    checks = {
        "idle_5000_under_1gib": best >= TARGET_IDLE_CONNECTIONS,
        "latency_chats_open": lat.get("open", 0) >= lat.get("chats", TARGET_LATENCY_CHATS) > 0,
        "latency_p99": bool(main_phase) and (main_phase["ms"]["p99"] or 1e9) < TARGET_P99_MS,
        "every_delivery": bool(joined)
        and all(
            p["missing"] == 0 and p["stored"] == p["sent"] and p["delivered"] > 0
            for p in joined.values()
        ),
        "rate_achieved": bool(main_send.get("achieved_rps"))
        and main_send["achieved_rps"] >= 0.95 * main_send["target_rps"],
    }
    if "error" in results:
        checks["completed"] = False
    return {
        "held_under_1gib": best,
        "step_at_5000": at_5000 and {
            k: at_5000[k] for k in ("target", "open", "web_rss_mib", "worker_rss_mib")
        },
        "checks": checks,
    }  # fmt: skip


def print_summary(results: dict[str, Any], summary: dict[str, Any]) -> None:
    log("\n=== OpenLine web-chat benchmark ===")
    common.log_code(results.get("code", {}))
    srv = results.get("server", {})
    log(
        f"server: web pid {srv.get('web_pid')} + worker {srv.get('worker_pids')}, open files"
        f" limit {srv.get('nofile')}, libraries {srv.get('libraries')}"
    )
    idle = results.get("idle", {})
    if idle.get("steps"):
        log(
            f"\nidle visitor sockets (target >= {TARGET_IDLE_CONNECTIONS:,} with the web process"
            f" < {TARGET_RSS_MIB:g} MiB); settle {results['settings']['settle']:g} s per step"
        )
        head = (
            f"{'target':>7} {'open':>7} {'server':>7} {'failed':>6} {'conn s':>6}"
            f" {'web MiB':>8} {'worker':>7} {'sum':>7} {'web CPU':>8} {'wkr CPU':>8}"
            f" {'other':>6} {'KiB/sock':>9}"
        )
        log(head)
        log("-" * len(head))
        base = idle["before"]["web_rss_mib"] or 0
        for s in idle["steps"]:
            per = (s["web_rss_mib"] - base) * 1024 / s["open"] if s["open"] else None
            log(
                f"{s['target']:>7,} {s['open']:>7,} {s['server_established']:>7,}"
                f" {s['failed_now']:>6} {s['connect_s']:>6.1f} {fmt(s['web_rss_mib']):>8}"
                f" {fmt(s['worker_rss_mib']):>7} {fmt(s['total_rss_mib']):>7}"
                f" {s['cpu']['web_pct']:>7.0f}% {s['cpu']['worker_pct']:>7.0f}%"
                f" {s['cpu']['other_pct']:>5.0f}% {fmt(per, 0):>9}"
            )
        log(
            f"before any visitor: web {base} MiB, worker {idle['before']['worker_rss_mib']} MiB."
            " server = ESTABLISHED at the server's port (visitors + consoles); CPU in % of one"
            " core over the settle; other = busy CPU of anything else, % of all CPUs"
        )
        if idle.get("hold"):
            h = idle["hold"]
            log(
                f"held {h['seconds']:g} s at the top: {h['open']:,} open, web {h['web_rss_mib']}"
                f" MiB (peak {h['web_peak_mib']}), CPU web {h['cpu']['web_pct']}% worker"
                f" {h['cpu']['worker_pct']}%, closed by the server {h['closed_early'] or 0}"
            )
        if idle.get("stopped"):
            log(f"ramp stopped: {idle['stopped']}")
    lat = results.get("latency")
    if lat:
        log(
            f"\nlatency at {lat.get('open', 0):,} open chats, {lat.get('consoles_connected')}"
            f" console sockets (visitor send -> message.created on a console socket;"
            f" target p99 < {TARGET_P99_MS:g} ms)"
        )
        for name, p in lat.get("joined", {}).get("phases", {}).items():
            ph = lat["phases"][name]
            send, ms, b = ph["send"], p["ms"], p["breakdown_ms"]
            log(
                f"  {name}: sent {p['sent']:,} (achieved {send.get('achieved_rps')}/s, behind"
                f" schedule p99 {_p99(send.get('behind_schedule_ms'))} ms), stored"
                f" {p['stored']:,}, refused {p['refused'] or 0}"
            )
            log(
                f"    p50 {ms['p50']} ms, p90 {ms['p90']} ms, p99 {ms['p99']} ms, p99.9"
                f" {ms['p99_9']} ms, max {ms['max']} ms; last console p99"
                f" {p['last_console_ms']['p99']} ms"
            )
            log(
                f"    deliveries {p['delivered']:,} of {p['expected_deliveries']:,} (missing"
                f" {p['missing']:,}, duplicates {p['duplicates']}); visitor's own echo p50"
                f" {p['visitor_echo_ms']['p50']} p99 {p['visitor_echo_ms']['p99']} ms"
            )
            log(
                f"    breakdown p50/p99 ms: send -> created_at"
                f" {common.p50_p99(b['send_to_created_at'])},"
                f" -> first console {common.p50_p99(b['created_at_to_first_console'])}"
            )
            cpu = ph["cpu"]
            log(
                f"    CPU % of a core: web {cpu['web_pct']}, worker {cpu['worker_pct']}, visitor"
                f" clients {cpu['visitor_clients_pct']}, console client"
                f" {cpu['console_client_pct']}; other {cpu['other_pct']}% of all CPUs;"
                f" visitor loop lag p99 {_p99(send.get('loop_lag_ms'))} ms"
            )
            common.log_worst_second(p["per_second"], indent="    ")
        j = lat.get("joined", {})
        if j:
            log(
                f"  chats ended during the run: {j['chats_ended']}"
                f" ({j['chats_abandoned']} abandoned)"
            )
    gc = results.get("gc")
    if gc:
        log(
            f"web process gc (--gc-log): {gc['gen2_count']} full collections, p50"
            f" {gc['gen2_ms']['p50']} ms, max {gc['gen2_ms']['max']} ms;"
            f" {gc['slow_young_count']} younger ones over 5 ms"
        )
        for name, pauses in gc["phases"].items():
            shown = [f"{p['s']:.1f}s gen{p['gen']} {p['ms']:.0f}ms" for p in pauses]
            log(f"  during {name}: {', '.join(shown) or 'none'}")
    if "error" in results:
        log(f"\nFAILED: {results['error']}")
    held = f"held under 1 GiB: {summary['held_under_1gib']:,} sockets; "
    common.log_footer(results["machine"], summary["checks"], lead=held)


def _p99(d: Any) -> Any:
    if isinstance(d, list):
        return max((x.get("p99") or 0 for x in d), default=None)
    return d.get("p99") if isinstance(d, dict) else None


def gc_report(pauses: list[dict[str, float]], latency: dict[str, Any] | None) -> dict[str, Any]:
    """The web process's collections: all of them, and those during each latency phase
    (seconds after the phase's first send, as in its per-second timeline)."""
    full = [p for p in pauses if p["gen"] == 2]
    out: dict[str, Any] = {
        "gen2_count": len(full),
        "gen2_ms": common.dist_ms([p["ms"] / 1000 for p in full], (50, 99)),
        "slow_young_count": sum(1 for p in pauses if p["gen"] != 2),
        "phases": {},
    }
    for name, phase in (latency or {}).get("phases", {}).items():
        start, end = phase["send"].get("window", [0.0, 0.0])
        start += 0.1  # the client's first send
        out["phases"][name] = [
            {"s": round(p["t"] - start, 2), "gen": p["gen"], "ms": p["ms"], "freed": p["freed"]}
            for p in pauses
            if start - 1 <= p["t"] <= end + 5
        ]
    return out


def stop_leftovers(pids: list[int], wait: float = 5.0) -> None:
    """SIGKILL those of our server's child processes still running after `wait` seconds."""
    deadline = time.monotonic() + wait
    for pid in pids:
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        with contextlib.suppress(OSError):
            if "openline" in Path(f"/proc/{pid}/cmdline").read_text(errors="replace"):
                os.kill(pid, signal.SIGKILL)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="OpenLine web-chat WebSocket benchmark")
    common.add_run_options(parser, quick="a few hundred sockets, short phases")
    parser.add_argument(
        "--gc-log",
        action="store_true",
        help="log the web process's garbage collections (a gc callback) to line up pauses",
    )
    g = parser.add_argument_group("idle")
    g.add_argument("--steps", default="1000,2000,3500,5000,6500,8000", help="visitor sockets")
    g.add_argument("--settle", type=float, default=10.0, help="seconds after each step")
    g.add_argument("--hold", type=float, default=30.0, help="seconds at the top step")
    g.add_argument(
        "--max-rss-mib", type=float, default=TARGET_RSS_MIB, help="stop the ramp above this"
    )
    g.add_argument("--per-client", type=int, default=5000, help="sockets per client process")
    g.add_argument("--connect-concurrency", type=int, default=64, help="per client process")
    g = parser.add_argument_group("latency")
    g.add_argument("--latency-chats", type=int, default=TARGET_LATENCY_CHATS)
    g.add_argument("--rates", default="100,200", help="visitor messages/s (all chats together)")
    g.add_argument("--duration", type=float, default=30.0, help="seconds per rate")
    g.add_argument("--warmup", type=float, default=3.0, help="seconds before each rate")
    g.add_argument("--consoles", type=int, default=20, help="console WebSocket sessions")
    g.add_argument("--supervisors", type=int, default=2, help="of the consoles; rest counselors")
    g.add_argument("--stall", type=float, default=3.0, help="stop waiting after this quiet time")
    g.add_argument("--drain-timeout", type=float, default=30.0)
    args = parser.parse_args()
    if args.quick:
        args.steps, args.settle, args.hold = "100,300,500", 3.0, 3.0
        args.latency_chats, args.rates, args.duration, args.warmup = 300, "20", 5.0, 1.0
        args.consoles, args.supervisors = 5, 1
    return args


def main() -> int:  # noqa: C901 -- one linear run
    if len(sys.argv) > 2 and sys.argv[1] == "_visitor-client":
        return visitor_client_main(sys.argv[2])
    args = parse_args()
    # SIGTERM (a timeout, a killed make) unwinds like Ctrl-C, so the finally below runs.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    steps = sorted({int(s) for s in args.steps.split(",") if s.strip()})
    rates = [float(r) for r in args.rates.split(",") if r.strip()]
    nofile = raise_nofile()
    cap = max([*steps, args.latency_chats])
    if cap + 500 > nofile[0] or args.per_client + 200 > nofile[0]:
        raise SystemExit(f"open files limit {nofile} is too low for {cap:,} sockets")
    n_clients = math.ceil(cap / args.per_client)
    chunk = math.ceil(cap / n_clients)

    report = common.Report("chat", sqlite=sqlite3.sqlite_version, nofile=list(nofile))
    results = report.results
    results.update(
        settings={**vars(args), "visitor_clients": n_clients, "per_client": chunk},
        targets={
            "idle_connections": TARGET_IDLE_CONNECTIONS,
            "web_rss_mib": TARGET_RSS_MIB,
            "p99_ms": TARGET_P99_MS,
            "latency_chats": TARGET_LATENCY_CHATS,
        },
        code=common.code_state(),
    )
    var_dir = Path(tempfile.mkdtemp(prefix="openline-chat-"))
    port = common.free_port()
    env = common.bench_env(var_dir, port)
    env["OPENLINE_CHAT_ABANDON_MINUTES"] = ABANDON_MINUTES
    server: common.Server | None = None
    visitors: Visitors | None = None
    consoles: common.ConsoleClient | None = None
    run: Run | None = None
    try:
        log(f"chat bench: var dir {var_dir}; migrating, creating org, inbox and {cap:,} chats")
        common.set_up_openline(provider="sandbox", env=env)
        t0 = time.monotonic()
        chats = create_chats(env, cap, var_dir / "chats.json")
        results["setup"] = {
            "chats": len(chats["tokens"]),
            "chats_s": round(time.monotonic() - t0, 1),
        }
        sessions = common.create_sessions(env, args.consoles, args.supervisors)
        log(f"  {len(chats['tokens']):,} chats in {results['setup']['chats_s']} s")

        log("  starting openline run")
        cmd = [str(common.OPENLINE), "run"]
        if args.gc_log:
            cmd = [sys.executable, "-c", GC_WRAPPER, "run"]
        server = common.Server("openline", cmd, env, port, var_dir / "openline.log")
        server.start()

        keys = [s["key"] for s in sessions]
        consoles = common.ConsoleClient(
            port=port, keys=keys, var_dir=var_dir, name="console-client"
        )
        args.consoles_connected, failed = consoles.ready(timeout=120)
        log(f"  {args.consoles_connected} console sockets connected, {failed} failed")

        clients = []
        for k in range(n_clients):
            vcfg = {
                "url": f"ws://{common.HOST}:{port}/ws/chat/{chats['widget']}/",
                "origin": VISITOR_ORIGIN,
                "tokens": chats["tokens"][k * chunk : (k + 1) * chunk],
                "connect_concurrency": args.connect_concurrency,
                "prefix": f"bench{k}x",
                "bodies": common.INBOUND_TEXTS,
            }
            client = VisitorClient(
                vcfg, var_dir / f"visitor-{k}.json", var_dir / f"visitor-{k}.log"
            )
            clients.append(client)
        visitors = Visitors(clients, chunk)
        for client in clients:
            client.line("READY", timeout=60)
        run = Run(server, visitors, consoles)
        results["server"] = {
            **server.startup,
            "libraries": server.loaded_libraries(),
            "web_pid": run.web_pid,
            "worker_pids": run.worker_pids,
            "nofile": nofile_limit(run.web_pid),
        }
        log(
            f"  web pid {run.web_pid}, worker {run.worker_pids}, open files limit"
            f" {results['server']['nofile']}; {n_clients} visitor client process(es)"
        )

        log(f"idle: steps {steps}")
        run_idle(run, args, steps, results.setdefault("idle", {}))
        if run.alive():
            run_latency(run, args, rates, results.setdefault("latency", {}))
            sends = visitors.dump(var_dir)
            results["latency"]["visitor_client"] = visitors.status()
            consoles.stop()
            stats = consoles.stats()
            results["latency"]["console_client"] = {k: v for k, v in stats.items() if k != "live"}
            received = consoles.received(len(sessions))
            if received is not None:
                results["latency"]["joined"] = analyse(
                    db_path=var_dir / "openline.sqlite3",
                    sends=sends,
                    console_data=received,
                    live=stats.get("live", []),
                    phases=[f"{r:g}/s" for r in rates],
                )
    except (Exception, KeyboardInterrupt, SystemExit) as exc:
        results["error"] = f"{type(exc).__name__}: {exc}"
        results["traceback"] = traceback.format_exc()
        log(f"chat bench failed: {results['error']}")
        if server is not None:
            server.note_failure(results)
        for client in visitors.clients if visitors else []:
            if client.tail():
                results.setdefault("visitor_client_log_tail", []).append(client.tail())
    finally:
        if consoles is not None:
            consoles.stop()
        if visitors is not None:
            visitors.stop()
        if server is not None:
            server.stop()
            # The worker child follows its parent; make sure, by its pid.
            stop_leftovers(run.worker_pids if run else [])
            with contextlib.suppress(OSError):
                text = server.log_path.read_text(errors="replace")
                results["server_errors"] = text.count(" ERROR ")
                results["server_log_errors"] = [
                    line for line in text.splitlines() if "ERROR" in line or "Traceback" in line
                ][:20]
            if args.gc_log:
                results["gc"] = gc_report(gc_pauses(server.log_path), results.get("latency"))
        common.clean_up(var_dir, keep=args.keep)

    return report.conclude(lambda r: summarize(r, rates), print_summary, strict=args.strict)


if __name__ == "__main__":
    sys.exit(main())

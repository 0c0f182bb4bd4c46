"""Inbound-webhook benchmark: OpenLine's intake against a bare ASGI + SQLite baseline.

    make bench                        # or: .venv/bin/python bench/inbound.py
    .venv/bin/python bench/inbound.py --quick      # short smoke run (about a minute)

Sets up a throw-away OpenLine (embedded profile: SQLite, in-process processor) in a temp
var dir, pre-signs unique Twilio inbound webhooks, drives the baseline (bench/baseline_app.py)
and `openline run` in turn at each concurrency with wrk + bench/inbound.lua, watches inbound
processing catch up, and
writes bench/results/inbound-<timestamp>.json. See bench/README.md for how to read it.

All traffic goes to 127.0.0.1. Both servers are stopped on the way out (SIGINT, then
SIGKILL), whatever happens.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import random
import resource
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
LUA = BENCH / "inbound.lua"
BASELINE_APP = BENCH / "baseline_app.py"
RESULTS = BENCH / "results"
BIN = Path(sys.executable).parent
TO_NUMBER = "+12025550177"
HOST = "127.0.0.1"

# Targets from the intake's design brief.
TARGET_RATIO = 0.4  # intake req/s >= 0.4 x baseline, with zero errors
TARGET_P99_MS = 50.0  # p99 acknowledgement at half of OpenLine's c=32 throughput
SUSTAINED_FRACTION = 0.1  # processing keeps up with 0.1 x baseline

# Ordinary texts; none is a consent keyword or reads like an opt-out request (checked at
# start), so every event takes the plain path: contact, conversation, message.
BODIES = [
    "Hi, is anyone there?",
    "I need to talk to someone tonight",
    "Can I reschedule my appointment to Thursday?",
    "thanks for getting back to me",
    "What time do you open tomorrow?",
    "ok",
    "I'm at the bus stop on 5th, running about 10 min late",
    "Do you have any beds available tonight?",
    "My caseworker said to text this number",
    "yes that works for me",
    "Can you call me back? My phone is almost dead",
    "Where do I bring the paperwork?",
    "I've been feeling really anxious and can't sleep",
    "Is the food pantry open on Saturday?",
    "Thank you so much 🙏",
    "how long is the wait right now",
    "I got the letter but I don't understand it",
    "Can my sister come with me?",
    "sorry wrong number",
    "Could you send me the address again please",
    "Running late, be there at 3:30",
    "I don't have a ride, is there a bus that goes there?",
    "Just checking in like you asked",
    "Hola, ¿hablan español?",
    "Is it too late to sign up for the class?",
]
AREA_CODES = ["202", "312", "415", "212", "617", "206", "303", "512"]
TWILIO_FIELDS = {
    "ToCountry": "US",
    "ToState": "DC",
    "NumMedia": "0",
    "ToCity": "WASHINGTON",
    "FromZip": "20001",
    "FromState": "DC",
    "SmsStatus": "received",
    "FromCity": "WASHINGTON",
    "FromCountry": "US",
    "To": TO_NUMBER,
    "ToZip": "20001",
    "NumSegments": "1",
    "ApiVersion": "2010-04-01",
}


def log(text: str) -> None:
    print(text, flush=True)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never a proxy


def http_get_json(url: str, timeout: float = 5.0) -> tuple[int, Any]:
    try:
        with _opener.open(url, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, None


# --- requests ----------------------------------------------------------------------------


def valid_from_numbers() -> list[str]:
    import phonenumbers

    numbers = []
    for area in AREA_CODES:
        for last in range(100, 200):  # 555-0100..0199: fictional, but valid per libphonenumber
            e164 = f"+1{area}555{last:04d}"
            if phonenumbers.is_valid_number(phonenumbers.parse(e164)):
                numbers.append(e164)
    if not numbers:
        raise SystemExit("no From number is valid per phonenumbers; update AREA_CODES")
    return numbers


def check_bodies() -> None:
    from openline.contacts.keywords import looks_like_opt_out_request, match_keyword

    for body in BODIES:
        if match_keyword(body) is not None or looks_like_opt_out_request(body):
            raise SystemExit(f"bench body {body!r} is a consent keyword; pick another")


class RequestFactory:
    """Unique, signed Twilio inbound webhooks. MessageSids are SM + a per-run prefix + a
    counter, so no two requests of a run share one (a repeat would be a dedup no-op).

    Signing (twilio's RequestValidator.compute_signature) and urlencoding cost ~40 us a
    request, so a phase's files are written by one process per wrk thread in parallel."""

    def __init__(self, url: str, token: str, account_sid: str, seed: int) -> None:
        self.url = url
        self.token = token
        self.account_sid = account_sid
        self.service_sid = "MG" + secrets.token_hex(16)
        self.prefix = secrets.token_hex(4)
        self.counter = 0
        self.seed = seed
        self.froms = valid_from_numbers()

    def write(self, prefix: Path, count: int, threads: int) -> Path:
        """`count` requests split into prefix.0 .. prefix.<threads-1>, one per wrk thread."""
        base = self.counter
        self.counter += count
        jobs = [
            (self, f"{prefix}.{t}", base + t, count // threads + (t < count % threads), threads)
            for t in range(threads)
        ]
        if threads == 1:
            _write_slice(jobs[0])
        else:
            import multiprocessing

            processes = min(threads, os.cpu_count() or 1)
            with multiprocessing.get_context("fork").Pool(processes) as pool:
                pool.map(_write_slice, jobs)
        return prefix


def _write_slice(job: tuple[RequestFactory, str, int, int, int]) -> None:
    """Write `count` requests with counters start, start+step, ... to `path`."""
    from twilio.request_validator import RequestValidator

    factory, path, start, count, step = job
    validator = RequestValidator(factory.token)
    rng = random.Random(factory.seed * 1_000_003 + start)
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(count):
            sid = f"SM{factory.prefix}{start + 1 + i * step:024x}"
            params = dict(TWILIO_FIELDS)
            params.update(
                SmsMessageSid=sid,
                SmsSid=sid,
                MessageSid=sid,
                AccountSid=factory.account_sid,
                MessagingServiceSid=factory.service_sid,
                From=rng.choice(factory.froms),
                Body=rng.choice(BODIES),
            )
            signature = validator.compute_signature(factory.url, params)
            fh.write(f"{signature}\t{urlencode(params)}\n")


# --- where the CPU went during a phase ------------------------------------------------------

SERVER_PIDS: set[int] = set()  # our servers, added by Server.launch
TICK = os.sysconf("SC_CLK_TCK")


def _busy_ticks() -> int:
    with open("/proc/stat") as fh:
        cpu = fh.readline().split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in cpu[:8])
    return user + nice + system + irq + softirq + steal


def _pid_ticks(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])  # utime + stime, all threads


def _with_children(pids: set[int]) -> set[int]:
    """The servers and their child processes (`openline run` starts a worker child)."""
    found = set(pids)
    for pid in pids:
        for task in Path(f"/proc/{pid}/task").glob("*"):
            try:
                children = {int(child) for child in (task / "children").read_text().split()}
            except OSError:
                continue
            found |= _with_children(children)
    return found


class CpuMeter:
    """Machine-wide busy CPU during a phase, split into the server(s), wrk, this script and
    everything else ("other": another job on the machine makes every figure noisy)."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self.busy = _busy_ticks()
        self.servers = {pid: _pid_ticks(pid) for pid in _with_children(SERVER_PIDS)}
        self.children = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.me = resource.getrusage(resource.RUSAGE_SELF)

    def stop(self) -> dict[str, float]:
        wall = time.monotonic() - self.t0
        busy = (_busy_ticks() - self.busy) / TICK
        servers = sum(_pid_ticks(pid) - t for pid, t in self.servers.items()) / TICK
        ch = resource.getrusage(resource.RUSAGE_CHILDREN)
        me = resource.getrusage(resource.RUSAGE_SELF)
        wrk = (ch.ru_utime + ch.ru_stime) - (self.children.ru_utime + self.children.ru_stime)
        own = (me.ru_utime + me.ru_stime) - (self.me.ru_utime + self.me.ru_stime)
        other = max(0.0, busy - servers - wrk - own)
        return {
            "wall_s": round(wall, 2),
            "busy_s": round(busy, 2),
            "server_s": round(servers, 2),
            "wrk_s": round(wrk, 2),
            "bench_s": round(own, 2),
            "other_s": round(other, 2),
            "other_pct": round(100 * other / (wall * (os.cpu_count() or 1)), 1) if wall else 0.0,
        }


# --- wrk -----------------------------------------------------------------------------------


def run_wrk(
    *,
    port: int,
    path: str,
    requests: Path,
    connections: int,
    duration: float,
    threads: int,
    rate: float = 0.0,
    wait: bool = True,
) -> dict[str, Any] | subprocess.Popen[str]:
    env = {
        **os.environ,
        "BENCH_REQUESTS": str(requests),
        "BENCH_PATH": path,
        "BENCH_THREADS": str(threads),
        "BENCH_RATE": f"{rate:.3f}",
    }
    cmd = [
        WRK,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{duration:g}s",
        "--latency",
        "--timeout",
        "5s",
        "-s",
        str(LUA),
        f"http://{HOST}:{port}{path}",
    ]
    meter = CpuMeter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.bench_meter = meter  # type: ignore[attr-defined]
    if not wait:
        return proc
    return wrk_result(proc, duration)


def wrk_result(proc: subprocess.Popen[str], duration: float) -> dict[str, Any]:
    try:
        out, err = proc.communicate(timeout=duration + 60)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    for text in out.splitlines():
        if text.startswith("BENCH_JSON "):
            result = json.loads(text[len("BENCH_JSON ") :])
            meter = getattr(proc, "bench_meter", None)
            if meter is not None:
                result["cpu"] = meter.stop()
            result["wrk_output"] = "\n".join(
                t for t in out.splitlines() if not t.startswith("BENCH_JSON ")
            )
            return result
    raise RuntimeError(f"wrk gave no result (exit {proc.returncode}):\n{out}\n{err}")


# --- servers -------------------------------------------------------------------------------


class Server:
    def __init__(self, name: str, cmd: list[str], env: dict[str, str], port: int, log_path: Path):
        self.name, self.cmd, self.env, self.port, self.log_path = name, cmd, env, port, log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.startup: dict[str, Any] = {}

    def launch(self) -> None:
        with open(self.log_path, "ab") as log_file:
            self.proc = subprocess.Popen(
                self.cmd,
                env=self.env,
                cwd=ROOT,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        SERVER_PIDS.add(self.proc.pid)

    def start(self, timeout: float = 60.0) -> dict[str, Any]:
        self.launch()
        assert self.proc is not None
        launched = time.monotonic()
        deadline = launched + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}: {self.tail()}")
            sent = time.monotonic()
            outcome = ""
            try:
                status, data = http_get_json(f"http://{HOST}:{self.port}/healthz", timeout=15)
                outcome = str(status)
            except urllib.error.URLError as exc:
                status, data = 0, None
                if not isinstance(exc.reason, ConnectionRefusedError):
                    outcome = f"{type(exc.reason).__name__}: {exc.reason}"
            except OSError as exc:
                status, data, outcome = 0, None, f"{type(exc).__name__}: {exc}"
            if outcome and "first_request_s" not in self.startup:
                # The first request the server took, timed: as slow as this is the first
                # webhook after every restart.
                self.startup["first_request_s"] = round(time.monotonic() - sent, 3)
                self.startup["first_request_outcome"] = outcome
            if status == 200:
                self.startup["ready_s"] = round(time.monotonic() - launched, 2)
                return data or {}
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not answer /healthz in {timeout:.0f}s: {self.tail()}")

    def tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def loaded_libraries(self) -> list[str]:
        """Which of uvloop/httptools/h11 the running process has loaded."""
        if self.proc is None:
            return []
        found = set()
        with contextlib.suppress(OSError):
            maps = Path(f"/proc/{self.proc.pid}/maps").read_text()
            for lib in ("uvloop", "httptools"):
                if f"/{lib}/" in maps:
                    found.add(lib)
        return sorted(found)

    def stop(self) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


# --- OpenLine's database, read-only ---------------------------------------------------------


class EventsDb:
    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=20)
        # The intake's overflow journal (openline/messaging/journal.py): webhooks that came
        # while processing held the write lock, not yet moved into InboundEvent.
        self.journal_path = Path(f"{path}-intake")

    def journaled(self) -> int:
        if not self.journal_path.exists():
            return 0
        conn = sqlite3.connect(f"file:{self.journal_path}?mode=ro", uri=True, timeout=20)
        try:
            return int(conn.execute("SELECT COUNT(*) FROM pending").fetchone()[0])
        except sqlite3.OperationalError:  # created, table not there yet
            return 0
        finally:
            conn.close()

    def counts(self) -> tuple[int, int]:
        """(events stored, events not yet processed, journaled ones included)."""
        total = self.conn.execute("SELECT COUNT(*) FROM messaging_inboundevent").fetchone()[0]
        pending = self.conn.execute(
            "SELECT COUNT(*) FROM messaging_inboundevent WHERE processed_at IS NULL"
        ).fetchone()[0]
        return int(total), int(pending) + self.journaled()

    def unfinished(self) -> int:
        """Events without processed_at or without their Message, and journaled ones."""
        return self.journaled() + int(
            self.conn.execute(
                "SELECT COUNT(*) FROM messaging_inboundevent e"
                " LEFT JOIN messaging_message m ON m.inbound_event_id = e.id"
                " WHERE e.processed_at IS NULL OR m.id IS NULL"
            ).fetchone()[0]
        )

    def close(self) -> None:
        self.conn.close()


def wait_caught_up(db: EventsDb, *, since: float, timeout: float) -> dict[str, Any]:
    """Poll until nothing is pending; `since` is when the load phase started."""
    load_end = time.monotonic()
    total, pending = db.counts()
    pending_at_load_end = pending
    deadline = load_end + timeout
    while pending > 0 and time.monotonic() < deadline:
        time.sleep(0.1)
        total, pending = db.counts()
    done = time.monotonic()
    return {
        "pending_at_load_end": pending_at_load_end,
        "caught_up": pending == 0,
        "pending_left": pending,
        "catch_up_s": round(done - load_end, 2),
        "load_and_catch_up_s": round(done - since, 2),
        "events_total": total,
    }


def processing_phase(
    db: EventsDb, before: tuple[int, int], t0: float, wrk: dict[str, Any], timeout: float
) -> dict[str, Any]:
    """After a load phase: wait for processing, check every acknowledged event is stored and
    became a message, and work out the processing rate."""
    processed_before = before[0] - before[1]
    info = wait_caught_up(db, since=t0, timeout=timeout)
    total, pending = db.counts()
    processed = (total - pending) - processed_before
    stored = total - before[0]
    acked = wrk["requests"] - wrk["non200"]
    info.update(
        acked=acked,
        stored=stored,
        acked_not_stored=max(0, acked - stored - wrk["repeats"]),
        processed=processed,
        processing_rate=round(processed / info["load_and_catch_up_s"], 1)
        if info["load_and_catch_up_s"] > 0
        else None,
    )
    if info["caught_up"]:
        info["unfinished"] = db.unfinished()
    else:
        rate = info["processing_rate"] or 0
        info["estimated_more_s"] = round(pending / rate, 1) if rate else None
    return info


def slope(points: list[tuple[float, float]]) -> float:
    n = len(points)
    if n < 2:
        return 0.0
    mx = sum(p[0] for p in points) / n
    my = sum(p[1] for p in points) / n
    sxx = sum((p[0] - mx) ** 2 for p in points)
    return sum((p[0] - mx) * (p[1] - my) for p in points) / sxx if sxx else 0.0


# --- the run -------------------------------------------------------------------------------


def phase_count(rate: float, duration: float, connections: int) -> int:
    """Requests to pre-sign for a phase: twice the expected rate plus slack (a warmed-up
    server can run well over its warm-up rate; a repeated request is an error)."""
    return int(rate * duration * 2) + 50 * connections + 2000


def resolve_uvicorn() -> dict[str, str]:
    """What uvicorn.Config picks with `openline run`'s settings (default loop and http)."""
    import uvicorn
    from uvicorn.config import HTTP_PROTOCOLS, LOOP_FACTORIES, Config
    from uvicorn.importer import import_from_string

    config = Config(
        "openline.asgi:application", lifespan="off", access_log=False, log_level="warning"
    )
    http_cls = import_from_string(HTTP_PROTOCOLS[config.http])  # type: ignore[index]
    factory = config.get_loop_factory()
    loop_name = "?"
    if factory is not None:
        loop = factory()
        loop_name = f"{type(loop).__module__}.{type(loop).__name__}"
        loop.close()
    return {
        "uvicorn": uvicorn.__version__,
        "loop_setting": str(config.loop),
        "loop_factory": LOOP_FACTORIES.get(str(config.loop), str(config.loop)),
        "loop": loop_name,
        "http_setting": str(config.http),
        "http": f"{http_cls.__module__}.{http_cls.__name__}",
    }


def openline_cli(env: dict[str, str], *args: str) -> dict[str, Any]:
    out = subprocess.run(
        [str(OPENLINE), *args, "--json"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if out.returncode != 0:
        raise RuntimeError(f"openline {' '.join(args)} failed: {out.stdout}{out.stderr}")
    return json.loads(out.stdout)


def fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def main() -> int:  # noqa: C901 -- one linear script
    parser = argparse.ArgumentParser(description="OpenLine inbound-webhook benchmark")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per load phase")
    parser.add_argument("--warmup", type=float, default=3.0, help="warm-up seconds per server")
    parser.add_argument("--concurrency", default="8,32,64", help="comma-separated wrk -c values")
    parser.add_argument("--threads", type=int, default=2, help="wrk -t")
    parser.add_argument("--paced-duration", type=float, default=10.0)
    parser.add_argument("--sustained-duration", type=float, default=20.0)
    parser.add_argument(
        "--catch-up-timeout",
        type=float,
        default=25.0,
        help="seconds to wait for processing after each load phase",
    )
    parser.add_argument("--quick", action="store_true", help="3 s phases: a smoke run")
    parser.add_argument("--keep", action="store_true", help="keep the temp var dir")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument(
        "--variant",
        default="run",
        choices=["run", "one-process", "split"],
        help="how OpenLine runs: run (default: `openline run`, the embedded profile: a web"
        " process and its worker child), one-process (`openline run --one-process`) or split"
        " (`openline web` + `openline worker`, two processes)",
    )
    args = parser.parse_args()
    if args.quick:
        args.duration, args.warmup, args.paced_duration = 3.0, 1.0, 3.0
        args.sustained_duration, args.catch_up_timeout = 6.0, 15.0
    concurrencies = [int(c) for c in args.concurrency.split(",") if c.strip()]
    if 32 not in concurrencies:
        raise SystemExit("--concurrency must include 32 (the paced test runs at half of it)")

    started = dt.datetime.now(dt.UTC)
    t_start = time.monotonic()
    var_dir = Path(tempfile.mkdtemp(prefix="openline-bench-"))
    req_dir = var_dir / "requests"
    req_dir.mkdir()
    port_ol, port_base = free_port(), free_port()
    public_url = f"http://{HOST}:{port_ol}"
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in {
            "DATABASE_URL",
            "REDIS_URL",
            "OPENLINE_TASK_BACKEND",
            "DEBUG",
            "OPENLINE_TESTING",
            "SECRET_KEY",
            "OPENLINE_FIELD_KEY",
        }
    }
    env.update(
        OPENLINE_VAR_DIR=str(var_dir),
        PORT=str(port_ol),
        OPENLINE_PUBLIC_URL=public_url,
        DJANGO_SETTINGS_MODULE="openline.settings",
        PYTHONUNBUFFERED="1",
    )
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "openline.settings")
    sys.path.insert(0, str(ROOT))
    check_bodies()

    results: dict[str, Any] = {
        "started_at": started.isoformat(timespec="seconds"),
        "machine": {
            "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "settings": {
            "variant": args.variant,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "concurrency": concurrencies,
            "wrk_threads": args.threads,
            "paced_duration_s": args.paced_duration,
            "sustained_duration_s": args.sustained_duration,
        },
        "uvicorn": resolve_uvicorn(),
        "baseline": {},
        "openline": {},
    }
    log(
        f"var dir {var_dir}; uvicorn picks loop={results['uvicorn']['loop']}"
        f" http={results['uvicorn']['http']}"
    )

    baseline: Server | None = None
    openline: Server | None = None
    worker: Server | None = None
    db: EventsDb | None = None
    try:
        # 1. OpenLine: database, organization, Twilio number.
        openline_cli(env, "migrate")
        openline_cli(
            env, "org", "create", "--name", "Bench", "--slug", "bench", "--timezone", "UTC"
        )
        account_sid, token = "AC" + secrets.token_hex(16), secrets.token_hex(16)
        number = openline_cli(
            env,
            "number",
            "add",
            "--org",
            "bench",
            "--provider",
            "twilio",
            "--number",
            TO_NUMBER,
            "--config",
            f"account_sid={account_sid}",
            "--config",
            f"auth_token={token}",
            "--config",
            "api_base=http://127.0.0.1:9",
        )
        path = urlsplit(number["inbound_url"]).path
        factory = RequestFactory(public_url + path, token, account_sid, seed=1)
        t = args.threads

        def requests_for(name: str, count: int) -> Path:
            t0 = time.monotonic()
            prefix = factory.write(req_dir / name, count, t)
            log(f"  signed {count:,} requests for {name} in {time.monotonic() - t0:.1f}s")
            return prefix

        # 2. Baseline.
        log("baseline: starting bench/baseline_app.py")
        baseline = Server(
            "baseline",
            [
                sys.executable,
                str(BASELINE_APP),
                "--host",
                HOST,
                "--port",
                str(port_base),
                "--db",
                str(var_dir / "baseline.sqlite3"),
            ],
            env,
            port_base,
            var_dir / "baseline.log",
        )
        info = baseline.start()
        results["baseline"]["server"] = {
            **info,
            **baseline.startup,
            "libraries": baseline.loaded_libraries(),
        }
        warm = requests_for("warmup", phase_count(25000, args.warmup, 64))
        res = run_wrk(
            port=port_base,
            path=path,
            requests=warm,
            connections=32,
            duration=args.warmup,
            threads=t,
        )
        guess = res["rps"]
        log(f"  warm-up {res['rps']:,.0f} req/s")

        # 3. OpenLine, started next to it: each concurrency runs against the baseline and then
        # OpenLine straight after, so a shift in the machine's speed during the run (this
        # shared machine's baseline has ranged 6,500-11,000 req/s between runs) moves both.
        if args.variant == "split":
            web_cmd = [str(OPENLINE), "web"]
            worker = Server("worker", [str(OPENLINE), "worker"], env, 0, var_dir / "worker.log")
            worker.launch()
        elif args.variant == "one-process":
            web_cmd = [str(OPENLINE), "run", "--one-process"]
        else:
            web_cmd = [str(OPENLINE), "run"]
        log(f"openline: starting {' '.join(Path(c).name for c in web_cmd)}")
        openline = Server("openline", web_cmd, env, port_ol, var_dir / "openline.log")
        openline.start()
        results["openline"]["server"] = {
            **openline.startup,
            "libraries": openline.loaded_libraries(),
        }
        log(
            f"  ready in {openline.startup['ready_s']} s; the first request took"
            f" {openline.startup['first_request_s']} s"
            f" ({openline.startup['first_request_outcome']})"
        )
        db = EventsDb(var_dir / "openline.sqlite3")
        res = run_wrk(
            port=port_ol, path=path, requests=warm, connections=32, duration=args.warmup, threads=t
        )
        log(f"  warm-up {res['rps']:,.0f} req/s, errors {res['errors']} {res['first_bad']}")
        results["openline"]["warmup"] = res
        results["openline"]["warmup_processing"] = wait_caught_up(
            db, since=time.monotonic(), timeout=args.catch_up_timeout * 2
        )

        for c in concurrencies:
            requests = requests_for(f"c{c}", phase_count(guess, args.duration, c))
            res = run_wrk(
                port=port_base,
                path=path,
                requests=requests,
                connections=c,
                duration=args.duration,
                threads=t,
            )
            results["baseline"][f"c{c}"] = res
            guess = max(guess, res["rps"])
            log(
                f"  baseline c={c}: {res['rps']:,.0f} req/s, p50 {res['latency_ms']['p50']:.2f} ms,"
                f" p99 {res['latency_ms']['p99']:.2f} ms, errors {res['errors']},"
                f" repeats {res['repeats']}"
            )
            before = db.counts()
            t0 = time.monotonic()
            res = run_wrk(
                port=port_ol,
                path=path,
                requests=requests,
                connections=c,
                duration=args.duration,
                threads=t,
            )
            proc_info = processing_phase(db, before, t0, res, args.catch_up_timeout)
            results["openline"][f"c{c}"] = {**res, "processing": proc_info}
            log(
                f"  openline c={c}: {res['rps']:,.0f} req/s, p50 {res['latency_ms']['p50']:.2f} ms,"
                f" p99 {res['latency_ms']['p99']:.2f} ms, errors {res['errors']}"
                f" {res['first_bad']}, repeats {res['repeats']}"
            )
            log(
                f"    processing: {proc_info['processing_rate']} events/s;"
                f" {proc_info['pending_at_load_end']:,} pending at load end,"
                f" caught up={proc_info['caught_up']} after {proc_info['catch_up_s']} s"
            )
        baseline.stop()
        baseline_max = max(results["baseline"][f"c{c}"]["rps"] for c in concurrencies)

        # 4. p99 acknowledgement at half of OpenLine's c=32 throughput.
        paced_rate = 0.5 * results["openline"]["c32"]["rps"]
        paced_file = requests_for("paced", phase_count(paced_rate, args.paced_duration, 32))
        before = db.counts()
        t0 = time.monotonic()
        res = run_wrk(
            port=port_ol,
            path=path,
            requests=paced_file,
            connections=32,
            duration=args.paced_duration,
            threads=t,
            rate=paced_rate,
        )
        proc_info = processing_phase(db, before, t0, res, args.catch_up_timeout)
        results["openline"]["paced"] = {
            "target_rps": round(paced_rate, 1),
            **res,
            "processing": proc_info,
        }
        log(
            f"  paced at {paced_rate:,.0f} req/s (c=32): achieved {res['rps']:,.0f},"
            f" p50 {res['latency_ms']['p50']:.2f} ms, p99 {res['latency_ms']['p99']:.2f} ms,"
            f" errors {res['errors']}"
        )

        # 5. Sustained: 0.1 x baseline, paced, sampling the backlog every second.
        sustained_rate = SUSTAINED_FRACTION * baseline_max
        sus_file = requests_for(
            "sustained", phase_count(sustained_rate, args.sustained_duration, 32)
        )
        wait_caught_up(db, since=time.monotonic(), timeout=args.catch_up_timeout)
        before = db.counts()
        t0 = time.monotonic()
        proc = run_wrk(
            port=port_ol,
            path=path,
            requests=sus_file,
            connections=32,
            duration=args.sustained_duration,
            threads=t,
            rate=sustained_rate,
            wait=False,
        )
        assert isinstance(proc, subprocess.Popen)
        samples: list[dict[str, Any]] = []
        next_tick = t0 + 1.0
        while proc.poll() is None:
            time.sleep(max(0.0, next_tick - time.monotonic()))
            next_tick += 1.0
            if proc.poll() is not None:
                break
            with contextlib.suppress(OSError):
                status, data = http_get_json(f"{public_url}/healthz", timeout=2)
                if status == 200 and data:
                    samples.append(
                        {
                            "t": round(time.monotonic() - t0, 2),
                            "inbound_pending": data["tasks"]["inbound_pending"],
                        }
                    )
        res = wrk_result(proc, args.sustained_duration)
        proc_info = processing_phase(db, before, t0, res, args.catch_up_timeout)
        points = [(s["t"], float(s["inbound_pending"])) for s in samples]
        growth = slope(points)
        later = [p[1] for p in points[len(points) // 2 :]] or [0.0]
        grows = growth > 0.05 * sustained_rate and later[-1] > 0.05 * sustained_rate
        # The backlog can only say whether processing keeps up if intake took the load.
        offered_ok = res["rps"] >= 0.95 * sustained_rate and res["errors"] == 0
        results["openline"]["sustained"] = {
            "target_rps": round(sustained_rate, 1),
            **res,
            "processing": proc_info,
            "samples": samples,
            "pending_slope_per_s": round(growth, 2),
            "pending_max": max((p[1] for p in points), default=0),
            "backlog_grows": grows,
            "rate_achieved": offered_ok,
        }
        log(
            f"  sustained {sustained_rate:,.0f} req/s for {args.sustained_duration:g}s:"
            f" achieved {res['rps']:,.0f}, backlog samples"
            f" {[s['inbound_pending'] for s in samples]}, slope {growth:+.1f}/s,"
            f" grows={grows}, rate achieved={offered_ok}"
        )
    finally:
        if db is not None:
            db.close()
        for server in (baseline, openline, worker):
            if server is not None:
                server.stop()
        if args.keep:
            log(f"kept {var_dir}")
        else:
            shutil.rmtree(var_dir, ignore_errors=True)

    results["elapsed_s"] = round(time.monotonic() - t_start, 1)
    results["machine"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    summary = summarize(results, concurrencies, baseline_max)
    results["summary"] = summary
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"inbound-{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print_summary(results, summary, concurrencies)
    log(f"\nresults: {out.relative_to(ROOT)}  ({results['elapsed_s']} s)")
    return 1 if args.strict and not all(summary["checks"].values()) else 0


def summarize(results: dict[str, Any], concurrencies: list[int], baseline_max: float) -> dict:
    rows = []
    for c in concurrencies:
        b, o = results["baseline"][f"c{c}"], results["openline"][f"c{c}"]
        rows.append(
            {
                "concurrency": c,
                "baseline_rps": round(b["rps"], 1),
                "openline_rps": round(o["rps"], 1),
                "ratio": round(o["rps"] / b["rps"], 3) if b["rps"] else None,
                "openline_p50_ms": o["latency_ms"]["p50"],
                "openline_p99_ms": o["latency_ms"]["p99"],
                "baseline_errors": b["errors"],
                "openline_errors": o["errors"],
                "repeats": b["repeats"] + o["repeats"],
                "processing_rate": o["processing"]["processing_rate"],
                "catch_up_s": o["processing"]["catch_up_s"],
                "caught_up": o["processing"]["caught_up"],
                "acked_not_stored": o["processing"]["acked_not_stored"],
                "other_cpu_pct": o.get("cpu", {}).get("other_pct", 0.0),
                "baseline_other_cpu_pct": b.get("cpu", {}).get("other_pct", 0.0),
            }
        )
    paced = results["openline"]["paced"]
    sustained = results["openline"]["sustained"]
    checks = {
        "throughput_ratio": all(
            r["ratio"] is not None and r["ratio"] >= TARGET_RATIO for r in rows
        ),
        "zero_errors": all(r["openline_errors"] == 0 for r in rows)
        and paced["errors"] == 0
        and sustained["errors"] == 0,
        "paced_p99": paced["latency_ms"]["p99"] < TARGET_P99_MS,
        "processing_keeps_up": not sustained["backlog_grows"]
        and sustained["rate_achieved"]
        and sustained["processing"]["caught_up"],
        "durable_acks": all(r["acked_not_stored"] == 0 for r in rows),
        "every_event_a_message": all(
            o["processing"].get("unfinished", 0) == 0
            for o in [*(results["openline"][f"c{c}"] for c in concurrencies), paced, sustained]
        ),
        "no_repeats": all(r["repeats"] == 0 for r in rows),
    }
    return {"rows": rows, "baseline_max_rps": round(baseline_max, 1), "checks": checks}


def print_summary(results: dict[str, Any], summary: dict[str, Any], concurrencies: list[int]):
    u = results["uvicorn"]
    log(f"\n=== OpenLine inbound webhook benchmark ({results['settings']['variant']}) ===")
    log(
        f"uvicorn {u['uvicorn']}: loop={u['loop']}  http={u['http']}"
        f"  (loaded: baseline {results['baseline']['server'].get('libraries')},"
        f" openline {results['openline']['server'].get('libraries')})"
    )
    st = results["openline"]["server"]
    log(
        f"OpenLine ready {st.get('ready_s')} s after launch; its first request took"
        f" {st.get('first_request_s')} s ({st.get('first_request_outcome')})"
    )
    head = (
        f"{'c':>4} {'baseline r/s':>13} {'OpenLine r/s':>13} {'ratio':>6} "
        f"{'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'proc ev/s':>10} {'catch-up s':>11}"
        f" {'other CPU':>10}"
    )
    log(head)
    log("-" * len(head))
    for r in summary["rows"]:
        catch = fmt(r["catch_up_s"], 1) + ("" if r["caught_up"] else "+")
        other = f"{r['other_cpu_pct']:.0f}%/{r['baseline_other_cpu_pct']:.0f}%"
        log(
            f"{r['concurrency']:>4} {fmt(r['baseline_rps'], 0):>13} {fmt(r['openline_rps'], 0):>13}"
            f" {fmt(r['ratio'], 2):>6} {fmt(r['openline_p50_ms'], 2):>8}"
            f" {fmt(r['openline_p99_ms'], 2):>8}"
            f" {r['openline_errors']:>3}/{r['baseline_errors']:<3}"
            f" {fmt(r['processing_rate'], 0):>10} {catch:>11}"
            f" {other:>10}"
        )
    paced, sus = results["openline"]["paced"], results["openline"]["sustained"]
    log(
        "errors and other CPU: OpenLine/baseline; other CPU = busy CPU not used by the server,"
        " wrk or this script (another job on the machine); '+' after catch-up: not caught"
        " up in time"
    )
    log(
        f"paced {paced['target_rps']:,.0f} req/s (0.5 x OpenLine c=32) for"
        f" {paced['duration_s']:.0f}s: achieved {paced['rps']:,.0f} req/s,"
        f" p50 {paced['latency_ms']['p50']:.2f} ms, p90 {paced['latency_ms']['p90']:.2f} ms,"
        f" p99 {paced['latency_ms']['p99']:.2f} ms, errors {paced['errors']},"
        f" other CPU {paced.get('cpu', {}).get('other_pct', 0):.0f}%"
    )
    pp = paced["processing"]
    log(
        f"  processing: {pp['pending_at_load_end']:,} pending at end, caught up={pp['caught_up']}"
        f" after {pp['catch_up_s']} s, {fmt(pp['processing_rate'], 0)} events/s"
    )
    sp = sus["processing"]
    log(
        f"sustained {sus['target_rps']:,.0f} req/s (0.1 x baseline max"
        f" {summary['baseline_max_rps']:,.0f}) for {sus['duration_s']:.0f}s: achieved"
        f" {sus['rps']:,.0f} req/s, p99 {sus['latency_ms']['p99']:.2f} ms;"
        f" backlog {[s['inbound_pending'] for s in sus['samples']]}"
    )
    log(
        f"  backlog slope {sus['pending_slope_per_s']:+.1f} events/s, max"
        f" {sus['pending_max']:,.0f}, grows={sus['backlog_grows']},"
        f" offered rate achieved={sus['rate_achieved']};"
        f" caught up={sp['caught_up']} {sp['catch_up_s']} s after the load;"
        f" {fmt(sp['processing_rate'], 0)} events/s"
    )
    checks = summary["checks"]
    m = results["machine"]
    log(
        f"load average at start {m['loadavg_at_start']}, at end {m['loadavg_at_end']}"
        f" ({m['cpus']} CPUs; anything else running skews these figures)"
    )
    log("targets: " + ", ".join(f"{k}={'PASS' if v else 'FAIL'}" for k, v in checks.items()))


WRK = shutil.which("wrk") or "/usr/bin/wrk"
OPENLINE = BIN / "openline" if (BIN / "openline").exists() else ROOT / ".venv" / "bin" / "openline"

if __name__ == "__main__":
    if not Path(WRK).exists():
        raise SystemExit("bench needs wrk: apt-get install -y wrk")
    sys.exit(main())

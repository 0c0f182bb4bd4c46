"""What the benchmarks share, once: paths, the OpenLine set-up (environment, CLI, signed
Twilio webhooks, random valid phone numbers), servers and client processes, CPU readings,
percentiles, wrk, the console's WebSocket client, a child process per database (its Django
set-up, progress lines, timed queries, cProfile files) and the results file with its summary
lines.
Every bench/*.py script imports it (`import common`); bench/baseline_app.py alone stays on its
own, the bare endpoint it is.

The console WebSocket client runs as a process of its own (bench/console.py and bench/chat.py
start it through ConsoleClient):

    .venv/bin/python bench/common.py _console-client CONFIG
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import io
import json
import os
import platform
import random
import resource
import secrets
import selectors
import shutil
import signal
import socket
import sqlite3
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from array import array
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
LUA = BENCH / "inbound.lua"
BASELINE_APP = BENCH / "baseline_app.py"
BIN = Path(sys.executable).parent
OPENLINE = BIN / "openline" if (BIN / "openline").exists() else ROOT / ".venv" / "bin" / "openline"
WRK = shutil.which("wrk") or "/usr/bin/wrk"
HOST = "127.0.0.1"
TO_NUMBER = "+12025550177"
# The foundation benchmark's sustained phase runs at this fraction of the bare baseline's
# best req/s (bench/inbound.py); the console benchmark paces its webhooks from it.
SUSTAINED_FRACTION = 0.1

if str(ROOT) not in sys.path:  # `import openline` from any bench script
    sys.path.insert(0, str(ROOT))


def log(text: str, *, stderr: bool = False) -> None:
    print(text, file=sys.stderr if stderr else sys.stdout, flush=True)


def fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


# --- statistics ------------------------------------------------------------------------------


def percentile(sorted_values: list[float], p: float) -> float | None:
    """Linear interpolation between closest ranks; `sorted_values` must be sorted."""
    if not sorted_values:
        return None
    if len(sorted_values) == 1:
        return sorted_values[0]
    k = (len(sorted_values) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


def dist_ms(values_s: Iterable[float], points: tuple[float, ...] = (50, 90, 95, 99)) -> dict:
    """Percentiles, max and mean of durations given in seconds, in ms."""
    ordered = sorted(values_s)
    out: dict[str, Any] = {"n": len(ordered)}
    for p in points:
        v = percentile(ordered, p)
        key = f"p{p:g}".replace(".", "_")
        out[key] = None if v is None else round(v * 1000, 2)
    out["max"] = round(ordered[-1] * 1000, 2) if ordered else None
    out["mean"] = round(statistics.fmean(ordered) * 1000, 2) if ordered else None
    return out


def lag_ms(lags: Iterable[float]) -> dict[str, Any]:
    """An event loop's lag (how late its 10 ms sleeps woke up): n, p50, p99, max in ms."""
    ordered = sorted(lags)
    return {
        "n": len(ordered),
        "p50": round((percentile(ordered, 50) or 0) * 1000, 2),
        "p99": round((percentile(ordered, 99) or 0) * 1000, 2),
        "max": round((ordered[-1] if ordered else 0) * 1000, 2),
    }


def per_second_ms(per_second: dict[int, list[float]]) -> list[dict[str, Any]]:
    """Latencies grouped by the second (of the phase) they were sent in: n, p50, p99 each."""
    timeline = []
    for second in sorted(per_second):
        vals = sorted(per_second[second])
        timeline.append(
            {
                "s": second,
                "n": len(vals),
                "p50_ms": round((percentile(vals, 50) or 0) * 1000, 1),
                "p99_ms": round((percentile(vals, 99) or 0) * 1000, 1),
            }
        )
    return timeline


# --- the OpenLine under test: environment, CLI, organization ---------------------------------

# Environment that would take OpenLine out of the embedded profile or skew it.
CLEARED_ENV = {
    "DATABASE_URL",
    "REDIS_URL",
    "OPENLINE_TASK_BACKEND",
    "DEBUG",
    "OPENLINE_TESTING",
    "SECRET_KEY",
    "OPENLINE_FIELD_KEY",
    "ALLOWED_HOSTS",
}


def bench_env(var_dir: Path | str, port: int | None = None) -> dict[str, str]:
    """This environment for a throw-away OpenLine in `var_dir` (embedded profile)."""
    env = {k: v for k, v in os.environ.items() if k not in CLEARED_ENV}
    env.update(
        OPENLINE_VAR_DIR=str(var_dir),
        DJANGO_SETTINGS_MODULE="openline.settings",
        PYTHONUNBUFFERED="1",
    )
    if port is not None:
        env.update(PORT=str(port), OPENLINE_PUBLIC_URL=f"http://{HOST}:{port}")
    return env


def django_in_process(var_dir: Path, port: int | None = None) -> None:
    """Set up Django in this process for a throw-away OpenLine in `var_dir`."""
    os.environ.update(bench_env(var_dir, port))
    for key in CLEARED_ENV:
        os.environ.pop(key, None)
    import django

    django.setup()


def run_capture(cmd: list[str], env: dict[str, str], *, what: str, timeout: float) -> str:
    """Run `cmd` from the repository root; its stdout, or RuntimeError with its output."""
    done = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed: {done.stdout}{done.stderr}")
    return done.stdout


def openline_cli(*args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """`openline <args> --json`: a subprocess with `env`, or in this process (Django set up
    already) without one."""
    if env is not None:
        out = run_capture(
            [str(OPENLINE), *args, "--json"], env, what=f"openline {' '.join(args)}", timeout=120
        )
        return json.loads(out)
    from openline.runtime import cli

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = cli.main([*args, "--json"])
    if code != 0:
        raise RuntimeError(f"openline {' '.join(args)} failed: {buffer.getvalue()}")
    return json.loads(buffer.getvalue())


@dataclass
class BenchOrg:
    """The "bench" organization and its one number (Twilio: made-up credentials, and sends
    go to a closed port)."""

    org: dict[str, Any]
    number: dict[str, Any]
    account_sid: str = ""
    token: str = ""

    @property
    def inbound_path(self) -> str:
        return urlsplit(self.number["inbound_url"]).path


def set_up_openline(*, provider: str, env: dict[str, str] | None = None) -> BenchOrg:
    """Migrate a fresh database, then create the "bench" organization with a `provider`
    ("twilio" or "sandbox") number at TO_NUMBER; `env` as for openline_cli."""
    openline_cli("migrate", env=env)
    org = openline_cli("org", "create", "--name", "Bench", "--slug", "bench", env=env)
    add = ["number", "add", "--org", "bench", "--provider", provider, "--number", TO_NUMBER]
    if provider != "twilio":
        return BenchOrg(org=org, number=openline_cli(*add, env=env))
    account_sid, token = "AC" + secrets.token_hex(16), secrets.token_hex(16)
    number = openline_cli(
        *add,
        "--config", f"account_sid={account_sid}",
        "--config", f"auth_token={token}",
        "--config", "api_base=http://127.0.0.1:9",
        env=env,
    )  # fmt: skip
    return BenchOrg(org=org, number=number, account_sid=account_sid, token=token)


# --- texts and signed Twilio webhooks ------------------------------------------------------------

# Ordinary texts; none is a consent keyword, reads like an opt-out request or holds a risk
# phrase (check_bodies), so every event takes the plain path: contact, conversation, message.
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
# The everyday texts above, with the short replies that dominate a real transcript first
# (the console seed's weights fall off by position) and crisis-line topics after.
INBOUND_TEXTS = list(
    dict.fromkeys(
        [
            "Hi, is anyone there?",
            "ok",
            "thanks",
            "yes",
            "ok thanks",
            "thank you so much",
            "I need to talk to someone",
            *BODIES,
            "Can I reschedule my appointment?",
            "I'm running a few minutes late",
            "my rent is due friday and I'm short",
            "the landlord changed the locks",
            "I missed the bus, can I come tomorrow instead",
            "do I need to bring my ID",
            "I have my interview on Monday",
            "can you help me fill out the form",
            "I lost my job last week",
            "my kids are with me, is that ok",
            "I'm safe right now",
            "not really, it's been a rough day",
            "I start the new medication tomorrow",
            "no I haven't eaten today",
            "can we talk later tonight",
            "sorry, my phone died",
            "what documents do I need for the voucher",
            "I got the job!!",
            "is the clinic open on Sunday",
            "I'll be there at 3",
            "can I bring my dog",
        ]
    )
)
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
    # Inbound processing also matches risk phrases on every text (messaging.risk): a body
    # with one would take the raised-priority path. That module needs Django, so a child
    # checks, with the organization's default list (SUGGESTED_PHRASES).
    check = (
        "import json, sys, django; django.setup()\n"
        "from openline.messaging.risk import SUGGESTED_PHRASES, matcher_for\n"
        "matcher = matcher_for(SUGGESTED_PHRASES)\n"
        "print(json.dumps([b for b in json.loads(sys.argv[1]) if matcher.match(b)]))\n"
    )
    with tempfile.TemporaryDirectory(prefix="openline-bench-check-") as var_dir:
        out = run_capture(
            [sys.executable, "-c", check, json.dumps(BODIES)],
            bench_env(var_dir),
            what="the risk phrase check of the bench bodies",
            timeout=120,
        )
    risky = json.loads(out.strip().splitlines()[-1])
    if risky:
        raise SystemExit(f"bench bodies {risky!r} match a risk phrase; pick others")


def twilio_webhook(
    validator: Any, url: str, *, sid: str, account_sid: str, from_: str, body: str, **extra: str
) -> tuple[str, str]:
    """One inbound Twilio webhook to `url`: (X-Twilio-Signature, urlencoded form body)."""
    params = {
        **TWILIO_FIELDS,
        "SmsMessageSid": sid,
        "SmsSid": sid,
        "MessageSid": sid,
        "AccountSid": account_sid,
        **extra,
        "From": from_,
        "Body": body,
    }
    return validator.compute_signature(url, params), urlencode(params)


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
            signature, body = twilio_webhook(
                validator,
                factory.url,
                sid=f"SM{factory.prefix}{start + 1 + i * step:024x}",
                account_sid=factory.account_sid,
                MessagingServiceSid=factory.service_sid,
                from_=rng.choice(factory.froms),
                body=rng.choice(BODIES),
            )
            fh.write(f"{signature}\t{body}\n")


# --- processes ---------------------------------------------------------------------------------


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


def tail(path: Path, lines: int = 20) -> str:
    """The last lines of a log file; empty if there is none."""
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return ""


def end_process(proc: subprocess.Popen[Any], *, sig: int | None, wait: float) -> None:
    """Send `sig` (None: the caller has already asked it to end), wait up to `wait` seconds,
    then SIGKILL."""
    if proc.poll() is not None:
        return
    if sig is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, sig)
    try:
        proc.wait(timeout=wait)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


SERVER_PIDS: set[int] = set()  # our servers, added by Server.launch


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
        return tail(self.log_path, lines)

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
        if self.proc is not None:
            end_process(self.proc, sig=signal.SIGINT, wait=10)

    def note_failure(self, into: dict[str, Any]) -> None:
        """After a failed run: the server's last log lines, and how it ended if it did."""
        into["server_log_tail"] = self.tail()
        code = self.proc.poll() if self.proc else None
        if code is not None:
            # Died under us: a crash, the OOM killer, or someone's `pkill openline`.
            into["server_exit"] = code
            log(f"  the server had exited with {code} (negative: killed by that signal)")


def baseline_server(env: dict[str, str], var_dir: Path, port: int) -> Server:
    """bench/baseline_app.py on `port`, its database and log in `var_dir` (not started)."""
    cmd = [sys.executable, str(BASELINE_APP), "--host", HOST, "--port", str(port),
           "--db", str(var_dir / "baseline.sqlite3")]  # fmt: skip
    return Server("baseline", cmd, env, port, var_dir / "baseline.log")


class ClientProcess:
    """A benchmark's client process: `script mode CONFIG`, its stderr in `log_path`, its
    stdout read line by line (READY, REPLY ...). `stdin`: a pipe for commands."""

    def __init__(
        self,
        script: Path,
        mode: str,
        cfg: dict[str, Any],
        cfg_path: Path,
        log_path: Path,
        *,
        stdin: bool = False,
    ) -> None:
        cfg_path.write_text(json.dumps(cfg))
        self.log_path = log_path
        with open(log_path, "wb") as log_file:
            self.proc = subprocess.Popen(
                [sys.executable, str(script), mode, str(cfg_path)],
                cwd=ROOT,
                stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log_file,
                text=True,
                start_new_session=True,
            )
        self.sel = selectors.DefaultSelector()
        assert self.proc.stdout is not None
        self.sel.register(self.proc.stdout, selectors.EVENT_READ)

    def line(self, prefix: str, timeout: float) -> str:
        """The next stdout line that starts with `prefix`, without the prefix."""
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.sel.select(timeout=max(0.0, deadline - time.monotonic())):
                break
            text = self.proc.stdout.readline()
            if not text:
                break
            if text.startswith(prefix):
                return text[len(prefix) :].strip()
        raise RuntimeError(
            f"{self.__class__.__name__}: no {prefix.strip()!r} line in {timeout:g} s: {self.tail()}"
        )

    def tail(self) -> str:
        return tail(self.log_path)

    def stop(self, timeout: float = 60.0) -> None:
        end_process(self.proc, sig=signal.SIGTERM, wait=timeout)
        self.sel.close()


def use_uvloop() -> None:
    """As the server does: a client process should cost as little CPU as it can."""
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()


# --- where the CPU went ------------------------------------------------------------------------

TICK = os.sysconf("SC_CLK_TCK")


def busy_ticks() -> int:
    with open("/proc/stat") as fh:
        cpu = fh.readline().split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in cpu[:8])
    return user + nice + system + irq + softirq + steal


def pid_ticks(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])  # utime + stime, all threads


def with_children(pids: set[int]) -> set[int]:
    """The processes and their child processes (`openline run` starts a worker child)."""
    found = set(pids)
    for pid in pids:
        for task in Path(f"/proc/{pid}/task").glob("*"):
            try:
                children = {int(child) for child in (task / "children").read_text().split()}
            except OSError:
                continue
            found |= with_children(children)
    return found


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass
class CpuWindow:
    """Seconds of busy CPU over `wall` seconds, by part; `other` is what none of the parts
    used: another job on the machine, which makes every figure noisy."""

    wall: float
    busy: float
    parts: dict[str, float]

    @property
    def other(self) -> float:
        return max(0.0, self.busy - sum(self.parts.values()))

    def other_pct(self) -> float:
        """Of all CPUs."""
        cpus = os.cpu_count() or 1
        return round(100 * self.other / (self.wall * cpus), 1) if self.wall else 0.0

    def pct_of_one_cpu(self, part: str) -> float:
        return round(100 * self.parts[part] / self.wall, 1) if self.wall else 0.0

    def as_dict(self, *, digits: int = 2, busy: bool = True, per_cpu: bool = False) -> dict:
        """wall_s, busy_s, <part>_s (and <part>_pct of one CPU), other_s, other_pct."""
        out: dict[str, float] = {"wall_s": round(self.wall, digits)}
        if busy:
            out["busy_s"] = round(self.busy, digits)
        for part, seconds in self.parts.items():
            out[f"{part}_s"] = round(seconds, digits)
            if per_cpu:
                out[f"{part}_pct"] = self.pct_of_one_cpu(part)
        out["other_s"] = round(self.other, digits)
        out["other_pct"] = self.other_pct()
        return out


class CpuMeter:
    """Busy CPU from now until stop(): the named processes' (each a list of pids), this
    process's (`own`), with `children` the finished child processes' (wrk), and the rest."""

    def __init__(
        self,
        pids: Mapping[str, Iterable[int]] | None = None,
        *,
        own: str = "bench",
        children: str | None = None,
    ) -> None:
        self.pids = {name: list(group) for name, group in (pids or {}).items()}
        self.own, self.children = own, children
        self.t0 = time.monotonic()
        self.busy = busy_ticks()
        self.ticks = {name: sum(map(pid_ticks, group)) for name, group in self.pids.items()}
        self.children_s = _children_cpu()
        self.own_s = time.process_time()

    def stop(self) -> CpuWindow:
        wall = time.monotonic() - self.t0
        busy = (busy_ticks() - self.busy) / TICK
        parts = {
            name: (sum(map(pid_ticks, group)) - self.ticks[name]) / TICK
            for name, group in self.pids.items()
        }
        if self.children is not None:
            parts[self.children] = _children_cpu() - self.children_s
        parts[self.own] = time.process_time() - self.own_s
        return CpuWindow(wall=wall, busy=busy, parts=parts)


# --- wrk ---------------------------------------------------------------------------------------


def phase_count(rate: float, duration: float, connections: int) -> int:
    """Requests to pre-sign for a phase: twice the expected rate plus slack (a warmed-up
    server can run well over its warm-up rate; a repeated request is an error)."""
    return int(rate * duration * 2) + 50 * connections + 2000


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
    """wrk with bench/inbound.lua replaying the pre-signed `requests` files; its result, or
    with wait=False the running process for wrk_result."""
    env = {
        **os.environ,
        "BENCH_REQUESTS": str(requests),
        "BENCH_PATH": path,
        "BENCH_THREADS": str(threads),
        "BENCH_RATE": f"{rate:.3f}",
    }
    cmd = [WRK, f"-t{threads}", f"-c{connections}", f"-d{duration:g}s", "--latency",
           "--timeout", "5s", "-s", str(LUA), f"http://{HOST}:{port}{path}"]  # fmt: skip
    meter = CpuMeter({"server": with_children(SERVER_PIDS)}, children="wrk")
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
                result["cpu"] = meter.stop().as_dict()
            result["wrk_output"] = "\n".join(
                t for t in out.splitlines() if not t.startswith("BENCH_JSON ")
            )
            return result
    raise RuntimeError(f"wrk gave no result (exit {proc.returncode}):\n{out}\n{err}")


# --- OpenLine's database, read-only ------------------------------------------------------------


class EventsDb:
    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=20)
        # The intake's overflow journal (openline/runtime/journal.py): webhooks that came
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


def db_clock() -> Callable[[str | None], float | None]:
    """Reads a datetime the database stored (naive UTC) as a time on the monotonic clock,
    the one every process here stamps with (CLOCK_MONOTONIC: one clock for all of them)."""
    offset = time.time() - time.monotonic()

    def monotonic(text: str | None) -> float | None:
        if not text:
            return None
        return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC).timestamp() - offset

    return monotonic


# --- console sessions and the console WebSocket client -----------------------------------------

SESSIONS_SNIPPET = r"""
import json, sys
import django
django.setup()
from importlib import import_module
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.db import transaction
from openline.core.models import Membership, Organization, User
spec = json.loads(sys.argv[1])
store = import_module(settings.SESSION_ENGINE).SessionStore
org = Organization.objects.get(slug=spec["org"])
out = []
with transaction.atomic():
    for i in range(spec["count"]):
        role = "supervisor" if i < spec["supervisors"] else "counselor"
        user = User.objects.create_user(email=f"console{i:03d}@bench.test", password=None)
        Membership.objects.create(organization=org, user=user, role=role)
        session = store()
        session[SESSION_KEY] = str(user.pk)
        # The backend a real sign-in records (the first one only throttles sign-ins).
        session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session.create()
        out.append({"key": session.session_key, "user_id": user.pk, "role": role})
print(json.dumps(out))
"""


def create_sessions(env: dict[str, str], count: int, supervisors: int) -> list[dict[str, Any]]:
    """`count` signed-in console users of the bench organization, the first `supervisors`
    of them supervisors: [{key, user_id, role}]."""
    spec = json.dumps({"org": "bench", "count": count, "supervisors": supervisors})
    out = run_capture(
        [sys.executable, "-c", SESSIONS_SNIPPET, spec], env, what="creating sessions", timeout=300
    )
    return json.loads(out.strip().splitlines()[-1])


def console_client_main(config_path: str) -> int:
    cfg = json.loads(Path(config_path).read_text())
    use_uvloop()
    asyncio.run(_console_client(cfg))
    return 0


async def _console_client(cfg: dict[str, Any]) -> None:  # noqa: C901
    """Console sockets that stamp every message.created frame until SIGTERM, then write
    (message id, received) per socket to cfg["out"] and the counts to cfg["out"].json."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    keys: list[str] = cfg["keys"]
    n = len(keys)
    ids = [array("q") for _ in range(n)]
    stamps = [array("d") for _ in range(n)]
    socks: list[Any] = [None] * n
    stats: dict[str, Any] = {
        "connect_errors": {},
        "closed_early": {},
        "frames": 0,
        "events": {},
        "bad_frames": 0,
        "sample_frame": None,
        "extensions": None,
    }
    sem = asyncio.Semaphore(cfg.get("connect_concurrency", 20))

    async def open_one(i: int) -> None:
        async with sem:
            try:
                socks[i] = await connect(
                    cfg["url"],
                    additional_headers={"Cookie": f"sessionid={keys[i]}"},
                    origin=cfg["origin"],
                    open_timeout=60,
                    max_queue=None,
                )
            except Exception as exc:  # noqa: BLE001 -- every failure is a finding
                reason = f"{type(exc).__name__}: {exc}"[:200]
                stats["connect_errors"][reason] = stats["connect_errors"].get(reason, 0) + 1

    t_connect = time.monotonic()
    await asyncio.gather(*(open_one(i) for i in range(n)))
    stats["connect_s"] = round(time.monotonic() - t_connect, 2)
    live = [i for i in range(n) if socks[i] is not None]
    if live:
        ext = socks[live[0]].response.headers.get("Sec-WebSocket-Extensions")
        stats["extensions"] = ext

    async def read(i: int) -> None:
        ws = socks[i]
        add_id, add_t = ids[i].append, stamps[i].append
        events = stats["events"]
        try:
            async for frame in ws:
                t = time.monotonic()
                stats["frames"] += 1
                try:
                    data = json.loads(frame)
                    batch = data.get("events", [data])
                except (ValueError, TypeError, AttributeError):
                    stats["bad_frames"] += 1
                    continue
                if stats["sample_frame"] is None and batch:
                    stats["sample_frame"] = frame[:500]
                for ev in batch:
                    kind = ev.get("type", "?")
                    events[kind] = events.get(kind, 0) + 1
                    if kind == "message.created":
                        add_id(int(ev["message_id"]))
                        add_t(t)
        except ConnectionClosed as exc:
            if not stop.is_set():
                reason = f"code {exc.rcvd.code if exc.rcvd else None}"
                stats["closed_early"][reason] = stats["closed_early"].get(reason, 0) + 1

    # The client's own event-loop lag: how late a 10 ms sleep wakes up. A late wake-up means
    # frames also waited in this process before they were stamped.
    lags = array("d")
    status_file = Path(cfg["status"])

    async def lag_monitor() -> None:
        ticks = 0
        while not stop.is_set():
            t = time.monotonic()
            await asyncio.sleep(0.01)
            lags.append(time.monotonic() - t - 0.01)
            ticks += 1
            if ticks % 20 == 0:  # progress for the driver: message.created events so far
                status_file.write_text(str(stats["events"].get("message.created", 0)))

    readers = [asyncio.create_task(read(i)) for i in live]
    monitor = asyncio.create_task(lag_monitor())
    print(f"READY {len(live)} {n - len(live)}", flush=True)
    await stop.wait()
    await monitor
    with contextlib.suppress(Exception):
        await asyncio.wait_for(
            asyncio.gather(*(socks[i].close() for i in live), return_exceptions=True), 5
        )
    for task in readers:
        task.cancel()
    await asyncio.gather(*readers, return_exceptions=True)
    stats["connected"] = len(live)
    stats["live"] = live
    stats["loop_lag_ms"] = lag_ms(lags)
    out = Path(cfg["out"])
    with open(out, "wb") as fh:
        for i in range(n):
            fh.write(struct.pack("<q", len(ids[i])))
            ids[i].tofile(fh)
            stamps[i].tofile(fh)
    Path(str(out) + ".json").write_text(json.dumps(stats))
    print("DONE", flush=True)


class ConsoleClient(ClientProcess):
    """The console WebSocket client process: one socket per session key to the server on
    `port`, its files `var_dir/<name>.*`; stopped with SIGTERM (then SIGKILL) whatever
    happens."""

    def __init__(self, *, port: int, keys: list[str], var_dir: Path, name: str) -> None:
        self.out_path = var_dir / f"{name}.bin"
        self.status_path = var_dir / f"{name}.count"
        cfg = {
            "url": f"ws://{HOST}:{port}/ws/console/",
            "origin": f"http://{HOST}:{port}",
            "keys": keys,
            "out": str(self.out_path),
            "status": str(self.status_path),
        }
        cfg_path, log_path = var_dir / f"{name}.json", var_dir / f"{name}.log"
        super().__init__(Path(__file__), "_console-client", cfg, cfg_path, log_path)

    def ready(self, timeout: float) -> tuple[int, int]:
        """(sockets connected, sockets that failed), once the client has opened them."""
        connected, failed = self.line("READY ", timeout).split()
        return int(connected), int(failed)

    def delivered(self) -> int:
        """message.created events received so far, over all sessions (updated every 0.2 s)."""
        with contextlib.suppress(OSError, ValueError):
            return int(self.status_path.read_text() or 0)
        return 0

    def wait_deliveries(self, target: int, *, stall: float, timeout: float) -> dict[str, Any]:
        """Wait until `target` events arrived, or none arrived for `stall` seconds, or
        `timeout` passed: late frames are then counted as late, not as missing."""
        t0 = time.monotonic()
        last, last_change = self.delivered(), t0
        while last < target and self.proc.poll() is None:
            now = time.monotonic()
            if now - last_change > stall or now - t0 > timeout:
                break
            time.sleep(0.1)
            count = self.delivered()
            if count != last:
                last, last_change = count, time.monotonic()
        return {"target": target, "count": last, "reached": last >= target,
                "waited_s": round(time.monotonic() - t0, 2)}  # fmt: skip

    def stats(self) -> dict[str, Any]:
        """The counts the stopped client wrote ({} if it wrote none)."""
        path = Path(f"{self.out_path}.json")
        return json.loads(path.read_text()) if path.exists() else {}

    def received(self, sessions: int) -> list[tuple[array, array]] | None:
        """Per session, the (message ids, monotonic times) of its message.created frames;
        None if the stopped client wrote none."""
        if not self.out_path.exists():
            return None
        out = []
        with open(self.out_path, "rb") as fh:
            for _ in range(sessions):
                (count,) = struct.unpack("<q", fh.read(8))
                ids, stamps = array("q"), array("d")
                ids.fromfile(fh, count)
                stamps.fromfile(fh, count)
                out.append((ids, stamps))
        return out


# --- a child process per database (the in-process benchmarks) --------------------------------

PG_URL = os.environ.get("PG_URL", "postgres://postgres@127.0.0.1:5432/test")


def _pg_admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(sql)


def run_child(backend: str, args: list[str], *, pg_database: str) -> dict[str, Any]:
    """`python <args>` (a benchmark's own child mode) on a fresh database: SQLite in a temp
    var dir, or PostgreSQL as the throw-away database `pg_database` on PG_URL, dropped
    afterwards. The child's stderr is passed on; the last line of its stdout is its JSON."""
    var_dir = Path(tempfile.mkdtemp(prefix=f"{pg_database}-"))
    env = bench_env(var_dir)
    if backend == "postgres":
        _pg_admin(f"DROP DATABASE IF EXISTS {pg_database}")
        _pg_admin(f"CREATE DATABASE {pg_database}")
        env["DATABASE_URL"] = PG_URL.rsplit("/", 1)[0] + "/" + pg_database
    try:
        out = subprocess.run(
            [sys.executable, *args], env=env, cwd=ROOT, check=True, capture_output=True, text=True
        )
    except subprocess.CalledProcessError as exc:
        print(exc.stdout, exc.stderr, sep="\n")
        raise
    finally:
        if backend == "postgres":
            _pg_admin(f"DROP DATABASE IF EXISTS {pg_database}")
        shutil.rmtree(var_dir, ignore_errors=True)
    print(out.stderr, end="")
    return json.loads(out.stdout.strip().splitlines()[-1])


def child_django(*, redis_url: str = "") -> dict[str, Any]:
    """In a benchmark's child (run_child): Django set up on its fresh database (with
    `redis_url` as REDIS_URL, the server profile, when given) and migrated; which database
    it is: {"vendor", "server_version"}."""
    if redis_url:
        os.environ["REDIS_URL"] = redis_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "openline.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    with connection.cursor() as cur:
        cur.execute(
            "SELECT sqlite_version()" if connection.vendor == "sqlite" else "SHOW server_version"
        )
        return {"vendor": connection.vendor, "server_version": cur.fetchone()[0]}


def progress(text: str) -> None:
    """A child's progress line, with the time, on stderr (its stdout carries the JSON)."""
    log(f"  [{time.strftime('%H:%M:%S')}] {text}", stderr=True)


def load() -> list[float]:
    """The load averages now (1, 5, 15 min): how busy the machine was around a figure."""
    return [round(x, 2) for x in os.getloadavg()]


def random_phones(
    rng: random.Random, count: int, areas: list[str], *, avoid: tuple[str, ...] = ()
) -> list[str]:
    """`count` distinct US numbers over `areas` that phonenumbers calls valid, none ending
    in `avoid` (the sandbox's test suffixes, say), in random order."""
    import phonenumbers

    seen: set[str] = set()
    while len(seen) < count:
        exchange = rng.randint(201, 998)
        if exchange == 555 or exchange % 100 == 11:
            continue
        e164 = f"+1{rng.choice(areas)}{exchange}{rng.randint(0, 9999):04d}"
        if e164 in seen or (avoid and e164.endswith(avoid)):
            continue
        if phonenumbers.is_valid_number(phonenumbers.parse(e164)):
            seen.add(e164)
    return sorted(seen, key=lambda _: rng.random())


class QueryTimer:
    """Every query's time through Django's execute wrapper: (seconds, statement), and the
    statement and parameters of each one `capture` picks (kept in `captured`). A SELECT's
    time stops at its first rows on SQLite (the rest comes with each fetch)."""

    def __init__(self, capture: Callable[[str], bool] | None = None) -> None:
        self.queries: list[tuple[float, str]] = []
        self.captured: list[tuple[str, Any]] = []
        self.capture = capture

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        if self.capture is not None and self.capture(sql):
            self.captured.append((sql, params))
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.queries.append((time.perf_counter() - started, sql))

    def total_s(self) -> float:
        return sum(t for t, _ in self.queries)


def save_profile(prof: Any, path: Path) -> dict[str, Any]:
    """Write the cProfile `prof` to `path` (None: it is there already); where, and its top
    lines (profile_top)."""
    import pstats

    if prof is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        prof.dump_stats(str(path))
    return {"pstats": str(path.relative_to(ROOT)), "top": profile_top(pstats.Stats(str(path)))}


def profile_top(stats: Any, count: int = 25) -> list[str]:
    """A pstats.Stats' functions with the most time of their own, and the openline ones with
    the most time in all they call."""
    stats.stream = io.StringIO()
    total = stats.total_tt
    rows = []
    for (filename, line, func), (_cc, nc, tt, ct, _callers) in stats.stats.items():
        short = filename.replace(str(ROOT) + "/", "").replace(str(Path(sys.prefix)) + "/", "")
        short = short.split("site-packages/")[-1]
        rows.append((tt, ct, nc, f"{short}:{line}({func})"))
    own = sorted(rows, reverse=True)[:count]
    ours = sorted(
        (r for r in rows if r[3].startswith("openline/")), key=lambda r: r[1], reverse=True
    )[:count]
    lines = [f"total {total:.2f} s; own time:"]
    lines += [f"{tt:7.2f} s own {ct:7.2f} s cum {nc:>8} calls  {name}" for tt, ct, nc, name in own]
    lines.append("openline functions by time with callees:")
    lines += [f"{ct:7.2f} s cum {tt:7.2f} s own {nc:>8} calls  {name}" for tt, ct, nc, name in ours]
    return lines


# --- options, results and the printed summary -------------------------------------------------


def add_run_options(parser: argparse.ArgumentParser, *, quick: str) -> None:
    """The options every load benchmark takes; `quick`: what --quick makes smaller."""
    parser.add_argument("--quick", action="store_true", help=quick)
    parser.add_argument("--keep", action="store_true", help="keep the temp var dir(s)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")


def clean_up(var_dir: Path, *, keep: bool, indent: str = "", note: str = "") -> None:
    """Remove a run's throw-away var dir, or say where it was kept."""
    if keep:
        log(f"{indent}kept {var_dir}{note}")
    else:
        shutil.rmtree(var_dir, ignore_errors=True)


def machine(**extra: Any) -> dict[str, Any]:
    return {
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        **extra,
    }


def code_state() -> dict[str, Any]:
    """Which code was measured: the commit, and openline/ files changed since (read-only git)."""

    def git(*args: str) -> str:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10
            )
            return out.stdout.strip()
        return ""

    changed = git("status", "--porcelain", "--", "openline")
    return {
        "commit": git("rev-parse", "--short", "HEAD"),
        "openline_changes": [line.strip() for line in changed.splitlines()],
    }


class Report:
    """One run's results, written to bench/results/<kind>-<UTC time>.json: when it started
    and on what machine first, then what the benchmark adds to `results`."""

    def __init__(self, kind: str, **machine_extra: Any) -> None:
        self.kind = kind
        self.started = dt.datetime.now(dt.UTC)
        self.t_start = time.monotonic()
        self.results: dict[str, Any] = {
            "started_at": self.started.isoformat(timespec="seconds"),
            "machine": machine(**machine_extra),
        }

    def conclude(
        self,
        summarize: Callable[[dict[str, Any]], dict[str, Any]],
        print_summary: Callable[[dict[str, Any], dict[str, Any]], None],
        *,
        strict: bool,
    ) -> int:
        """The run's time and the load at its end, its summary (kept in the results too), the
        results file, the printed summary. The exit code: 1 if `strict` and a target missed."""
        results = self.results
        results["elapsed_s"] = round(time.monotonic() - self.t_start, 1)
        results["machine"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
        summary = results["summary"] = summarize(results)
        out = write_results(self.kind, self.started, results)
        print_summary(results, summary)
        log(f"\nresults: {out.relative_to(ROOT)}  ({results['elapsed_s']} s)")
        return 1 if strict and not all(summary["checks"].values()) else 0


def write_results(kind: str, started: dt.datetime, results: dict[str, Any]) -> Path:
    """bench/results/<kind>-<UTC time>.json, which other tooling reads."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{kind}-{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    return out


def log_code(code: dict[str, Any]) -> None:
    changes = code.get("openline_changes") or []
    log(
        f"code: {code.get('commit')}"
        + (f" + {len(changes)} uncommitted change(s) under openline/" if changes else "")
    )


def p50_p99(dist: dict[str, Any]) -> str:
    return f"{dist['p50']}/{dist['p99']}"


def log_worst_second(per_second: list[dict[str, Any]], indent: str) -> None:
    worst = max(per_second, key=lambda r: r["p99_ms"], default=None)
    if worst:
        log(f"{indent}worst second: {worst}")


def log_footer(m: dict[str, Any], checks: dict[str, bool], *, lead: str = "") -> None:
    """The summary's last lines: the machine's load, then every target PASS or FAIL."""
    log(
        f"load average at start {m['loadavg_at_start']}, at end {m.get('loadavg_at_end')}"
        f" ({m['cpus']} CPUs; anything else running skews these figures)"
    )
    log(f"{lead}targets: " + ", ".join(f"{k}={'PASS' if v else 'FAIL'}" for k, v in checks.items()))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "_console-client":
        sys.exit(console_client_main(sys.argv[2]))
    sys.exit(__doc__)

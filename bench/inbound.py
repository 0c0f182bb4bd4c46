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
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import common
from common import fmt, log

# Targets from the intake's design brief.
TARGET_RATIO = 0.4  # intake req/s >= 0.4 x baseline, with zero errors
TARGET_P99_MS = 50.0  # p99 acknowledgement at half of OpenLine's c=32 throughput
# SUSTAINED_FRACTION (common): processing keeps up with 0.1 x baseline


def processing_phase(
    db: common.EventsDb, before: tuple[int, int], t0: float, wrk: dict[str, Any], timeout: float
) -> dict[str, Any]:
    """After a load phase: wait for processing, check every acknowledged event is stored and
    became a message, and work out the processing rate."""
    processed_before = before[0] - before[1]
    info = common.wait_caught_up(db, since=t0, timeout=timeout)
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


# --- the run -------------------------------------------------------------------------------


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
    common.add_run_options(parser, quick="3 s phases: a smoke run")
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

    report = common.Report("inbound")
    var_dir = Path(tempfile.mkdtemp(prefix="openline-bench-"))
    req_dir = var_dir / "requests"
    req_dir.mkdir()
    port_ol, port_base = common.free_port(), common.free_port()
    public_url = f"http://{common.HOST}:{port_ol}"
    env = common.bench_env(var_dir, port_ol)
    common.check_bodies()

    results = report.results
    results.update(
        settings={
            "variant": args.variant,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "concurrency": concurrencies,
            "wrk_threads": args.threads,
            "paced_duration_s": args.paced_duration,
            "sustained_duration_s": args.sustained_duration,
            # The intake's write-path switches, as the server saw them (unset: on).
            "intake_switches": {
                key: env.get(key, "")
                for key in ("OPENLINE_INTAKE_INLINE", "OPENLINE_INTAKE_JOURNAL")
            },
        },
        uvicorn=resolve_uvicorn(),
        baseline={},
        openline={},
    )
    log(
        f"var dir {var_dir}; uvicorn picks loop={results['uvicorn']['loop']}"
        f" http={results['uvicorn']['http']}"
    )

    baseline: common.Server | None = None
    openline: common.Server | None = None
    worker: common.Server | None = None
    db: common.EventsDb | None = None
    try:
        # 1. OpenLine: database, organization, Twilio number.
        bench = common.set_up_openline(provider="twilio", env=env)
        path = bench.inbound_path
        factory = common.RequestFactory(public_url + path, bench.token, bench.account_sid, seed=1)
        t = args.threads

        def requests_for(name: str, count: int) -> Path:
            t0 = time.monotonic()
            prefix = factory.write(req_dir / name, count, t)
            log(f"  signed {count:,} requests for {name} in {time.monotonic() - t0:.1f}s")
            return prefix

        def load(port: int, requests: Path, connections: int, duration: float, **kw: Any) -> Any:
            """wrk on the webhook path with this run's threads; kw: rate, wait."""
            return common.run_wrk(
                port=port,
                path=path,
                requests=requests,
                connections=connections,
                duration=duration,
                threads=t,
                **kw,
            )

        # 2. Baseline.
        log("baseline: starting bench/baseline_app.py")
        baseline = common.baseline_server(env, var_dir, port_base)
        info = baseline.start()
        results["baseline"]["server"] = {
            **info,
            **baseline.startup,
            "libraries": baseline.loaded_libraries(),
        }
        warm = requests_for("warmup", common.phase_count(25000, args.warmup, 64))
        res = load(port_base, warm, 32, args.warmup)
        guess = res["rps"]
        log(f"  warm-up {res['rps']:,.0f} req/s")

        # 3. OpenLine, started next to it: each concurrency runs against the baseline and then
        # OpenLine straight after, so a shift in the machine's speed during the run (this
        # shared machine's baseline has ranged 6,500-11,000 req/s between runs) moves both.
        if args.variant == "split":
            web_cmd = [str(common.OPENLINE), "web"]
            worker_cmd = [str(common.OPENLINE), "worker"]
            worker = common.Server("worker", worker_cmd, env, 0, var_dir / "worker.log")
            worker.launch()
        elif args.variant == "one-process":
            web_cmd = [str(common.OPENLINE), "run", "--one-process"]
        else:
            web_cmd = [str(common.OPENLINE), "run"]
        log(f"openline: starting {' '.join(Path(c).name for c in web_cmd)}")
        openline = common.Server("openline", web_cmd, env, port_ol, var_dir / "openline.log")
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
        db = common.EventsDb(var_dir / "openline.sqlite3")
        res = load(port_ol, warm, 32, args.warmup)
        log(f"  warm-up {res['rps']:,.0f} req/s, errors {res['errors']} {res['first_bad']}")
        results["openline"]["warmup"] = res
        results["openline"]["warmup_processing"] = common.wait_caught_up(
            db, since=time.monotonic(), timeout=args.catch_up_timeout * 2
        )

        for c in concurrencies:
            requests = requests_for(f"c{c}", common.phase_count(guess, args.duration, c))
            res = load(port_base, requests, c, args.duration)
            results["baseline"][f"c{c}"] = res
            guess = max(guess, res["rps"])
            log(
                f"  baseline c={c}: {res['rps']:,.0f} req/s, p50 {res['latency_ms']['p50']:.2f} ms,"
                f" p99 {res['latency_ms']['p99']:.2f} ms, errors {res['errors']},"
                f" repeats {res['repeats']}"
            )
            before = db.counts()
            t0 = time.monotonic()
            res = load(port_ol, requests, c, args.duration)
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
        paced_file = requests_for("paced", common.phase_count(paced_rate, args.paced_duration, 32))
        before = db.counts()
        t0 = time.monotonic()
        res = load(port_ol, paced_file, 32, args.paced_duration, rate=paced_rate)
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
        sustained_rate = common.SUSTAINED_FRACTION * baseline_max
        sus_file = requests_for(
            "sustained", common.phase_count(sustained_rate, args.sustained_duration, 32)
        )
        common.wait_caught_up(db, since=time.monotonic(), timeout=args.catch_up_timeout)
        before = db.counts()
        t0 = time.monotonic()
        proc = load(port_ol, sus_file, 32, args.sustained_duration, rate=sustained_rate, wait=False)
        assert isinstance(proc, subprocess.Popen)
        samples: list[dict[str, Any]] = []
        next_tick = t0 + 1.0
        while proc.poll() is None:
            time.sleep(max(0.0, next_tick - time.monotonic()))
            next_tick += 1.0
            if proc.poll() is not None:
                break
            with contextlib.suppress(OSError):
                status, data = common.http_get_json(f"{public_url}/healthz", timeout=2)
                if status == 200 and data:
                    samples.append(
                        {
                            "t": round(time.monotonic() - t0, 2),
                            "inbound_pending": data["tasks"]["inbound_pending"],
                        }
                    )
        res = common.wrk_result(proc, args.sustained_duration)
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
        common.clean_up(var_dir, keep=args.keep)

    return report.conclude(
        lambda r: summarize(r, concurrencies, baseline_max),
        lambda r, summary: print_summary(r, summary, concurrencies),
        strict=args.strict,
    )


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
    common.log_footer(results["machine"], summary["checks"])


if __name__ == "__main__":
    if not Path(common.WRK).exists():
        raise SystemExit("bench needs wrk: apt-get install -y wrk")
    sys.exit(main())

"""Contact import benchmark (issue 15): a 100,000-row CSV file uploaded, checked and imported
through the task queue, on SQLite (the embedded profile) and on PostgreSQL.

    .venv/bin/python bench/contact_import.py                      # both databases
    .venv/bin/python bench/contact_import.py --database sqlite --quick   # 10,000 rows
    .venv/bin/python bench/contact_import.py --trace              # + Python heap peaks

Each backend gets a fresh database (common.run_child: SQLite in a temp var dir; PostgreSQL
as the throw-away database `openline_bench_import` on PG_URL). The child seeds one
organization with four custom fields (choice, date, number, text) and --existing contacts
whose numbers are also in the file (a tenth of them texted STOP), then:

- **upload**: `contact_import_upload` reads the file in 64 KB pieces as Django hands an upload
  over (checked as UTF-8, compressed, its rows counted);
- **check**: `contact_import_map` with the guessed columns, then the task worker's loop
  (`openline.runtime.worker.run_ready_tasks`, as `openline run`'s worker runs it) until
  every row is checked;
- **import**: `contact_import_accept`, then the worker until it is done.

The file: one person per row with a name, a phone (a fifth have a second one with its
type), 1-3 tags, the four fields and, for --evidence of the rows, consent evidence; 0.5%
of the numbers are invalid. While each phase runs, a probe process makes a small write
every 50 ms, as the web process would for a console action, and times it: on SQLite every
write waits for the import's transaction in progress (one chunk), so this is what the
import costs everybody else (webhook intake does not wait: it journals). Memory: the
process's peak RSS (getrusage, what `/usr/bin/time -v` reports) and its RSS before the
upload; with --trace, each phase's Python heap peak (tracemalloc, which slows everything
down: its times are not the figures).

Writes bench/results/contact_import-<UTC time>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import select
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

import common
from common import log

BENCH_DB = "openline_bench_import"
# Targets: the issue asks that 100,000 rows import as a task without blocking the console.
TARGET_PROBE_P99_MS = 500.0  # a write elsewhere waits at most this long (p99)
TARGET_TURN_S = 5.0  # the worker is never held longer than this by one turn

FIRST = ["Ana", "Bo", "Chen", "Dee", "Eli", "Fay", "Gus", "Hana", "Ivan", "Jo", "Kai", "Lee"]
LAST = ["Lee", "Chen", "Diaz", "Okafor", "Smith", "Nguyen", "Khan", "Rossi", "Kim", "Silva"]
TAGS = ["swim team", "Saturday", "art", "food pantry", "youth", "seniors", "newsletter"]
AREAS = ["202", "212", "312", "415", "512", "617", "713", "305", "404", "503", "602", "720"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--existing", type=int, default=5_000, help="contacts already there")
    parser.add_argument("--evidence", type=float, default=1.0, help="share with evidence")
    parser.add_argument("--trace", action="store_true", help="tracemalloc: heap peaks")
    common.add_run_options(parser, quick="10,000 rows, 500 existing contacts")
    args = parser.parse_args()
    if args.quick:
        args.rows, args.existing = 10_000, 500
    backends = ["sqlite", "postgres"] if args.database == "both" else [args.database]
    report = common.Report("contact_import")
    results = report.results
    results.update(settings=vars(args), code=common.code_state())
    results["targets"] = {"probe_p99_ms": TARGET_PROBE_P99_MS, "turn_s": TARGET_TURN_S}
    with tempfile.TemporaryDirectory(prefix="bench-import-") as tmp:
        path = Path(tmp) / "contacts.csv"
        existing = Path(tmp) / "existing.json"
        existing.write_text(json.dumps(_write_file(path, args.rows, args.existing, args.evidence)))
        results["file"] = {"rows": args.rows, "bytes": path.stat().st_size}
        log(f"file: {args.rows:,} rows, {path.stat().st_size / 1e6:.1f} MB")
        for backend in backends:
            cfg = {"path": str(path), "existing": str(existing), "trace": args.trace}
            log(f"{backend}: upload, check and import ...")
            try:
                child = [__file__, "--child", json.dumps(cfg)]
                results[backend] = common.run_child(backend, child, pg_database=BENCH_DB)
            except Exception as exc:  # noqa: BLE001 -- recorded; the other backend still runs
                results[backend] = {"error": f"{type(exc).__name__}: {exc}"[:500]}
    return report.conclude(summarize, print_summary, strict=args.strict)


def _written(e164: str, rng: random.Random) -> str:
    """A number the way people type them into spreadsheets."""
    area, exchange, line = e164[2:5], e164[5:8], e164[8:]
    return rng.choice(
        [
            f"({area}) {exchange}-{line}",
            f"{area}-{exchange}-{line}",
            e164,
            f"1{area}{exchange}{line}",
        ]
    )


def _write_file(path: Path, rows: int, existing: int, evidence: float) -> list[str]:
    """The CSV file; returns the numbers to seed as existing contacts (from the file)."""
    import csv

    rng = random.Random(15)
    phones = common.random_phones(rng, rows + rows // 4, AREAS)
    seconds = iter(phones[rows:])
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(
            ["Name", "Phone", "Phone 2", "Phone 2 type", "Tags", "Class", "Birthday"]
            + ["Balance", "School", "Consent evidence"]
        )
        for n in range(rows):
            phone = _written(phones[n], rng) if rng.random() > 0.005 else "555-01"
            second = rng.random() < 0.2
            writer.writerow(
                [
                    f"{rng.choice(FIRST)} {rng.choice(LAST)}",
                    phone,
                    _written(next(seconds), rng) if second else "",
                    rng.choice(["mobile", "landline"]) if second else "",
                    ", ".join(rng.sample(TAGS, rng.randint(1, 3))),
                    rng.choice(["Swim", "Art", "Music"]),
                    f"{rng.randint(1, 12)}/{rng.randint(1, 28)}/{rng.randint(1950, 2020)}",
                    f"{rng.randint(-500, 5000)}.{rng.randint(0, 99):02d}",
                    rng.choice(["Oak", "Elm", "Pine", "Maple"]),
                    f"paper form {n}" if rng.random() < evidence else "",
                ]
            )
    return phones[: min(existing, rows)]


# --- the child ------------------------------------------------------------------------------


def child(cfg: dict[str, Any]) -> None:
    out: dict[str, Any] = common.child_django()
    org, admin = _seed(json.loads(Path(cfg["existing"]).read_text()))
    out.update(_run(org, admin, Path(cfg["path"]), cfg["trace"]))
    print(json.dumps(out, default=str))


def _seed(existing: list[str]) -> tuple[Any, Any]:
    from django.db import transaction

    from openline.contacts.models import Contact
    from openline.contacts.services.consent import consent_record_opt_out
    from openline.contacts.services.fields import custom_field_create
    from openline.core.models import Membership, Role, User
    from openline.core.services import organization_create

    org = organization_create(name="Bench", slug="bench", timezone_name="America/Chicago")
    admin = User.objects.create(email="admin@bench.test", password="!")
    Membership.objects.create(organization=org, user=admin, role=Role.ADMIN)
    custom_field_create(
        organization_id=org.pk, name="Class", kind="choice", choices=["Swim", "Art", "Music"]
    )
    custom_field_create(organization_id=org.pk, name="Birthday", kind="date")
    custom_field_create(organization_id=org.pk, name="Balance", kind="number")
    custom_field_create(organization_id=org.pk, name="School", kind="text")
    with transaction.atomic():
        Contact.objects.bulk_create(
            Contact(organization=org, phone=phone, name="") for phone in existing
        )
        for phone in existing[::10]:
            consent_record_opt_out(
                organization_id=org.pk, phone=phone, source="keyword", text="STOP"
            )
    return org, admin


class Probe:
    """Another process (as the web process is to the worker) making a small write every
    50 ms and timing each: what a console request or a webhook waits for meanwhile."""

    def __init__(self, contact_id: int) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--probe", str(contact_id)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        if self.proc.stdout.readline().strip() != "ready":
            raise RuntimeError("the probe did not start")

    def stop(self) -> dict[str, Any]:
        out, _ = self.proc.communicate(timeout=60)  # closing its stdin stops it
        times = json.loads(out.strip().splitlines()[-1])
        return {"writes": len(times), **common.dist_ms(times, (50, 99))}


def probe(contact_id: int) -> None:
    import django

    django.setup()
    from django.db import transaction

    from openline.contacts.models import Contact

    times: list[float] = []
    print("ready", flush=True)
    n = 0
    while not select.select([sys.stdin], [], [], 0.05)[0]:
        n += 1
        t = time.perf_counter()
        with transaction.atomic():
            Contact.objects.filter(pk=contact_id).update(notes=f"probe {n}")
        times.append(time.perf_counter() - t)
    print(json.dumps(times))


def _work(until: Any) -> dict[str, Any]:
    """The task worker's loop until ``until()``; the turns it ran, timed."""
    from openline.runtime.worker import _make_worker, run_one

    worker = _make_worker("bench")
    turns: list[float] = []
    while not until():
        t = time.perf_counter()
        if run_one(worker):
            turns.append(time.perf_counter() - t)
        else:
            time.sleep(0.01)
    return {
        "turns": len(turns),
        "turn_p50_s": round(statistics.median(turns), 3) if turns else None,
        "turn_max_s": round(max(turns), 3) if turns else None,
    }


def _rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _current_rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return round(pages * os.sysconf("SC_PAGE_SIZE") / 1024 / 1024, 1)


def _run(org: Any, admin: Any, path: Path, trace: bool) -> dict[str, Any]:
    from openline.contacts.models import ConsentEvent, Contact, ContactImport, ImportStatus
    from openline.contacts.services import imports

    chunk_ms: list[float] = []
    write_chunk = imports._write_chunk

    def timed_chunk(*args: Any, **kwargs: Any) -> Any:
        t = time.perf_counter()
        try:
            return write_chunk(*args, **kwargs)
        finally:
            chunk_ms.append((time.perf_counter() - t) * 1000)

    imports._write_chunk = timed_chunk  # what each chunk's transaction holds the database
    probe_contact = Contact.objects.create(organization=org, phone="", name="probe")
    out: dict[str, Any] = {"rss_before_upload_mb": _current_rss_mb()}
    phases: dict[str, Any] = {}

    def phase(name: str, fn: Any) -> Any:
        if trace:
            tracemalloc.start()
        writes = Probe(probe_contact.pk)
        t = time.perf_counter()
        value = fn()
        seconds = time.perf_counter() - t
        phases[name] = {"s": round(seconds, 2), "probe": writes.stop()}
        if trace:
            phases[name]["heap_peak_mb"] = round(tracemalloc.get_traced_memory()[1] / 1e6, 1)
            tracemalloc.stop()
        common.progress(f"{name}: {seconds:.1f} s")
        return value

    def chunks() -> Any:
        with path.open("rb") as handle:
            while piece := handle.read(64 * 1024):
                yield piece

    upload = phase(
        "upload",
        lambda: imports.contact_import_upload(
            organization_id=org.pk, actor_id=admin.pk, file_name="bench.csv", chunks=chunks()
        ),
    )
    out["stored_mb"] = round(len(bytes(upload.file.content)) / 1e6, 2)

    def status() -> str:
        return ContactImport.objects.values_list("status", flat=True).get(pk=upload.pk)

    def check() -> dict[str, Any]:
        imports.contact_import_map(contact_import=upload, mapping=upload.mapping)
        return _work(lambda: status() != ImportStatus.VALIDATING)

    phases_work = {"check": phase("check", check)}
    upload.refresh_from_db()
    out["checked"] = {"valid": upload.valid_rows, "errors": upload.error_rows}
    chunk_ms.clear()

    def run() -> dict[str, Any]:
        imports.contact_import_accept(
            contact_import=upload, actor_id=admin.pk, consent_confirmed=True
        )
        return _work(lambda: status() != ImportStatus.IMPORTING)

    phases_work["import"] = phase("import", run)
    upload.refresh_from_db()
    for name, work in phases_work.items():
        phases[name].update(work)
    phases["import"]["chunk_ms"] = common.dist_ms([ms / 1000 for ms in chunk_ms], (50, 99))
    rows = upload.total_rows
    out.update(
        phases=phases,
        status=upload.status,
        rows=rows,
        imported=upload.imported_rows,
        created=upload.created_rows,
        skipped=upload.skipped_rows,
        contacts=Contact.objects.filter(organization=org).count(),
        opt_ins=ConsentEvent.objects.filter(organization=org, source="import").count(),
        rows_per_s={
            name: round(rows / phases[name]["s"])
            for name in ("check", "import")
            if phases[name]["s"]
        },
        total_s=round(sum(p["s"] for p in phases.values()), 1),
        peak_rss_mb=_rss_mb(),
    )
    return out


# --- summary --------------------------------------------------------------------------------


def summarize(results: dict[str, Any]) -> dict[str, Any]:
    checks: dict[str, bool] = {}
    for backend in ("sqlite", "postgres"):
        r = results.get(backend)
        if r is None:
            continue
        if "error" in r:
            checks[f"{backend}_ran"] = False
            continue
        checks[f"{backend}_done"] = r["status"] == "done"
        probes = [p["probe"]["p99"] or 0 for p in r["phases"].values()]
        checks[f"{backend}_probe_p99"] = max(probes) < TARGET_PROBE_P99_MS
        turns = [r["phases"][p].get("turn_max_s") or 0 for p in ("check", "import")]
        checks[f"{backend}_turns"] = max(turns) < TARGET_TURN_S
    return {"checks": checks}


def print_summary(results: dict[str, Any], summary: dict[str, Any]) -> None:
    log("\n=== OpenLine contact import benchmark ===")
    common.log_code(results.get("code", {}))
    f = results["file"]
    log(f"file: {f['rows']:,} rows, {f['bytes'] / 1e6:.1f} MB")
    for backend in ("sqlite", "postgres"):
        r = results.get(backend)
        if r is None:
            continue
        if "error" in r:
            log(f"\n{backend}: FAILED: {r['error']}")
            continue
        log(f"\n{backend} {r['server_version']}: {r['status']}, {r['total_s']} s in all")
        log(
            f"  rows {r['rows']:,}: valid {r['checked']['valid']:,}, with a problem"
            f" {r['checked']['errors']:,}; imported {r['imported']:,} ({r['created']:,} new"
            f" people), skipped {r['skipped']:,}; {r['contacts']:,} contacts,"
            f" {r['opt_ins']:,} import opt-ins; stored {r['stored_mb']} MB compressed"
        )
        for name, p in r["phases"].items():
            work = (
                f", {p['turns']} turns (p50 {p['turn_p50_s']} s, max {p['turn_max_s']} s)"
                if "turns" in p
                else ""
            )
            heap = f", heap peak {p['heap_peak_mb']} MB" if "heap_peak_mb" in p else ""
            probe = p["probe"]
            log(
                f"  {name:<7} {p['s']:>7.1f} s{work}{heap}; a write elsewhere waited"
                f" p50 {probe['p50']} / p99 {probe['p99']} / max {probe['max']} ms"
                f" ({probe['writes']} writes)"
            )
        c = r["phases"]["import"]["chunk_ms"]
        log(
            f"  import chunks: {c['n']}, each one transaction: p50 {c['p50']} / p99"
            f" {c['p99']} / max {c['max']} ms"
        )
        log(
            f"  rows/s: {r['rows_per_s']}; RSS before upload {r['rss_before_upload_mb']} MB,"
            f" peak {r['peak_rss_mb']} MB"
        )
    common.log_footer(results["machine"], summary["checks"])


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        child(json.loads(sys.argv[2]))
    elif len(sys.argv) == 3 and sys.argv[1] == "--probe":
        probe(int(sys.argv[2]))
    else:
        sys.exit(main())

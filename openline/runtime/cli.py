"""The `openline` command for operators. Every command takes --json for scripts."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

# What `openline run` and `openline web` serve.
ASGI_APPLICATION = "openline.asgi:application"


def _setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "openline.settings")
    import django

    django.setup()


def _emit(args: argparse.Namespace, data: dict[str, Any], text: str) -> None:
    print(json.dumps(data, indent=2, default=str) if args.json else text)


def _fail(args: argparse.Namespace, message: str) -> int:
    if args.json:
        print(json.dumps({"error": message}))
    else:
        print(f"error: {message}", file=sys.stderr)
    return 2


def _org(slug: str) -> Any:
    from openline.core.models import Organization

    org = Organization.objects.filter(slug=slug).first()
    if org is None:
        raise LookupError(f"no organization with slug {slug!r}")
    return org


def cmd_org_create(args: argparse.Namespace) -> int:
    from openline.core.services import organization_create

    org = organization_create(name=args.name, slug=args.slug, timezone_name=args.timezone)
    data = {"id": org.pk, "name": org.name, "slug": org.slug, "timezone": org.timezone}
    _emit(args, data, f"Created organization {org.name} ({org.slug})")
    return 0


def cmd_user_create(args: argparse.Namespace) -> int:
    from openline.core.services import user_create

    membership = user_create(
        organization=_org(args.org), email=args.email, role=args.role, password=args.password
    )
    data = {
        "id": membership.user.pk,
        "email": membership.user.email,
        "role": membership.role,
        "organization": args.org,
    }
    _emit(args, data, f"Created {membership.role} {membership.user.email} in {args.org}")
    return 0


def _parse_config(pairs: list[str]) -> dict[str, str]:
    config: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--config takes key=value, got {pair!r}")
        config[key.strip()] = value.strip()
    return config


def cmd_number_add(args: argparse.Namespace) -> int:
    from django.conf import settings

    from openline.providers.services import number_add, number_webhook_urls

    number = number_add(
        organization=_org(args.org),
        provider=args.provider,
        e164=args.number,
        config=_parse_config(args.config or []),
        name=args.name or "",
        kind=args.kind,
        segments_per_second=args.rate,
        calls_per_second=args.calls_per_second,
    )
    # The same function, from the same setting, that the server builds and checks them with.
    urls = number_webhook_urls(number)
    warning = _public_url_warning(urls)
    data = {
        "id": number.pk,
        "number": number.e164,
        "provider": number.provider,
        **urls,
        "public_url": settings.PUBLIC_URL,
        "public_url_set": settings.PUBLIC_URL_SET,
        "warning": warning,
    }
    text = (
        f"Connected {number.e164} ({number.provider})\n"
        f"  inbound webhook: {urls['inbound_url']}\n  status callback: {urls['status_url']}"
    )
    _emit(args, data, f"{text}\n\nWarning: {warning}" if warning else text)
    return 0


def _public_url_warning(urls: dict[str, str]) -> str | None:
    """What to do when OPENLINE_PUBLIC_URL is unset: the URLs then name this machine."""
    from django.conf import settings

    if settings.PUBLIC_URL_SET:
        return None
    paths = " and ".join(url.removeprefix(settings.PUBLIC_URL) for url in urls.values())
    return (
        f"OPENLINE_PUBLIC_URL is not set, so these URLs use {settings.PUBLIC_URL}, which no "
        "provider can reach\n(and webhook signatures are checked against that address). Set it "
        "to this server's public\nHTTPS address, for the server and for this command, "
        "for example:\n  export OPENLINE_PUBLIC_URL=https://sms.example.org\n"
        f"The webhook URLs are then that address followed by\n  {paths}"
    )


def cmd_token_create(args: argparse.Namespace) -> int:
    from openline.core.services import api_token_create

    token, secret = api_token_create(
        organization=_org(args.org), name=args.name or "", scope=args.scope
    )
    _emit(
        args,
        {"id": token.pk, "token": secret, "organization": args.org, "scope": token.scope},
        f"API token for {args.org}, {token.get_scope_display().lower()} (shown once):\n{secret}",
    )
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    _emit(args, {"migrated": True}, "Database is up to date.")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from openline.runtime.demo import demo_ensure

    info = demo_ensure()
    lines = [
        ("Created" if info["created"] else "Found") + f" demo organization '{info['organization']}'"
        f" with sandbox number {info['number']}.",
        "Sign in at the console with:",
    ]
    for user in info["users"]:  # type: ignore[attr-defined]
        lines.append(f"  {user['role']:<11} {user['email']:<32} {user['password']}")
    if info.get("chat_demo_url"):
        lines.append(f"Try the web chat widget as a visitor: {info['chat_demo_url']}")
    _emit(args, info, "\n".join(lines))
    return 0


def _serve(args: argparse.Namespace, *, worker: bool, scheduler: bool) -> int:
    import uvicorn
    from django.conf import settings

    from openline.runtime import bridge
    from openline.runtime.processing_loop import InboundProcessor, enable_redis_wake
    from openline.runtime.scheduler import Scheduler
    from openline.runtime.worker import task_workers

    threads: list[Any] = []
    child = None
    # The intake writer thread shares the interpreter with the event loop: switch every
    # millisecond (default 5) so neither waits long for the other.
    sys.setswitchinterval(0.001)
    if worker and not getattr(args, "one_process", False):
        # Inbound processing, tasks and the scheduler run in a child process on the other
        # core; this one only serves (runtime.bridge).
        child = bridge.start_worker_child()
        scheduler = False
    elif worker:
        _retry_parked_at_start()
        threads += [InboundProcessor(), *task_workers()]
    elif settings.REDIS_URL:
        enable_redis_wake()
    if scheduler:
        threads.append(Scheduler())
    for thread in threads:
        thread.start()
    port = args.port or int(os.environ.get("PORT", "8000"))
    # The app is named as any ASGI server names it (`uvicorn openline.asgi:application`):
    # openline.asgi sits above the runtime. Loaded before the heap is frozen.
    from uvicorn.importer import import_from_string

    application = import_from_string(ASGI_APPLICATION)

    _quiet_gc()
    config = uvicorn.Config(
        application,
        host=args.host,
        port=port,
        lifespan="off",
        access_log=False,
        log_level="warning",
        timeout_graceful_shutdown=5,
        # Console frames are small JSON; compressing each one for every socket costs
        # more CPU than the bytes it saves.
        ws_per_message_deflate=False,
    )
    if not args.json:
        print(f"OpenLine is running on http://{args.host}:{port}  (Ctrl-C stops it)", flush=True)
    try:
        uvicorn.Server(config).run()
    except KeyboardInterrupt:  # uvicorn re-raises Ctrl-C after its graceful shutdown
        pass
    finally:
        for thread in threads:
            thread.stop()
        for thread in threads:
            thread.join(timeout=5)
        if child is not None:
            child.stop()
    if not args.json:
        print("OpenLine stopped.", flush=True)
    return 0


# Objects allocated before a young collection runs: higher than the default 700, so the
# short-lived objects of each request or frame die before a collection can promote them.
GC_YOUNG_THRESHOLD = 20_000


def _quiet_gc() -> None:
    """Keep full garbage collections short and rare in a long-running server. Everything
    loaded at start (Django, the app, the libraries: most of the heap) is moved out of the
    collector's sight with gc.freeze(), so a full collection walks only what was made since;
    and young collections run less often, so fewer short-lived objects reach the old
    generation and set off a full collection. Measured with bench/chat.py --gc-log: full
    collections of 160-400 ms every few seconds at 2,000 chats, the cause of its p99."""
    import gc

    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)


def cmd_run(args: argparse.Namespace) -> int:
    """Web, worker and scheduler (the embedded profile): a web process and a worker child."""
    return _serve(args, worker=True, scheduler=True)


def cmd_web(args: argparse.Namespace) -> int:
    return _serve(args, worker=False, scheduler=False)


def _wait_forever(
    threads: list[Any],
    stop: threading.Event | None = None,
    signals: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM),
) -> int:
    stop = stop or threading.Event()
    for sig in signals:
        signal.signal(sig, lambda *_: stop.set())
    for thread in threads:
        thread.start()
    stop.wait()
    for thread in threads:
        thread.stop()
    for thread in threads:
        thread.join(timeout=10)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from openline.runtime import bridge
    from openline.runtime import processing_loop as processing
    from openline.runtime import worker as tasks
    from openline.runtime.scheduler import Scheduler

    # Several threads share the interpreter (dispatch, the other tasks, inbound processing):
    # a thread back from a database round trip waits for the one running Python to give up
    # the interpreter, by default every 5 ms, up to a dozen times a task. Every millisecond
    # instead: a text's dispatch no longer waits behind a runner's turn (bench/README.md,
    # "make bench-broadcast").
    sys.setswitchinterval(0.001)
    _retry_parked_at_start()
    threads: list[Any] = [processing.InboundProcessor(), *tasks.task_workers()]
    stop = threading.Event()
    if args.attached is not None:  # the worker child of `openline run`
        threads.append(Scheduler())
        wakes = {bridge.WAKE_INBOUND: processing._wake, bridge.WAKE_TASK: tasks._wake}
        bridge.attach_to_parent(args.attached, wakes, on_close=stop.set, busy_fd=args.busy_page)
        # A Ctrl-C in the terminal reaches the whole process group; the web process stops
        # its child (SIGTERM) after its own shutdown. Leaving first would look like a crash.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        return _wait_forever(threads, stop, signals=(signal.SIGTERM,))
    return _wait_forever(threads, stop)


def _retry_parked_at_start() -> None:
    """Where inbound processing starts: a new deploy may carry the fix for what parked."""
    from openline.messaging.services.parked import inbound_parked_retry_at_start

    inbound_parked_retry_at_start()


def cmd_inbound_retry(args: argparse.Namespace) -> int:
    from openline.messaging.services.inbound import MAX_ATTEMPTS
    from openline.messaging.services.parked import inbound_parked_retry

    ids = inbound_parked_retry(audited=True)
    text = "No parked inbound events: nothing to retry."
    if ids:
        text = (
            f"Retrying {len(ids)} parked inbound event(s): {', '.join(map(str, ids))}.\n"
            "A running worker picks them up within a second. One that fails again parks "
            f"again after {MAX_ATTEMPTS} attempts; the log has each failure under its id."
        )
    _emit(args, {"retried": len(ids), "event_ids": ids}, text)
    return 0


def cmd_scheduler(args: argparse.Namespace) -> int:
    from openline.runtime.scheduler import Scheduler

    return _wait_forever([Scheduler()])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="openline", description="OpenLine operator commands")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="machine-readable output")
    sub = parser.add_subparsers(dest="command", required=True)

    def add(
        name: str,
        fn: Callable[[argparse.Namespace], int],
        helptext: str,
        parent: argparse._SubParsersAction[argparse.ArgumentParser] = sub,
    ) -> argparse.ArgumentParser:
        p = parent.add_parser(name, parents=[common], help=helptext)
        p.set_defaults(fn=fn)
        return p

    org = sub.add_parser("org", help="organizations").add_subparsers(dest="sub", required=True)
    p = add("create", cmd_org_create, "create an organization", org)
    p.add_argument("--name", required=True)
    p.add_argument("--slug", required=True)
    p.add_argument("--timezone", default="UTC")

    user = sub.add_parser("user", help="users").add_subparsers(dest="sub", required=True)
    p = add("create", cmd_user_create, "create a user in an organization", user)
    p.add_argument("--org", required=True)
    p.add_argument("--email", required=True)
    p.add_argument("--role", required=True, choices=["admin", "supervisor", "counselor", "staff"])
    p.add_argument("--password", required=True)

    number = sub.add_parser("number", help="numbers").add_subparsers(dest="sub", required=True)
    p = add("add", cmd_number_add, "connect a number", number)
    p.add_argument("--org", required=True)
    p.add_argument("--provider", required=True)
    p.add_argument("--number", required=True, help="E.164, e.g. +12025550123")
    p.add_argument("--config", action="append", metavar="KEY=VALUE")
    p.add_argument("--name")
    p.add_argument(
        "--kind", default="long_code", choices=["long_code", "toll_free", "short_code", "landline"]
    )
    p.add_argument("--rate", type=float, help="segments per second (default by kind)")
    p.add_argument(
        "--calls-per-second", type=float, default=1.0, help="voice calls started per second"
    )

    token = sub.add_parser("token", help="API tokens").add_subparsers(dest="sub", required=True)
    p = add("create", cmd_token_create, "create an API token", token)
    p.add_argument("--org", required=True)
    p.add_argument("--name")
    p.add_argument(
        "--scope",
        choices=["read", "write"],
        default="write",
        help="read: GET requests only; write (default): everything",
    )

    add("migrate", cmd_migrate, "create or update the database")
    add("demo", cmd_demo, "create the demo organization unless it exists")
    for name, fn, text in (
        ("run", cmd_run, "web, worker and scheduler: the embedded profile"),
        ("web", cmd_web, "web server only (scaled-out profile)"),
    ):
        p = add(name, fn, text)
        p.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        p.add_argument("--port", type=int, default=None)
        if name == "run":
            p.add_argument(
                "--one-process",
                action="store_true",
                help="run the worker as threads of the web process (default: a child process)",
            )
    p = add("worker", cmd_worker, "task worker and inbound processor")
    p.add_argument("--attached", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--busy-page", type=int, default=None, help=argparse.SUPPRESS)
    add("scheduler", cmd_scheduler, "periodic work (one per deployment)")

    inbound = sub.add_parser("inbound", help="inbound events").add_subparsers(
        dest="sub", required=True
    )
    add("retry", cmd_inbound_retry, "retry inbound events parked after failed processing", inbound)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _setup()
    from django.core.exceptions import ValidationError
    from django.db.utils import OperationalError, ProgrammingError

    try:
        return int(args.fn(args))
    except ValidationError as exc:
        return _fail(args, "; ".join(exc.messages))
    except (LookupError, ValueError) as exc:
        return _fail(args, str(exc))
    except (OperationalError, ProgrammingError) as exc:
        if not _tables_missing(exc):
            raise
        return _fail(args, "the database has no tables yet: run `openline migrate` first")


def _tables_missing(exc: Exception) -> bool:
    """SQLite says 'no such table', PostgreSQL 'relation ... does not exist'."""
    text = str(exc)
    return "no such table" in text or ("relation" in text and "does not exist" in text)


if __name__ == "__main__":
    sys.exit(main())

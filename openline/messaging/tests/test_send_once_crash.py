"""A process that queued a text is SIGKILLed after its commit and before it enqueued the
dispatch task: the text sits in the database as queued, and no task exists for it. The
reconciliation sweep, run by another process, finds it and sends it exactly once.

No hook in the code under test: the dying process registers its own commit hook before
calling ``message_send``; hooks run in the order they were registered, so the kill comes
right after the commit and before ``message_send``'s hook could enqueue."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from conftest import ROOT, run_cli
from openline.providers.twilio.tests.fake import FakeTwilio

NUMBER = "+12025550177"
PERSON = "+12025550123"

QUEUE_AND_DIE = f"""
import os, signal, django
django.setup()
from django.db import transaction
from openline.core.models import Organization
from openline.messaging.services.outbound import message_send

org = Organization.objects.get(slug="line")
with transaction.atomic():
    transaction.on_commit(lambda: os.kill(os.getpid(), signal.SIGKILL))
    message_send(organization_id=org.pk, to="{PERSON}", body="We're here. Take your time.")
print("survived")
"""

STATE = """
import json, django
django.setup()
from django_tasks_db.models import DBTaskResult
from openline.messaging.models import Message

print(json.dumps({
    "messages": list(Message.objects.values("status", "provider_message_id", "attempts")),
    "tasks": DBTaskResult.objects.count(),
}))
"""

# One scheduler round as it would run LOST_AFTER later, then the worker's turn.
SWEEP = """
import json, django
django.setup()
from django.utils import timezone
from openline.runtime.worker import run_ready_tasks
from openline.messaging.services.reconcile import LOST_AFTER, messages_reconcile

swept = messages_reconcile(now=timezone.now() + LOST_AFTER * 2)
print(json.dumps({"swept": swept, "ran": run_ready_tasks()}))
"""


def _python(env: dict[str, str], script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 (our own interpreter and script)
        [sys.executable, "-c", script],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _json(env: dict[str, str], script: str) -> Any:
    done = _python(env, script)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_text_queued_by_a_process_killed_before_the_enqueue_is_sent_exactly_once(
    tmp_path: Path, fake: FakeTwilio
) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.pop("OPENLINE_TESTING", None)
    env.update(
        OPENLINE_VAR_DIR=str(tmp_path),
        OPENLINE_PUBLIC_URL="http://127.0.0.1:9",
        DJANGO_SETTINGS_MODULE="openline.settings",
    )
    run_cli(env, "migrate")
    run_cli(env, "org", "create", "--name", "Line", "--slug", "line")
    config = [f"--config={key}={value}" for key, value in fake.config().items()]
    run_cli(env, "number", "add", "--org", "line", "--provider", "twilio", "--number", NUMBER,
            *config)  # fmt: skip

    died = _python(env, QUEUE_AND_DIE)
    assert died.returncode == -signal.SIGKILL, died.stderr
    assert "survived" not in died.stdout
    before = _json(env, STATE)
    assert before == {
        "messages": [{"status": "queued", "provider_message_id": "", "attempts": 0}],
        "tasks": 0,
    }
    assert fake.requests == []

    assert _json(env, SWEEP) == {"swept": 1, "ran": 1}
    assert _json(env, SWEEP) == {"swept": 0, "ran": 0}  # nothing is dispatched twice

    [sent] = fake.send_requests()
    assert (sent.status, sent.form["To"], sent.form["From"]) == (201, PERSON, NUMBER)
    [stored] = fake.messages.values()
    after = _json(env, STATE)["messages"]
    assert after == [{"status": "sending", "provider_message_id": stored.sid, "attempts": 1}]

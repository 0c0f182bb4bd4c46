"""Pushing an inbox's state when time alone changes it: a shift starting or ending writes
nothing, so the scheduler asks every few seconds and publishes what changed."""

from __future__ import annotations

import threading

from openline.availability.selectors import inboxes_online
from openline.core.realtime import publish_on_commit
from openline.providers.models import Number

# The last state published per inbox, in this (the scheduler's) process. A new process
# publishes every inbox once: consoles then show the state it sees.
_last: dict[int, bool] = {}
_lock = threading.Lock()


def inbox_states_publish_changes() -> int:
    """Publish ``inbox.availability`` for each inbox whose online state differs from the
    last one seen here. Two queries for all organizations. Returns how many changed."""
    owners = dict(Number.objects.values_list("pk", "organization_id"))
    online = inboxes_online(list(owners))
    with _lock:
        changed = {pk: on for pk, on in online.items() if _last.get(pk) != on}
        _last.clear()
        _last.update(online)
    for pk, on in sorted(changed.items()):
        publish_on_commit(
            organization_id=owners[pk],
            event={"type": "inbox.availability", "number_id": pk, "online": on},
        )
    return len(changed)


def forget_inbox_states() -> None:
    """Tests: start as a fresh process would."""
    with _lock:
        _last.clear()

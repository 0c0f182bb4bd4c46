"""Parked inbound events: processing gave up on them after MAX_ATTEMPTS failures and no
longer looks at them. A STOP that hit a bug must not stay unapplied, so they are shown on
/healthz and to admins, and given a fresh set of attempts: when a worker starts (a new
deploy may carry the fix), once an hour by the scheduler, by `openline inbound retry`, and
by an admin's "Retry now". A retry that fails again parks again after MAX_ATTEMPTS more
failures: never a hot loop."""

from __future__ import annotations

import logging
import threading
import time

from django.db import connection, transaction

from openline.core.services import audit_record
from openline.messaging.models import InboundEvent
from openline.messaging.selectors import inbound_parked

logger = logging.getLogger(__name__)

# Long enough that an event that still fails costs a few log entries an hour, short
# enough that a fix deployed without a restart reaches a parked STOP the same hour.
RETRY_EVERY_SECONDS = 3600.0
AUDIT_ACTION = "inbound.parked_retry"


def inbound_parked_retry(
    *,
    organization_id: int | None = None,
    event_id: int | None = None,
    actor_id: int | None = None,
    audited: bool = False,
) -> list[int]:
    """Give parked events (of one organization, or all of them when ``organization_id``
    is None: operators only) a fresh set of attempts; processing takes them at its next look
    (it polls every half second). Returns their ids. A person's retry (``audited``) is
    written to each event's organization's audit log, one entry per event; automatic
    retries are only logged (ids, never text)."""
    with transaction.atomic():
        events = inbound_parked(organization_id=organization_id)
        if event_id is not None:
            events = events.filter(pk=event_id)
        found = list(events.select_for_update().values_list("organization_id", "pk"))
        ids = [pk for _, pk in found]
        if not ids:
            return []
        InboundEvent.objects.filter(pk__in=ids).update(attempts=0)
        if audited:
            for org_id, pk in found:
                audit_record(
                    organization_id=org_id,
                    actor_id=actor_id,
                    action=AUDIT_ACTION,
                    object_type="inbound_event",
                    object_id=pk,
                )
    logger.warning("retrying %d parked inbound event(s): %s", len(ids), ids)
    return ids


def inbound_parked_retry_at_start() -> None:
    """Called where a worker starts, before its threads: a new deploy may carry the fix.
    Never stops the worker from starting (the database may not be migrated yet), and
    leaves the calling thread without a connection, as it found it."""
    try:
        inbound_parked_retry()
    except Exception:
        logger.exception("could not retry parked inbound events at start")
    finally:
        if not connection.in_atomic_block:  # (a caller's transaction: tests)
            connection.close()


class _Every:
    """When the periodic retry is next due, in this process (one scheduler runs at a
    time). The first call only sets the clock: the worker retried them when it started."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.due_at: float | None = None
        self._lock = threading.Lock()

    def due(self) -> bool:
        now = time.monotonic()
        with self._lock:
            if self.due_at is not None and now < self.due_at:
                return False
            first = self.due_at is None
            self.due_at = now + self.seconds
            return not first


periodic = _Every(RETRY_EVERY_SECONDS)


def inbound_parked_retry_periodic() -> int:
    """Scheduler job (every 10 s): retries parked events once an hour. Returns how many."""
    if not periodic.due():
        return 0
    return len(inbound_parked_retry())

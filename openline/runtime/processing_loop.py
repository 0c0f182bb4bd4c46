"""Runs inbound processing. Intake wakes the processor after each committed batch: a thread
of the same process directly, the worker child of `openline run` over its socket
(runtime.bridge), a separate `openline worker` through Redis when REDIS_URL is set; otherwise
it polls every POLL_SECONDS."""

from __future__ import annotations

import logging
import threading
import time

from django.conf import settings
from django.db import close_old_connections

from openline.runtime import bridge
from openline.runtime.gate import checkpoint, write_gate
from openline.runtime.intake import requests_in_flight
from openline.runtime.journal import journal_move

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.5
# Events per write transaction: fewer while webhooks in this process wait for an answer,
# since the intake writer may have to wait for the transaction to end.
QUIET_BATCH, BUSY_BATCH = 50, 20
# Webhooks waiting for their answer above which processing starts to yield the
# interpreter, and at which it yields as long as its batch took (from bench/: with 16 and
# 40, eight busy senders could never make it yield; at the sustained rate of about 1,000
# webhooks/s about 2 are in flight, so steady traffic is not held back).
YIELD_FROM, YIELD_FULL_AT = 4, 16
# The same when processing shares the interpreter with the intake (`openline run
# --one-process`): every batch then holds up acknowledgements directly, so it yields sooner.
YIELD_FROM_IN_PROCESS, YIELD_FULL_AT_IN_PROCESS = 1, 4
WAKE_CHANNEL = "openline:inbound-wake"

_wake = threading.Event()


def wake() -> None:
    """Intake calls this after an event is durably written."""
    _wake.set()
    bridge.wake(bridge.WAKE_INBOUND)
    if settings.REDIS_URL and _redis_publisher is not None:
        try:
            _redis_publisher.publish(WAKE_CHANNEL, b"1")
        except Exception:  # the poll picks it up anyway
            logger.warning("could not publish inbound wake-up")


_redis_publisher = None


def enable_redis_wake() -> None:
    """Called by `openline web` in the scaled-out profile."""
    global _redis_publisher
    import redis

    _redis_publisher = redis.Redis.from_url(settings.REDIS_URL)


def process_waiting(limit: int = QUIET_BATCH) -> int:
    """One step of the loop: webhooks the event loop kept aside in the journal while the
    write lock was taken go into InboundEvent, then a batch of waiting events is processed
    (messaging.services.inbound). Returns how many were processed."""
    from openline.messaging.services.inbound import inbound_process_pending

    journal_move()
    return inbound_process_pending(limit)


class InboundProcessor(threading.Thread):
    def __init__(self) -> None:
        super().__init__(name="openline-inbound", daemon=True)
        self.stopping = threading.Event()

    def run(self) -> None:
        if settings.REDIS_URL:
            threading.Thread(target=self._listen_redis, daemon=True).start()
        while not self.stopping.is_set():
            _wake.wait(POLL_SECONDS)
            _wake.clear()
            try:
                # While it works, `openline run`'s web process sends no wake-ups
                # (runtime.bridge); so once it says it stopped, it looks once more.
                bridge.set_busy(bridge.WAKE_INBOUND, True)
                self._work_through()
                bridge.set_busy(bridge.WAKE_INBOUND, False)
                self._work_through()
            except Exception:
                logger.exception("inbound processing loop error")
            finally:
                bridge.set_busy(bridge.WAKE_INBOUND, False)
                close_old_connections()

    def _work_through(self) -> None:
        while not self.stopping.is_set():
            started = time.monotonic()
            limit = BUSY_BATCH if write_gate.intake_busy() else QUIET_BATCH
            if not process_waiting(limit):
                break
            checkpoint()  # the intake writer leaves this to us
            self._yield_to_intake(time.monotonic() - started)
        checkpoint()

    def _yield_to_intake(self, batch_seconds: float) -> None:
        """Acknowledging webhooks comes first. Processing pauses after each batch in
        proportion to how many webhooks beyond a few are waiting for their answer, up to
        as long as the batch took: steady traffic does not slow it, a burst halves its
        share and leaves a backlog worked off right after (acknowledged events are safe)."""
        waiting = requests_in_flight()  # the intake of this process, if any
        if waiting:
            start, full = YIELD_FROM_IN_PROCESS, YIELD_FULL_AT_IN_PROCESS
        else:  # the intake may be in another process (the web process of `openline run`)
            waiting, start, full = write_gate.in_flight(), YIELD_FROM, YIELD_FULL_AT
        excess = waiting - start
        if excess > 0:
            self.stopping.wait(batch_seconds * min(1.0, excess / (full - start)))

    def _listen_redis(self) -> None:
        import redis

        pubsub = redis.Redis.from_url(settings.REDIS_URL).pubsub()
        pubsub.subscribe(WAKE_CHANNEL)
        for item in pubsub.listen():
            if item.get("type") == "message":
                _wake.set()
            if self.stopping.is_set():
                break

    def stop(self) -> None:
        self.stopping.set()
        _wake.set()

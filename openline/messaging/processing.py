"""Runs inbound processing next to intake. In the embedded profile intake wakes the
processor thread directly (no polling delay); a separate worker process is woken through
Redis when REDIS_URL is set, and otherwise polls every POLL_SECONDS."""

from __future__ import annotations

import logging
import threading

from django.conf import settings
from django.db import close_old_connections

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.5
WAKE_CHANNEL = "openline:inbound-wake"

_wake = threading.Event()


def wake() -> None:
    """Intake calls this after an event is durably written."""
    _wake.set()
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


class InboundProcessor(threading.Thread):
    def __init__(self) -> None:
        super().__init__(name="openline-inbound", daemon=True)
        self.stopping = threading.Event()

    def run(self) -> None:
        from openline.messaging.services.inbound import inbound_process_pending

        if settings.REDIS_URL:
            threading.Thread(target=self._listen_redis, daemon=True).start()
        while not self.stopping.is_set():
            _wake.wait(POLL_SECONDS)
            _wake.clear()
            try:
                while not self.stopping.is_set() and inbound_process_pending():
                    pass
            except Exception:
                logger.exception("inbound processing loop error")
            finally:
                close_old_connections()

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

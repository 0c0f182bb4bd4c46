"""One small loop that runs periodic work. Only one scheduler runs at a time: a Redis lock
when REDIS_URL is set, otherwise the embedded profile has only one process anyway."""

from __future__ import annotations

import logging
import threading
import uuid
from typing import Any

from django.conf import settings
from django.db import close_old_connections

logger = logging.getLogger(__name__)


def interval_seconds() -> float:
    """The round (settings.OPENLINE_SCHEDULER_INTERVAL_SECONDS, 10): alert reminders can be
    a minute apart, so the sweep must look well within that."""
    return float(settings.OPENLINE_SCHEDULER_INTERVAL_SECONDS)


def run_periodic() -> None:
    from openline.alerts.sweep import alerts_sweep
    from openline.availability.services.watch import inbox_states_publish_changes
    from openline.campaigns.drips import campaigns_tick
    from openline.campaigns.reminders import reminders_send_due
    from openline.campaigns.services import broadcasts_tick
    from openline.chat.services import chats_close_abandoned
    from openline.contacts.services.imports import contact_imports_restart_stalled
    from openline.forms.surveys.expiry import surveys_expire
    from openline.messaging.services.calls import calls_reconcile
    from openline.messaging.services.parked import inbound_parked_retry_periodic
    from openline.messaging.services.queue_guard import conversations_requeue_unseen
    from openline.messaging.services.reconcile import messages_reconcile

    for job in (
        surveys_expire,  # a survey hold that ran out: the conversation joins the queue
        conversations_requeue_unseen,  # before the alert sweep, so a moved one alerts now
        messages_reconcile,
        calls_reconcile,
        chats_close_abandoned,
        alerts_sweep,
        inbox_states_publish_changes,
        broadcasts_tick,
        reminders_send_due,
        campaigns_tick,
        contact_imports_restart_stalled,  # an import whose worker died, page open or not
        inbound_parked_retry_periodic,  # hourly: see its module
    ):
        try:  # one failing job does not hold up the others
            job()
        except Exception:
            logger.exception("scheduled %s failed", job.__name__)
        finally:
            close_old_connections()


class Scheduler(threading.Thread):
    def __init__(self) -> None:
        super().__init__(name="openline-scheduler", daemon=True)
        self.stopping = threading.Event()
        self.identity = uuid.uuid4().hex
        self._redis: Any = None

    def _holds_lock(self) -> bool:
        if not settings.REDIS_URL:
            return True
        if self._redis is None:
            import redis

            self._redis = redis.Redis.from_url(settings.REDIS_URL)
        client = self._redis
        key = "openline:scheduler-lock"
        ttl = max(int(interval_seconds() * 3), 3)
        if client.set(key, self.identity, nx=True, ex=ttl):
            return True
        if client.get(key) == self.identity.encode():
            client.expire(key, ttl)
            return True
        return False

    def run(self) -> None:
        while not self.stopping.wait(interval_seconds()):
            try:
                if self._holds_lock():
                    run_periodic()
            except Exception:
                logger.exception("scheduled work failed")
            finally:
                close_old_connections()

    def stop(self) -> None:
        self.stopping.set()

from __future__ import annotations

import time

import pytest
from django.db import connection, transaction

from openline.core import realtime
from openline.messaging.ratelimit import MemoryLimiter, RedisLimiter
from openline.providers.models import Number


def test_healthz_reports_database_and_queue(client, db):
    response = client.get("/healthz")
    body = response.json()
    assert response.status_code == 200
    assert body["database"]["ok"] is True
    assert body["tasks"] == {"ready": 0, "inbound_pending": 0}


def test_provider_credentials_are_encrypted_at_rest(org):
    from openline.providers.services import number_add

    number = number_add(
        organization=org,
        provider="twilio",
        e164="+12025550177",
        config={"account_sid": "AC" + "1" * 32, "auth_token": "very-secret-token"},
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT config FROM providers_number WHERE id = %s", [number.pk])
        raw = cursor.fetchone()[0]
    assert "very-secret-token" not in raw
    assert Number.objects.get(pk=number.pk).config["auth_token"] == "very-secret-token"


@pytest.mark.django_db(transaction=True)
def test_events_publish_only_after_commit(published):
    with transaction.atomic():
        realtime.publish_on_commit(organization_id=1, event={"type": "x.kept"})
    try:
        with transaction.atomic():
            realtime.publish_on_commit(organization_id=1, event={"type": "x.rolled_back"})
            raise RuntimeError
    except RuntimeError:
        pass
    assert [e["type"] for e in published] == ["x.kept"]


def test_unserialisable_event_fails_where_it_is_created(db):
    with pytest.raises(TypeError):
        realtime.publish_on_commit(organization_id=1, event={"type": "bad", "obj": object()})


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_memory_limiter_spaces_segments_at_the_rate():
    limiter = MemoryLimiter(clock=FakeClock())
    delays = [limiter.reserve("n1", units=1, per_second=2)[1] for _ in range(5)]
    assert delays == [0, 0.5, 1.0, 1.5, 2.0]
    assert limiter.reserve("n2", units=3, per_second=2) == (True, 0)  # per sender
    assert limiter.reserve("n2", units=1, per_second=2) == (True, 1.5)


def test_memory_limiter_frees_slots_as_time_passes():
    clock = FakeClock()
    limiter = MemoryLimiter(clock=clock)
    limiter.reserve("n1", units=4, per_second=2)  # busy for 2 s
    clock.now += 1.5
    assert limiter.reserve("n1", units=1, per_second=2) == (True, 0.5)
    clock.now += 10
    assert limiter.reserve("n1", units=1, per_second=2) == (True, 0)


def test_limiter_books_nothing_beyond_max_wait():
    limiter = MemoryLimiter(clock=FakeClock())
    limiter.reserve("n1", units=4, per_second=2)  # busy for 2 s
    assert limiter.reserve("n1", units=1, per_second=2, max_wait=1.0) == (False, 2.0)
    assert limiter.reserve("n1", units=1, per_second=2) == (True, 2.0)  # nothing was held


def _within(wait: float, expected: float, started: float) -> bool:
    """Real clocks move between calls: the wait may be shorter by the time that passed."""
    elapsed = time.monotonic() - started
    return expected - elapsed - 0.005 <= wait <= expected + 0.005


def test_redis_limiter_is_shared_between_instances():
    from conftest import redis_for_tests

    url = redis_for_tests()
    first, second = RedisLimiter(url), RedisLimiter(url)
    first.reset()
    started = time.monotonic()
    assert _within(first.reserve("shared", units=1, per_second=1)[1], 0, started)
    assert _within(second.reserve("shared", units=1, per_second=1)[1], 1.0, started)
    booked, wait = first.reserve("shared", units=1, per_second=1, max_wait=0.5)
    assert not booked and _within(wait, 2.0, started)
    assert _within(second.reserve("shared", units=1, per_second=1)[1], 2.0, started)
    first.reset()

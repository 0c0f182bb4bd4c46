"""Limits on starting web chats: per visitor address and per widget, shared by every web
process (Redis when REDIS_URL is set, the database otherwise), and a cap on waiting chats
per widget over which new visitors are told it is busy instead of joining the line."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from openline.chat import limits
from openline.chat.models import ChatSession, ChatWidget
from openline.chat.tests.conftest import ORIGIN
from openline.contacts.models import Contact
from openline.messaging.models import Conversation

pytestmark = pytest.mark.django_db
VISITOR = "203.0.113.7"
BUSY = "All our counselors are busy right now. Please try again in a few minutes."


def _start(client: Client, widget: Any, address: str = VISITOR) -> Any:
    return client.post(
        f"/chat/{widget.public_id}/start",
        data=json.dumps({"name": "Sam"}),
        content_type="application/json",
        headers={"Origin": ORIGIN},
        REMOTE_ADDR=address,
    )


def _config(client: Client, widget: Any) -> dict[str, Any]:
    return client.get(f"/chat/{widget.public_id}/config", headers={"Origin": ORIGIN}).json()


def _set(widget: Any, **fields: int) -> Any:
    ChatWidget.objects.filter(pk=widget.pk).update(**fields)
    widget.refresh_from_db()
    return widget


def _stored() -> tuple[int, int, int]:
    return Conversation.objects.count(), Contact.objects.count(), ChatSession.objects.count()


# --- rate limits --------------------------------------------------------------------------


def test_starts_over_the_address_limit_get_429_with_when_to_try_again(
    client: Client, widget: Any
) -> None:
    _set(widget, starts_per_address_per_minute=3)
    for _ in range(5):
        assert _config(client, widget)["online"] is True  # fetching the config counts nothing
    assert [_start(client, widget).status_code for _ in range(3)] == [201] * 3
    refused = _start(client, widget)
    assert refused.status_code == 429
    assert refused["Access-Control-Allow-Origin"] == ORIGIN  # the widget can read it
    wait = int(refused["Retry-After"])
    assert 1 <= wait <= 20  # three a minute: the next one in at most 20 s
    assert refused.json() == {
        "error": "rate_limited",
        "message": "Several chats were started from your connection just now. "
        f"Please try again in {wait} seconds.",
        "retry_after": wait,
    }
    assert _stored() == (3, 3, 3)  # nothing of the refused start
    assert _start(client, widget, address="198.51.100.20").status_code == 201  # per address


def test_the_widget_limit_holds_across_addresses_and_only_for_that_widget(
    client: Client, widget: Any, alice: Any
) -> None:
    from openline.chat.services import widget_create

    _set(widget, starts_per_minute=3)
    codes = [_start(client, widget, address=f"198.51.100.{n}").status_code for n in range(1, 5)]
    assert codes == [201, 201, 201, 429]
    refused = _start(client, widget, address="198.51.100.99")
    assert refused.json()["message"].startswith("Many people are starting chats right now.")
    assert int(refused["Retry-After"]) >= 1
    other = widget_create(
        organization_id=widget.organization_id, actor_id=alice.pk, number_id=widget.number_id,
        display_name="Youth chat", allowed_origins=[ORIGIN],
    )  # fmt: skip
    assert _start(client, other, address="198.51.100.99").status_code == 201


def test_one_address_over_its_limit_does_not_use_up_the_widget_for_everyone(
    client: Client, widget: Any
) -> None:
    _set(widget, starts_per_address_per_minute=2, starts_per_minute=4)
    flood = [_start(client, widget, address=VISITOR).status_code for _ in range(8)]
    assert flood == [201, 201] + [429] * 6
    assert [_start(client, widget, address="198.51.100.5").status_code for _ in range(2)] == [
        201,
        201,
    ]
    assert _start(client, widget, address="198.51.100.6").status_code == 429  # 4 started


def test_ipv6_visitors_are_limited_per_64_and_addresses_are_not_stored(
    client: Client, widget: Any
) -> None:
    from openline.chat.models import ChatStartGate

    _set(widget, starts_per_address_per_minute=1)
    assert _start(client, widget, address="2001:db8:1:2::5").status_code == 201
    assert _start(client, widget, address="2001:db8:1:2:ffff::9").status_code == 429
    assert _start(client, widget, address="2001:db8:1:3::5").status_code == 201
    assert limits.address_group("::ffff:203.0.113.7") == VISITOR
    assert limits.address_group("not an address") == "unknown"
    if isinstance(limits.limiter(), limits.DatabaseLimiter):
        keys = " ".join(ChatStartGate.objects.values_list("key", flat=True))
        assert "2001" not in keys and ChatStartGate.objects.count() == 3  # widget + 2 groups


def _race(count: int, work: Callable[[], Any]) -> list[Any]:
    """Run ``work`` in ``count`` threads released at once; what each returned or raised."""
    from django.db import connection

    barrier = threading.Barrier(count)
    results: list[Any] = []

    def run() -> None:
        barrier.wait()
        try:
            results.append(work())
        except Exception as exc:  # noqa: BLE001 (collected for the test to check)
            results.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


def test_the_database_limit_is_shared_by_separate_connections(
    transactional_db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What two web processes on one database do: each thread has its own connection."""
    shared = limits.DatabaseLimiter()
    monkeypatch.setattr(limits, "limiter", lambda: shared)
    results = _race(10, lambda: limits.start_wait("race-key", 6))
    assert results.count(None) == 6, results
    assert all(isinstance(wait, int) and wait >= 1 for wait in results if wait is not None)


def test_the_redis_limit_is_shared_by_separate_clients(monkeypatch: pytest.MonkeyPatch) -> None:
    import secrets

    from conftest import redis_for_tests
    from openline.messaging.ratelimit import RedisLimiter

    url = redis_for_tests()
    clients = [RedisLimiter(url), RedisLimiter(url)]  # as two web processes hold
    turn = iter([0, 1, 0, 1])
    monkeypatch.setattr(limits, "limiter", lambda: clients[next(turn)])
    key = secrets.token_hex(8)
    assert [limits.start_wait(key, 3) for _ in range(3)] == [None, None, None]
    assert isinstance(limits.start_wait(key, 3), int)


# --- the waiting cap ----------------------------------------------------------------------


def test_over_the_waiting_cap_visitors_are_told_it_is_busy_and_nothing_is_stored(
    client: Client, widget: Any, bob: Any
) -> None:
    from openline.core.models import Membership
    from openline.messaging.services.assignment import conversation_assume

    _set(widget, max_waiting=2)
    assert _config(client, widget)["busy"] is False
    assert [_start(client, widget).status_code for _ in range(2)] == [201, 201]
    config = _config(client, widget)
    assert config["busy"] is True  # seen before typing anything
    assert (config["busy_message"], config["busy_help"]) == (BUSY, widget.offline_text)
    refused = _start(client, widget)
    assert refused.status_code == 409  # like offline; a 503 would be logged as an error
    assert refused["Retry-After"] == "60"
    assert refused["Access-Control-Allow-Origin"] == ORIGIN
    assert refused.json() == {"error": "busy", "message": BUSY, "retry_after": 60}
    assert _stored() == (2, 2, 2)

    # A counselor takes one: a place frees up.
    membership = Membership.objects.get(user=bob, organization_id=widget.organization_id)
    conversation_assume(membership=membership, conversation=Conversation.objects.first())
    assert _config(client, widget)["busy"] is False
    assert _start(client, widget).status_code == 201
    assert _config(client, widget)["busy"] is True


def test_a_cap_of_zero_means_no_cap_and_texts_do_not_count(
    client: Client, widget: Any, text_in: Any, sandbox_number: Any
) -> None:
    _set(widget, max_waiting=1)
    text_in(sandbox_number, "+12025550150", "hello")  # waiting in the same inbox: a text
    assert _config(client, widget)["busy"] is False
    assert _start(client, widget).status_code == 201
    assert _start(client, widget).status_code == 409
    _set(widget, max_waiting=0)
    assert _config(client, widget)["busy"] is False
    assert [_start(client, widget).status_code for _ in range(3)] == [201] * 3


def test_simultaneous_starts_do_not_pass_the_cap(transactional_db: None, widget: Any) -> None:
    from openline.chat.services import ChatError, chat_start

    _set(widget, max_waiting=2)
    results = _race(6, lambda: chat_start(widget=widget, origin=ORIGIN).token)
    refused = [r for r in results if isinstance(r, ChatError)]
    assert len(results) == 6 and len(refused) == 4, results
    assert {r.code for r in refused} == {"busy"}
    assert _stored() == (2, 2, 2)


# --- the widget's page --------------------------------------------------------------------


def test_admin_sets_the_cap_and_limits_on_the_widget_page(
    client: Client, widget: Any, alice: Any, bob: Any, charlie: Any
) -> None:
    url = f"/chat-settings/widgets/{widget.pk}/questions"
    edit = {
        "action": "update", "display_name": "Talk to us", "allowed_origins": ORIGIN,
        "quick_exit_url": "https://www.google.com/", "color": "#1f5fbf", "is_active": "on",
        "max_waiting": "5", "starts_per_minute": "30", "starts_per_address_per_minute": "4",
        "busy_text": "  Text 988 any time.  ",
    }  # fmt: skip
    client.force_login(charlie)  # another organization's admin
    assert client.post(url, edit).status_code == 404
    client.force_login(bob)  # a counselor
    assert client.post(url, edit).status_code == 403
    client.force_login(alice)
    page = client.get(url).content.decode()
    assert 'name="max_waiting" type="number" min="0" max="10000" required value="25"' in page
    for bad, says in (
        ({"max_waiting": "many"}, "Chats waiting at once must be a whole number, like 10"),
        ({"starts_per_minute": "0"}, "Allow at least 1 new chat a minute"),
        ({"starts_per_address_per_minute": "-3"}, "must be a whole number"),
        ({"max_waiting": "²"}, "must be a whole number"),
        ({"max_waiting": "10001"}, "Allow at most 10000 waiting chats (0: no cap)"),
    ):
        refused = client.post(url, {**edit, **bad})
        assert refused.status_code == 422 and says in refused.content.decode(), bad
    widget.refresh_from_db()
    assert (widget.max_waiting, widget.starts_per_minute) == (25, 60)
    assert client.post(url, edit).status_code == 302
    widget.refresh_from_db()
    assert (
        widget.max_waiting,
        widget.starts_per_minute,
        widget.starts_per_address_per_minute,
        widget.busy_text,
    ) == (5, 30, 4, "Text 988 any time.")
    assert _config(client, widget)["busy_help"] == "Text 988 any time."

"""How fast chats may start, per widget and per visitor address, shared by every web
process: Redis when REDIS_URL is set, the database otherwise. So two `openline web`
processes do not each allow the limit, and a restart forgets nothing.

A limit of N a minute lets N chats start at once, then one every 60/N seconds (a "next
free time" per key, as messaging.ratelimit paces sends): no minute boundary at which the
count starts again. Only starts are counted; fetching a widget's configuration writes
nothing. The limits stop floods of fake visitors filling the queue, not a person who
tries twice."""

from __future__ import annotations

import functools
import hashlib
import hmac
import ipaddress
import math

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from openline.chat.models import ChatStartGate, ChatWidget
from openline.chat.services import ChatError
from openline.messaging.ratelimit import RedisLimiter

MINUTE = 60.0


class DatabaseLimiter:
    """RedisLimiter's reservations, one row per key, updated under the row's lock (on
    SQLite the write lock every transaction takes first does the same)."""

    def reserve(
        self, key: str, *, units: int, per_second: float, max_wait: float
    ) -> tuple[bool, float]:
        """(booked, wait): booked is False when the wait would exceed ``max_wait``."""
        now = timezone.now().timestamp()
        with transaction.atomic():
            gate = self._gate(key, now)
            # The time once the row is ours: a start that waited for the lock behind others
            # (a busy machine) is measured from when it is booked, not from before the wait.
            now = max(now, timezone.now().timestamp())
            start = max(now, gate.next_free)
            if start - now > max_wait:
                return False, start - now
            gate.next_free = start + units / per_second
            gate.save(update_fields=["next_free"])
        return True, start - now

    @staticmethod
    def _gate(key: str, now: float) -> ChatStartGate:
        """The key's row, locked; created at ``now`` if it is new."""
        gate = ChatStartGate.objects.select_for_update().filter(key=key).first()
        if gate is not None:
            return gate
        try:
            with transaction.atomic():
                gate = ChatStartGate.objects.create(key=key, next_free=now)
        except IntegrityError:  # another process created it first: wait for its lock
            return ChatStartGate.objects.select_for_update().get(key=key)
        ChatStartGate.objects.filter(next_free__lt=now).delete()  # rows that say nothing
        return gate

    def reset(self) -> None:
        ChatStartGate.objects.all().delete()


@functools.cache
def limiter() -> DatabaseLimiter | RedisLimiter:
    if settings.REDIS_URL:
        return RedisLimiter(settings.REDIS_URL)
    return DatabaseLimiter()


def start_wait(key: str, per_minute: int) -> int | None:
    """Book one start under ``key``: None if it may start now, else the whole seconds
    until it may (nothing is booked then)."""
    interval = MINUTE / per_minute
    burst = MINUTE - interval  # so that ``per_minute`` starts fit at once
    booked, wait = limiter().reserve(
        # A millisecond of slack: the last start of a burst must not fail on rounding.
        f"chat-start:{key}",
        units=1,
        per_second=per_minute / MINUTE,
        max_wait=burst + 0.001,
    )
    return None if booked else max(1, math.ceil(wait - burst))


def address_group(address: str) -> str:
    """The unit one visitor controls: an IPv4 address, or an IPv6 /64 (a household or a
    phone is usually given a whole /64, so single addresses would be free to rotate)."""
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return "unknown"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network((ip, 64), strict=False))
    return str(ip)


def _key(*parts: str) -> str:
    """An HMAC of the parts: limits never hold a visitor's address in the clear."""
    text = "\x1f".join(parts).encode()
    return hmac.new(settings.SECRET_KEY.encode(), text, hashlib.sha256).hexdigest()[:40]


def chat_start_throttle(*, widget: ChatWidget, address: str) -> None:
    """Count a visitor's start; raise ChatError("rate_limited", retry_after=...) when their
    address, or everyone on this widget, has started too many chats just now. A start the
    address limit refuses is not counted against the widget, so one address cannot use up
    everyone's starts."""
    group = address_group(address)
    wait = start_wait(
        _key("address", widget.public_id, group), widget.starts_per_address_per_minute
    )
    if wait is not None:
        raise ChatError(
            "rate_limited",
            "Several chats were started from your connection just now. "
            f"Please try again in {wait} seconds.",
            retry_after=wait,
        )
    wait = start_wait(_key("widget", widget.public_id), widget.starts_per_minute)
    if wait is not None:
        raise ChatError(
            "rate_limited",
            f"Many people are starting chats right now. Please try again in {wait} seconds.",
            retry_after=wait,
        )

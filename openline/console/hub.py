"""Fan-out of an organization's events to this process's console sockets.

One subscription per process and organization, not one per socket: each event crosses the
channel layer (memory or Redis) once per process, then goes out to every local socket that
may see it. Events arriving within one short tick travel together in one frame per
socket, so a burst of texts costs each console a few frames rather than one per event,
and identical frames are encoded once. One event is the hub's own: ``member.signed_out``
closes that person's sockets and reaches no browser."""

from __future__ import annotations

import asyncio
import json
import logging
import weakref
from collections.abc import Awaitable
from typing import Any, Protocol

from channels.layers import get_channel_layer

from openline.core.realtime import SIGNED_OUT, org_group

logger = logging.getLogger(__name__)

# After a failed read of the channel layer, the hub tries again this much later.
RECEIVE_RETRY_SECONDS = 0.5

# How long the first event of a burst waits for company. Every tick costs one frame per
# socket, so the more sockets this process serves, the more a tick gathers: 5.5 ms with a
# handful of consoles, 25 ms with 200. (Processing already hands events over in batches;
# with 45 ms at 200 sockets, bench/console.py measured p50 126 / p99 262 ms, with 25 ms
# 84 / 211 ms, for the same CPU.)
TICK_BASE_SECONDS = 0.005
TICK_PER_LISTENER_SECONDS = 0.0001
TICK_MAX_SECONDS = 0.05
# Channel layers drop a group member after a day (channels-redis' group_expiry), and a hub
# serving consoles that never all close at once lives longer than that: it joins again
# well before.
REJOIN_SECONDS = 3600.0


def tick_seconds(listeners: int) -> float:
    return min(TICK_MAX_SECONDS, TICK_BASE_SECONDS + TICK_PER_LISTENER_SECONDS * listeners)


class Listener(Protocol):
    def visible(self, event: dict[str, Any]) -> bool: ...

    def deliver(self, frame: str) -> Awaitable[None]: ...


class OrganizationHub:
    def __init__(self, organization_id: int) -> None:
        self.organization_id = organization_id
        self.listeners: set[Listener] = set()
        self.pending: list[dict[str, Any]] = []
        self.first_arrived = 0.0  # loop time of the oldest pending event
        self.arrived = asyncio.Event()
        self.channel: str | None = None
        self.tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        layer = get_channel_layer()
        assert layer is not None
        # The default prefix: channels-redis shares one receive loop per prefix.
        self.channel = await layer.new_channel()
        await layer.group_add(org_group(self.organization_id), self.channel)
        self.tasks = [
            asyncio.create_task(self._receive(layer)),
            asyncio.create_task(self._fan_out()),
            asyncio.create_task(self._rejoin(layer)),
        ]

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        layer = get_channel_layer()
        if layer is not None and self.channel is not None:
            await layer.group_discard(org_group(self.organization_id), self.channel)

    async def _receive(self, layer: Any) -> None:
        """Take the organization's events off the layer, for ever: a failed read (Redis
        restarting, a dropped connection) is logged and tried again, never the end of the
        hub's events. Consoles catch up on what a gap missed when they reconnect."""
        assert self.channel is not None
        while True:
            try:
                message = await layer.receive(self.channel)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning(
                    "console hub could not read events (%s); trying again", type(exc).__name__
                )
                await asyncio.sleep(RECEIVE_RETRY_SECONDS)
                continue
            if message.get("type") == "openline.event":
                if not self.pending:
                    self.first_arrived = asyncio.get_running_loop().time()
                self.pending.append(message["event"])
                self.arrived.set()

    async def _rejoin(self, layer: Any) -> None:
        while True:
            await asyncio.sleep(REJOIN_SECONDS)
            try:
                await layer.group_add(org_group(self.organization_id), self.channel)
            except Exception:  # tried again next time; the consoles catch up on reconnect
                logger.warning("console hub could not renew its group membership")

    async def _fan_out(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self.arrived.wait()
            # The tick counts from the oldest event's arrival: events that came while the
            # last frames went out have waited already.
            wait = self.first_arrived + tick_seconds(len(self.listeners)) - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            self.arrived.clear()
            events, self.pending = self.pending, []
            try:
                await self._send(events)
            except Exception:  # one bad frame must not stop the organization's fan-out
                logger.exception("console fan-out failed")

    async def _send(self, events: list[dict[str, Any]]) -> None:
        signed_out = [e for e in events if e["type"] == SIGNED_OUT]
        ended: set[Listener] = set()
        if signed_out:
            events = [e for e in events if e["type"] != SIGNED_OUT]
            ended = {listener for listener in self.listeners if _ends(listener, signed_out)}
        frames: dict[tuple[int, ...], str] = {}
        sends = []
        for listener in list(self.listeners - ended):
            shown = tuple(i for i, event in enumerate(events) if listener.visible(event))
            if not shown:
                continue
            if shown not in frames:
                frames[shown] = json.dumps(
                    {"events": [events[i] for i in shown]}, separators=(",", ":")
                )
            sends.append(listener.deliver(frames[shown]))
        # Together, so one slow connection does not hold up the others.
        results = await asyncio.gather(*sends, return_exceptions=True)
        for result in results:
            if isinstance(result, Exception):
                logger.info("a console socket could not take a frame: %r", result)


def _ends(listener: Listener, events: list[dict[str, Any]]) -> bool:
    """Whether the listener closes for these sign-out events. A listener that belongs to
    one person has ``signed_out(events) -> bool``: it schedules its own end (leaving the
    hub from within the hub's own fan-out would cancel the fan-out) and says so."""
    signed_out = getattr(listener, "signed_out", None)
    return signed_out is not None and bool(signed_out(events))


# Per event loop (tests run several loops in one process), then per organization.
_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, OrganizationHub]] = (
    weakref.WeakKeyDictionary()
)
_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)


async def join(organization_id: int, listener: Listener) -> None:
    loop = asyncio.get_running_loop()
    hubs = _hubs.setdefault(loop, {})
    async with _locks.setdefault(loop, asyncio.Lock()):
        hub = hubs.get(organization_id)
        if hub is None:
            hub = OrganizationHub(organization_id)
            await hub.start()
            hubs[organization_id] = hub
    hub.listeners.add(listener)


async def leave(organization_id: int, listener: Listener) -> None:
    hubs = _hubs.get(asyncio.get_running_loop(), {})
    hub = hubs.get(organization_id)
    if hub is None:
        return
    hub.listeners.discard(listener)
    if not hub.listeners:
        del hubs[organization_id]
        await hub.stop()

"""The one helper that publishes real-time events. Only services call it, and only the
transaction's commit sends: a rolled-back change never reaches a screen.

Events go to the channel layer from one long-lived event loop (the server's, or a private
thread's in worker processes) through a queue, so publishing never blocks the committing
thread and events of a process leave in commit order. The events of one commit travel
together: one hand-over to that loop, one message from `openline run`'s worker child."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from django.db import transaction

logger = logging.getLogger(__name__)

# Test hook: when set, events go here (after a JSON round trip) as well.
_capture: list[dict[str, Any]] | None = None
# A committed event: the group it goes to and its channel-layer message.
Envelope = tuple[str, dict[str, Any]]
# In `openline run`'s worker child, committed events go to the web process (runtime.bridge).
_forward: Callable[[list[Envelope]], None] | None = None


def forward_to(send: Callable[[list[Envelope]], None] | None) -> None:
    global _forward
    _forward = send


def org_group(organization_id: int) -> str:
    return f"org-{organization_id}"


class _Publisher:
    """Publishes on one loop, in commit order. No task waits while there is nothing to
    send: one starts when events arrive and ends once they are out, so a loop that stops
    (a test server's, a short-lived test loop) never leaves a pending task behind."""

    def __init__(self, loop: asyncio.AbstractEventLoop, *, private: bool = False) -> None:
        self.loop = loop
        self.private = private
        self.pending: deque[list[Envelope]] = deque()
        self.task: asyncio.Task[None] | None = None

    def put(self, envelopes: list[Envelope]) -> None:
        self.loop.call_soon_threadsafe(self._arrive, envelopes)

    def _arrive(self, envelopes: list[Envelope]) -> None:
        self.pending.append(envelopes)
        if self.task is None:
            self.task = self.loop.create_task(self._drain())

    async def _drain(self) -> None:
        from channels.layers import get_channel_layer

        try:
            while self.pending:
                envelopes = self.pending.popleft()
                layer = get_channel_layer()
                for group, envelope in envelopes:
                    try:
                        if layer is not None:
                            await layer.group_send(group, envelope)
                    except Exception:  # a broken fan-out must never undo a committed change
                        logger.exception(
                            "real-time publish failed for %s", envelope["event"].get("type")
                        )
        finally:  # nothing can arrive between the last look and here: no await in between
            self.task = None

    def stop(self, *, wait: bool = True) -> None:
        """Cancel a publish under way on its own loop (before that loop goes away); a
        private loop then stops. ``wait=False`` when called from another serving loop:
        cancelling a Redis publish can take a while, and that loop must not block."""
        if self.loop.is_closed():
            return
        done = threading.Event()

        def finished(_: object = None) -> None:
            done.set()
            if self.private:
                self.loop.stop()

        def halt() -> None:
            self.pending.clear()
            task = self.task
            if task is None:
                finished()
            else:
                task.cancel()
                task.add_done_callback(finished)

        try:
            self.loop.call_soon_threadsafe(halt)
        except RuntimeError:  # closed meanwhile
            return
        if wait:
            done.wait(2)

    async def flush(self) -> None:
        while (task := self.task) is not None:
            await asyncio.wait({task})  # not cancelled with the caller


_publisher: _Publisher | None = None
_publisher_lock = threading.Lock()


def set_server_loop(loop: asyncio.AbstractEventLoop) -> None:
    """The serving process publishes from its own loop (the in-memory layer lives there)."""
    global _publisher
    with _publisher_lock:
        if _publisher is not None:  # a pending task must not be left to the garbage collector
            _publisher.stop(wait=False)
        _publisher = _Publisher(loop)


async def flush() -> None:
    """Wait until events queued on this loop have gone out. For short-lived loops (a test's
    `asyncio.run`): cancelling a Redis publish half-way can hang the loop's shutdown."""
    await asyncio.sleep(0)  # on_commit hand-overs from other threads land first
    publisher = _publisher
    if publisher is not None and publisher.loop is asyncio.get_running_loop():
        await publisher.flush()


def shutdown() -> None:
    """Stop publishing from the current loop (a server about to stop, e.g. in tests)."""
    global _publisher
    with _publisher_lock:
        if _publisher is not None:
            _publisher.stop()
        _publisher = None


def _run_private(loop: asyncio.AbstractEventLoop) -> None:
    """A private publishing loop, closed on its own thread once stopped (a loop left to the
    garbage collector would be closed on whichever thread collects it)."""
    try:
        loop.run_forever()
    finally:
        loop.close()


def _get_publisher() -> _Publisher:
    global _publisher
    with _publisher_lock:
        if _publisher is None or not _publisher.loop.is_running():
            loop = asyncio.new_event_loop()
            threading.Thread(
                target=_run_private, args=(loop,), name="openline-publish", daemon=True
            ).start()
            _publisher = _Publisher(loop, private=True)
        return _publisher


def publish_on_commit(*, organization_id: int, event: dict[str, Any]) -> None:
    """Queue ``event`` for members of the organization, sent when the transaction commits.

    ``event`` must contain ids and plain values only; it is JSON-encoded here so an
    unserialisable event fails where it is created, not in a consumer."""
    publish_many_on_commit([(organization_id, event)])


def publish_many_on_commit(events: list[tuple[int, dict[str, Any]]]) -> None:
    """``publish_on_commit`` for a batch of (organization id, event): one JSON check and one
    on-commit callback for all of them, sent in order."""
    if not events:
        return
    checked = json.loads(json.dumps([event for _, event in events]))
    envelopes: list[Envelope] = [
        (
            org_group(organization_id),
            {"type": "openline.event", "event": {"organization_id": organization_id, **event}},
        )
        for (organization_id, _), event in zip(events, checked, strict=True)
    ]
    transaction.on_commit(lambda: _send(envelopes))


# An event for the console hub itself, never forwarded to a browser: this person was
# deactivated or signed out everywhere, and their console sockets close at once (except
# those of ``keep_session``, the browser that asked to sign the others out).
SIGNED_OUT = "member.signed_out"


def publish_signed_out_on_commit(
    *, organization_ids: list[int], user_id: int, keep_session: str | None = None
) -> None:
    event: dict[str, Any] = {"type": SIGNED_OUT, "user_id": user_id}
    if keep_session:
        event["keep_session"] = keep_session
    publish_many_on_commit([(organization_id, event) for organization_id in organization_ids])


def chat_group(conversation_id: int) -> str:
    return f"chat-{conversation_id}"


def publish_to_visitor_on_commit(*, conversation_id: int, event: dict[str, Any]) -> None:
    """Queue ``event`` for the web-chat visitor of one conversation (their own messages and
    the counselor's replies: content goes to that one socket only)."""
    envelope = {"type": "chat.event", "event": json.loads(json.dumps(event))}
    transaction.on_commit(lambda: _send([(chat_group(conversation_id), envelope)]))


def _send(envelopes: list[Envelope]) -> None:
    if _forward is not None:
        _forward(envelopes)
    else:
        fan_out(envelopes)


def fan_out(envelopes: list[Envelope]) -> None:
    """Hand committed events to the channel layer (also events the worker child sent)."""
    if _capture is not None:
        _capture.extend(envelope["event"] for _, envelope in envelopes)
    _get_publisher().put(envelopes)

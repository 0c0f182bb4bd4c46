"""The visitor's WebSocket: /ws/chat/<widget>/?token=...&after=<last message id seen>.

Checked like the HTTP endpoints: the Origin must be one the widget allows (4403) and the
token must be this widget's session (4401). On connect the visitor gets everything after
``after``, so a reload or a dropped network shows what was sent meanwhile, once. Messages
carry a client id; a resend after a reconnect is answered with the stored message."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import weakref
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from openline.chat import services
from openline.chat.models import ChatSession
from openline.core.realtime import chat_group
from openline.messaging.events import visitor_view

logger = logging.getLogger(__name__)

MESSAGES_PER_MINUTE = 30
QUEUE_CHECK_SECONDS = 3.0
TOUCH_SECONDS = 60.0
NEW_ARRIVALS_SECONDS = 0.05


class VisitorConsumer(AsyncJsonWebsocketConsumer):
    session: ChatSession | None = None
    group: str | None = None

    async def connect(self) -> None:
        headers = dict(self.scope.get("headers", []))
        origin = headers.get(b"origin", b"").decode("latin-1")
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        token = query.get("token", [""])[0]
        try:
            after = max(0, int(query.get("after", ["0"])[0]))
        except ValueError:
            after = 0
        public_id = self.scope["url_route"]["kwargs"]["public_id"]
        try:
            self.session, backlog, ended = await self._open(public_id, origin, token, after)
        except services.ChatError as exc:
            await self.close(
                code=4403 if exc.code in ("origin_refused", "unknown_widget") else 4401
            )
            return
        self.group = chat_group(self.session.conversation_id)
        self.sent: list[float] = []
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.send_json({"type": "history", "messages": backlog, "ended": ended})
        self.last_place: dict[str, object] | None = None
        if not ended:
            queue_watch().add(self)

    async def queue_update(self, place: dict[str, object]) -> None:
        """Called by the process's QueueWatch with this chat's place in line."""
        if place != self.last_place:
            self.last_place = place
            await self.send_json(place)
        if not place["waiting"]:
            queue_watch().discard(self)

    @database_sync_to_async
    def _open(
        self, public_id: str, origin: str, token: str, after: int
    ) -> tuple[ChatSession, list[dict[str, object]], bool]:
        widget = services.widget_for(public_id, origin)
        session = services.session_for(token, widget)
        return session, services.history(session, after), session.ended_at is not None

    async def disconnect(self, code: int) -> None:
        queue_watch().discard(self)
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)
        if self.session is not None:  # the visitor was here until now
            await database_sync_to_async(services.sessions_touch)([self.session.pk])

    @classmethod
    async def decode_json(cls, text_data: str) -> Any:
        try:
            return json.loads(text_data)
        except ValueError:
            return None  # answered as a bad request, not a crash

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if not isinstance(content, dict) or self.session is None:
            await self.send_json({"type": "error", "code": "invalid", "message": "Bad request."})
            return
        kind = content.get("type")
        try:
            if kind == "message":
                await self._message(content)
            elif kind == "received":
                await database_sync_to_async(services.mark_received)(
                    session=self.session, ids=content.get("ids")
                )
            elif kind == "end":
                await database_sync_to_async(services.chat_end)(session=self.session)
            else:
                raise services.ChatError("invalid", "Unknown request.")
        except services.ChatError as exc:
            await self.send_json(
                {
                    "type": "error",
                    "code": exc.code,
                    "message": str(exc),
                    "client_id": content.get("client_id"),
                }
            )

    async def _message(self, content: dict[str, Any]) -> None:
        now = time.monotonic()
        self.sent = [t for t in self.sent if now - t < 60]
        if len(self.sent) >= MESSAGES_PER_MINUTE:
            raise services.ChatError(
                "rate_limited", "You are sending messages very fast; wait a moment and try again."
            )
        self.sent.append(now)
        assert self.session is not None
        message, created = await database_sync_to_async(services.visitor_message)(
            session=self.session, body=content.get("body"), client_id=content.get("client_id")
        )
        if not created:  # a resend: answer with what is stored (a new one comes via the group)
            await self.send_json(visitor_view(message))

    async def chat_event(self, message: dict[str, Any]) -> None:
        await self.send_json(message["event"])


class QueueWatch:
    """The waiting visitors' places in line, for every visitor socket of this process: one
    look at the queue every QUEUE_CHECK_SECONDS for all of them (a few queries per inbox, not
    one per visitor, so thousands of waiting sockets stay cheap), one sooner for a socket
    that just connected. Each socket is sent its place when it changes; while waiting, the
    visitors are marked as still here every TOUCH_SECONDS for the abandonment check."""

    def __init__(self) -> None:
        self.members: dict[int, set[VisitorConsumer]] = {}
        self.arrived: set[int] = set()
        self.wake = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def add(self, consumer: VisitorConsumer) -> None:
        assert consumer.session is not None
        conversation_id = consumer.session.conversation_id
        self.members.setdefault(conversation_id, set()).add(consumer)
        self.arrived.add(conversation_id)
        self.wake.set()
        if self.task is None or self.task.done():
            self.task = asyncio.ensure_future(self._run())

    def discard(self, consumer: VisitorConsumer) -> None:
        if consumer.session is None:
            return
        sockets = self.members.get(consumer.session.conversation_id)
        if sockets is not None:
            sockets.discard(consumer)
            if not sockets:
                del self.members[consumer.session.conversation_id]

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_full = touched = loop.time()
        while self.members:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), max(0.0, next_full - loop.time()))
                await asyncio.sleep(NEW_ARRIVALS_SECONDS)  # let a burst of connects gather
            self.wake.clear()
            if loop.time() >= next_full:
                ids, next_full = set(self.members), loop.time() + QUEUE_CHECK_SECONDS
            else:
                ids = self.arrived & set(self.members)
            self.arrived.clear()
            touch = loop.time() - touched >= TOUCH_SECONDS
            try:
                await self._check(ids, touch)
            except Exception:  # the chats go on without updates; try again next round
                logger.exception("queue updates for web chats failed")
            touched = loop.time() if touch else touched

    async def _check(self, ids: set[int], touch: bool) -> None:
        if not ids:
            return
        places = await database_sync_to_async(services.queue_places)(ids)
        waiting = []
        for conversation_id, place in places.items():
            for consumer in list(self.members.get(conversation_id, ())):
                await consumer.queue_update(place)
                if place["waiting"] and consumer.session is not None:
                    waiting.append(consumer.session.pk)
        if touch and waiting:
            await database_sync_to_async(services.sessions_touch)(waiting)


_watches: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, QueueWatch] = (
    weakref.WeakKeyDictionary()
)


def queue_watch() -> QueueWatch:
    """This event loop's QueueWatch (a test's short-lived loop gets its own)."""
    loop = asyncio.get_running_loop()
    watch = _watches.get(loop)
    if watch is None:
        watch = _watches[loop] = QueueWatch()
    return watch

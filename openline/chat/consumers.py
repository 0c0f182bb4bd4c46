"""The visitor's WebSocket: /ws/chat/<widget>/?token=...&after=<last message id seen>.

Checked like the HTTP endpoints: the Origin must be one the widget allows (4403) and the
token must be this widget's session (4401). On connect the visitor gets everything after
``after``, so a reload or a dropped network shows what was sent meanwhile, once. Messages
carry a client id; a resend after a reconnect is answered with the stored message."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from openline.chat import services
from openline.chat.models import ChatSession
from openline.core.realtime import chat_group

logger = logging.getLogger(__name__)

MESSAGES_PER_MINUTE = 30
QUEUE_CHECK_SECONDS = 3.0
TOUCH_SECONDS = 60.0


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
        self.watcher = asyncio.ensure_future(self._watch_queue()) if not ended else None

    async def _watch_queue(self) -> None:
        """While the chat waits: the visitor's place in line and the estimated wait, sent
        whenever they change (checked every QUEUE_CHECK_SECONDS), and a sign of life for
        the abandonment check."""
        try:
            await self._queue_updates()
        except asyncio.CancelledError:
            raise
        except Exception:  # the chat goes on without the updates
            logger.exception("queue updates for a web chat failed")

    async def _queue_updates(self) -> None:
        assert self.session is not None
        last: dict[str, object] | None = None
        touched = time.monotonic()
        while True:
            place = await database_sync_to_async(services.queue_place)(self.session.conversation_id)
            if place != last:
                await self.send_json(place)
                last = place
            if not place["waiting"]:
                return
            if time.monotonic() - touched > TOUCH_SECONDS:
                await database_sync_to_async(services.session_touch)(self.session.pk)
                touched = time.monotonic()
            await asyncio.sleep(QUEUE_CHECK_SECONDS)

    @database_sync_to_async
    def _open(
        self, public_id: str, origin: str, token: str, after: int
    ) -> tuple[ChatSession, list[dict[str, object]], bool]:
        widget = services.widget_for(public_id, origin)
        session = services.session_for(token, widget)
        return session, services.history(session, after), session.ended_at is not None

    async def disconnect(self, code: int) -> None:
        watcher = getattr(self, "watcher", None)
        if watcher is not None:
            watcher.cancel()
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)
        if self.session is not None:  # the visitor was here until now
            await database_sync_to_async(services.session_touch)(self.session.pk)

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
            await self.send_json(services.visitor_view(message))

    async def chat_event(self, message: dict[str, Any]) -> None:
        await self.send_json(message["event"])

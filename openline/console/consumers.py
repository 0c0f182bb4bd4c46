"""The console's WebSocket: one per open console tab.

Events carry ids and states only, never message content; the browser fetches what it
shows over HTTP, where every page checks access again. A subscription is checked like a
page: same Origin, signed in, a member of the organization, a sign-in that has not ended
(idle timeout, 12 hours; both re-checked while connected; a deactivation closes the
member's sockets at once through the hub's ``member.signed_out``),
and each event filtered to what this member may see (``event_visible``). Events reach the
socket through the process's organization hub (``console.hub``)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any
from urllib.parse import urlsplit

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.utils import timezone

from openline.console import hub
from openline.core import security
from openline.core.models import Membership
from openline.core.second_factor import second_factor_satisfied
from openline.core.selectors import current_membership, session_organization_id

# Membership and the sign-in are checked again this often on a live connection, so a removed
# member or an ended sign-in stops receiving events within a minute without a query per event.
RECHECK_SECONDS = 60.0
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403

# Conversation events a counselor receives only for the queue and their own conversations.
_CONVERSATION_SCOPED = ("conversation.", "message.")


def event_visible(event: dict[str, Any], *, user_id: int, can_manage: bool) -> bool:
    """Supervisors and admins see every event of their organization. Others see contact
    and consent events, and conversation events for the queue (unassigned), their own,
    and the one that tells them a conversation left them."""
    if event["type"].startswith("broadcast."):
        return can_manage  # broadcasts are run by supervisors and admins
    if event["type"] == "appointment.cancelled":
        return event.get("notify_user_id") == user_id  # names a patient: the named member only
    if can_manage or not event["type"].startswith(_CONVERSATION_SCOPED):
        return True
    holder = event.get("assigned_to_id")
    return holder is None or user_id in (holder, event.get("previous_assigned_to_id"))


def same_origin(scope: dict[str, Any]) -> bool:
    """The socket rides on the session cookie, so another website must not open it: the
    browser's Origin has to be this server (its Host) or the configured public URL."""
    headers = dict(scope.get("headers") or [])
    origin = headers.get(b"origin", b"").decode("latin-1")
    if not origin:
        return False
    netloc = urlsplit(origin).netloc
    host = headers.get(b"host", b"").decode("latin-1")
    return netloc == host or netloc == urlsplit(settings.PUBLIC_URL).netloc


@database_sync_to_async
def _membership(
    user_id: int, organization_id: int | None = None, session: Any = None
) -> Membership | None:
    """The member's active membership in ``organization_id``, or in the organization
    their session chose (read here: loading a session may query)."""
    if session is not None:
        organization_id = session_organization_id(session)
    return current_membership(user_id, organization_id)


@database_sync_to_async
def _second_factor_passed(user: Any, session: Any) -> bool:
    """A password alone does not open the console of someone with a second factor (or
    whose organization requires one): the session must have passed it, as pages check."""
    return second_factor_satisfied(user, session)


@database_sync_to_async
def _session_over(session_key: str | None, membership: Membership) -> bool:
    """The sign-in behind the socket ended (idle timeout, 12 hours, signed out); the socket
    itself never counts as activity."""
    idle_minutes = membership.organization.idle_timeout_minutes
    return security.stored_session_over(session_key, idle_minutes, timezone.now())


class ConsoleConsumer(AsyncWebsocketConsumer):
    # No channel of its own: events come through the process's hub, so a socket costs
    # the channel layer nothing (no alias by this name exists, so Channels gives None).
    channel_layer_alias = "openline-no-channel"
    organization_id: int | None = None
    recheck: asyncio.Task[None] | None = None
    ending: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        if not same_origin(self.scope):
            await self.close(code=CLOSE_FORBIDDEN)
            return
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        membership = await _membership(user.pk, session=self.scope.get("session"))
        if membership is None:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        if not await _second_factor_passed(user, self.scope.get("session")):
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        self.session_key = getattr(self.scope.get("session"), "session_key", None)
        if await _session_over(self.session_key, membership):
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        self.user_id = membership.user_id
        self.can_manage = membership.can_manage
        self.organization_id = membership.organization_id
        # Subscribed before the browser hears "open": it then reloads what it shows, so
        # nothing published while the page loaded is lost.
        await hub.join(self.organization_id, self)
        await self.accept()
        self.recheck = asyncio.create_task(self._recheck())

    async def disconnect(self, code: int) -> None:
        if self.recheck is not None:
            self.recheck.cancel()
        if self.organization_id is not None:
            await hub.leave(self.organization_id, self)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """The browser only listens; a ping keeps proxies from closing an idle socket."""
        if text_data == "ping":
            await self.send(text_data='{"events":[]}')

    def visible(self, event: dict[str, Any]) -> bool:
        return event_visible(event, user_id=self.user_id, can_manage=self.can_manage)

    async def deliver(self, frame: str) -> None:
        await self.send(text_data=frame)

    def signed_out(self, events: list[dict[str, Any]]) -> bool:
        """The hub heard that people were signed out (deactivated, or everywhere): if this
        socket is one of theirs and not the session they kept, it closes now (4401) rather
        than at the next recheck."""
        mine = any(
            event["user_id"] == self.user_id and event.get("keep_session") != self.session_key
            for event in events
        )
        if not mine or self.ending is not None:
            return False
        self.ending = asyncio.create_task(self._end(CLOSE_UNAUTHENTICATED))
        return True

    async def _recheck(self) -> None:
        while True:
            await asyncio.sleep(RECHECK_SECONDS)
            membership = await _membership(self.user_id, self.organization_id)
            if membership is None or membership.organization_id != self.organization_id:
                await self._end(CLOSE_FORBIDDEN)
                return
            if await _session_over(self.session_key, membership):
                await self._end(CLOSE_UNAUTHENTICATED)
                return
            self.can_manage = membership.can_manage

    async def _end(self, code: int) -> None:
        if self.organization_id is None:  # ended already
            return
        if self.recheck is not None and self.recheck is not asyncio.current_task():
            self.recheck.cancel()
        await hub.leave(self.organization_id, self)
        self.organization_id = None
        with contextlib.suppress(Exception):
            await self.close(code=code)

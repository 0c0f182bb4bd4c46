"""The embedded profile's channel layer: Channels' in-memory layer, with its expiry sweep
run at most once a second.

The stock layer walks every channel and every group membership on each send, group send
and receive (`_clean_expired`). With thousands of visitor sockets each holding a channel
and a group, that walk was most of the web process's CPU per chat message (py-spy: 55–78 %
of the event loop's samples at 2,000 chats). Expiry is measured in minutes (messages) and a
day (group memberships), so sweeping once a second changes nothing anyone can see."""

from __future__ import annotations

import contextlib
import time
from typing import Any

from channels.exceptions import ChannelFull
from channels.layers import InMemoryChannelLayer

CLEAN_EVERY_SECONDS = 1.0


class EmbeddedChannelLayer(InMemoryChannelLayer):
    _cleaned_at = 0.0

    def _clean_expired(self) -> None:
        now = time.monotonic()
        if now - self._cleaned_at < CLEAN_EVERY_SECONDS:
            return
        self._cleaned_at = now
        super()._clean_expired()  # type: ignore[misc]  # private: not in types-channels

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        """As the stock layer's, without a task per member: sending to this layer never
        waits. A group with nobody in it (an organization with no console open in this
        process, the usual case for most events) costs a dictionary lookup."""
        assert isinstance(message, dict), "Message is not a dict"
        self.require_valid_group_name(group)
        self._clean_expired()
        for channel in list(self.groups.get(group, ())):
            with contextlib.suppress(ChannelFull):  # as the stock layer: it misses this one
                await self.send(channel, message)

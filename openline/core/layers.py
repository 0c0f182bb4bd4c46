"""The embedded profile's channel layer: Channels' in-memory layer, with its expiry sweep
run at most once a second.

The stock layer walks every channel and every group membership on each send, group send
and receive (`_clean_expired`). With thousands of visitor sockets each holding a channel
and a group, that walk was most of the web process's CPU per chat message (py-spy: 55–78 %
of the event loop's samples at 2,000 chats). Expiry is measured in minutes (messages) and a
day (group memberships), so sweeping once a second changes nothing anyone can see."""

from __future__ import annotations

import time

from channels.layers import InMemoryChannelLayer

CLEAN_EVERY_SECONDS = 1.0


class EmbeddedChannelLayer(InMemoryChannelLayer):
    _cleaned_at = 0.0

    def _clean_expired(self) -> None:
        now = time.monotonic()
        if now - self._cleaned_at < CLEAN_EVERY_SECONDS:
            return
        self._cleaned_at = now
        super()._clean_expired()

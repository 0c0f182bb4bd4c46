"""The organization hub: one channel-layer membership per process and organization."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from channels.layers import get_channel_layer

from openline.console import hub
from openline.core.realtime import org_group

# Each test runs its own event loop (see the root conftest).
pytestmark = pytest.mark.usefixtures("fresh_channel_layer")


class _Console:
    def __init__(self) -> None:
        self.frames: list[str] = []
        self.got = asyncio.Event()

    def visible(self, event: dict[str, Any]) -> bool:
        return True

    async def deliver(self, frame: str) -> None:
        self.frames.append(frame)
        self.got.set()


def test_a_hub_renews_its_group_membership_before_the_layer_drops_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Layers forget group members after a day (channels-redis' group_expiry); consoles stay
    connected longer. Here the membership is taken away, as expiry would, and the hub's next
    renewal must bring the events back."""
    monkeypatch.setattr(hub, "REJOIN_SECONDS", 0.05)

    async def scenario() -> list[str]:
        layer = get_channel_layer()
        console = _Console()
        await hub.join(4242, console)
        organization_hub = hub._hubs[asyncio.get_running_loop()][4242]
        try:
            await layer.group_discard(org_group(4242), organization_hub.channel)  # "expired"
            await asyncio.sleep(0.3)  # a few renewals
            await layer.group_send(
                org_group(4242), {"type": "openline.event", "event": {"type": "ping"}}
            )
            await asyncio.wait_for(console.got.wait(), 5)
            return console.frames
        finally:
            await hub.leave(4242, console)

    frames = asyncio.run(scenario())
    assert frames == ['{"events":[{"type":"ping"}]}']

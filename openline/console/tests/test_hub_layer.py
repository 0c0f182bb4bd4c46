"""The console hub keeps receiving: the Redis layer's read timeout outlasts channels-redis's
5-second wait (a quiet organization once stopped getting events after 5 s), and a failed
read is tried again instead of ending the hub's events."""

from __future__ import annotations

import asyncio
from typing import Any

from django.conf import settings

from conftest import redis_for_tests


def test_a_quiet_redis_layer_still_delivers_after_five_silent_seconds() -> None:
    from channels_redis.core import RedisChannelLayer

    url = redis_for_tests()
    [host] = settings.CHANNEL_LAYERS["default"].get("CONFIG", {}).get("hosts", [{}]) or [{}]
    # The suite's Redis, with the settings' connection options (as production builds it).
    options = {k: v for k, v in dict(host).items() if k != "address"} if host else {}
    options.setdefault("socket_timeout", settings.REDIS_LAYER_SOCKET_TIMEOUT)
    layer = RedisChannelLayer(hosts=[{"address": url, **options}], prefix="openline-test-quiet")

    async def scenario() -> dict[str, Any]:
        channel = await layer.new_channel()
        await layer.group_add("quiet", channel)
        receiving = asyncio.create_task(layer.receive(channel))
        await asyncio.sleep(7)  # longer than redis-py's default 5 s read timeout
        await layer.group_send("quiet", {"type": "openline.event", "event": {"n": 1}})
        try:
            return await asyncio.wait_for(receiving, 5)
        finally:
            await layer.flush()

    assert asyncio.run(scenario())["event"] == {"n": 1}


def test_the_hub_reads_again_after_a_failed_read(monkeypatch: Any) -> None:
    from openline.console import hub as hub_module

    monkeypatch.setattr(hub_module, "RECEIVE_RETRY_SECONDS", 0.01)
    hub = hub_module.OrganizationHub(organization_id=1)
    hub.channel = "test-channel"

    class FlakyLayer:
        calls = 0

        async def receive(self, channel: str) -> dict[str, Any]:
            FlakyLayer.calls += 1
            if FlakyLayer.calls == 1:
                raise TimeoutError("Timeout reading from socket")
            if FlakyLayer.calls == 2:
                return {"type": "openline.event", "event": {"type": "message.created"}}
            await asyncio.sleep(3600)
            return {}

    async def scenario() -> list[Any]:
        task = asyncio.create_task(hub._receive(FlakyLayer()))
        await asyncio.wait_for(hub.arrived.wait(), 2)
        task.cancel()
        return list(hub.pending)

    assert asyncio.run(scenario()) == [{"type": "message.created"}]

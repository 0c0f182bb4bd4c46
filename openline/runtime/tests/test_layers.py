"""The embedded channel layer: Channels' in-memory layer with its expiry sweep throttled."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from channels.layers import InMemoryChannelLayer

from openline.runtime import layers


def test_the_expiry_sweep_runs_at_most_once_a_second_and_still_delivers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[int] = []
    real = InMemoryChannelLayer._clean_expired

    def counted(self: Any) -> None:
        calls.append(1)
        real(self)

    monkeypatch.setattr(InMemoryChannelLayer, "_clean_expired", counted)
    clock = [1000.0]
    monkeypatch.setattr(layers.time, "monotonic", lambda: clock[0])

    async def run() -> list[dict[str, Any]]:
        layer = layers.EmbeddedChannelLayer()
        names = [await layer.new_channel() for _ in range(50)]
        for name in names:
            await layer.group_add("org-1", name)
        for i in range(20):
            await layer.group_send("org-1", {"type": "x", "n": i})
        assert len(calls) == 1  # not once per send (the stock layer: 20 + 50 adds)
        clock[0] += 1.5
        await layer.group_send("org-1", {"type": "x", "n": 20})
        assert len(calls) == 2
        return [await layer.receive(names[0]) for _ in range(21)]

    received = asyncio.run(run())
    assert [m["n"] for m in received] == list(range(21))


def test_group_send_reaches_every_member_skips_a_full_one_and_an_empty_group_is_fine() -> None:
    async def run() -> tuple[list[Any], list[Any]]:
        layer = layers.EmbeddedChannelLayer(capacity=2)
        full, other = await layer.new_channel(), await layer.new_channel()
        for name in (full, other):
            await layer.group_add("org-1", name)
        await layer.send(full, {"type": "x", "n": -2})
        await layer.send(full, {"type": "x", "n": -1})  # now at capacity
        await layer.group_send("org-2", {"type": "x", "n": 99})  # nobody there
        await layer.group_send("org-1", {"type": "x", "n": 0})
        got_full = [await layer.receive(full) for _ in range(2)]
        got_other = [await layer.receive(other)]
        assert full not in layer.channels and other not in layer.channels  # nothing more
        return got_full, got_other

    got_full, got_other = asyncio.run(run())
    assert [m["n"] for m in got_full] == [-2, -1]
    assert [m["n"] for m in got_other] == [0]

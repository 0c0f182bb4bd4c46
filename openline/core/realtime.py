"""The one helper that publishes real-time events. Only services call it, and only the
transaction's commit sends: a rolled-back change never reaches a screen."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from asgiref.sync import async_to_sync
from django.db import transaction

logger = logging.getLogger(__name__)

# Test hook: when set, events go here (after a JSON round trip) instead of the channel layer.
_capture: list[dict[str, Any]] | None = None
_listeners: list[Callable[[dict[str, Any]], None]] = []


def org_group(organization_id: int) -> str:
    return f"org-{organization_id}"


def publish_on_commit(*, organization_id: int, event: dict[str, Any]) -> None:
    """Queue ``event`` for members of the organization, sent when the transaction commits.

    ``event`` must contain ids and plain values only; it is JSON-encoded here so an
    unserialisable event fails where it is created, not in a consumer."""
    payload = json.loads(json.dumps(event))
    transaction.on_commit(lambda: _send(organization_id, payload))


def _send(organization_id: int, payload: dict[str, Any]) -> None:
    message = {"organization_id": organization_id, **payload}
    if _capture is not None:
        _capture.append(message)
    for listener in _listeners:
        listener(message)
    try:
        from channels.layers import get_channel_layer

        layer = get_channel_layer()
        if layer is not None:
            async_to_sync(layer.group_send)(
                org_group(organization_id), {"type": "openline.event", "event": message}
            )
    except Exception:  # a broken fan-out must never undo a committed change
        logger.exception("real-time publish failed for event %s", payload.get("type"))

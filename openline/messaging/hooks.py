"""Where apps that build on messaging take part in a conversation's life without messaging
importing them (like messaging.answers' readers): each app registers its functions once,
in its AppConfig.ready.

- ``opening_hold_set``: which inboxes hold a new text conversation out of the queue for a
  while, and for how long (the pre-conversation survey). Asked once per inbound batch.
- ``on_held_set``: told (after commit) which conversations were opened held, to start what
  holds them.
- ``close_check_set``: what stands in the way of closing a conversation (a required contact
  form not filled in): a list of plain sentences, empty when nothing does.
- ``on_closed_set``: told (after commit) that a conversation closed (a follow-up survey).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from openline.messaging.models import Conversation

logger = logging.getLogger(__name__)

HoldMinutes = Callable[[Sequence[int]], dict[int, int]]
ConversationsHook = Callable[[list[int]], None]
CloseCheck = Callable[[Conversation], list[str]]

_hold_minutes: dict[str, HoldMinutes] = {}
_on_held: dict[str, ConversationsHook] = {}
_close_checks: dict[str, CloseCheck] = {}
_on_closed: dict[str, ConversationsHook] = {}


def opening_hold_set(name: str, fn: HoldMinutes) -> None:
    _hold_minutes[name] = fn


def on_held_set(name: str, fn: ConversationsHook) -> None:
    _on_held[name] = fn


def close_check_set(name: str, fn: CloseCheck) -> None:
    _close_checks[name] = fn


def on_closed_set(name: str, fn: ConversationsHook) -> None:
    _on_closed[name] = fn


def opening_holds(number_ids: Sequence[int]) -> dict[int, int]:
    """Minutes each of ``number_ids`` holds a new text conversation (absent: not held)."""
    holds: dict[int, int] = {}
    for fn in _hold_minutes.values():
        for number_id, minutes in fn(number_ids).items():
            if minutes > 0:
                holds[number_id] = max(minutes, holds.get(number_id, 0))
    return holds


def conversations_held(conversation_ids: list[int]) -> None:
    """Call after commit. A failing hook is logged: the hold runs out by itself."""
    for name, fn in _on_held.items():
        try:
            fn(conversation_ids)
        except Exception:
            logger.exception("the %s hook failed for held conversations", name)


def close_blockers(conversation: Conversation) -> list[str]:
    return [problem for fn in _close_checks.values() for problem in fn(conversation)]


def conversations_closed(conversation_ids: list[int]) -> None:
    """Call after commit; a failing hook is logged and does not undo the close."""
    for name, fn in _on_closed.items():
        try:
            fn(conversation_ids)
        except Exception:
            logger.exception("the %s hook failed for closed conversations", name)

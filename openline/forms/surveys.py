"""Surveys over text: the pre-conversation survey that holds a new conversation out of the
queue while the texter answers, and the post-conversation survey (registered with
messaging.hooks and messaging.answers in FormsConfig.ready)."""

from __future__ import annotations


def register() -> None:
    """Register the survey hooks (filled in by the survey work)."""

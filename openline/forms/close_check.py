"""What blocks closing a conversation: its inbox's required contact form not complete
(registered with messaging.hooks in FormsConfig.ready)."""

from __future__ import annotations


def register() -> None:
    """Register the close check with messaging.hooks (filled in by the contact-form work)."""

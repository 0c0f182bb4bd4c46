"""Reads about web chats for the console."""

from __future__ import annotations

from openline.chat.models import ChatSession
from openline.messaging.models import Channel, Conversation


def chat_session_of(conversation: Conversation) -> ChatSession | None:
    """A web chat's session (where it came from, the pre-chat answers, the survey); None
    for any other conversation, without a query."""
    if conversation.channel != Channel.CHAT:
        return None
    return ChatSession.objects.filter(conversation_id=conversation.pk).first()

"""Reads about web chats for the console."""

from __future__ import annotations

from typing import TYPE_CHECKING

from openline.chat.models import ChatSession
from openline.messaging.models import Channel, Conversation

if TYPE_CHECKING:
    from openline.forms.models import FormResponse


def chat_session_of(conversation: Conversation) -> ChatSession | None:
    """A web chat's session (where it came from, the pre-chat answers, the survey); None
    for any other conversation, without a query."""
    if conversation.channel != Channel.CHAT:
        return None
    return ChatSession.objects.filter(conversation_id=conversation.pk).first()


def chat_survey_response(session: ChatSession) -> FormResponse | None:
    """The chat's post-chat survey response (forms engine), if the visitor answered one;
    None for an older chat, whose answers are ``session.survey``, or an unanswered one."""
    from openline.forms.models import FormPurpose, FormResponse, ResponseChannel

    if session.survey_at is None:
        return None
    return (
        FormResponse.objects.filter(
            conversation_id=session.conversation_id,
            purpose=FormPurpose.POST_SURVEY,
            channel=ResponseChannel.CHAT,
        )
        .order_by("-id")
        .first()
    )

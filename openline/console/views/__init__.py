"""The counselor console: thin views over the contacts and messaging services.

Every view is wrapped by ``console_view``: signed in, member of an organization (else a
friendly 403), times shown in the organization's zone, and the organization passed in so
each lookup is scoped to it (another organization's ids are simply not found: 404).
Conversation views also check the member may see that conversation
(``with_conversation``)."""

from __future__ import annotations

from openline.console.views.chat import chat_settings, chat_widget_questions
from openline.console.views.contacts import (
    contact_add_another_number,
    contact_detail,
    contact_edit,
    contact_fields,
    contact_new,
    contact_opt_in,
    contact_opt_out,
    contact_start,
    contacts,
    custom_fields,
)
from openline.console.views.conversations import (
    conversation_assume,
    conversation_close,
    conversation_consent_review,
    conversation_detail,
    conversation_join,
    conversation_note,
    conversation_notice,
    conversation_pane,
    conversation_reply,
    conversation_take_over,
    conversation_thread,
    conversation_transfer,
    conversation_typing,
    conversation_unread,
    segments,
)
from openline.console.views.export import conversation_export_csv, conversation_print
from openline.console.views.inbox import home, inbox, queue
from openline.console.views.preferences import preferences, saved_replies, saved_reply_remove
from openline.console.views.settings import organization_settings
from openline.console.views.take_next import conversation_take_next
from openline.console.views.team import team, team_member_deactivate, team_member_reactivate

__all__ = [
    "chat_settings",
    "chat_widget_questions",
    "contact_add_another_number",
    "contact_fields",
    "custom_fields",
    "contact_detail",
    "contact_edit",
    "contact_new",
    "contact_opt_in",
    "contact_opt_out",
    "contact_start",
    "contacts",
    "conversation_assume",
    "conversation_close",
    "conversation_consent_review",
    "conversation_detail",
    "conversation_export_csv",
    "conversation_join",
    "conversation_note",
    "conversation_notice",
    "conversation_pane",
    "conversation_print",
    "conversation_reply",
    "conversation_take_next",
    "conversation_take_over",
    "conversation_thread",
    "conversation_transfer",
    "conversation_typing",
    "conversation_unread",
    "home",
    "inbox",
    "organization_settings",
    "preferences",
    "queue",
    "saved_replies",
    "saved_reply_remove",
    "segments",
    "team",
    "team_member_deactivate",
    "team_member_reactivate",
]

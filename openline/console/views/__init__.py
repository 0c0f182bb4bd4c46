"""The counselor console: thin views over the contacts and messaging services.

Every view is wrapped by ``console_view``: signed in, member of an organization (else a
friendly 403), times shown in the organization's zone, and the organization passed in so
each lookup is scoped to it (another organization's ids are simply not found: 404)."""

from __future__ import annotations

from openline.console.views.contacts import (
    contact_detail,
    contact_edit,
    contact_new,
    contact_opt_in,
    contact_opt_out,
    contact_start,
    contacts,
)
from openline.console.views.conversations import (
    conversation_consent_review,
    conversation_detail,
    conversation_reply,
    conversation_thread,
    segments,
)
from openline.console.views.inbox import home, inbox
from openline.console.views.settings import organization_settings

__all__ = [
    "contact_detail",
    "contact_edit",
    "contact_new",
    "contact_opt_in",
    "contact_opt_out",
    "contact_start",
    "contacts",
    "conversation_consent_review",
    "conversation_detail",
    "conversation_reply",
    "conversation_thread",
    "home",
    "inbox",
    "organization_settings",
    "segments",
]

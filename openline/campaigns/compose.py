"""What each recipient's text says: merge fields filled in, and the opt-out footer on the
first broadcast a person gets from the organization (CTIA: say how to stop at the start
of a program)."""

from __future__ import annotations

import re

from django.conf import settings

from openline.contacts.models import Contact

FOOTER = "\nReply STOP to opt out."

MERGE_FIELDS = {
    "first_name": "the first word of the contact's name",
    "name": "the contact's name",
}
# What an empty name becomes, so a text never reads "Hi ,".
NAME_FALLBACK = "there"

_FIELD = re.compile(r"\{([^{}]*)\}")


class ComposeError(ValueError):
    code = "invalid_body"


def body_check(body: str) -> str:
    """``body`` if every {field} in it is known; ComposeError naming the others."""
    body = (body or "").strip()
    if not body:
        raise ComposeError("the message is empty")
    limit = settings.OPENLINE_MAX_BODY_CHARS - len(FOOTER)
    if len(body) > limit:
        raise ComposeError(
            f"the message is {len(body)} characters; with the opt-out line a first "
            f"broadcast adds, the limit is {limit}"
        )
    unknown = sorted({name for name in _FIELD.findall(body) if name not in MERGE_FIELDS})
    if unknown:
        known = ", ".join("{" + name + "}" for name in MERGE_FIELDS)
        wrong = ", ".join("{" + name + "}" for name in unknown)
        raise ComposeError(f"unknown merge fields {wrong}; use {known}")
    return body


def _values(name: str) -> dict[str, str]:
    name = " ".join(name.split())
    return {"name": name or NAME_FALLBACK, "first_name": name.split(" ")[0] or NAME_FALLBACK}


def body_render(body: str, *, contact: Contact | None = None, name: str = "", footer: bool) -> str:
    """``body`` for one recipient (``contact``'s name, else ``name``)."""
    values = _values(contact.name if contact is not None else name)
    text = _FIELD.sub(lambda match: values[match.group(1)], body)
    return text + FOOTER if footer else text

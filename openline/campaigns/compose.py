"""What each recipient's text says: merge fields filled in, and the opt-out footer on the
first broadcast a person gets from the organization (CTIA: say how to stop at the start
of a program)."""

from __future__ import annotations

import re
from collections.abc import Iterable

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


def body_check(body: str, *, field_keys: Iterable[str] = ()) -> str:
    """``body`` if every {field} in it is a built-in merge field or one of ``field_keys``
    (the organization's custom fields); ComposeError naming the others."""
    body = (body or "").strip()
    if not body:
        raise ComposeError("the message is empty")
    limit = settings.OPENLINE_MAX_BODY_CHARS - len(FOOTER)
    if len(body) > limit:
        raise ComposeError(
            f"the message is {len(body)} characters; with the opt-out line a first "
            f"broadcast adds, the limit is {limit}"
        )
    allowed = {*MERGE_FIELDS, *field_keys}
    unknown = sorted({name for name in _FIELD.findall(body) if name not in allowed})
    if unknown:
        known = ", ".join("{" + name + "}" for name in sorted(allowed))
        wrong = ", ".join("{" + name + "}" for name in unknown)
        raise ComposeError(f"unknown merge fields {wrong}; use {known}")
    return body


def _values(name: str) -> dict[str, str]:
    name = " ".join(name.split())
    return {"name": name or NAME_FALLBACK, "first_name": name.split(" ")[0] or NAME_FALLBACK}


def merge_keys(body: str) -> set[str]:
    """The merge fields ``body`` uses."""
    return set(_FIELD.findall(body))


def body_render(
    body: str,
    *,
    contact: Contact | None = None,
    name: str = "",
    fields: dict[str, str] | None = None,
    footer: bool,
) -> str:
    """``body`` for one recipient: the person's name (``contact``'s, else ``name``) and
    custom field values (``fields``, by key; a missing one is left blank)."""
    if contact is not None:
        person = contact.primary if contact.primary_id else contact
        name = (person.name if person is not None else "") or contact.name
    values = {**(fields or {}), **_values(name)}
    text = _FIELD.sub(lambda match: values.get(match.group(1), ""), body)
    return text + FOOTER if footer else text

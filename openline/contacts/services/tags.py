"""Tags: labels on contacts, created on first use."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import IntegrityError, transaction

from openline.contacts.models import Contact, Tag

MAX_TAG = 60


class TagError(ValueError):
    code = "invalid_tag"


def _clean(name: str) -> str:
    name = " ".join((name or "").split())
    if not name:
        raise TagError("a tag needs a name")
    if len(name) > MAX_TAG:
        raise TagError(f"a tag is at most {MAX_TAG} characters")
    return name


def tag_get_or_create(*, organization_id: int, name: str) -> Tag:
    """The organization's tag called ``name`` (case-insensitive), made if it is new."""
    name = _clean(name)
    tag = Tag.objects.filter(organization_id=organization_id, name__iexact=name).first()
    if tag is not None:
        return tag
    try:
        with transaction.atomic():
            return Tag.objects.create(organization_id=organization_id, name=name)
    except IntegrityError:  # made concurrently
        return Tag.objects.get(organization_id=organization_id, name__iexact=name)


def contact_set_tags(*, contact: Contact, names: Iterable[str]) -> list[Tag]:
    """Replace ``contact``'s tags with ``names`` (new names become tags)."""
    tags = [tag_get_or_create(organization_id=contact.organization_id, name=n) for n in names]
    contact.tags.set(tags)
    return tags

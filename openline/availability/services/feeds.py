"""Private calendar feed addresses."""

from __future__ import annotations

from django.db import transaction

from openline.availability.models import CalendarFeed
from openline.availability.services.common import member
from openline.core.services import audit_record


def calendar_feed_get(*, organization_id: int, user_id: int) -> CalendarFeed:
    """The person's feed, created on first use."""
    feed, _ = CalendarFeed.objects.get_or_create(organization_id=organization_id, user_id=user_id)
    return feed


@transaction.atomic
def calendar_feed_rotate(*, organization_id: int, user_id: int) -> CalendarFeed:
    """A new private address; the old one stops working at once."""
    member(organization_id, user_id)
    CalendarFeed.objects.filter(organization_id=organization_id, user_id=user_id).delete()
    feed = CalendarFeed.objects.create(organization_id=organization_id, user_id=user_id)
    audit_record(
        organization_id=organization_id,
        actor_id=user_id,
        action="calendar_feed.rotate",
        object_type="calendar_feed",
        object_id=feed.pk,
    )
    return feed

"""Number reads, always scoped to an organization."""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet

from openline.messaging.models import ConversationStatus
from openline.providers.models import Number


def number_list(*, organization_id: int) -> QuerySet[Number]:
    """The organization's numbers (each is an inbox) with how many conversations wait."""
    waiting = Q(conversations__status=ConversationStatus.WAITING)
    return (
        Number.objects.filter(organization_id=organization_id)
        .annotate(waiting_count=Count("conversations", filter=waiting))
        .order_by("-is_active", "id")
    )


def number_choices(*, organization_id: int) -> QuerySet[Number]:
    """Names and numbers only (for filters): no counts, no credentials to decrypt."""
    return (
        Number.objects.filter(organization_id=organization_id)
        .only("id", "name", "e164", "is_active", "organization_id")
        .order_by("-is_active", "id")
    )


def number_first(*, organization_id: int) -> Number | None:
    return (
        Number.objects.filter(organization_id=organization_id).order_by("-is_active", "id").first()
    )

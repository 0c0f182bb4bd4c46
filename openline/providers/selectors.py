"""Number reads, always scoped to an organization."""

from __future__ import annotations

from django.db.models import QuerySet

from openline.providers.models import Number


def number_choices(*, organization_id: int) -> QuerySet[Number]:
    """Names and numbers only (for filters): no counts, no credentials to decrypt."""
    return (
        Number.objects.filter(organization_id=organization_id)
        .only("id", "name", "e164", "is_active", "organization_id")
        .order_by("-is_active", "id")
    )

from __future__ import annotations

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from openline.core.models import Membership
from openline.core.selectors import active_memberships


def organization(request: HttpRequest) -> dict[str, object]:
    return {
        "organization": getattr(request, "organization", None),
        "membership": getattr(request, "membership", None),
        "member_of": member_of(request),
    }


def member_of(request: HttpRequest) -> SimpleLazyObject | list[Membership]:
    """The signed-in person's active memberships (the header's organization switcher):
    the ones OrganizationMiddleware loaded, else queried only if a template uses them."""
    loaded = getattr(request, "memberships", None)
    if loaded is not None:
        return list(loaded)
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return []
    user_id = user.pk
    return SimpleLazyObject(lambda: active_memberships(user_id))

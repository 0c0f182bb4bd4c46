from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from openline.core.models import Membership


class OrganizationMiddleware:
    """Puts the signed-in user's membership (and so organization) on the request."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.membership = None  # type: ignore[attr-defined]
        request.organization = None  # type: ignore[attr-defined]
        if request.user.is_authenticated:
            membership = (
                Membership.objects.select_related("organization")
                .filter(user=request.user)
                .order_by("id")
                .first()
            )
            if membership is not None:
                request.membership = membership  # type: ignore[attr-defined]
                request.organization = membership.organization  # type: ignore[attr-defined]
        return self.get_response(request)

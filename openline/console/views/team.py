"""The team page: members, roles and how many conversations each may hold at once."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from openline.core.models import Membership, Organization, Role
from openline.core.services import MAX_CONVERSATION_LIMIT, organization_set_conversation_limits
from openline.core.web import console_view


def _number(raw: str | None) -> int | None:
    raw = (raw or "").strip()
    if not raw:
        return None
    if not raw.isdigit():
        raise ValidationError(f"“{raw[:20]}” is not a whole number")
    return int(raw)


@console_view
def team(request: HttpRequest, organization: Organization) -> HttpResponse:
    if request.membership.role != Role.ADMIN:  # type: ignore[attr-defined]
        return render(request, "console/forbidden.html", status=403)
    members = list(
        Membership.objects.filter(organization=organization)
        .select_related("user")
        .order_by("user__display_name", "user__email")
    )
    error = ""
    if request.method == "POST":
        try:
            default = _number(request.POST.get("default_limit"))
            if default is None:
                raise ValidationError("the default limit is required")
            overrides = {m.pk: _number(request.POST.get(f"limit_{m.pk}")) for m in members}
            organization_set_conversation_limits(
                organization=organization,
                actor_id=request.user.pk,
                default=default,
                overrides=overrides,
            )
        except ValidationError as exc:
            error = " ".join(exc.messages)
        else:
            messages.success(request, "Conversation limits saved.")
            return redirect("console:team")
    context = {"members": members, "error": error, "max_limit": MAX_CONVERSATION_LIMIT}
    return render(request, "console/team.html", context, status=422 if error else 200)

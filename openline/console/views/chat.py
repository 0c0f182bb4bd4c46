"""Web chat settings: the inboxes' online switch (supervisors and admins) and the widgets
an organization embeds on its websites (admins)."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone

from openline.chat.models import ChatSession, ChatWidget
from openline.chat.services import ChatError, inbox_set_chat_online, widget_create
from openline.console.views.common import console_view
from openline.core.models import Organization, Role
from openline.providers.models import Number


@console_view
def chat_settings(request: HttpRequest, organization: Organization) -> HttpResponse:
    membership = request.membership  # type: ignore[attr-defined]
    if not membership.can_manage:
        return render(request, "console/forbidden.html", status=403)
    is_admin = membership.role == Role.ADMIN
    error = ""
    form = request.POST if request.method == "POST" else {}
    if request.method == "POST":
        action = request.POST.get("action")
        try:
            if action == "availability":
                number_id = int(request.POST.get("number", "0") or 0)
                online = request.POST.get("online") == "1"
                inbox_set_chat_online(
                    organization_id=organization.pk,
                    actor_id=request.user.pk,
                    number_id=number_id,
                    online=online,
                )
                messages.success(request, "Chat is open." if online else "Chat is closed.")
                return redirect("console:chat_settings")
            if action == "create" and is_admin:
                widget_create(
                    organization_id=organization.pk,
                    actor_id=request.user.pk,
                    number_id=int(request.POST.get("number", "0") or 0),
                    display_name=request.POST.get("display_name", ""),
                    allowed_origins=request.POST.get("allowed_origins", "").splitlines(),
                    greeting=request.POST.get("greeting", ""),
                    offline_text=request.POST.get("offline_text", ""),
                    color=request.POST.get("color", "#1f5fbf"),
                )
                messages.success(request, "Widget created. Paste its snippet into your website.")
                return redirect("console:chat_settings")
            error = "That action is not available to you."
        except (ValidationError, ChatError, ValueError) as exc:
            error = " ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
    context = {
        "inboxes": Number.objects.filter(organization=organization, is_active=True).order_by("pk"),
        "widgets": ChatWidget.objects.filter(organization=organization)
        .select_related("number")
        .order_by("pk"),
        "is_admin": is_admin,
        "error": error,
        "form": form,
        "base_url": request.build_absolute_uri("/").rstrip("/"),
        "abandoned_week": ChatSession.objects.filter(
            widget__organization=organization,
            abandoned=True,
            ended_at__gte=timezone.now() - timedelta(days=7),
        ).count(),
    }
    return render(request, "console/chat_settings.html", context, status=422 if error else 200)

"""A member's notification preferences and the organization's saved replies."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from openline.alerts.services import alert_readiness
from openline.console import selectors
from openline.console.forms import PreferencesForm, SavedReplyForm
from openline.console.models import SavedReply
from openline.console.services import (
    membership_set_preferences,
    saved_reply_delete,
    saved_reply_save,
)
from openline.core.models import Membership, Organization
from openline.core.web import console_view


def _membership(request: HttpRequest) -> Membership:
    return request.membership  # type: ignore[attr-defined,no-any-return]


@console_view
def preferences(request: HttpRequest, organization: Organization) -> HttpResponse:
    membership = _membership(request)
    form = PreferencesForm(request.POST or None, instance=membership)
    if request.method == "POST" and form.is_valid():
        membership_set_preferences(
            membership=membership, **{name: form.cleaned_data[name] for name in form.fields}
        )
        messages.success(request, "Preferences saved.")
        return redirect("console:preferences")
    missing = alert_readiness(organization_id=organization.pk, user_id=request.user.pk)
    return render(request, "console/preferences.html", {"form": form, "missing": missing})


def _reply_or_none(organization: Organization, reply_id: int | None) -> SavedReply | None:
    if reply_id is None:
        return None
    try:
        return selectors.saved_reply_get(organization_id=organization.pk, reply_id=reply_id)
    except SavedReply.DoesNotExist:
        raise Http404("No such saved reply") from None


@console_view
def saved_replies(
    request: HttpRequest, organization: Organization, reply_id: int | None = None
) -> HttpResponse:
    """Everyone uses saved replies; supervisors and admins write them."""
    reply = _reply_or_none(organization, reply_id)
    can_edit = _membership(request).can_manage
    form = SavedReplyForm(request.POST or None, instance=reply) if can_edit else None
    if request.method == "POST":
        if form is None:
            return render(request, "console/forbidden.html", status=403)
        if form.is_valid():
            try:
                saved_reply_save(
                    organization_id=organization.pk,
                    actor_id=request.user.pk,
                    reply=reply,
                    **form.cleaned_data,
                )
            except ValidationError as exc:
                form.add_error("shortcut", exc)
            else:
                messages.success(request, "Saved reply saved.")
                return redirect("console:saved_replies")
    context = {
        "replies": selectors.saved_reply_list(organization_id=organization.pk),
        "form": form,
        "editing": reply,
        "can_edit": can_edit,
    }
    status = 422 if request.method == "POST" else 200
    return render(request, "console/saved_replies.html", context, status=status)


@console_view
@require_POST
def saved_reply_remove(
    request: HttpRequest, organization: Organization, reply_id: int
) -> HttpResponse:
    if not _membership(request).can_manage:
        return render(request, "console/forbidden.html", status=403)
    reply = _reply_or_none(organization, reply_id)
    assert reply is not None
    saved_reply_delete(reply=reply, actor_id=request.user.pk)
    messages.success(request, "Saved reply deleted.")
    return redirect("console:saved_replies")

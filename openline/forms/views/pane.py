"""Saving the contact form and the risk assessment from a conversation's pane. htmx gets
the form's section back (422 with each message beside its question); the autosave that
runs as answers change gets a one-line status, or the section with the problems."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from openline.core.models import Membership, Organization
from openline.core.web import console_view, is_htmx
from openline.forms.filling import (
    AnswersError,
    FormsUnavailable,
    PaneForm,
    latest_response,
    pane_form,
    pane_form_save,
)
from openline.forms.models import FormPurpose, ResponseStatus
from openline.messaging.models import Conversation
from openline.messaging.services.assignment import Access
from openline.messaging.web import with_conversation

SECTION = "forms/pane/_form.html"


def _raw(request: HttpRequest) -> dict[str, list[str]]:
    """Each question's submitted values (inputs are named ``f-<key>``), blanks left out."""
    raw = {}
    for name in request.POST:
        if name.startswith("f-"):
            values = [v for v in request.POST.getlist(name) if v.strip()]
            if values:
                raw[name[2:]] = values
    return raw


def _save(request: HttpRequest, conversation: Conversation, purpose: str) -> HttpResponse:
    membership: Membership = request.membership  # type: ignore[attr-defined]
    autosave = request.GET.get("autosave") == "1"
    raw = _raw(request)
    try:
        item = pane_form_save(
            membership=membership,
            conversation=conversation,
            purpose=purpose,
            raw=raw,
            complete="complete" in request.POST,
        )
    except FormsUnavailable as exc:
        return render(request, "console/_pane_error.html", {"error": str(exc)}, status=403)
    except AnswersError as exc:
        return _refused(request, conversation, purpose, raw, exc.errors, autosave=autosave)
    if autosave:
        return HttpResponse("Draft saved." if item.status != ResponseStatus.COMPLETE else "Saved.")
    item.notice = "Complete." if item.status == ResponseStatus.COMPLETE else "Saved."
    if not is_htmx(request):
        return redirect("console:conversation", conversation_id=conversation.pk)
    return _section(request, conversation, item)


def _refused(
    request: HttpRequest,
    conversation: Conversation,
    purpose: str,
    raw: dict[str, list[str]],
    errors: dict[str, str],
    *,
    autosave: bool,
) -> HttpResponse:
    response = latest_response(conversation_id=conversation.pk, purpose=purpose)
    item = pane_form(conversation=conversation, purpose=purpose, editable=True, response=response)
    if item is None:  # the form went out of use meanwhile
        return render(request, "console/_pane_error.html", {"error": "No such form."}, status=404)
    item.values, item.errors = raw, errors
    page = _section(request, conversation, item, status=422)
    if autosave:
        page["HX-Retarget"] = f"#form-{purpose}-{conversation.pk}"
        page["HX-Reswap"] = "outerHTML"
    return page


def _section(
    request: HttpRequest, conversation: Conversation, item: PaneForm, status: int = 200
) -> HttpResponse:
    template = SECTION if is_htmx(request) else "forms/pane/form_page.html"
    context = {"conversation": conversation, "item": item}
    return render(request, template, context, status=status)


@console_view
@require_POST
@with_conversation
def contact_form_save(
    request: HttpRequest, organization: Organization, conversation: Conversation, access: Access
) -> HttpResponse:
    return _save(request, conversation, FormPurpose.CONTACT)


@console_view
@require_POST
@with_conversation
def risk_assessment_save(
    request: HttpRequest, organization: Organization, conversation: Conversation, access: Access
) -> HttpResponse:
    return _save(request, conversation, FormPurpose.RISK)

"""Proving who did what: the audit log page and its CSV (admins), who read a conversation
(supervisors and admins) and the organization's API tokens (admins)."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from datetime import tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from openline.console.audit_forms import ApiTokenForm, AuditFilterForm
from openline.contacts.csvfile import csv_safe
from openline.core.audit import (
    action_label,
    api_tokens,
    audit_events,
    conversation_readers,
    member_names,
)
from openline.core.models import ApiToken, AuditEvent, Membership, Organization, Role
from openline.core.services import (
    ApiTokenError,
    api_token_create,
    api_token_revoke,
    audit_record,
)
from openline.core.signins import browser_name
from openline.core.streaming import csv_stream
from openline.core.web import FORBIDDEN_TEMPLATE, console_view, managers_only, paginate
from openline.messaging.models import Conversation

EXPORT_CHUNK = 2000
EXPORT_COLUMNS = [
    "time",
    "person",
    "email",
    "api_token",
    "action",
    "action_label",
    "object_type",
    "object_id",
    "detail",
    "ip_address",
    "user_agent",
]


def admins_only(request: HttpRequest) -> HttpResponse | None:
    """The "forbidden" page for anyone but an admin (``if refused := admins_only(request)``)."""
    if request.membership.role != Role.ADMIN:  # type: ignore[attr-defined]
        return render(request, FORBIDDEN_TEMPLATE, status=403)
    return None


def _filter_form(request: HttpRequest, organization: Organization, data: Any) -> AuditFilterForm:
    members = list(
        Membership.objects.filter(organization=organization)
        .select_related("user")
        .order_by("user__display_name", "user__email")
    )
    return AuditFilterForm(data, members=members)


def who_did_it(event: AuditEvent) -> str:
    if event.actor is not None:
        return str(event.actor)
    if event.api_token is not None:
        return f"API token {event.api_token.name or event.api_token.prefix}"
    return "OpenLine" if event.api_token_id is None else "A deleted API token"


def _rows(organization: Organization, events: Iterable[AuditEvent]) -> list[dict[str, Any]]:
    events = list(events)
    people = member_names(organization.pk, (e.object_id for e in events if e.object_type == "user"))
    return [
        {
            "event": event,
            "who": who_did_it(event),
            "label": action_label(event.action),
            "conversation_id": event.object_id if event.object_type == "conversation" else "",
            "person": people.get(event.object_id, "") if event.object_type == "user" else "",
            "browser": browser_name(event.user_agent) if event.user_agent else "",
        }
        for event in events
    ]


@console_view
@require_GET
def audit_log(request: HttpRequest, organization: Organization) -> HttpResponse:
    if refused := admins_only(request):
        return refused
    form = _filter_form(request, organization, request.GET)
    if not form.is_valid():
        context: dict[str, Any] = {"form": form, "page": None, "rows": []}
        return render(request, "console/audit/log.html", context, status=422)
    events = audit_events(organization.pk, **form.filters(organization.timezone))
    page = paginate(request, events)
    context = {"form": form, "page": page, "rows": _rows(organization, page.object_list)}
    return render(request, "console/audit/log.html", context)


def _export_rows(events: Iterator[AuditEvent], zone: tzinfo) -> Iterator[list[str]]:
    """Read after the view has returned (outside its time zone): each time names its zone."""
    for event in events:
        actor = event.actor
        yield [
            csv_safe(cell)
            for cell in (
                event.created_at.astimezone(zone).isoformat(),
                str(actor) if actor else "",
                actor.email if actor else "",
                event.api_token.name or event.api_token.prefix if event.api_token else "",
                event.action,
                action_label(event.action),
                event.object_type,
                event.object_id,
                event.detail,
                event.ip_address or "",
                event.user_agent,
            )
        ]


@console_view
@require_POST
def audit_export(
    request: HttpRequest, organization: Organization
) -> HttpResponse | StreamingHttpResponse:
    """A POST (a button, not a link), like every export here: it is audited, and neither
    another site nor a prefetching browser can make one happen. Streamed, a chunk of rows at
    a time, in the organization's time zone."""
    if refused := admins_only(request):
        return refused
    form = _filter_form(request, organization, request.POST)
    if not form.is_valid():
        context: dict[str, Any] = {"form": form, "page": None, "rows": []}
        return render(request, "console/audit/log.html", context, status=422)
    with transaction.atomic():
        audit_record(
            organization_id=organization.pk,
            actor_id=request.user.pk,
            action="audit.export",
            object_type="audit_log",
            detail=form.description(),
        )
    events = audit_events(organization.pk, **form.filters(organization.timezone))
    rows = _export_rows(events.iterator(chunk_size=EXPORT_CHUNK), ZoneInfo(organization.timezone))
    lines = itertools.chain([EXPORT_COLUMNS], rows)
    response = StreamingHttpResponse(csv_stream(lines), content_type="text/csv; charset=utf-8")
    day = timezone.localdate().isoformat()
    response["Content-Disposition"] = f'attachment; filename="audit-log-{day}.csv"'
    return response


@console_view
@require_GET
def conversation_readers_view(
    request: HttpRequest, organization: Organization, conversation_id: int
) -> HttpResponse:
    """Who read this conversation's transcript: names and times, never its text."""
    if refused := managers_only(request):
        return refused
    if not Conversation.objects.filter(organization=organization, pk=conversation_id).exists():
        raise Http404("no such conversation")
    readers = conversation_readers(organization.pk, conversation_id)
    return render(request, "console/audit/_readers.html", {"readers": readers})


# --- API tokens ------------------------------------------------------------------------------


def _tokens_page(
    request: HttpRequest, organization: Organization, form: ApiTokenForm, status: int = 200
) -> HttpResponse:
    context = {"form": form, "tokens": api_tokens(organization.pk)}
    return render(request, "console/audit/tokens.html", context, status=status)


@console_view
@require_http_methods(["GET", "POST"])
def tokens(request: HttpRequest, organization: Organization) -> HttpResponse:
    """The organization's tokens; a new one's secret is shown on the answer to its form,
    once (only its hash is kept), and never again."""
    if refused := admins_only(request):
        return refused
    if request.method != "POST":
        return _tokens_page(request, organization, ApiTokenForm())
    form = ApiTokenForm(request.POST)
    if not form.is_valid():
        return _tokens_page(request, organization, form, status=422)
    try:
        token, secret = api_token_create(
            organization=organization,
            name=form.cleaned_data["name"],
            scope=form.cleaned_data["scope"],
            created_by_id=request.user.pk,
        )
    except ValidationError as exc:
        form.add_error("name", " ".join(exc.messages))
        return _tokens_page(request, organization, form, status=422)
    response = render(
        request, "console/audit/token_created.html", {"token": token, "secret": secret}
    )
    response["Cache-Control"] = "no-store"  # the secret must not outlive this page
    return response


def _token_or_404(organization: Organization, token_id: int) -> ApiToken:
    token = api_tokens(organization.pk).filter(pk=token_id).first()
    if token is None:
        raise Http404("no such token")
    return token


@console_view
@require_http_methods(["GET", "POST"])
def token_revoke(request: HttpRequest, organization: Organization, token_id: int) -> HttpResponse:
    """GET asks to confirm; POST revokes (a refused request from then on)."""
    if refused := admins_only(request):
        return refused
    token = _token_or_404(organization, token_id)
    if request.method != "POST":
        return render(request, "console/audit/token_revoke.html", {"token": token})
    try:
        api_token_revoke(
            organization_id=organization.pk, token_id=token.pk, actor_id=request.user.pk
        )
    except ApiTokenError as exc:
        raise Http404(str(exc)) from None
    messages.success(request, f"Revoked “{token.name or token.prefix}”: it no longer works.")
    return redirect("audit:tokens")

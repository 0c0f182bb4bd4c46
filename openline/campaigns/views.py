"""Broadcast pages: the list, composing a draft, its preview and people, sending or
scheduling, and the live progress with the per-message log (and its CSV export)."""

from __future__ import annotations

import csv
from typing import Any

from django.contrib import messages
from django.db import transaction
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from openline.billing.services import InsufficientCredits
from openline.campaigns.audience import AudienceError, audience_contacts
from openline.campaigns.compose import ComposeError, body_render
from openline.campaigns.forms import BroadcastForm, ScheduleForm
from openline.campaigns.models import Broadcast, BroadcastStatus, Segment
from openline.campaigns.selectors import (
    BUCKETS,
    broadcast_log,
    broadcast_progress,
    broadcasts_for,
)
from openline.campaigns.services import (
    BroadcastError,
    broadcast_cancel,
    broadcast_create,
    broadcast_pause,
    broadcast_preview,
    broadcast_queue,
    broadcast_resume,
    broadcast_set_people,
    not_monitored_answer,
    segment_delete,
    segment_save,
)
from openline.campaigns.window import sending_window
from openline.contacts.csvfile import csv_safe
from openline.contacts.models import Contact
from openline.contacts.services.fields import contact_field_texts
from openline.core.models import Organization
from openline.core.services import audit_record
from openline.core.web import console_view, paginate, sentence

CONTROLS = {"pause": broadcast_pause, "resume": broadcast_resume, "cancel": broadcast_cancel}


def _managers_only(request: HttpRequest) -> HttpResponse | None:
    if not request.membership.can_manage:  # type: ignore[attr-defined]
        return render(request, "console/forbidden.html", status=403)
    return None


def _broadcast_or_404(organization: Organization, broadcast_id: int) -> Broadcast:
    return get_object_or_404(
        Broadcast.objects.select_related("reservation", "created_by"),
        organization_id=organization.pk,
        pk=broadcast_id,
    )


@console_view
@require_GET
def broadcast_list(request: HttpRequest, organization: Organization) -> HttpResponse:
    if refused := _managers_only(request):
        return refused
    page = paginate(request, broadcasts_for(organization_id=organization.pk))
    segments = Segment.objects.filter(organization_id=organization.pk)
    return render(request, "campaigns/list.html", {"page": page, "segments": segments})


@console_view
@require_http_methods(["GET", "POST"])
def broadcast_new(request: HttpRequest, organization: Organization) -> HttpResponse:
    if refused := _managers_only(request):
        return refused
    form = BroadcastForm(
        request.POST if request.method == "POST" else None, organization_id=organization.pk
    )
    if form.is_bound and form.is_valid():
        try:
            broadcast = broadcast_create(
                organization_id=organization.pk,
                actor_id=request.user.pk,
                name=form.cleaned_data["name"],
                body=form.cleaned_data["body"],
                audience=form.audience(),
                number_ids=[number.pk for number in form.cleaned_data["numbers"]],
                reply_mode=form.cleaned_data["reply_mode"],
                not_monitored_text=form.cleaned_data["not_monitored_text"],
            )
        except ComposeError as exc:
            form.add_error("body", sentence(exc))
        except (AudienceError, BroadcastError) as exc:
            form.add_error(None, sentence(exc))
        else:
            return redirect("campaigns:detail", broadcast_id=broadcast.pk)
    status = 422 if form.errors else 200
    return render(request, "campaigns/new.html", {"form": form}, status=status)


def _detail(
    request: HttpRequest, organization: Organization, broadcast: Broadcast, **extra: Any
) -> HttpResponse:
    context: dict[str, Any] = {
        "broadcast": broadcast,
        "numbers": list(broadcast.numbers.all()),
        "buckets": BUCKETS,
        "not_monitored_answer": not_monitored_answer(broadcast),
        **extra,
    }
    if broadcast.status == BroadcastStatus.DRAFT:
        context["preview"] = broadcast_preview(broadcast=broadcast)
        context["schedule_form"] = extra.get("schedule_form") or ScheduleForm()
        context["people"] = paginate(
            request,
            audience_contacts(
                organization_id=organization.pk, audience=broadcast.audience
            ).order_by("name", "pk"),
        )
        first = next(iter(context["people"]), None)
        if first is not None:
            fields = contact_field_texts(contact=first)
            text = body_render(broadcast.body, contact=first, fields=fields, footer=True)
            context["sample"] = (first, text)
        removed = broadcast.audience.get("remove_contacts") or []
        context["removed"] = Contact.objects.filter(
            organization_id=organization.pk, pk__in=removed
        ).order_by("name", "pk")
    else:
        status_filter = request.GET.get("status", "")
        if status_filter not in BUCKETS:
            status_filter = ""
        context["progress"] = broadcast_progress(broadcast_id=broadcast.pk)
        context["status_filter"] = status_filter
        context["log"] = paginate(
            request, broadcast_log(broadcast_id=broadcast.pk, status=status_filter)
        )
        window, now = sending_window(organization_id=organization.pk), timezone.now()
        for row in context["log"]:
            row.outside_hours = row.status == "pending" and not window.is_open(now, row.time_zone)
    status = 422 if extra.get("error") else 200
    return render(request, "campaigns/detail.html", context, status=status)


@console_view
@require_GET
def broadcast_detail(
    request: HttpRequest, organization: Organization, broadcast_id: int
) -> HttpResponse:
    if refused := _managers_only(request):
        return refused
    return _detail(request, organization, _broadcast_or_404(organization, broadcast_id))


@console_view
@require_POST
def broadcast_people(
    request: HttpRequest, organization: Organization, broadcast_id: int
) -> HttpResponse:
    """Leave one person out of a draft, or put them back."""
    if refused := _managers_only(request):
        return refused
    broadcast = _broadcast_or_404(organization, broadcast_id)
    try:
        contact_id = int(request.POST.get("contact_id", ""))
        broadcast_set_people(
            broadcast=broadcast,
            actor_id=request.user.pk,
            contact_id=contact_id,
            included=request.POST.get("include") == "1",
        )
    except ValueError as exc:  # BroadcastError, AudienceError, a bad id
        return _detail(request, organization, broadcast, error=sentence(exc))
    page = request.POST.get("page", "")
    url = reverse("campaigns:detail", kwargs={"broadcast_id": broadcast.pk})
    return redirect(f"{url}?page={page}#people" if page.isdigit() else f"{url}#people")


@console_view
@require_POST
def segment_save_view(
    request: HttpRequest, organization: Organization, broadcast_id: int
) -> HttpResponse:
    """Save a draft's audience under a name, to start later broadcasts from."""
    if refused := _managers_only(request):
        return refused
    broadcast = _broadcast_or_404(organization, broadcast_id)
    try:
        segment = segment_save(
            organization_id=organization.pk,
            actor_id=request.user.pk,
            name=request.POST.get("name", ""),
            audience=broadcast.audience,
        )
    except (AudienceError, BroadcastError) as exc:
        return _detail(request, organization, broadcast, error=sentence(exc))
    messages.success(request, f"Saved as “{segment.name}”.")
    return redirect("campaigns:detail", broadcast_id=broadcast.pk)


@console_view
@require_POST
def segment_delete_view(
    request: HttpRequest, organization: Organization, segment_id: int
) -> HttpResponse:
    if refused := _managers_only(request):
        return refused
    segment = get_object_or_404(Segment, organization_id=organization.pk, pk=segment_id)
    segment_delete(segment=segment, actor_id=request.user.pk)
    messages.success(request, f"Deleted the saved audience “{segment.name}”.")
    return redirect("campaigns:list")


@console_view
@require_POST
def broadcast_send(
    request: HttpRequest, organization: Organization, broadcast_id: int
) -> HttpResponse:
    if refused := _managers_only(request):
        return refused
    broadcast = _broadcast_or_404(organization, broadcast_id)
    form = ScheduleForm(request.POST)
    scheduling = request.POST.get("when") == "later"
    if not form.is_valid():
        return _detail(
            request, organization, broadcast, schedule_form=form, error="Check the time."
        )
    when = form.cleaned_data["scheduled_for"] if scheduling else None
    if scheduling and (when is None or when <= timezone.now()):
        form.add_error("scheduled_for", "Pick a time in the future.")
        return _detail(
            request, organization, broadcast, schedule_form=form, error="Check the time."
        )
    try:
        broadcast = broadcast_queue(
            broadcast=broadcast, actor_id=request.user.pk, scheduled_for=when
        )
    except InsufficientCredits as exc:
        return _detail(request, organization, broadcast, error=sentence(exc), shortfall=exc)
    except BroadcastError as exc:
        return _detail(request, organization, broadcast, error=sentence(exc))
    if broadcast.status == BroadcastStatus.SCHEDULED:
        messages.success(request, "Scheduled.")
    else:
        messages.success(request, "Sending.")
    return redirect("campaigns:detail", broadcast_id=broadcast.pk)


@console_view
@require_POST
def broadcast_control(
    request: HttpRequest, organization: Organization, broadcast_id: int, action: str
) -> HttpResponse:
    if refused := _managers_only(request):
        return refused
    broadcast = _broadcast_or_404(organization, broadcast_id)
    control = CONTROLS.get(action)
    if control is None:
        return HttpResponse("unknown action", status=404)
    try:
        control(broadcast=broadcast, actor_id=request.user.pk)
    except BroadcastError as exc:
        messages.error(request, sentence(exc))
    return redirect("campaigns:detail", broadcast_id=broadcast.pk)


@console_view
@require_GET
def broadcast_progress_part(
    request: HttpRequest, organization: Organization, broadcast_id: int
) -> HttpResponse:
    """The progress bar alone, for the live refresh."""
    if refused := _managers_only(request):
        return refused
    broadcast = _broadcast_or_404(organization, broadcast_id)
    context = {
        "broadcast": broadcast,
        "progress": broadcast_progress(broadcast_id=broadcast.pk),
        "buckets": BUCKETS,
    }
    return render(request, "campaigns/_progress.html", context)


class _Echo:
    def write(self, value: str) -> str:
        return value


LOG_COLUMNS = [
    "recipient", "phone", "from", "queued_at", "status", "segments", "credits", "error",
]  # fmt: skip


def log_row(row: Any) -> list[str]:
    message = row.message
    if row.status != "queued":
        status, error = row.status, row.reason
    elif message is None:
        status, error = "sent", ""
    else:
        status = message.status
        error = f"{message.error_code} {message.error_message}".strip()
    return [
        csv_safe(row.contact.label),
        row.phone,
        row.number.e164,
        row.queued_at.isoformat() if row.queued_at else "",
        status,
        str(row.segments),
        str(row.credits),
        csv_safe(error),
    ]


@console_view
@require_GET
def broadcast_log_csv(
    request: HttpRequest, organization: Organization, broadcast_id: int
) -> HttpResponse | StreamingHttpResponse:
    if refused := _managers_only(request):
        return refused
    broadcast = _broadcast_or_404(organization, broadcast_id)
    with transaction.atomic():
        audit_record(
            organization_id=organization.pk,
            actor_id=request.user.pk,
            action="broadcast.export_log",
            object_type="broadcast",
            object_id=broadcast.pk,
        )
    writer = csv.writer(_Echo())
    rows = broadcast_log(broadcast_id=broadcast.pk).iterator(chunk_size=2000)

    def lines() -> Any:
        yield writer.writerow(LOG_COLUMNS)
        for row in rows:
            yield writer.writerow(log_row(row))

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="broadcast-{broadcast.pk}-log.csv"'
    return response

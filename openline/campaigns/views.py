"""Broadcast pages: the list, composing a draft (a text, or a call playing a recording or
reading a text aloud), its preview and people, sending or scheduling, and the live progress
with the per-message log (and its CSV export). Also the recordings: uploaded here by
managers, fetched by the provider from a public address whose token is the credential."""

from __future__ import annotations

import itertools
from typing import Any

from django.contrib import messages
from django.db import transaction
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    JsonResponse,
    StreamingHttpResponse,
)
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import (
    require_GET,
    require_http_methods,
    require_POST,
    require_safe,
)

from openline.billing.services import InsufficientCredits
from openline.campaigns.audience import AudienceError, audience_contacts
from openline.campaigns.compose import ComposeError, body_render
from openline.campaigns.forms import BroadcastForm, ScheduleForm
from openline.campaigns.models import Broadcast, BroadcastStatus, Segment, VoiceRecording
from openline.campaigns.selectors import (
    Progress,
    broadcast_log,
    broadcast_progress,
    broadcasts_for,
    buckets_for,
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
from openline.campaigns.voice import (
    MAX_RECORDING_BYTES,
    MAX_RECORDING_SECONDS,
    PROMPT_SECONDS,
    WORDS_PER_SECOND,
    RecordingError,
    recording_save,
)
from openline.campaigns.window import sending_window
from openline.contacts.csvfile import csv_safe
from openline.contacts.models import Contact
from openline.contacts.services.fields import contact_field_texts
from openline.core.models import Organization
from openline.core.services import audit_record
from openline.core.streaming import csv_stream
from openline.core.web import console_view, managers_only, paginate, sentence
from openline.messaging.models import CALL_FINAL_STATUSES
from openline.messaging.services.calls import OPT_OUT_PROMPT

CONTROLS = {"pause": broadcast_pause, "resume": broadcast_resume, "cancel": broadcast_cancel}
# How the progress bar, its counts and the log's filters name each bucket.
BUCKET_LABELS = {
    "pending": "Pending",
    "queued": "Queued",
    "sent": "Sent",
    "delivered": "Delivered",
    "ringing": "Ringing",
    "answered": "Answered",
    "voicemail": "Voicemail",
    "busy": "Busy",
    "no_answer": "No answer",
    "failed": "Failed",
    "refused": "Refused",
    "cancelled": "Cancelled",
}
# A call's outcome as the log says it (messaging.Call.outcome).
OUTCOMES = {
    "queued": "Calling",
    "calling": "Calling",
    "unknown": "Calling (checking it was placed)",
    "ringing": "Ringing",
    "in_progress": "Answered, playing",
    "answered": "Answered",
    "voicemail": "Voicemail",
    "busy": "Busy",
    "no_answer": "No answer",
    "failed": "Failed",
    "canceled": "Failed (cancelled by the phone company)",
}
AUDIO_TYPES = {"wav": "audio/wav", "mp3": "audio/mpeg"}


def _broadcast_or_404(organization: Organization, broadcast_id: int) -> Broadcast:
    return get_object_or_404(
        Broadcast.objects.select_related("reservation", "created_by", "recording").defer(
            "recording__audio"
        ),
        organization_id=organization.pk,
        pk=broadcast_id,
    )


@console_view
@require_GET
def broadcast_list(request: HttpRequest, organization: Organization) -> HttpResponse:
    if refused := managers_only(request):
        return refused
    page = paginate(request, broadcasts_for(organization_id=organization.pk))
    segments = Segment.objects.filter(organization_id=organization.pk)
    return render(request, "campaigns/list.html", {"page": page, "segments": segments})


@console_view
@require_http_methods(["GET", "POST"])
def broadcast_new(request: HttpRequest, organization: Organization) -> HttpResponse:
    if refused := managers_only(request):
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
                channel=form.cleaned_data["channel"],
                recording_id=form.cleaned_data["recording_id"],
                language=form.cleaned_data["language"] or "en-US",
            )
        except ComposeError as exc:
            form.add_error("body", sentence(exc))
        except (AudienceError, BroadcastError) as exc:
            form.add_error(None, sentence(exc))
        else:
            return redirect("campaigns:detail", broadcast_id=broadcast.pk)
    recording = _form_recording(form, organization)
    context = {
        "form": form,
        "recording": recording,
        "recording_url": _audio_path(recording) if recording else "",
        "opt_out_prompt": OPT_OUT_PROMPT,
        "words_per_second": WORDS_PER_SECOND,
        "prompt_seconds": PROMPT_SECONDS,
        "max_recording_seconds": MAX_RECORDING_SECONDS,
        "max_recording_minutes": MAX_RECORDING_SECONDS // 60,
        "max_recording_mb": MAX_RECORDING_BYTES // (1024 * 1024),
    }
    status = 422 if form.errors else 200
    return render(request, "campaigns/new.html", context, status=status)


def _form_recording(form: BroadcastForm, organization: Organization) -> VoiceRecording | None:
    """The recording a returned form carries (recorded before a mistake elsewhere)."""
    raw = form.data.get("recording_id", "") if form.is_bound else ""
    if not str(raw).isdigit():
        return None
    return (
        VoiceRecording.objects.filter(organization_id=organization.pk, pk=int(raw))
        .defer("audio")
        .first()
    )


def _audio_path(recording: VoiceRecording) -> str:
    """The recording's public address on this server (voice.recording_url's path), for
    players in the console, which may be reached at another host than PUBLIC_URL."""
    extension = "mp3" if recording.content_type == "audio/mpeg" else "wav"
    return reverse(f"campaigns:recording_{extension}", kwargs={"token": recording.token})


@require_POST
def recording_upload(request: HttpRequest) -> HttpResponse:
    """A recorded or uploaded message (multipart ``audio``, and ``name``): JSON with its id,
    name, length and where to play it, or 400 with the reason. The page's fetch reads JSON,
    so a signed-out visitor gets a JSON 401, not the sign-in page."""
    organization: Organization | None = getattr(request, "organization", None)
    if not request.user.is_authenticated or organization is None:
        error = "You are signed out. Sign in again, then record or upload the message."
        return JsonResponse({"error": error}, status=401)
    if not request.membership.can_manage:  # type: ignore[attr-defined]
        return JsonResponse({"error": "Only admins and supervisors record messages."}, status=403)
    upload = request.FILES.get("audio")
    if upload is None:
        return JsonResponse({"error": "Choose a WAV or MP3 file, or record one."}, status=400)
    size, mb = upload.size or 0, 1024 * 1024
    if size > MAX_RECORDING_BYTES:  # refused before reading it
        limit = MAX_RECORDING_BYTES // mb
        error = f"The file is {size // mb} MB; the limit is {limit} MB."
        return JsonResponse({"error": error}, status=400)
    try:
        recording = recording_save(
            organization_id=organization.pk,
            actor_id=request.user.pk,
            name=request.POST.get("name", "") or upload.name or "",
            data=upload.read(),
        )
    except RecordingError as exc:
        return JsonResponse({"error": sentence(exc) + "."}, status=400)
    except RuntimeError:  # wave's chunk reader on a truncated WAV, which the probe lets by
        return JsonResponse({"error": "This WAV file cannot be read: it is cut short."}, status=400)
    return JsonResponse(
        {
            "id": recording.pk,
            "name": recording.name,
            "seconds": recording.seconds,
            "url": _audio_path(recording),
        }
    )


@require_safe
def recording_audio(request: HttpRequest, token: str, extension: str) -> HttpResponse:
    """A recording, for the provider to play on a call (and for the console's players).
    No sign-in: the unguessable token is the credential; anything else is not found."""
    recording = (
        VoiceRecording.objects.filter(token=token, content_type=AUDIO_TYPES[extension])
        .only("audio", "content_type")
        .first()
    )
    if recording is None:
        raise Http404("no such recording")
    response = HttpResponse(bytes(recording.audio), content_type=recording.content_type)
    response["Cache-Control"] = "private, max-age=3600"
    response["X-Robots-Tag"] = "noindex"
    response["Referrer-Policy"] = "no-referrer"
    return response


def _detail(
    request: HttpRequest, organization: Organization, broadcast: Broadcast, **extra: Any
) -> HttpResponse:
    buckets = buckets_for(broadcast)
    context: dict[str, Any] = {
        "broadcast": broadcast,
        "numbers": list(broadcast.numbers.all()),
        "buckets": [(bucket, BUCKET_LABELS[bucket]) for bucket in buckets],
        "not_monitored_answer": not_monitored_answer(broadcast),
        **extra,
    }
    if broadcast.recording is not None:
        context["audio_url"] = _audio_path(broadcast.recording)
    if broadcast.is_voice:
        context["language_name"] = broadcast.get_language_display()
        context["opt_out_prompt"] = OPT_OUT_PROMPT
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
        if first is not None and not broadcast.is_voice:
            fields = contact_field_texts(contact=first)
            text = body_render(broadcast.body, contact=first, fields=fields, footer=True)
            context["sample"] = (first, text)
        removed = broadcast.audience.get("remove_contacts") or []
        context["removed"] = Contact.objects.filter(
            organization_id=organization.pk, pk__in=removed
        ).order_by("name", "pk")
        context["everyone"] = context["people"].paginator.count + len(context["removed"])
    else:
        status_filter = request.GET.get("status", "")
        if status_filter not in buckets:
            status_filter = ""
        context.update(_progress_context(broadcast))
        context["status_filter"] = status_filter
        context["log"] = paginate(
            request, broadcast_log(broadcast_id=broadcast.pk, status=status_filter)
        )
        window, now = sending_window(organization_id=organization.pk), timezone.now()
        for row in context["log"]:
            row.outside_hours = row.status == "pending" and not window.is_open(now, row.time_zone)
            if broadcast.is_voice:
                row.outcome = OUTCOMES.get(row.call.outcome, "") if row.call else ""
                row.billed = _billed(row)
    status = 422 if extra.get("error") else 200
    return render(request, "campaigns/detail.html", context, status=status)


@console_view
@require_GET
def broadcast_detail(
    request: HttpRequest, organization: Organization, broadcast_id: int
) -> HttpResponse:
    if refused := managers_only(request):
        return refused
    return _detail(request, organization, _broadcast_or_404(organization, broadcast_id))


@console_view
@require_POST
def broadcast_people(
    request: HttpRequest, organization: Organization, broadcast_id: int
) -> HttpResponse:
    """Leave one person out of a draft, put them back, or select all again."""
    if refused := managers_only(request):
        return refused
    broadcast = _broadcast_or_404(organization, broadcast_id)
    try:
        everyone = request.POST.get("all") == "1"
        contact_id = None if everyone else int(request.POST.get("contact_id", ""))
        broadcast_set_people(
            broadcast=broadcast,
            actor_id=request.user.pk,
            contact_id=contact_id,
            included=everyone or request.POST.get("include") == "1",
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
    if refused := managers_only(request):
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
    if refused := managers_only(request):
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
    if refused := managers_only(request):
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
    if refused := managers_only(request):
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
    if refused := managers_only(request):
        return refused
    broadcast = _broadcast_or_404(organization, broadcast_id)
    context = {"broadcast": broadcast, **_progress_context(broadcast)}
    return render(request, "campaigns/_progress.html", context)


def _progress_context(broadcast: Broadcast) -> dict[str, Any]:
    """The bar and its counts, each bucket with its label (a call's buckets for a call)."""
    progress: Progress = broadcast_progress(broadcast_id=broadcast.pk)
    return {
        "progress": progress,
        "counts": [(b, BUCKET_LABELS.get(b, b), n) for b, n in progress.counts.items()],
        "bar": [(b, BUCKET_LABELS.get(b, b), n, x, w) for b, n, x, w in progress.bar()],
    }


def _billed(row: Any) -> int:
    """A recipient's credits: reserved until their call ends, then what it cost (never
    more than was reserved for it; see services._settle_calls)."""
    call = row.call
    if call is None or call.status not in CALL_FINAL_STATUSES:
        return int(row.credits)
    return min(int(row.credits), int(call.credits))


LOG_COLUMNS = [
    "recipient", "phone", "from", "queued_at", "status", "segments", "credits", "error",
]  # fmt: skip
VOICE_LOG_COLUMNS = [
    "recipient", "phone", "from", "queued_at", "outcome", "duration_seconds", "credits",
    "pressed_9", "error",
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


def voice_log_row(row: Any) -> list[str]:
    call = row.call
    if row.status != "queued" or call is None:
        outcome, error = row.status, row.reason_text
    else:
        outcome = call.outcome
        error = f"{call.error_code} {call.error_message}".strip()
    return [
        csv_safe(row.contact.label),
        row.phone,
        row.number.e164,
        row.queued_at.isoformat() if row.queued_at else "",
        outcome,
        str(call.duration if call else 0),
        str(_billed(row)),
        "yes" if call is not None and call.opted_out else "",
        csv_safe(error),
    ]


@console_view
@require_GET
def broadcast_log_csv(
    request: HttpRequest, organization: Organization, broadcast_id: int
) -> HttpResponse | StreamingHttpResponse:
    if refused := managers_only(request):
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
    rows = broadcast_log(broadcast_id=broadcast.pk).iterator(chunk_size=2000)
    columns, row_of = (
        (VOICE_LOG_COLUMNS, voice_log_row) if broadcast.is_voice else (LOG_COLUMNS, log_row)
    )
    lines = itertools.chain([columns], (row_of(row) for row in rows))
    response = StreamingHttpResponse(csv_stream(lines), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="broadcast-{broadcast.pk}-log.csv"'
    return response

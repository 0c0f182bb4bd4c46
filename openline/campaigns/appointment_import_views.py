"""Importing appointments from a CSV file (supervisors and admins): upload → a preview of
every row, its problems highlighted → "Import N valid rows" → the day view with a summary.
The upload lives on the server under its token (campaigns.appointment_import); another
organization's token is 404."""

from __future__ import annotations

import contextlib

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from openline.campaigns.appointment_import import (
    MAX_ROWS,
    NEW,
    UPDATE,
    ImportNotFound,
    ImportSummary,
    StoredImport,
    appointment_import_check,
    appointment_import_discard,
    appointment_import_get,
    appointment_import_run,
    appointment_import_upload,
)
from openline.contacts.csvfile import CsvFileError, csv_check_size
from openline.core.models import Organization
from openline.core.web import console_view, managers_only

# Problems named in the summary message; the rest are counted.
NAMED_PROBLEMS = 5


class UploadForm(forms.Form):
    file = forms.FileField(
        label="CSV file",
        help_text="UTF-8 (“CSV UTF-8” in Excel), comma, semicolon or tab between cells, "
        f"column names in the first row; up to 50 MB and {MAX_ROWS:,} appointments.",
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,.tsv,.txt,text/csv"}),
    )

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]


@console_view
@require_http_methods(["GET", "POST"])
def import_upload(request: HttpRequest, organization: Organization) -> HttpResponse:
    if refused := managers_only(request):
        return refused
    posted = request.method == "POST"
    form = UploadForm(request.POST if posted else None, request.FILES if posted else None)
    if form.is_bound and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            csv_check_size(upload.size or 0)  # refused before reading a byte of it
            stored = appointment_import_upload(
                organization_id=organization.pk,
                actor_id=request.user.pk,
                file_name=upload.name or "appointments.csv",
                chunks=upload.chunks(),
            )
        except CsvFileError as exc:
            form.add_error("file", str(exc))
        else:
            return redirect("appointments:import_preview", token=stored.token)
    status = 422 if form.errors else 200
    return render(request, "campaigns/appointments/import.html", {"form": form}, status=status)


def _stored_or_404(organization: Organization, token: str) -> StoredImport:
    try:
        return appointment_import_get(organization_id=organization.pk, token=token)
    except ImportNotFound:
        raise Http404("no such upload") from None


@console_view
@require_http_methods(["GET", "POST"])
def import_preview(request: HttpRequest, organization: Organization, token: str) -> HttpResponse:
    if refused := managers_only(request):
        return refused
    stored = _stored_or_404(organization, token)
    if request.method == "POST":
        return _confirmed(request, organization, stored)
    rows = appointment_import_check(stored=stored, zone=organization.timezone)
    valid = [row for row in rows if row.valid]
    counts = {action: sum(row.action == action for row in valid) for action in (NEW, UPDATE)}
    context = {
        "stored": stored,
        "rows": [row for row in rows if not row.valid] if request.GET.get("problems") else rows,
        "only_problems": bool(request.GET.get("problems")),
        "total": len(rows),
        "valid": len(valid),
        "invalid": len(rows) - len(valid),
        "new": counts[NEW],
        "updated": counts[UPDATE],
        "unchanged": len(valid) - counts[NEW] - counts[UPDATE],
        "zone": organization.timezone,
    }
    return render(request, "campaigns/appointments/import_preview.html", context)


def _confirmed(
    request: HttpRequest, organization: Organization, stored: StoredImport
) -> HttpResponse:
    if request.POST.get("action") == "discard":
        with contextlib.suppress(ImportNotFound):  # a second click: gone already
            appointment_import_discard(
                organization_id=organization.pk, token=stored.token, actor_id=request.user.pk
            )
        messages.info(request, f"“{stored.file_name}” was discarded: nothing was imported.")
        return redirect("appointments:import")
    try:
        summary = appointment_import_run(
            organization_id=organization.pk,
            token=stored.token,
            actor_id=request.user.pk,
            zone=organization.timezone,
        )
    except ImportNotFound:
        messages.error(request, f"“{stored.file_name}” was imported already.")
        return redirect("appointments:day")
    (messages.warning if summary.errors else messages.success)(request, _said(summary))
    target = reverse("appointments:day")
    if summary.first_day:
        target += f"?date={summary.first_day.isoformat()}"
    return redirect(target)


def _said(summary: ImportSummary) -> str:
    text = (
        f"Imported “{summary.file_name}”: {summary.created} new, {summary.updated} updated, "
        f"{summary.unchanged} unchanged."
    )
    if summary.errors:
        named = "; ".join(f"row {n}: {problem}" for n, problem in summary.errors[:NAMED_PROBLEMS])
        more = len(summary.errors) - NAMED_PROBLEMS
        text += f" {len(summary.errors)} row(s) not imported ({named}"
        text += f"; and {more} more)." if more > 0 else ")."
    return text

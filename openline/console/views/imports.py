"""Importing contacts from a CSV file and exporting them (supervisors and admins).

Upload → choose the columns (the guess pre-selected, the first rows shown) → the check's
progress → its report (valid rows, each problem with its row number) with "Import the N
valid rows" or "Cancel" → the import's progress → done. Each step is a page of one import,
rendered by its status; progress is a fragment the page polls, which also restarts a run
whose worker died."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from openline.console.import_forms import ImportAcceptForm, ImportColumnsForm, ImportUploadForm
from openline.contacts.csvfile import CsvFileError, csv_check_size
from openline.contacts.import_rows import EVIDENCE, MappingError, target_choices
from openline.contacts.models import ContactImport, ImportStatus
from openline.contacts.services.exports import contacts_export
from openline.contacts.services.imports import (
    ImportStateError,
    contact_import_accept,
    contact_import_cancel,
    contact_import_fields,
    contact_import_map,
    contact_import_preview,
    contact_import_restart_if_stalled,
    contact_import_upload,
)
from openline.core.models import Organization
from openline.core.streaming import csv_stream
from openline.core.web import console_view, paginate, sentence

RECENT = 10
BLOBS = ("state", "invalid")  # never needed to show an import, only to run it


def _managers_only(request: HttpRequest) -> HttpResponse | None:
    if not request.membership.can_manage:  # type: ignore[attr-defined]
        return render(request, "console/forbidden.html", status=403)
    return None


def _import_or_404(organization: Organization, import_id: int) -> ContactImport:
    return get_object_or_404(
        ContactImport.objects.select_related("created_by").defer(*BLOBS),
        organization_id=organization.pk,
        pk=import_id,
    )


@console_view
@require_http_methods(["GET", "POST"])
def contact_import_new(request: HttpRequest, organization: Organization) -> HttpResponse:
    if refused := _managers_only(request):
        return refused
    posted = request.method == "POST"
    form = ImportUploadForm(request.POST if posted else None, request.FILES if posted else None)
    if form.is_bound and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            csv_check_size(upload.size or 0)  # refused before reading a byte of it
            contact_import = contact_import_upload(
                organization_id=organization.pk,
                actor_id=request.user.pk,
                file_name=upload.name or "contacts.csv",
                chunks=upload.chunks(),
            )
        except CsvFileError as exc:
            form.add_error("file", str(exc))
        else:
            return redirect("console:contact_import", import_id=contact_import.pk)
    recent = (
        ContactImport.objects.filter(organization_id=organization.pk)
        .defer(*BLOBS, "errors", "import_errors")
        .select_related("created_by")
        .order_by("-created_at")[:RECENT]
    )
    context = {"form": form, "recent": recent}
    return render(
        request, "console/contact_import_new.html", context, status=422 if form.errors else 200
    )


def _columns_form(contact_import: ContactImport, data: Any = None) -> ImportColumnsForm:
    fields = contact_import_fields(contact_import=contact_import)
    return ImportColumnsForm(
        data,
        headers=contact_import.headers,
        choices=target_choices(fields),
        mapping=contact_import.mapping,
    )


def _page(
    request: HttpRequest, contact_import: ContactImport, *, status: int = 200, **extra: Any
) -> HttpResponse:
    c = contact_import
    context: dict[str, Any] = {"import": c, "progress": _progress(c), **extra}
    if c.status in (ImportStatus.UPLOADED, ImportStatus.VALIDATED):
        form = context.setdefault("columns_form", _columns_form(c))
        preview = contact_import_preview(contact_import=c)
        context["columns"] = [
            (form[name], [row[index] for row in preview]) for index, name in enumerate(form.fields)
        ]
    if c.status == ImportStatus.VALIDATED:
        context.setdefault("accept_form", ImportAcceptForm())
        context["asks_consent"] = EVIDENCE in c.mapping
    if c.status in (ImportStatus.VALIDATED, ImportStatus.IMPORTING, ImportStatus.DONE):
        context["errors"] = paginate(request, c.errors)
        context["more_errors"] = c.error_rows - len(c.errors)
    if c.status == ImportStatus.DONE:
        context["updated"] = c.imported_rows - c.created_rows
        context["not_imported"] = c.error_rows + c.skipped_rows
    return render(request, "console/contact_import.html", context, status=status)


def _progress(contact_import: ContactImport) -> dict[str, int]:
    c = contact_import
    total = c.total_rows or 1
    return {
        "done": c.processed_rows,
        "total": c.total_rows,
        "percent": 100 * c.processed_rows // total,
        "permille": 1000 * c.processed_rows // total,  # the bar's width (no inline styles)
    }


@console_view
@require_GET
def contact_import_detail(
    request: HttpRequest, organization: Organization, import_id: int
) -> HttpResponse:
    if refused := _managers_only(request):
        return refused
    return _page(request, _import_or_404(organization, import_id))


@console_view
@require_POST
def contact_import_columns(
    request: HttpRequest, organization: Organization, import_id: int
) -> HttpResponse:
    if refused := _managers_only(request):
        return refused
    contact_import = _import_or_404(organization, import_id)
    if contact_import.status not in (ImportStatus.UPLOADED, ImportStatus.VALIDATED):
        messages.error(request, "This import has moved on: its columns cannot change now.")
        return redirect("console:contact_import", import_id=contact_import.pk)
    form = _columns_form(contact_import, request.POST)
    if form.is_valid():
        try:
            contact_import_map(contact_import=contact_import, mapping=form.mapping())
        except (MappingError, ImportStateError) as exc:
            form.add_error(None, str(exc))
        else:
            return redirect("console:contact_import", import_id=contact_import.pk)
    return _page(request, contact_import, columns_form=form, status=422)


@console_view
@require_GET
def contact_import_progress(
    request: HttpRequest, organization: Organization, import_id: int
) -> HttpResponse:
    """The progress fragment the page polls; once the status moved on, the whole page."""
    if refused := _managers_only(request):
        return refused
    contact_import = _import_or_404(organization, import_id)
    contact_import_restart_if_stalled(contact_import=contact_import)
    response = render(
        request,
        "console/_contact_import_progress.html",
        {"import": contact_import, "progress": _progress(contact_import)},
    )
    if request.GET.get("status") != contact_import.status:
        response["HX-Refresh"] = "true"
    return response


@console_view
@require_POST
def contact_import_accept_view(
    request: HttpRequest, organization: Organization, import_id: int
) -> HttpResponse:
    if refused := _managers_only(request):
        return refused
    contact_import = _import_or_404(organization, import_id)
    if contact_import.status != ImportStatus.VALIDATED:
        messages.error(request, "There is nothing to import now.")
        return redirect("console:contact_import", import_id=contact_import.pk)
    form = ImportAcceptForm(request.POST)
    form.is_valid()
    try:
        contact_import_accept(
            contact_import=contact_import,
            actor_id=request.user.pk,
            consent_confirmed=bool(form.cleaned_data.get("consent_confirmed")),
        )
    except ImportStateError as exc:
        form.add_error(None, str(exc))
        return _page(request, contact_import, accept_form=form, status=422)
    return redirect("console:contact_import", import_id=contact_import.pk)


@console_view
@require_POST
def contact_import_cancel_view(
    request: HttpRequest, organization: Organization, import_id: int
) -> HttpResponse:
    if refused := _managers_only(request):
        return refused
    contact_import = _import_or_404(organization, import_id)
    try:
        contact_import_cancel(contact_import=contact_import, actor_id=request.user.pk)
    except ImportStateError as exc:
        messages.error(request, sentence(exc))
    else:
        messages.success(request, "Import cancelled: nothing was imported.")
    return redirect("console:contact_import", import_id=contact_import.pk)


@console_view
@require_POST
def contacts_export_csv(
    request: HttpRequest, organization: Organization
) -> HttpResponse | StreamingHttpResponse:
    """A POST (a button, not a link): an export of people's details is audited, and no
    other site or a prefetching browser can make one happen."""
    if refused := _managers_only(request):
        return refused
    rows = contacts_export(organization_id=organization.pk, actor_id=request.user.pk)
    response = StreamingHttpResponse(csv_stream(rows), content_type="text/csv; charset=utf-8")
    day = timezone.localdate().isoformat()
    response["Content-Disposition"] = f'attachment; filename="contacts-{day}.csv"'
    return response

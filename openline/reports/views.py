"""The reports pages (supervisors and admins): every report as a card with its chart and
table, a CSV per report (a POST, audited), and the monthly summary, printable."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from openline.contacts.csvfile import csv_safe
from openline.core.models import Organization
from openline.core.services import audit_record
from openline.core.streaming import csv_stream
from openline.core.web import console_view, managers_only
from openline.reports.base import REPORTS, Report, ReportFilters
from openline.reports.forms import MonthForm, ReportFilterForm
from openline.reports.presentation import card

# The form report is shown only once a form and a field are chosen.
NEEDS_CHOICE = {"form_field"}


def _filter_form(request: HttpRequest, organization: Organization, data: Any) -> ReportFilterForm:
    return ReportFilterForm(
        data,
        organization_id=organization.pk,
        zone=ZoneInfo(organization.timezone),
        today=timezone.localdate(),
    )


def _reports(filters: ReportFilters) -> list[Report]:
    chosen = filters.form_id is not None and bool(filters.field_key)
    return [fn(filters) for key, fn in REPORTS.items() if chosen or key not in NEEDS_CHOICE]


@console_view
@require_GET
def reports_page(request: HttpRequest, organization: Organization) -> HttpResponse:
    if refused := managers_only(request):
        return refused
    form = _filter_form(request, organization, request.GET)
    if not form.is_valid():
        return render(request, "reports/index.html", {"form": form, "cards": []}, status=422)
    filters = form.report_filters()
    context = {
        "form": form,
        "filters": filters,
        "query": form.query(),
        "cards": [card(report) for report in _reports(filters)],
    }
    return render(request, "reports/index.html", context)


def _csv_rows(report: Report) -> Iterator[list[str]]:
    yield [csv_safe(column) for column in report.columns]
    for row in report.rows:
        yield [csv_safe("" if cell is None else str(cell)) for cell in row]


@console_view
@require_POST
def report_export(
    request: HttpRequest, organization: Organization
) -> HttpResponse | StreamingHttpResponse:
    """One report's table (``report``, its key) as CSV with the page's filters. A POST (a
    button), audited with the report's key, like every export here."""
    if refused := managers_only(request):
        return refused
    key = request.POST.get("report", "")
    if key not in REPORTS:
        raise Http404("no such report")
    form = _filter_form(request, organization, request.POST)
    if not form.is_valid():
        return render(request, "reports/index.html", {"form": form, "cards": []}, status=422)
    filters = form.report_filters()
    report = REPORTS[key](filters)
    with transaction.atomic():
        audit_record(
            organization_id=organization.pk,
            actor_id=request.user.pk,
            action="report.export",
            object_type="report",
            object_id=key,
            detail=f"{report.title}, {filters.start.isoformat()} to {filters.end.isoformat()}",
        )
    lines = itertools.chain(_csv_rows(report))
    response = StreamingHttpResponse(csv_stream(lines), content_type="text/csv; charset=utf-8")
    name = f"{key}-{filters.start.isoformat()}-{filters.end.isoformat()}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@console_view
@require_GET
def monthly_summary(request: HttpRequest, organization: Organization) -> HttpResponse:
    """Every report's headline figures and table for one month, on one printable page."""
    if refused := managers_only(request):
        return refused
    form = MonthForm(
        request.GET,
        organization_id=organization.pk,
        zone=ZoneInfo(organization.timezone),
        today=timezone.localdate(),
    )
    if not form.is_valid():
        return render(request, "reports/summary.html", {"form": form, "cards": []}, status=422)
    filters = form.report_filters()
    context = {
        "form": form,
        "filters": filters,
        "cards": [card(report) for report in _reports(filters)],
    }
    return render(request, "reports/summary.html", context)

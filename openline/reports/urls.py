"""The reports pages, under /reports/."""

from __future__ import annotations

from django.urls import URLPattern, path

from openline.reports import views

app_name = "reports"

urlpatterns: list[URLPattern] = [
    path("", views.reports_page, name="index"),
    path("summary/", views.monthly_summary, name="summary"),
    path("export/", views.report_export, name="export"),
]

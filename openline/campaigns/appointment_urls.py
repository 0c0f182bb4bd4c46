"""The appointments pages (/appointments/): the day view, the "call these people" list,
appointments by hand, reminder rules and limits (appointment_views), and the CSV import
(appointment_import_views)."""

from __future__ import annotations

from django.urls import URLPattern, path

from openline.campaigns import appointment_import_views, appointment_views

app_name = "appointments"

urlpatterns: list[URLPattern] = [
    path("", appointment_views.day_view, name="day"),
    path("call-list", appointment_views.call_list, name="call_list"),
    path("new", appointment_views.appointment_new, name="new"),
    path("<int:appointment_id>/", appointment_views.appointment_detail, name="detail"),
    path("rules/", appointment_views.rules, name="rules"),
    path("rules/<int:rule_id>/", appointment_views.rule_edit, name="rule_edit"),
    path("import", appointment_import_views.import_upload, name="import"),
    path("import/<str:token>", appointment_import_views.import_preview, name="import_preview"),
]

from __future__ import annotations

from django.urls import URLPattern, path

from openline.console import views

app_name = "console"
urlpatterns: list[URLPattern] = [
    path("", views.home, name="home"),
    path("inbox/<int:number_id>/", views.inbox, name="inbox"),
    path("conversations/<int:conversation_id>/", views.conversation_detail, name="conversation"),
    path(
        "conversations/<int:conversation_id>/thread",
        views.conversation_thread,
        name="conversation_thread",
    ),
    path(
        "conversations/<int:conversation_id>/reply",
        views.conversation_reply,
        name="conversation_reply",
    ),
    path(
        "conversations/<int:conversation_id>/consent-review",
        views.conversation_consent_review,
        name="conversation_consent_review",
    ),
    path("segments", views.segments, name="segments"),
    path("settings/", views.organization_settings, name="settings"),
    path("contacts/", views.contacts, name="contacts"),
    path("contacts/new", views.contact_new, name="contact_new"),
    path("contacts/<int:contact_id>/", views.contact_detail, name="contact"),
    path("contacts/<int:contact_id>/edit", views.contact_edit, name="contact_edit"),
    path("contacts/<int:contact_id>/start", views.contact_start, name="contact_start"),
    path("contacts/<int:contact_id>/opt-in", views.contact_opt_in, name="contact_opt_in"),
    path("contacts/<int:contact_id>/opt-out", views.contact_opt_out, name="contact_opt_out"),
]

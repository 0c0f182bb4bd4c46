from __future__ import annotations

from django.urls import URLPattern, path

from openline.console import views
from openline.console.views import do_not_call, imports, risk
from openline.console.views.health import system_health
from openline.console.views.offline import offline_follow_up, offline_report

app_name = "console"


def _conv(suffix: str, view: object, name: str) -> URLPattern:
    return path(f"conversations/<int:conversation_id>/{suffix}", view, name=name)  # type: ignore[arg-type]


urlpatterns: list[URLPattern] = [
    path("", views.home, name="home"),
    path("queue", views.queue, name="queue"),
    path("inbox/<int:number_id>/", views.inbox, name="inbox"),
    path("conversations/next", views.conversation_take_next, name="conversation_take_next"),
    _conv("", views.conversation_detail, "conversation"),
    _conv("pane", views.conversation_pane, "conversation_pane"),
    _conv("thread", views.conversation_thread, "conversation_thread"),
    _conv("reply", views.conversation_reply, "conversation_reply"),
    _conv("note", views.conversation_note, "conversation_note"),
    _conv("assume", views.conversation_assume, "conversation_assume"),
    _conv("transfer", views.conversation_transfer, "conversation_transfer"),
    _conv("close", views.conversation_close, "conversation_close"),
    _conv("join", views.conversation_join, "conversation_join"),
    _conv("take-over", views.conversation_take_over, "conversation_take_over"),
    _conv("unread", views.conversation_unread, "conversation_unread"),
    _conv("typing", views.conversation_typing, "conversation_typing"),
    _conv("notice", views.conversation_notice, "conversation_notice"),
    _conv("export.csv", views.conversation_export_csv, "conversation_export_csv"),
    _conv("print", views.conversation_print, "conversation_print"),
    _conv("consent-review", views.conversation_consent_review, "conversation_consent_review"),
    path("segments", views.segments, name="segments"),
    path("settings/", views.organization_settings, name="settings"),
    path("system-health/", system_health, name="system_health"),
    # Beside the shift pages (availability's "shifts/"), but it reads conversations.
    path("shifts/offline-messages", offline_report, name="offline_report"),
    path(
        "shifts/offline-messages/<int:conversation_id>/follow-up",
        offline_follow_up,
        name="offline_follow_up",
    ),
    path("preferences/", views.preferences, name="preferences"),
    path("team/", views.team, name="team"),
    path(
        "team/<int:membership_id>/deactivate",
        views.team_member_deactivate,
        name="team_member_deactivate",
    ),
    path(
        "team/<int:membership_id>/reactivate",
        views.team_member_reactivate,
        name="team_member_reactivate",
    ),
    path("chat-settings/", views.chat_settings, name="chat_settings"),
    path(
        "chat-settings/widgets/<int:widget_id>/questions",
        views.chat_widget_questions,
        name="chat_widget_questions",
    ),
    path("risk-phrases/", risk.risk_phrases, name="risk_phrases"),
    path("risk-phrases/remove", risk.risk_phrase_remove_view, name="risk_phrase_remove"),
    path("risk-phrases/reset", risk.risk_phrases_reset_view, name="risk_phrases_reset"),
    path("risk-phrases/try", risk.risk_phrases_try, name="risk_phrases_try"),
    path("saved-replies/", views.saved_replies, name="saved_replies"),
    path("saved-replies/<int:reply_id>/", views.saved_replies, name="saved_reply"),
    path(
        "saved-replies/<int:reply_id>/delete", views.saved_reply_remove, name="saved_reply_delete"
    ),
    path("contacts/", views.contacts, name="contacts"),
    path("contacts/new", views.contact_new, name="contact_new"),
    path("contacts/<int:contact_id>/", views.contact_detail, name="contact"),
    path("contacts/<int:contact_id>/edit", views.contact_edit, name="contact_edit"),
    path(
        "contacts/<int:contact_id>/numbers",
        views.contact_add_another_number,
        name="contact_add_number",
    ),
    path("contacts/<int:contact_id>/fields", views.contact_fields, name="contact_fields"),
    path("contacts/fields", views.custom_fields, name="custom_fields"),
    path("contacts/<int:contact_id>/start", views.contact_start, name="contact_start"),
    path("contacts/<int:contact_id>/opt-in", views.contact_opt_in, name="contact_opt_in"),
    path("contacts/<int:contact_id>/opt-out", views.contact_opt_out, name="contact_opt_out"),
    path("contacts/import/", imports.contact_import_new, name="contact_import_new"),
    path("contacts/import/<int:import_id>/", imports.contact_import_detail, name="contact_import"),
    path(
        "contacts/import/<int:import_id>/columns",
        imports.contact_import_columns,
        name="contact_import_columns",
    ),
    path(
        "contacts/import/<int:import_id>/progress",
        imports.contact_import_progress,
        name="contact_import_progress",
    ),
    path(
        "contacts/import/<int:import_id>/accept",
        imports.contact_import_accept_view,
        name="contact_import_accept",
    ),
    path(
        "contacts/import/<int:import_id>/cancel",
        imports.contact_import_cancel_view,
        name="contact_import_cancel",
    ),
    path("contacts/export.csv", imports.contacts_export_csv, name="contacts_export"),
    path("contacts/do-not-call/", do_not_call.do_not_call, name="do_not_call"),
    path("contacts/do-not-call/remove", do_not_call.do_not_call_remove, name="do_not_call_remove"),
]

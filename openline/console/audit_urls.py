from __future__ import annotations

from django.urls import URLPattern, path

from openline.console.views import audit

app_name = "audit"

urlpatterns: list[URLPattern] = [
    path("audit/", audit.audit_log, name="log"),
    path("audit/export.csv", audit.audit_export, name="export"),
    path("api-tokens/", audit.tokens, name="tokens"),
    path("api-tokens/<int:token_id>/revoke", audit.token_revoke, name="token_revoke"),
    path(
        "conversations/<int:conversation_id>/readers",
        audit.conversation_readers_view,
        name="conversation_readers",
    ),
]

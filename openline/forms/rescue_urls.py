"""URLs of the forms app's rescue pages (mounted by forms.urls under the "forms" namespace):
the imminent-risk checklist in a conversation's pane."""

from __future__ import annotations

from django.urls import URLPattern, path

from openline.forms.views import rescue

urlpatterns: list[URLPattern] = [
    path(
        "conversations/<int:conversation_id>/rescue/",
        rescue.rescue_section,
        name="rescue",
    ),
    path(
        "conversations/<int:conversation_id>/rescue/start",
        rescue.rescue_start,
        name="rescue_start",
    ),
    path(
        "conversations/<int:conversation_id>/rescue/steps/<int:step_id>",
        rescue.rescue_step,
        name="rescue_step",
    ),
    path(
        "conversations/<int:conversation_id>/rescue/end",
        rescue.rescue_end,
        name="rescue_end",
    ),
]

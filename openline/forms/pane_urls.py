"""URLs of the forms app's pane pages (mounted by forms.urls under the "forms" namespace):
saving the contact form and the risk assessment of a conversation."""

from __future__ import annotations

from django.urls import URLPattern, path

from openline.forms.views import pane

urlpatterns: list[URLPattern] = [
    path(
        "conversations/<int:conversation_id>/contact-form",
        pane.contact_form_save,
        name="pane_contact_form",
    ),
    path(
        "conversations/<int:conversation_id>/risk-assessment",
        pane.risk_assessment_save,
        name="pane_risk_assessment",
    ),
]

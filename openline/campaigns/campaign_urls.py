"""Campaign pages (/campaigns/): texts relative to a date on each contact (drips.py)."""

from __future__ import annotations

from django.urls import URLPattern, path

from openline.campaigns import campaign_views

app_name = "drips"

urlpatterns: list[URLPattern] = [
    path("", campaign_views.campaign_list, name="list"),
    path("new", campaign_views.campaign_new, name="new"),
    path("<int:campaign_id>/", campaign_views.campaign_detail, name="detail"),
    path("<int:campaign_id>/steps", campaign_views.campaign_step_new, name="step_new"),
    path(
        "<int:campaign_id>/steps/<int:step_id>/delete",
        campaign_views.campaign_step_remove,
        name="step_delete",
    ),
    path("<int:campaign_id>/<slug:action>", campaign_views.campaign_control, name="control"),
]

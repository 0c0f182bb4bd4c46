from __future__ import annotations

from django.urls import URLPattern, path

from openline.billing import views

app_name = "billing"

urlpatterns: list[URLPattern] = [
    path("", views.credits_page, name="credits"),
]

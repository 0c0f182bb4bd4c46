"""The forms app's pages, under /forms/: the builder and inbox uses (admins), the forms and
risk checklist in a conversation's pane."""

from __future__ import annotations

from django.urls import include, path

from openline.forms import builder_urls, pane_urls, rescue_urls

app_name = "forms"

urlpatterns = [
    path("", include(builder_urls.urlpatterns)),
    path("", include(pane_urls.urlpatterns)),
    path("", include(rescue_urls.urlpatterns)),
]

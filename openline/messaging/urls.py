"""Voice callbacks, under /voice/ (see views.py)."""

from __future__ import annotations

from django.urls import re_path

from openline.messaging import views

app_name = "voice"
urlpatterns = [
    re_path(
        r"^(?P<provider_slug>[a-z0-9_-]{1,30})/(?P<webhook_key>[A-Za-z0-9_-]{1,32})/"
        r"(?P<action>answer|keypress|status)$",
        views.voice_hook,
        name="hook",
    ),
]

"""URLs of the forms app's builder pages (mounted by forms.urls under the "forms" namespace)."""

from __future__ import annotations

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []

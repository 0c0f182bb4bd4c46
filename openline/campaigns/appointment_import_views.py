"""Stub: being written."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse


def import_upload(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    return HttpResponse(status=501)


def import_preview(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    return HttpResponse(status=501)

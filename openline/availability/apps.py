from __future__ import annotations

from django.apps import AppConfig


class AvailabilityConfig(AppConfig):
    name = "openline.availability"
    label = "availability"
    default_auto_field = "django.db.models.BigAutoField"

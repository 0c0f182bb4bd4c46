from __future__ import annotations

from django.apps import AppConfig


class ReportsConfig(AppConfig):
    name = "openline.reports"
    label = "reports"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from openline.reports import selectors  # noqa: F401  (registers the reports)

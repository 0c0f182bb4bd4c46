from __future__ import annotations

from django.apps import AppConfig


class FormsConfig(AppConfig):
    name = "openline.forms"
    label = "forms"
    verbose_name = "Forms, surveys and risk"
    default_auto_field = "django.db.models.BigAutoField"

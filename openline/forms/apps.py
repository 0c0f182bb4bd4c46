from __future__ import annotations

from django.apps import AppConfig


class FormsConfig(AppConfig):
    name = "openline.forms"
    label = "forms"
    verbose_name = "Forms, surveys and risk"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # messaging calls these through messaging.hooks and messaging.answers.
        from openline.forms import close_check, surveys

        close_check.register()
        surveys.register()

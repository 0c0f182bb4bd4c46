from __future__ import annotations

from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    name = "openline.console"
    label = "console"

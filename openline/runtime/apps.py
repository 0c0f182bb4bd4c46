from __future__ import annotations

from django.apps import AppConfig


class RuntimeConfig(AppConfig):
    name = "openline.runtime"
    label = "runtime"
    verbose_name = "Runtime (processes, intake, write gate)"

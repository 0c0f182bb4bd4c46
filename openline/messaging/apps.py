from __future__ import annotations

from django.apps import AppConfig


class MessagingConfig(AppConfig):
    name = "openline.messaging"
    label = "messaging"

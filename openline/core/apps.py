from __future__ import annotations

from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "openline.core"
    label = "core"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in, user_login_failed

        from openline.core import signins

        # Sign-ins and failed sign-ins in the audit log (login history).
        user_logged_in.connect(signins.on_signed_in, dispatch_uid="openline.core.signed_in")
        user_login_failed.connect(
            signins.on_sign_in_failed, dispatch_uid="openline.core.sign_in_failed"
        )

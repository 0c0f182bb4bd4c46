"""The personal security page and the second-factor pages, under /security/."""

from __future__ import annotations

from django.urls import URLPattern, path

from openline.console.views import security

app_name = "security"

urlpatterns: list[URLPattern] = [
    path("", security.home, name="home"),
    path("verify/", security.verify, name="verify"),
    path("setup/", security.setup, name="setup"),
    path("recovery-codes/", security.recovery_codes, name="recovery_codes"),
    path("disable/", security.disable, name="disable"),
    path("password/", security.password, name="password"),
    path(
        "members/<int:membership_id>/sign-ins/",
        security.member_sign_ins,
        name="member_sign_ins",
    ),
    path(
        "members/<int:membership_id>/reset-second-factor/",
        security.member_reset,
        name="member_reset",
    ),
]

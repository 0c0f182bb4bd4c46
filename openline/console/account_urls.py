"""A person's own account (mounted at the site root): password reset, invitations and
accepting one, switching organization, signing out everywhere."""

from __future__ import annotations

from django.urls import URLPattern, path

from openline.console.views import account

app_name = "account"

urlpatterns: list[URLPattern] = [
    path(
        "account/password-reset/",
        account.PasswordResetView.as_view(),
        name="password_reset",
    ),
    path(
        "account/password-reset/sent/",
        account.PasswordResetDoneView.as_view(),
        name="password_reset_done",
    ),
    path(
        "account/password-reset/<uidb64>/<token>/",
        account.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "account/password-reset/done/",
        account.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
    path("team/invitations/", account.invitations, name="invitations"),
    path(
        "team/invitations/<int:invitation_id>/resend/",
        account.invitation_resend,
        name="invitation_resend",
    ),
    path(
        "team/invitations/<int:invitation_id>/withdraw/",
        account.invitation_withdraw,
        name="invitation_withdraw",
    ),
    path("invitations/<str:secret>/", account.invitation_accept, name="invitation_accept"),
    path("account/organization/", account.switch_organization, name="switch_organization"),
    path(
        "account/sign-out-everywhere/",
        account.sign_out_everywhere,
        name="sign_out_everywhere",
    ),
]

"""A person's own account: password reset by e-mail (Django's views, with links built from
OPENLINE_PUBLIC_URL and a limit per address), switching organization, signing out
everywhere."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import PasswordResetForm
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse_lazy

from openline.core import accounts
from openline.core.models import User


def client_address(request: HttpRequest) -> tuple[str | None, str]:
    """The address and browser a request came from, for the audit log."""
    return request.META.get("REMOTE_ADDR") or None, request.headers.get("User-Agent", "")


class ResetForm(PasswordResetForm):
    def get_users(self, email: str) -> list[User]:
        return accounts.password_reset_users(email=email)


class PasswordResetView(auth_views.PasswordResetView):
    """Same answer for every address (with an account or not, limited or not): the e-mail
    goes out only to an account that may sign in somewhere, and at most
    accounts.PASSWORD_RESETS_PER_HOUR times an hour per address."""

    form_class = ResetForm
    template_name = "console/account/password_reset.html"
    email_template_name = "core/email/password_reset.txt"
    subject_template_name = "core/email/password_reset_subject.txt"
    success_url = reverse_lazy("account:password_reset_done")

    def form_valid(self, form: Any) -> HttpResponse:
        if accounts.password_reset_allowed(email=form.cleaned_data["email"]):
            domain, use_https = accounts.public_url_parts()
            form.save(
                domain_override=domain,
                use_https=use_https,
                token_generator=self.token_generator,
                from_email=self.from_email,
                email_template_name=self.email_template_name,
                subject_template_name=self.subject_template_name,
                request=self.request,
                extra_email_context={"site_name": "OpenLine"},
            )
        return HttpResponseRedirect(self.get_success_url())

    def form_invalid(self, form: Any) -> HttpResponse:
        return self.render_to_response(self.get_context_data(form=form), status=422)


class PasswordResetDoneView(auth_views.PasswordResetDoneView):
    template_name = "console/account/password_reset_done.html"


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "console/account/password_reset_confirm.html"
    success_url = reverse_lazy("account:password_reset_complete")

    def form_valid(self, form: Any) -> HttpResponse:
        address, browser = client_address(self.request)
        accounts.user_password_reset(
            user_id=form.user.pk,
            password=form.cleaned_data["new_password1"],
            ip_address=address,
            user_agent=browser,
        )
        del self.request.session[auth_views.INTERNAL_RESET_SESSION_TOKEN]
        return HttpResponseRedirect(self.get_success_url())

    def form_invalid(self, form: Any) -> HttpResponse:
        return self.render_to_response(self.get_context_data(form=form), status=422)


class PasswordResetCompleteView(auth_views.PasswordResetCompleteView):
    template_name = "console/account/password_reset_complete.html"

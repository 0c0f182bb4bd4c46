"""A person's own account: password reset by e-mail (Django's views, with links built from
OPENLINE_PUBLIC_URL and a limit per address), switching organization, signing out
everywhere."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, logout
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import PasswordResetForm
from django.contrib.auth.password_validation import password_validators_help_text_html
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils import timezone
from django.views.decorators.http import require_POST

from openline.core import accounts
from openline.core import invitations as invitation_services
from openline.core.models import Invitation, Organization, Role, User
from openline.core.second_factor import has_confirmed_device
from openline.core.selectors import ORGANIZATION_SESSION_KEY, active_memberships
from openline.core.web import FORBIDDEN_TEMPLATE, console_view


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


# --- invitations ---------------------------------------------------------------------------------


class InviteForm(forms.Form):
    email = forms.EmailField(label="Email", max_length=254)
    role = forms.ChoiceField(label="Role", choices=Role.choices, initial=Role.COUNSELOR)


class NewPersonForm(forms.Form):
    display_name = forms.CharField(label="Your name", max_length=120)
    password = forms.CharField(label="Password", strip=False, widget=forms.PasswordInput)
    password_again = forms.CharField(
        label="Password again", strip=False, widget=forms.PasswordInput
    )

    def clean(self) -> dict[str, Any] | None:
        data = super().clean() or {}
        if data.get("password") and data.get("password") != data.get("password_again"):
            self.add_error("password_again", "The two passwords differ.")
        return data


def _apply_errors(form: forms.Form, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)


def _user_id(request: HttpRequest) -> int:
    """The signed-in person's id (console_view let only them in)."""
    return int(request.user.pk)  # type: ignore[arg-type]


def _role(request: HttpRequest) -> str:
    return request.membership.role  # type: ignore[attr-defined,no-any-return]


@console_view
def invitations(request: HttpRequest, organization: Organization) -> HttpResponse:
    """Admins invite, resend and withdraw; supervisors see the list."""
    role = _role(request)
    if role not in (Role.ADMIN, Role.SUPERVISOR):
        return render(request, FORBIDDEN_TEMPLATE, status=403)
    can_invite = role == Role.ADMIN
    form = InviteForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if not can_invite:
            return render(request, FORBIDDEN_TEMPLATE, status=403)
        if form.is_valid():
            try:
                invitation_services.invitation_create(
                    organization=organization,
                    email=form.cleaned_data["email"],
                    role=form.cleaned_data["role"],
                    invited_by_id=_user_id(request),
                )
            except ValidationError as exc:
                _apply_errors(form, exc)
            else:
                messages.success(request, f"Invitation sent to {form.cleaned_data['email']}.")
                return redirect("account:invitations")
        status = 422
    context = {
        "form": form,
        "can_invite": can_invite,
        "pending": invitation_services.invitation_list_pending(organization_id=organization.pk),
        "now": timezone.now(),
        "days": settings.OPENLINE_INVITATION_DAYS,
    }
    return render(request, "console/account/invitations.html", context, status=status)


def _invitation_action(
    request: HttpRequest, organization: Organization, invitation_id: int, action: str
) -> HttpResponse:
    if _role(request) != Role.ADMIN:
        return render(request, FORBIDDEN_TEMPLATE, status=403)
    try:
        if action == "resend":
            invitation_services.invitation_resend(
                organization_id=organization.pk,
                invitation_id=invitation_id,
                actor_id=_user_id(request),
            )
            messages.success(request, "Invitation sent again; the earlier link no longer works.")
        else:
            invitation_services.invitation_withdraw(
                organization_id=organization.pk,
                invitation_id=invitation_id,
                actor_id=_user_id(request),
            )
            messages.success(request, "Invitation withdrawn; its link no longer works.")
    except Invitation.DoesNotExist:
        raise Http404("No such invitation") from None
    return redirect("account:invitations")


@console_view
@require_POST
def invitation_resend(
    request: HttpRequest, organization: Organization, invitation_id: int
) -> HttpResponse:
    return _invitation_action(request, organization, invitation_id, "resend")


@console_view
@require_POST
def invitation_withdraw(
    request: HttpRequest, organization: Organization, invitation_id: int
) -> HttpResponse:
    return _invitation_action(request, organization, invitation_id, "withdraw")


def _joined(request: HttpRequest, organization_id: int) -> HttpResponse:
    request.session[ORGANIZATION_SESSION_KEY] = organization_id
    return redirect("/")


def invitation_accept(request: HttpRequest, secret: str) -> HttpResponse:
    """The invited person's page: a new person sets their name and password; someone with
    an account signs in (as that address) and accepts. Any link that does not open a valid
    invitation gets the same page and status."""
    try:
        invitation = invitation_services.invitation_from_secret(secret)
    except invitation_services.InvitationGone:
        return render(request, "console/account/invitation_gone.html", status=404)
    account = invitation_services.invitation_account(invitation)
    context: dict[str, Any] = {"invitation": invitation, "account": account}
    user = request.user
    if user.is_authenticated and user.email.lower() != invitation.email:
        context["state"] = "someone_else"
        return render(request, "console/account/invitation_accept.html", context)
    if account is not None:
        return _accept_existing(request, secret, context)
    return _accept_new(request, secret, context)


def _accept_existing(request: HttpRequest, secret: str, context: dict[str, Any]) -> HttpResponse:
    if not request.user.is_authenticated:
        context["state"] = "sign_in"
        return render(request, "console/account/invitation_accept.html", context)
    if has_confirmed_device(request.user.pk) and not request.user.is_verified():  # type: ignore[union-attr]
        # The page is open without a second factor (a new person sets a password here);
        # joining with an existing account needs the account's whole sign-in.
        return redirect(f"{reverse('security:verify')}?next={request.path}")
    context["state"] = "accept"
    if request.method == "POST":
        try:
            membership = invitation_services.invitation_accept_existing(
                secret=secret, user_id=request.user.pk
            )
        except invitation_services.InvitationGone:
            return render(request, "console/account/invitation_gone.html", status=404)
        except ValidationError as exc:
            context["error"] = " ".join(exc.messages)
            return render(request, "console/account/invitation_accept.html", context, status=422)
        messages.success(request, f"Welcome to {context['invitation'].organization.name}.")
        return _joined(request, membership.organization_id)
    return render(request, "console/account/invitation_accept.html", context)


def _accept_new(request: HttpRequest, secret: str, context: dict[str, Any]) -> HttpResponse:
    form = NewPersonForm(request.POST or None)
    context.update(state="new", form=form, password_help=password_validators_help_text_html())
    if request.method != "POST":
        return render(request, "console/account/invitation_accept.html", context)
    if form.is_valid():
        try:
            user = invitation_services.invitation_accept_new_person(
                secret=secret,
                display_name=form.cleaned_data["display_name"],
                password=form.cleaned_data["password"],
            )
        except invitation_services.InvitationGone:
            return render(request, "console/account/invitation_gone.html", status=404)
        except ValidationError as exc:
            _apply_errors(form, exc)
        else:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(request, f"Welcome to {context['invitation'].organization.name}.")
            return _joined(request, context["invitation"].organization_id)
    return render(request, "console/account/invitation_accept.html", context, status=422)


# --- switching organization, signing out everywhere ---------------------------------------------


@console_view
@require_POST
def switch_organization(request: HttpRequest, organization: Organization) -> HttpResponse:
    """Work in another organization this person is an active member of (404 otherwise)."""
    raw = request.POST.get("organization_id", "")
    wanted = int(raw) if raw.isdigit() else None
    memberships = active_memberships(_user_id(request))
    if wanted is None or wanted not in {m.organization_id for m in memberships}:
        raise Http404("Not a member of that organization")
    request.session[ORGANIZATION_SESSION_KEY] = wanted
    return redirect("/")


@require_POST
def sign_out_everywhere(request: HttpRequest) -> HttpResponse:
    """End this person's sessions in every other browser ("others", the default), or in
    this one too ("all")."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    this_one_too = request.POST.get("which") == "all"
    address, browser = client_address(request)
    accounts.user_sign_out_everywhere(
        user_id=_user_id(request),
        keep_session=None if this_one_too else request.session,
        ip_address=address,
        user_agent=browser,
    )
    if this_one_too:
        logout(request)
        messages.info(request, "You are signed out in every browser, this one included.")
        return redirect("login")
    messages.success(request, "Every other browser signed in as you is now signed out.")
    return redirect("security:home")

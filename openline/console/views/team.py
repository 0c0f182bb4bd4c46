"""The team page: members, their roles and limits, deactivation and reactivation. Admins
change things; supervisors see the page read-only; others are refused."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from openline.console.offboarding import member_offboard, offboarding_plan
from openline.core.models import Membership, Organization, Role
from openline.core.selectors import TeamMember, team_members
from openline.core.services import MAX_CONVERSATION_LIMIT
from openline.core.team import MemberNotFound, member_reactivate, team_update
from openline.core.web import FORBIDDEN_TEMPLATE, console_view

LIMIT_ERRORS = {
    "min_value": f"Limits must be between 1 and {MAX_CONVERSATION_LIMIT}.",
    "max_value": f"Limits must be between 1 and {MAX_CONVERSATION_LIMIT}.",
    "invalid": "Enter a whole number.",
}


def _limit_field(**kwargs: Any) -> forms.IntegerField:
    return forms.IntegerField(
        min_value=1, max_value=MAX_CONVERSATION_LIMIT, error_messages=LIMIT_ERRORS, **kwargs
    )


class TeamForm(forms.Form):
    """The default limit, and each active member's role (``role_<id>``) and own limit
    (``limit_<id>``, empty = the default)."""

    default_limit = _limit_field(label="Default limit per person")

    def __init__(self, *args: Any, members: list[Membership], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.members = members
        for m in members:
            self.fields[f"role_{m.pk}"] = forms.ChoiceField(
                choices=Role.choices, required=False, initial=m.role, label=f"Role of {m.user}"
            )
            self.fields[f"limit_{m.pk}"] = _limit_field(
                required=False, initial=m.max_conversations, label=f"Limit for {m.user}"
            )

    def roles(self) -> dict[int, str]:
        """Roles sent (a form without a member's role leaves it as it is)."""
        sent = {m.pk: self.cleaned_data[f"role_{m.pk}"] for m in self.members}
        return {pk: role for pk, role in sent.items() if role}

    def limits(self) -> dict[int, int | None]:
        return {m.pk: self.cleaned_data[f"limit_{m.pk}"] for m in self.members}


def _actor(request: HttpRequest) -> int:
    user_id = request.user.pk
    assert user_id is not None  # console_view: signed in
    return user_id


def _role(request: HttpRequest) -> str:
    return request.membership.role  # type: ignore[attr-defined,no-any-return]


def _refused(request: HttpRequest, *, read_only: bool = False) -> HttpResponse | None:
    """Admins do everything here; supervisors may look (``read_only``); others nothing."""
    allowed = (Role.ADMIN, Role.SUPERVISOR) if read_only else (Role.ADMIN,)
    if _role(request) not in allowed:
        return render(request, FORBIDDEN_TEMPLATE, status=403)
    return None


def _apply(request: HttpRequest, organization: Organization, form: TeamForm) -> bool:
    try:
        team_update(
            organization=organization,
            actor_id=_actor(request),
            default_limit=form.cleaned_data["default_limit"],
            limits=form.limits(),
            roles=form.roles(),
        )
    except MemberNotFound as exc:
        raise Http404("no such member") from exc
    except ValidationError as exc:
        errors = exc.message_dict if hasattr(exc, "error_dict") else {"": exc.messages}
        for key, problems in errors.items():
            form.add_error(key if key in form.fields else None, problems)
        return False
    return True


@console_view
def team(request: HttpRequest, organization: Organization) -> HttpResponse:
    if refused := _refused(request, read_only=request.method == "GET"):
        return refused
    people = team_members(organization_id=organization.pk)
    form = None
    if _role(request) == Role.ADMIN:
        active = [p.membership for p in people if p.membership.is_active]
        form = TeamForm(
            request.POST if request.method == "POST" else None,
            members=active,
            initial={"default_limit": organization.max_conversations_per_counselor},
        )
        if request.method == "POST" and form.is_valid() and _apply(request, organization, form):
            messages.success(request, "Team saved.")
            return redirect("console:team")
    context = {
        "rows": [_row(person, form) for person in people],
        "form": form,
        "max_limit": MAX_CONVERSATION_LIMIT,
    }
    invalid = form is not None and form.is_bound
    return render(request, "console/team.html", context, status=422 if invalid else 200)


def _row(person: TeamMember, form: TeamForm | None) -> dict[str, Any]:
    pk = person.membership.pk
    editable = form is not None and f"role_{pk}" in form.fields
    return {
        "person": person,
        "member": person.membership,
        "role": form[f"role_{pk}"] if editable and form else None,
        "limit": form[f"limit_{pk}"] if editable and form else None,
    }


def _plan_or_404(organization: Organization, membership_id: int) -> Any:
    try:
        return offboarding_plan(organization=organization, membership_id=membership_id)
    except MemberNotFound as exc:
        raise Http404("no such member") from exc


@console_view
def team_member_deactivate(
    request: HttpRequest, organization: Organization, membership_id: int
) -> HttpResponse:
    """GET: what deactivating will do; POST: do it and show what it did (the shifts left
    with nobody)."""
    if refused := _refused(request):
        return refused
    plan = _plan_or_404(organization, membership_id)
    error = ""
    if request.method == "POST":
        try:
            done = member_offboard(
                organization=organization, membership_id=membership_id, actor_id=_actor(request)
            )
        except MemberNotFound as exc:
            raise Http404("no such member") from exc
        except ValidationError as exc:
            error = " ".join(exc.messages)
        else:
            return render(request, "console/team_deactivated.html", {"done": done})
    context = {"plan": plan, "error": error}
    return render(request, "console/team_deactivate.html", context, status=422 if error else 200)


@require_POST
@console_view
def team_member_reactivate(
    request: HttpRequest, organization: Organization, membership_id: int
) -> HttpResponse:
    if refused := _refused(request):
        return refused
    try:
        member = member_reactivate(
            organization=organization, membership_id=membership_id, actor_id=_actor(request)
        )
    except MemberNotFound as exc:
        raise Http404("no such member") from exc
    except ValidationError as exc:
        text = " ".join(exc.messages)
        messages.error(request, f"{text[:1].upper()}{text[1:]}.")
    else:
        messages.success(
            request,
            f"{member.user} is active again. Their shifts and conversations did not come back.",
        )
    return redirect("console:team")

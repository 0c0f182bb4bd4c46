"""Campaign pages: the list, a new campaign, and a campaign's page (its steps, who is
scheduled when, what went out and who replied; pause and resume). Supervisors and admins."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.db.models import Count, Exists, OuterRef
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from openline.campaigns.drips import (
    CREATED,
    CampaignError,
    campaign_create,
    campaign_set_status,
    campaign_step_add,
    campaign_step_delete,
)
from openline.campaigns.models import (
    Campaign,
    CampaignSend,
    CampaignSendStatus,
    CampaignStatus,
    CampaignStep,
)
from openline.contacts.models import CustomField, FieldKind, Tag
from openline.core.models import Organization
from openline.core.web import console_view, managers_only, paginate
from openline.messaging.models import Direction, Message
from openline.providers.models import Number


class CampaignForm(forms.Form):
    name = forms.CharField(max_length=120)
    date_field = forms.ChoiceField(label="Relative to")
    include_tag = forms.TypedChoiceField(
        label="People tagged", required=False, coerce=int, empty_value=None
    )
    exclude_tag = forms.TypedChoiceField(
        label="Leave out people tagged", required=False, coerce=int, empty_value=None
    )
    number = forms.TypedChoiceField(label="From", required=False, coerce=int, empty_value=None)

    def __init__(self, *args: Any, organization_id: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        dates = CustomField.objects.filter(organization_id=organization_id, kind=FieldKind.DATE)
        self._choices(
            "date_field",
            [
                *((f.key, f.name) for f in dates),
                (CREATED, "The day the contact was added"),
            ],
        )
        tags = [(t.pk, t.name) for t in Tag.objects.filter(organization_id=organization_id)]
        self._choices("include_tag", [("", "Everyone"), *tags])
        self._choices("exclude_tag", [("", "Nobody"), *tags])
        numbers = Number.objects.filter(organization_id=organization_id, is_active=True)
        self._choices(
            "number",
            [("", "The organization's first number"),
             *((n.pk, f"{n.name} ({n.e164})") for n in numbers)],
        )  # fmt: skip

    def _choices(self, name: str, choices: list[tuple[Any, str]]) -> None:
        field = self.fields[name]
        assert isinstance(field, forms.ChoiceField)
        field.choices = choices


class StepForm(forms.Form):
    days = forms.IntegerField(min_value=0, max_value=3660, label="Days")
    when = forms.ChoiceField(choices=[("after", "after the date"), ("before", "before the date")])
    at_time = forms.TimeField(label="At (their local time)", initial="10:00")
    body = forms.CharField(label="Text", max_length=1600, widget=forms.Textarea(attrs={"rows": 3}))


def _campaign_or_404(organization: Organization, campaign_id: int) -> Campaign:
    return get_object_or_404(
        Campaign.objects.select_related("include_tag", "exclude_tag", "number"),
        pk=campaign_id,
        organization=organization,
    )


@console_view
@require_GET
def campaign_list(request: HttpRequest, organization: Organization) -> HttpResponse:
    if refused := managers_only(request):
        return refused
    campaigns = (
        Campaign.objects.filter(organization=organization)
        .annotate(
            steps_count=Count("steps", distinct=True),
            planned=Count(
                "steps__sends",
                filter=Exists(
                    CampaignSend.objects.filter(
                        pk=OuterRef("steps__sends"), status=CampaignSendStatus.PLANNED
                    )
                ),
                distinct=True,
            ),
        )
        .select_related("include_tag")
        .order_by("name", "pk")
    )
    return render(request, "campaigns/drips/list.html", {"page": paginate(request, campaigns)})


@console_view
@require_http_methods(["GET", "POST"])
def campaign_new(request: HttpRequest, organization: Organization) -> HttpResponse:
    if refused := managers_only(request):
        return refused
    form = CampaignForm(
        request.POST if request.method == "POST" else None, organization_id=organization.pk
    )
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        try:
            campaign = campaign_create(
                organization_id=organization.pk,
                actor_id=request.user.pk,
                name=data["name"],
                date_field=data["date_field"],
                include_tag_id=data["include_tag"],
                exclude_tag_id=data["exclude_tag"],
                number_id=data["number"],
            )
        except CampaignError as exc:
            form.add_error(exc.field or None, str(exc))
        else:
            messages.success(request, "Campaign created. Add its texts below.")
            return redirect("drips:detail", campaign.pk)
    return render(request, "campaigns/drips/new.html", {"form": form})


def _detail(
    request: HttpRequest, organization: Organization, campaign: Campaign, step_form: StepForm
) -> HttpResponse:
    sends = CampaignSend.objects.filter(step__campaign=campaign).select_related(
        "contact", "step", "message"
    )
    replied = Message.objects.filter(
        conversation__contact_id=OuterRef("contact_id"),
        direction=Direction.INBOUND,
        created_at__gt=OuterRef("sent_at"),
    )
    counts = dict(sends.values_list("status").annotate(n=Count("pk")).order_by())
    context = {
        "campaign": campaign,
        "steps": campaign.steps.annotate(
            sent=Count(
                "sends",
                filter=Exists(
                    CampaignSend.objects.filter(
                        pk=OuterRef("sends"), status=CampaignSendStatus.SENT
                    )
                ),
            ),
        ),
        "step_form": step_form,
        "counts": counts,
        "planned": paginate(
            request, sends.filter(status=CampaignSendStatus.PLANNED).order_by("due_at", "pk")
        ),
        "done": sends.exclude(status=CampaignSendStatus.PLANNED)
        .annotate(replied=Exists(replied))
        .order_by("-sent_at", "-pk")[:100],
        "date_label": _date_label(campaign),
    }
    return render(request, "campaigns/drips/detail.html", context)


def _date_label(campaign: Campaign) -> str:
    if campaign.date_field == CREATED:
        return "the day the contact was added"
    field = CustomField.objects.filter(
        organization_id=campaign.organization_id, key=campaign.date_field
    ).first()
    return field.name if field else campaign.date_field


@console_view
@require_GET
def campaign_detail(
    request: HttpRequest, organization: Organization, campaign_id: int
) -> HttpResponse:
    if refused := managers_only(request):
        return refused
    campaign = _campaign_or_404(organization, campaign_id)
    return _detail(request, organization, campaign, StepForm())


@console_view
@require_POST
def campaign_step_new(
    request: HttpRequest, organization: Organization, campaign_id: int
) -> HttpResponse:
    if refused := managers_only(request):
        return refused
    campaign = _campaign_or_404(organization, campaign_id)
    form = StepForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        days = data["days"] if data["when"] == "after" else -data["days"]
        try:
            campaign_step_add(campaign=campaign, actor_id=request.user.pk, days=days,
                              at_time=data["at_time"], template=data["body"])  # fmt: skip
        except CampaignError as exc:
            form.add_error("body" if exc.field == "template" else None, str(exc))
        else:
            messages.success(request, "Text added. People are planned within a minute.")
            return redirect("drips:detail", campaign.pk)
    return _detail(request, organization, campaign, form)


@console_view
@require_POST
def campaign_step_remove(
    request: HttpRequest, organization: Organization, campaign_id: int, step_id: int
) -> HttpResponse:
    if refused := managers_only(request):
        return refused
    campaign = _campaign_or_404(organization, campaign_id)
    step = get_object_or_404(CampaignStep, pk=step_id, campaign=campaign)
    try:
        campaign_step_delete(step=step, actor_id=request.user.pk)
    except CampaignError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Text removed.")
    return redirect("drips:detail", campaign.pk)


@console_view
@require_POST
def campaign_control(
    request: HttpRequest, organization: Organization, campaign_id: int, action: str
) -> HttpResponse:
    if refused := managers_only(request):
        return refused
    campaign = _campaign_or_404(organization, campaign_id)
    status = {"pause": CampaignStatus.PAUSED, "resume": CampaignStatus.ACTIVE}.get(action)
    if status is None:
        raise Http404
    campaign_set_status(campaign=campaign, actor_id=request.user.pk, status=status)
    messages.success(request, "Paused." if status == CampaignStatus.PAUSED else "Resumed.")
    return redirect("drips:detail", campaign.pk)

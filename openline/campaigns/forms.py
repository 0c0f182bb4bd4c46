from __future__ import annotations

from typing import Any

from django import forms

from openline.campaigns.compose import MERGE_FIELDS
from openline.campaigns.services import MAX_NAME
from openline.contacts.models import Tag
from openline.providers.models import Number


class BroadcastForm(forms.Form):
    name = forms.CharField(max_length=MAX_NAME, help_text="For you; recipients never see it.")
    body = forms.CharField(
        label="Message",
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="Merge fields: "
        + ", ".join("{" + name + "} (" + what + ")" for name, what in MERGE_FIELDS.items())
        + ". A person's first broadcast ends with “Reply STOP to opt out.”",
    )
    everyone = forms.BooleanField(
        required=False, label="Everyone in Contacts", help_text="Instead of choosing tags."
    )
    include_tags = forms.ModelMultipleChoiceField(
        queryset=Tag.objects.none(),
        required=False,
        label="People tagged",
        widget=forms.CheckboxSelectMultiple,
    )
    exclude_tags = forms.ModelMultipleChoiceField(
        queryset=Tag.objects.none(),
        required=False,
        label="Leave out people tagged",
        widget=forms.CheckboxSelectMultiple,
    )
    numbers = forms.ModelMultipleChoiceField(
        queryset=Number.objects.none(),
        label="Send from",
        widget=forms.CheckboxSelectMultiple,
        help_text="Several numbers share the load; each person keeps the number they "
        "had a broadcast from before.",
    )

    def __init__(self, *args: Any, organization_id: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        tags = Tag.objects.filter(organization_id=organization_id)
        for name in ("include_tags", "exclude_tags"):
            field = self.fields[name]
            assert isinstance(field, forms.ModelMultipleChoiceField)
            field.queryset = tags
        numbers = self.fields["numbers"]
        assert isinstance(numbers, forms.ModelMultipleChoiceField)
        numbers.queryset = Number.objects.filter(
            organization_id=organization_id, is_active=True
        ).order_by("id")

    def audience(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "everyone": bool(data["everyone"]),
            "include_tags": [tag.pk for tag in data["include_tags"]],
            "exclude_tags": [tag.pk for tag in data["exclude_tags"]],
        }


class ScheduleForm(forms.Form):
    scheduled_for = forms.DateTimeField(
        required=False,
        label="Send at",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )

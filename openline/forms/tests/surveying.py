"""Helpers for the survey tests: a form made straight from the models (one version, one
section) and used by an inbox, and the texts a simulated phone received."""

from __future__ import annotations

from typing import Any

from openline.forms.models import Form, FormAnswer, FormUse, FormVersion


def form_make(org: Any, name: str, fields: list[dict[str, Any]]) -> Form:
    form = Form.objects.create(organization=org, name=name)
    version = FormVersion.objects.create(
        organization=org,
        form=form,
        number=1,
        schema={"sections": [{"key": "main", "title": name, "fields": fields}]},
    )
    form.current_version = version
    form.save(update_fields=["current_version"])
    return form


def form_use(number: Any, form: Form, purpose: str, hold_minutes: int = 10) -> FormUse:
    return FormUse.objects.create(
        organization_id=number.organization_id,
        number=number,
        purpose=purpose,
        form=form,
        hold_minutes=hold_minutes,
    )


def received(phone: str) -> list[str]:
    """Every text the simulated phone received, oldest first."""
    from openline.providers.sandbox.models import SandboxMessage

    return list(
        SandboxMessage.objects.filter(to=phone).order_by("pk").values_list("body", flat=True)
    )


def stored(response: Any) -> dict[str, list[str]]:
    answers: dict[str, list[str]] = {}
    for key, value in (
        FormAnswer.objects.filter(response=response)
        .order_by("field_key", "position")
        .values_list("field_key", "value")
    ):
        answers.setdefault(key, []).append(value)
    return answers


AGE = {
    "key": "age_group",
    "label": "Age group",
    "kind": "choice",
    "required": True,
    "remember": True,
    "options": [
        {"value": "under_18", "label": "Under 18"},
        {"value": "18_24", "label": "18 to 24"},
        {"value": "25_up", "label": "25 or older"},
    ],
}
SAFE = {
    "key": "safe_now",
    "label": "Are you safe right now",
    "kind": "yesno",
    "required": True,
    "options": [{"value": "no", "label": "No", "severity": 3}],
}
FEELING = {"key": "feeling", "label": "How are you feeling", "kind": "scale"}
REASON = {
    "key": "reason",
    "label": "What is it about",
    "kind": "multi_choice",
    "options": ["Housing", "Food", "Someone to talk to"],
}
NAME = {"key": "first_name", "label": "What should we call you", "kind": "text"}

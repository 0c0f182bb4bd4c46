"""The forms in a conversation's pane: ``{% pane_forms as pane %}`` inside the console's
pane template (which has ``conversation`` and ``access`` in its context)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django import template

from openline.forms.filling import PaneForm, can_fill, pane_sections

register = template.Library()


@dataclass(frozen=True, slots=True)
class Pane:
    forms: list[PaneForm]
    surveys: list[PaneForm]


@register.simple_tag(takes_context=True)
def pane_forms_for(context: template.Context) -> Pane:
    conversation = context["conversation"]
    request = context["request"]
    editable = can_fill(membership=request.membership, conversation=conversation)
    forms, surveys = pane_sections(conversation=conversation, editable=editable)
    return Pane(forms=forms, surveys=surveys)


@register.filter
def as_json(value: Any) -> str:
    """For a data- attribute pane.js reads (autoescaped like any attribute)."""
    return json.dumps(list(value) if isinstance(value, tuple) else value)

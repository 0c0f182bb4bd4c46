"""Migration chat 0005: each widget's old "post" questions become a form, the survey of its
inbox (the first such widget of an inbox; the inbox's own survey, if any, is kept)."""

from __future__ import annotations

import importlib
import json
from typing import Any

import pytest
from django.apps import apps
from django.test import Client

from openline.chat.models import ChatQuestion
from openline.chat.tests.conftest import ORIGIN
from openline.forms.models import Form, FormUse
from openline.forms.schema import schema_load

pytestmark = pytest.mark.django_db

migration = importlib.import_module("openline.chat.migrations.0005_post_questions_to_forms")


def _widget(org: Any, number: Any, name: str) -> Any:
    from openline.chat.models import ChatWidget

    return ChatWidget.objects.create(
        organization=org, number=number, display_name=name, allowed_origins=[ORIGIN]
    )


def _ask(widget: Any, stage: str, kind: str, prompt: str, position: int, **kw: Any) -> Any:
    return ChatQuestion.objects.create(
        organization_id=widget.organization_id,
        widget=widget,
        stage=stage,
        kind=kind,
        prompt=prompt,
        position=position,
        **kw,
    )


def test_post_questions_become_the_inbox_survey_form(
    client: Client, org: Any, sandbox_number: Any, other_org: Any, other_number: Any
) -> None:
    from openline.providers.services import number_add

    main = _widget(org, sandbox_number, "Talk to us")
    pre = _ask(main, "pre", "text", "Your town?", 1)
    _ask(main, "post", "text", "Anything else?", 2)
    _ask(main, "post", "scale", "How helpful was this?", 1, required=True)
    _ask(
        main,
        "post",
        "choice",
        "What helped?",
        3,
        options=[
            {"label": "Talking", "severity": 0},
            {"label": "Talking!", "severity": 0},
            {"label": "Ideas", "severity": 1},
        ],
    )
    _ask(main, "post", "yesno", "Would you come back?", 4, options=[{"label": "No", "severity": 2}])
    _ask(main, "post", "consent", "May we follow up?", 5, link="https://x.org/terms")
    _ask(main, "post", "text", "Anything else?", 6)  # the same prompt twice
    # A second widget on the same inbox: its form is made, the inbox keeps the first.
    second = _ask(_widget(org, sandbox_number, "Talk to us"), "post", "text", "2nd?", 1)
    # A widget whose inbox already has a survey: that survey stays.
    third_inbox = number_add(organization=org, provider="sandbox", e164="+12025550143", name="B")
    kept = Form.objects.create(organization=org, name="Kept survey")
    FormUse.objects.create(organization=org, number=third_inbox, purpose="post_survey", form=kept)
    _ask(_widget(org, third_inbox, "Youth chat"), "post", "text", "3rd?", 1)
    # Another organization's widget: its own form, in its own organization.
    _ask(_widget(other_org, other_number, "Talk to us"), "post", "scale", "Theirs?", 1)
    no_post = _widget(org, sandbox_number, "Only pre")
    _ask(no_post, "pre", "text", "Q?", 1)

    migration.post_questions_to_forms(apps, None)

    assert not ChatQuestion.objects.filter(stage="post").exists()
    assert set(ChatQuestion.objects.values_list("widget_id", flat=True)) == {main.pk, no_post.pk}
    assert ChatQuestion.objects.filter(pk=pre.pk).exists()
    ours = {f.name: f for f in Form.objects.filter(organization=org)}
    assert set(ours) == {
        "Talk to us survey",
        "Talk to us survey (2)",
        "Youth chat survey",
        "Kept survey",
    }
    form = ours["Talk to us survey"]
    assert form.current_version is not None and form.current_version.number == 1
    schema = schema_load(form.current_version.schema)  # a valid definition
    fields = list(schema.fields())
    assert [(f.key, f.label, str(f.kind), f.required) for f in fields] == [
        ("how_helpful_was_this", "How helpful was this?", "scale", True),
        ("anything_else", "Anything else?", "text", False),
        ("what_helped", "What helped?", "choice", False),
        ("would_you_come_back", "Would you come back?", "yesno", False),
        ("may_we_follow_up", "May we follow up?", "checklist", False),
        ("anything_else_2", "Anything else?", "text", False),
    ]
    assert [(o.value, o.label, o.severity) for o in fields[2].options] == [
        ("talking", "Talking", 0),
        ("talking_2", "Talking!", 0),
        ("ideas", "Ideas", 1),
    ]
    assert fields[3].option("no") is not None and fields[3].option("no").severity == 2  # type: ignore[union-attr]
    assert fields[4].help == "Terms: https://x.org/terms"
    uses = {u.number_id: u.form.name for u in FormUse.objects.filter(purpose="post_survey")}
    assert uses[sandbox_number.pk] == "Talk to us survey"
    assert uses[third_inbox.pk] == "Kept survey"
    assert uses[other_number.pk] == "Talk to us survey"
    theirs = FormUse.objects.get(number=other_number)
    assert theirs.organization_id == other_org.pk and theirs.form.organization_id == other_org.pk
    assert (
        list(schema_load(ours["Talk to us survey (2)"].current_version.schema).fields())[0].label
        == "2nd?"
    )  # type: ignore[union-attr]
    assert not FormUse.objects.filter(form=ours["Talk to us survey (2)"]).exists()
    assert not ChatQuestion.objects.filter(pk=second.pk).exists()

    # The widget now offers the form as its survey.
    config = client.get(f"/chat/{main.public_id}/config", headers={"Origin": ORIGIN}).json()
    assert [f["label"] for f in config["survey"]][:2] == ["How helpful was this?", "Anything else?"]
    assert "severity" not in json.dumps(config)

    # Running it again changes nothing (no post questions are left).
    migration.post_questions_to_forms(apps, None)
    assert Form.objects.count() == 5

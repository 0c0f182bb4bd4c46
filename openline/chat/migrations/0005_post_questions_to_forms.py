"""The post-chat survey moves to the forms engine: each widget's "post" questions become a
form ("<widget> survey", one version) and the survey of the widget's inbox, and the post
stage goes away.

Widgets sharing an inbox: an inbox has one post_survey use (FormUse is unique per inbox and
purpose), so the first of its widgets (lowest id) with post questions gives the inbox its
survey, unless the inbox already has one; the other widgets' forms are made all the same,
so no question is lost and an admin can pick one under Forms › Inbox uses. Answers already
given stay in ChatSession.survey (shown in the pane as before). Not reversible: going back
leaves the forms in place and the post questions gone."""

from __future__ import annotations

import re
from typing import Any

from django.db import migrations, models

# Frozen copies of forms.schema's rules (a migration must not change with the app's code).
KEY_LIMIT = 50


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.casefold()).strip("_")


def _key(prompt: str, taken: set[str]) -> str:
    base = _slug(prompt)[:KEY_LIMIT].strip("_") or "question"
    if not base[0].isalpha():
        base = f"q_{base}"[:KEY_LIMIT]
    key, n = base, 2
    while key in taken:
        key, n = f"{base}_{n}", n + 1
    taken.add(key)
    return key


def _options(question: Any) -> list[dict[str, object]]:
    options: list[dict[str, object]] = []
    values: set[str] = set()
    for option in question.options or []:
        label = " ".join(str(option.get("label", "")).split())[:300]
        if not label:
            continue
        base = _slug(label)[:110] or "option"
        value, n = base, 2
        while value in values:
            value, n = f"{base}_{n}", n + 1
        values.add(value)
        options.append({"value": value, "label": label, "severity": option.get("severity", 0)})
    return options


def _field(question: Any, taken: set[str]) -> dict[str, object]:
    field: dict[str, object] = {
        "key": _key(question.prompt, taken),
        "label": question.prompt,
        "kind": question.kind,
        "required": question.required,
        "help": "",
        "remember": False,
        "options": [],
    }
    if question.kind == "choice":
        field["options"] = _options(question)
    elif question.kind == "yesno":
        given = {o.get("label"): o.get("severity", 0) for o in question.options or []}
        field["options"] = [
            {"value": "yes", "label": "Yes", "severity": given.get("Yes", 0)},
            {"value": "no", "label": "No", "severity": given.get("No", 0)},
        ]
    elif question.kind == "consent":  # agree to terms: a checklist of one item
        field["kind"] = "checklist"
        field["help"] = f"Terms: {question.link}"[:500] if question.link else ""
        field["options"] = [{"value": "agreed", "label": "I agree", "severity": 0}]
    elif question.kind not in ("text", "scale"):
        field["kind"] = "text"
    return field


def _form_name(Form: Any, organization_id: int, widget_name: str) -> str:
    base = f"{widget_name} survey"[:110]
    name, n = base, 2
    while Form.objects.filter(organization_id=organization_id, name=name).exists():
        name, n = f"{base} ({n})", n + 1
    return name


def post_questions_to_forms(apps: Any, schema_editor: Any) -> None:
    ChatWidget = apps.get_model("chat", "ChatWidget")
    ChatQuestion = apps.get_model("chat", "ChatQuestion")
    Form = apps.get_model("forms", "Form")
    FormVersion = apps.get_model("forms", "FormVersion")
    FormUse = apps.get_model("forms", "FormUse")
    widget_ids = ChatQuestion.objects.filter(stage="post").values_list("widget_id", flat=True)
    for widget in ChatWidget.objects.filter(pk__in=set(widget_ids)).order_by("pk"):
        questions = list(
            ChatQuestion.objects.filter(widget_id=widget.pk, stage="post").order_by(
                "position", "id"
            )
        )
        taken: set[str] = set()
        schema = {
            "sections": [
                {
                    "key": "survey",
                    "title": "",
                    "fields": [_field(question, taken) for question in questions],
                }
            ]
        }
        form = Form.objects.create(
            organization_id=widget.organization_id,
            name=_form_name(Form, widget.organization_id, widget.display_name),
            description=(
                f"The questions the web chat widget “{widget.display_name}” asked after a chat."
            )[:500],
        )
        version = FormVersion.objects.create(
            organization_id=widget.organization_id, form=form, number=1, schema=schema
        )
        form.current_version = version
        form.save(update_fields=["current_version"])
        if not FormUse.objects.filter(number_id=widget.number_id, purpose="post_survey").exists():
            FormUse.objects.create(
                organization_id=widget.organization_id,
                number_id=widget.number_id,
                purpose="post_survey",
                form=form,
                by_text=False,  # it was a chat survey: texting it is the admin's choice
            )
        ChatQuestion.objects.filter(pk__in=[q.pk for q in questions]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("chat", "0004_start_limits"),
        ("forms", "0002_formuse_by_text"),
    ]

    operations = [
        migrations.RunPython(post_questions_to_forms, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="chatquestion",
            name="stage",
            field=models.CharField(choices=[("pre", "Before the chat")], max_length=4),
        ),
    ]

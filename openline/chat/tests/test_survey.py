"""The post-chat survey is the inbox's post_survey form (the forms engine): the widget gets
its questions without severities, the answers are checked on the server field by field,
stored once as a FormResponse under the version answered, and shown in the pane."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from openline.chat import services
from openline.chat.models import ChatSession
from openline.chat.tests.conftest import ORIGIN
from openline.forms.models import Form, FormAnswer, FormResponse, FormUse, FormVersion

pytestmark = pytest.mark.django_db

FIELDS: list[dict[str, Any]] = [
    {"key": "helpful", "label": "How helpful was this?", "kind": "scale", "required": True},
    {
        "key": "about",
        "label": "What was it about?",
        "kind": "choice",
        "options": [
            {"value": "money", "label": "Money"},
            {"value": "family", "label": "Family", "severity": 2},
        ],
    },
    {
        "key": "family_who",
        "label": "Who in your family?",
        "kind": "text",
        "required": True,
        "show_if": {"field": "about", "values": ["family"]},
    },
    {
        "key": "safe",
        "label": "Do you feel safe now?",
        "kind": "yesno",
        "options": [{"value": "no", "label": "No", "severity": 3}],
    },
    {
        "key": "ways",
        "label": "How did you hear of us?",
        "kind": "multi_choice",
        "options": [
            {"value": "school", "label": "School"},
            {"value": "friend", "label": "A friend"},
            {"value": "web", "label": "The web"},
        ],
    },
    {
        "key": "next",
        "label": "What will you do next?",
        "kind": "checklist",
        "options": [
            {"value": "call", "label": "Call a friend"},
            {"value": "rest", "label": "Rest"},
        ],
    },
    {
        "key": "area",
        "label": "Where do you live?",
        "kind": "taxonomy",
        "options": [{"value": "n", "label": "North"}, {"value": "s", "label": "South"}],
    },
    {"key": "age", "label": "Your age", "kind": "number", "min": 10, "max": 120},
    {"key": "born", "label": "Date of birth", "kind": "date", "help": "As YYYY-MM-DD"},
    {"key": "more", "label": "Anything else?", "kind": "long_text"},
]


def make_form(organization: Any, name: str, fields: list[dict[str, Any]]) -> Form:
    """A form with one version, made with the models (as the builder would)."""
    form = Form.objects.create(organization=organization, name=name)
    version = FormVersion.objects.create(
        organization=organization,
        form=form,
        number=1,
        schema={"sections": [{"key": "s", "title": "Survey", "fields": fields}]},
    )
    form.current_version = version
    form.save()
    return form


def new_version(form: Form, fields: list[dict[str, Any]]) -> FormVersion:
    assert form.current_version is not None
    version = FormVersion.objects.create(
        organization_id=form.organization_id,
        form=form,
        number=form.current_version.number + 1,
        schema={"sections": [{"key": "s", "title": "Survey", "fields": fields}]},
    )
    form.current_version = version
    form.save()
    return version


@pytest.fixture
def survey(org: Any, widget: Any) -> Form:
    form = make_form(org, "After chat", FIELDS)
    FormUse.objects.create(
        organization=org, number_id=widget.number_id, purpose="post_survey", form=form
    )
    return form


def _post(client: Client, widget: Any, path: str, body: Any) -> Any:
    return client.post(
        f"/chat/{widget.public_id}/{path}",
        data=json.dumps(body),
        content_type="application/json",
        headers={"Origin": ORIGIN},
    )


def _ended_chat(client: Client, widget: Any) -> tuple[str, ChatSession]:
    started = _post(client, widget, "start", {"name": "Sam"})
    assert started.status_code == 201, started.content
    session = ChatSession.objects.get(conversation_id=started.json()["conversation"])
    services.chat_end(session=session)
    return started.json()["token"], session


GOOD = {
    "helpful": "6",
    "about": "family",
    "family_who": "My brother",
    "safe": "yes",
    "ways": ["school", "web"],
    "next": ["rest"],
    "area": "n",
    "age": 17,
    "born": "2009-03-04",
    "more": "Thanks <b>so</b> much",
}


def test_config_sends_the_inbox_survey_form_without_severities(
    client: Client, widget: Any, survey: Form
) -> None:
    config = client.get(f"/chat/{widget.public_id}/config", headers={"Origin": ORIGIN}).json()
    fields = config["survey"]
    assert [f["key"] for f in fields] == [f["key"] for f in FIELDS]
    assert fields[1] == {
        "key": "about",
        "label": "What was it about?",
        "kind": "choice",
        "required": False,
        "help": "",
        "options": [{"value": "money", "label": "Money"}, {"value": "family", "label": "Family"}],
        "show_if": None,
    }
    assert fields[2]["show_if"] == {"field": "about", "values": ["family"]}
    assert fields[3]["options"] == [
        {"value": "yes", "label": "Yes"},
        {"value": "no", "label": "No"},
    ]
    assert [o["value"] for o in fields[0]["options"]] == [str(n) for n in range(1, 8)]
    assert (fields[7]["min"], fields[7]["max"]) == (10, 120)
    assert fields[8]["help"] == "As YYYY-MM-DD"
    assert "severity" not in json.dumps(config)


def test_each_kind_is_checked_on_the_server_and_a_refusal_names_the_field(
    client: Client, widget: Any, survey: Form
) -> None:
    token, session = _ended_chat(client, widget)
    refusals = {
        "helpful": {"helpful": "8"},
        "about": {"about": "cats"},
        "safe": {"safe": "maybe"},
        "ways": {"ways": ["school", "tv"]},
        "next": {"next": "sleep"},
        "area": {"area": "east"},
        "age": {"age": "old"},
        "born": {"born": "04/03/2009"},
        "more": {"more": "x" * 5001},
    }
    for key, change in refusals.items():
        refused = _post(client, widget, "survey", {"token": token, "answers": {**GOOD, **change}})
        assert refused.status_code == 422, (key, refused.content)
        body = refused.json()
        assert (body["error"], body["field"]) == ("invalid_answer", key)
        label = next(f["label"] for f in FIELDS if f["key"] == key)
        assert label in body["message"] and set(body["errors"]) == {key}
        assert refused["Access-Control-Allow-Origin"] == ORIGIN
    too_young = _post(client, widget, "survey", {"token": token, "answers": {**GOOD, "age": 5}})
    assert too_young.json()["field"] == "age" and "at least 10" in too_young.json()["message"]
    one_only = {**GOOD, "about": ["money", "family"]}
    assert (
        _post(client, widget, "survey", {"token": token, "answers": one_only}).json()["field"]
        == "about"
    )
    missing = _post(client, widget, "survey", {"token": token, "answers": {"about": "money"}})
    assert missing.status_code == 422
    assert missing.json()["errors"] == {"helpful": "“How helpful was this?” is required."}
    not_an_object = _post(client, widget, "survey", {"token": token, "answers": ["helpful", 6]})
    assert not_an_object.status_code == 422 and not_an_object.json()["field"] == "answers"
    assert not FormResponse.objects.exists() and not FormAnswer.objects.exists()
    session.refresh_from_db()
    assert session.survey_at is None  # still open after refusals


def test_the_survey_is_stored_once_under_the_version_answered(
    client: Client, widget: Any, survey: Form, org: Any
) -> None:
    started = _post(client, widget, "start", {})
    token = started.json()["token"]
    early = _post(client, widget, "survey", {"token": token, "answers": GOOD})
    assert early.status_code == 409 and early.json()["error"] == "survey_closed"
    session = ChatSession.objects.get()
    services.chat_end(session=session)
    assert _post(client, widget, "survey", {"token": "nope", "answers": GOOD}).status_code == 404
    # The form is edited after the widget loaded: answers go under the version now current.
    version = new_version(
        survey, FIELDS[:1] + [{"key": "more", "label": "Tell us", "kind": "text"}]
    )
    done = _post(client, widget, "survey", {"token": token, "answers": GOOD})
    assert done.status_code == 201, done.content
    response = FormResponse.objects.get()
    assert (response.form_id, response.version_id, response.organization_id) == (
        survey.pk,
        version.pk,
        org.pk,
    )
    assert (response.purpose, response.channel, response.status) == (
        "post_survey",
        "chat",
        "complete",
    )
    assert response.conversation_id == session.conversation_id
    assert response.contact_id == session.conversation.contact_id
    assert response.completed_at is not None and response.answered_by_id is None
    stored = list(FormAnswer.objects.order_by("id").values_list("field_key", "value"))
    assert stored == [("helpful", "6"), ("more", "Thanks <b>so</b> much")]
    again = _post(client, widget, "survey", {"token": token, "answers": GOOD})
    assert again.status_code == 409 and again.json()["error"] == "survey_closed"
    assert FormResponse.objects.count() == 1
    assert ChatSession.objects.get().survey == []  # the old JSON is not written any more


def test_every_kind_is_stored_and_hidden_answers_are_dropped(
    client: Client, widget: Any, survey: Form
) -> None:
    token, _ = _ended_chat(client, widget)
    assert _post(client, widget, "survey", {"token": token, "answers": GOOD}).status_code == 201
    rows = list(FormAnswer.objects.order_by("id").values_list("field_key", "value", "label"))
    assert rows == [
        ("helpful", "6", "6"),
        ("about", "family", "Family"),
        ("family_who", "My brother", ""),
        ("safe", "yes", "Yes"),
        ("ways", "school", "School"),
        ("ways", "web", "The web"),
        ("next", "rest", "Rest"),
        ("area", "n", "North"),
        ("age", "17", ""),
        ("born", "2009-03-04", ""),
        ("more", "Thanks <b>so</b> much", ""),
    ]
    assert FormAnswer.objects.get(field_key="age").number == 17
    # Another chat: "Money" hides "Who in your family?" (required only when shown), so its
    # answer, sent anyway, is dropped.
    token, session = _ended_chat(client, widget)
    answers = {"helpful": 3, "about": "money", "family_who": "should not be kept"}
    assert _post(client, widget, "survey", {"token": token, "answers": answers}).status_code == 201
    response = FormResponse.objects.get(conversation_id=session.conversation_id)
    assert set(response.answers.values_list("field_key", flat=True)) == {"helpful", "about"}


def test_without_a_survey_form_none_is_offered_or_taken(
    client: Client, widget: Any, org: Any
) -> None:
    token, _ = _ended_chat(client, widget)
    config = client.get(f"/chat/{widget.public_id}/config", headers={"Origin": ORIGIN}).json()
    assert config["survey"] == []
    refused = _post(client, widget, "survey", {"token": token, "answers": {"x": 1}})
    assert refused.status_code == 409 and refused.json()["error"] == "no_survey"
    # An archived form, or one with no version, is no survey either.
    form = make_form(org, "Old", FIELDS[:1])
    use = FormUse.objects.create(
        organization=org, number_id=widget.number_id, purpose="post_survey", form=form
    )
    form.archived_at = form.created_at
    form.save()
    assert _post(client, widget, "survey", {"token": token, "answers": {}}).status_code == 409
    use.delete()
    assert not FormResponse.objects.exists()


def test_another_organizations_widget_or_form_is_never_used(
    client: Client, widget: Any, survey: Form, other_org: Any, charlie: Any, other_number: Any
) -> None:
    from openline.chat.services import widget_create

    their_number = other_number
    theirs = widget_create(
        organization_id=other_org.pk,
        actor_id=charlie.pk,
        number_id=their_number.pk,
        display_name="Theirs",
        allowed_origins=[ORIGIN],
    )
    their_form = make_form(other_org, "Their survey", [FIELDS[-1]])
    FormUse.objects.create(
        organization=other_org, number=their_number, purpose="post_survey", form=their_form
    )
    config = client.get(f"/chat/{theirs.public_id}/config", headers={"Origin": ORIGIN}).json()
    assert [f["key"] for f in config["survey"]] == ["more"]  # theirs, not ours
    token, _ = _ended_chat(client, widget)
    # Our chat's token on their widget finds nothing.
    assert _post(client, theirs, "survey", {"token": token, "answers": GOOD}).status_code == 404
    # A use on our inbox pointing at their form (never made by the app) is ignored.
    FormUse.objects.filter(form=survey).update(form=their_form)
    config = client.get(f"/chat/{widget.public_id}/config", headers={"Origin": ORIGIN}).json()
    assert config["survey"] == []
    assert _post(client, widget, "survey", {"token": token, "answers": GOOD}).status_code == 409
    assert not FormResponse.objects.exists()


def test_the_pane_and_printout_show_the_survey_once_and_an_older_chat_json(
    client: Client, widget: Any, survey: Form, alice: Any
) -> None:
    token, session = _ended_chat(client, widget)
    assert _post(client, widget, "survey", {"token": token, "answers": GOOD}).status_code == 201
    new_version(survey, [{"key": "helpful", "label": "Renamed later", "kind": "scale"}])
    client.force_login(alice)
    pane = client.get(f"/conversations/{session.conversation_id}/").content.decode()
    # With the conversation's forms (the survey's version, labels as asked), not twice.
    section = pane[pane.index('data-purpose="post_survey"') :][:4000]
    assert "How helpful was this?" in section and "Renamed later" not in pane
    assert "School, The web" in section and "Who in your family?" in section
    assert "Thanks &lt;b&gt;so&lt;/b&gt; much" in section and "<b>so</b>" not in pane
    assert pane.count("How helpful was this?") == 1
    assert "data-survey" not in pane and "Sent without answers" not in pane
    printed = client.get(f"/conversations/{session.conversation_id}/print").content.decode()
    assert printed.count("How helpful was this?") == 1 and "Sent without answers" not in printed
    # An older chat: its answers are the JSON of before, under "After the chat".
    token, older = _ended_chat(client, widget)
    ChatSession.objects.filter(pk=older.pk).update(
        survey=[{"question": 9, "prompt": "Old question", "kind": "text", "answer": "Old answer",
                 "severity": 0}],
        survey_at=timezone.now(),
    )  # fmt: skip
    pane = client.get(f"/conversations/{older.conversation_id}/").content.decode()
    section = pane[pane.index("data-survey") :][:2000]
    assert "After the chat" in section
    assert "Old question" in section and "Old answer" in section
    printed = client.get(f"/conversations/{older.conversation_id}/print").content.decode()
    assert "After the chat" in printed and "Old answer" in printed

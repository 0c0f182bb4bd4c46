"""Pre-chat triage: answers checked, stored, priority and its reason set and shown. (The
post-chat survey is the forms engine's: test_survey.py.)"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.utils import timezone

from openline.chat import services
from openline.chat.models import ChatQuestion, ChatSession
from openline.chat.questions import AnswerError, answers_clean, question_create, question_move
from openline.chat.tests.conftest import ORIGIN
from openline.contacts.models import Contact
from openline.messaging.models import Conversation, Priority

pytestmark = pytest.mark.django_db


@pytest.fixture
def triage(widget: Any, alice: Any) -> dict[str, ChatQuestion]:
    def add(**kw: Any) -> ChatQuestion:
        return question_create(widget=widget, actor_id=alice.pk, **kw)

    return {
        "topic": add(
            stage="pre",
            kind="choice",
            prompt="What is it about?",
            required=True,
            options_text="Money\nThinking about suicide | urgent\nFamily | 1",
        ),
        "mood": add(stage="pre", kind="scale", prompt="How do you feel, 1 to 7?"),
        "safe": add(stage="pre", kind="yesno", prompt="Are you safe?", options_text="No | high"),
        "where": add(stage="pre", kind="text", prompt="Where do you live?"),
        "terms": add(
            stage="pre", kind="consent", prompt="I agree to the terms", link="https://x.org/t"
        ),
    }


def _post(client: Client, widget: Any, path: str, body: Any) -> Any:
    return client.post(
        f"/chat/{widget.public_id}/{path}",
        data=json.dumps(body),
        content_type="application/json",
        headers={"Origin": ORIGIN},
    )


def _answers(q: dict[str, ChatQuestion], **values: Any) -> dict[str, Any]:
    return {str(q[key].pk): value for key, value in values.items()}


def test_each_kind_of_answer_is_checked(triage: dict[str, ChatQuestion]) -> None:
    pre = [q for q in triage.values() if q.stage == "pre"]
    good = answers_clean(
        pre,
        _answers(triage, topic="Family", mood="5", safe=True, where="  Leeds ", terms="yes", **{}),
    )
    assert [(a["kind"], a["answer"], a["severity"]) for a in good] == [
        ("choice", "Family", 1),
        ("scale", "5", 0),
        ("yesno", "Yes", 0),
        ("text", "Leeds", 0),
        ("consent", "agreed", 0),
    ]
    assert good[0]["prompt"] == "What is it about?"
    bad_values = [
        {"topic": "Cats"},
        {"topic": "Money", "mood": 8},
        {"topic": "Money", "mood": "3.5"},
        {"topic": "Money", "mood": True},
        {"topic": "Money", "safe": "maybe"},
        {"topic": "Money", "where": "x" * 501},
        {"topic": "Money", "where": ["a list"]},
        {"topic": "Money", "terms": "no"},
        {"mood": 3},  # the required topic is missing
        {"topic": ""},
    ]
    for values in bad_values:
        with pytest.raises(AnswerError) as refused:
            answers_clean(pre, _answers(triage, **values))
        assert refused.value.question_id in {q.pk for q in pre}, values
    with pytest.raises(AnswerError):
        answers_clean(pre, ["not", "an", "object"])
    # A question deleted after the widget loaded is not an error.
    assert answers_clean(pre, {**_answers(triage, topic="Money"), "999999": "x"})[0]["answer"]


def test_start_stores_answers_and_the_highest_severity_sets_priority(
    client: Client, widget: Any, triage: dict[str, ChatQuestion]
) -> None:
    body = {"answers": _answers(triage, topic="Thinking about suicide", safe="no", mood=2)}
    started = _post(client, widget, "start", body)
    assert started.status_code == 201, started.content
    conversation = Conversation.objects.get(pk=started.json()["conversation"])
    assert conversation.priority == Priority.URGENT
    # The most severe answer is the reason (the "No" to "Are you safe?" is only high).
    assert conversation.priority_reason == "Chat triage: What is it about?: Thinking about suicide"
    prechat = ChatSession.objects.get(conversation=conversation).prechat
    assert [(a["prompt"], a["answer"]) for a in prechat] == [
        ("What is it about?", "Thinking about suicide"),
        ("How do you feel, 1 to 7?", "2"),
        ("Are you safe?", "No"),
    ]
    calm = _post(client, widget, "start", {"answers": _answers(triage, topic="Money")})
    calm_conversation = Conversation.objects.get(pk=calm.json()["conversation"])
    assert (calm_conversation.priority, calm_conversation.priority_reason) == (Priority.NORMAL, "")
    unsafe = _post(
        client, widget, "start", {"answers": _answers(triage, topic="Family", safe="No")}
    )
    assert Conversation.objects.get(pk=unsafe.json()["conversation"]).priority_reason == (
        "Chat triage: Are you safe?: No"
    )


def test_a_refused_answer_names_the_question_and_stores_nothing(
    client: Client, widget: Any, triage: dict[str, ChatQuestion]
) -> None:
    missing = _post(client, widget, "start", {"answers": _answers(triage, mood=3)})
    assert missing.status_code == 400
    assert missing.json()["question"] == triage["topic"].pk
    assert "What is it about?" in missing.json()["message"]
    assert missing["Access-Control-Allow-Origin"] == ORIGIN
    wrong = _post(client, widget, "start", {"answers": "topic=Money"})
    assert wrong.status_code == 400
    assert not Conversation.objects.exists() and not Contact.objects.exists()


def test_config_lists_the_questions_without_their_severities(
    client: Client, widget: Any, triage: dict[str, ChatQuestion]
) -> None:
    config = client.get(f"/chat/{widget.public_id}/config", headers={"Origin": ORIGIN}).json()
    assert [q["prompt"] for q in config["prechat"]] == [
        "What is it about?",
        "How do you feel, 1 to 7?",
        "Are you safe?",
        "Where do you live?",
        "I agree to the terms",
    ]
    assert config["prechat"][0]["options"] == ["Money", "Thinking about suicide", "Family"]
    assert config["prechat"][4] == {
        "id": triage["terms"].pk,
        "kind": "consent",
        "prompt": "I agree to the terms",
        "required": False,
        "link": "https://x.org/t",
    }
    assert "severity" not in json.dumps(config) and "urgent" not in json.dumps(config)
    assert config["survey"] == []  # the inbox has no survey form


def test_priority_orders_the_queue_and_the_visitors_place(
    client: Client, widget: Any, triage: dict[str, ChatQuestion], alice: Any
) -> None:
    ids = [
        _post(client, widget, "start", {"answers": _answers(triage, topic=t)}).json()[
            "conversation"
        ]
        for t in ("Money", "Family", "Thinking about suicide", "Money")
    ]
    places = services.queue_places(ids)
    assert [places[i]["position"] for i in ids] == [3, 2, 1, 4]
    client.force_login(alice)
    page = client.get("/?view=waiting").content.decode()
    rows = [page.index(f'data-conversation-id="{i}"') for i in ids]
    assert rows[2] < rows[1] < rows[0] < rows[3]
    assert "badge-priority-3" in page and ">Urgent<" in page


def test_counselor_sees_the_answers_inert_and_they_are_exported(
    client: Client, widget: Any, triage: dict[str, ChatQuestion], alice: Any
) -> None:
    hostile = '<img src=x onerror="alert(1)">'
    started = _post(
        client, widget, "start", {"answers": _answers(triage, topic="Family", where=hostile)}
    )
    conversation_id = started.json()["conversation"]
    services.chat_end(session=ChatSession.objects.get())
    # An older chat's survey, from before surveys were forms: its JSON is still shown.
    ChatSession.objects.update(
        survey=[{"question": 1, "prompt": "Was this helpful?", "kind": "scale", "answer": "7",
                 "severity": 0}],
        survey_at=timezone.now(),
    )  # fmt: skip
    client.force_login(alice)
    pane = client.get(f"/conversations/{conversation_id}/").content.decode()
    assert "Before the chat" in pane and "Where do you live?" in pane
    assert hostile not in pane and "&lt;img src=x onerror=" in pane
    assert "After the chat" in pane and "Was this helpful?" in pane
    assert ">Elevated<" in pane
    exported = client.get(f"/conversations/{conversation_id}/export.csv")
    text = b"".join(exported.streaming_content if exported.streaming else [exported.content])
    assert b"pre-chat answer,What is it about?,,,Family" in text
    assert b"survey answer,Was this helpful?,,,7" in text


def test_admins_manage_questions_and_others_cannot(
    client: Client, widget: Any, alice: Any, sue: Any, charlie: Any
) -> None:
    url = f"/chat-settings/widgets/{widget.pk}/questions"
    client.force_login(alice)
    added = client.post(
        url,
        {
            "action": "add",
            "stage": "pre",
            "kind": "choice",
            "prompt": "Topic?",
            "options": "A\nB | high",
        },
    )
    assert added.status_code == 302
    question = ChatQuestion.objects.get()
    assert question.options == [{"label": "A", "severity": 0}, {"label": "B", "severity": 2}]
    bad = client.post(
        url, {"action": "add", "stage": "pre", "kind": "choice", "prompt": "Q", "options": "A"}
    )
    assert bad.status_code == 422 and "at least two answers" in bad.content.decode()
    bad = client.post(
        url,
        {"action": "add", "stage": "pre", "kind": "choice", "prompt": "Q", "options": "A\nB|9"},
    )
    assert bad.status_code == 422 and "not a priority" in bad.content.decode()
    assert ChatQuestion.objects.count() == 1
    assert client.get(url).status_code == 200
    for who in (sue, charlie):  # a supervisor of ours; an admin of another organization
        client.force_login(who)
        assert client.get(url).status_code in (403, 404)
        client.post(url, {"action": "delete", "question": question.pk})
        assert ChatQuestion.objects.filter(pk=question.pk).exists()
    client.force_login(alice)
    assert client.post(url, {"action": "delete", "question": question.pk}).status_code == 302
    assert not ChatQuestion.objects.exists()


def test_questions_reorder_within_their_stage(widget: Any, alice: Any) -> None:
    first, second, third = (
        question_create(widget=widget, actor_id=alice.pk, stage="pre", kind="text", prompt=p)
        for p in ("one", "two", "three")
    )
    question_move(question=third, up=True)
    question_move(question=first, up=True)  # already first: nothing changes
    order = [q.prompt for q in widget.questions.filter(stage="pre")]
    assert order == ["one", "three", "two"]
    with pytest.raises(ValidationError):  # the survey is a form now: no "post" questions
        question_create(widget=widget, actor_id=alice.pk, stage="post", kind="text", prompt="s")
    assert not widget.questions.exclude(stage="pre").exists()
    with pytest.raises(ValidationError):
        question_create(widget=widget, actor_id=alice.pk, stage="pre", kind="consent", prompt="x")
    assert second.pk in {q.pk for q in widget.questions.all()}


def test_admin_edits_a_widget_and_a_bad_edit_changes_nothing(
    client: Client, widget: Any, alice: Any, charlie: Any
) -> None:
    from openline.core.models import AuditEvent

    url = f"/chat-settings/widgets/{widget.pk}/questions"
    edit = {
        "action": "update",
        "display_name": "Chat with the warm line",
        "allowed_origins": "https://www.example.org/help\nhttps://other.example.org:8443/x",
        "greeting": "Hello",
        "offline_text": "Closed; call 988.",
        "color": "#123456",
        "quick_exit_url": "https://weather.example.com/",
        "is_active": "on",
        "max_waiting": "25",
        "starts_per_minute": "60",
        "starts_per_address_per_minute": "10",
    }
    client.force_login(charlie)  # another organization's admin
    assert client.post(url, edit).status_code == 404
    client.force_login(alice)
    assert client.post(url, {**edit, "allowed_origins": "ftp://x"}).status_code == 422
    assert client.post(url, {**edit, "color": "red"}).status_code == 422
    widget.refresh_from_db()
    assert widget.display_name == "Talk to us" and widget.color == "#1f5fbf"
    assert client.post(url, edit).status_code == 302
    widget.refresh_from_db()
    assert widget.allowed_origins == ["https://other.example.org:8443", "https://www.example.org"]
    assert (widget.display_name, widget.quick_exit_url, widget.is_active) == (
        "Chat with the warm line",
        "https://weather.example.com/",
        True,
    )
    assert AuditEvent.objects.filter(action="chat_widget.update", object_id=widget.pk).exists()
    client.post(url, {**edit, "is_active": ""})
    config = client.get(f"/chat/{widget.public_id}/config", headers={"Origin": ORIGIN})
    assert config.status_code == 404  # switched off: the widget disappears from the site

"""Bad input to the pages and endpoints this issue added gets a clear 4xx, never a 500."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from openline.chat.tests.conftest import ORIGIN

pytestmark = pytest.mark.django_db


def test_malformed_requests_are_refused_not_crashed(widget: Any, alice: Any) -> None:
    admin = Client(raise_request_exception=False)
    admin.force_login(alice)
    questions = f"/chat-settings/widgets/{widget.pk}/questions"
    requests: list[tuple[str, str, dict[str, str] | None]] = [
        ("get", "/alerts/?inbox=abc", None),
        ("get", "/alerts/?inbox=999999", None),
        ("get", "/alerts/calculator?reminder_minutes=abc&reminders=-1&escalate_after=x", None),
        ("post", "/alerts/", {"reminder_minutes": "7", "reminders": "9"}),
        ("post", "/alerts/me", {"mobile": "\x00", "permit": "on"}),
        ("post", questions, {"action": "add", "stage": "x", "kind": "y", "prompt": ""}),
        ("post", questions, {"action": "delete", "question": "abc"}),
        ("post", questions, {"action": "up", "question": "999"}),
        ("post", questions, {"action": "zzz"}),
        ("post", questions, {"action": "update", "quick_exit_url": "javascript:alert(1)"}),
        ("get", "/shifts/?week=notadate&inbox=abc", None),
        ("get", "/shifts/offline-messages?days=abc", None),
        ("get", "/shifts/feed/nope.ics", None),
    ]
    for method, url, data in requests:
        call = getattr(admin, method)
        response = call(url, data) if data is not None else call(url)
        assert 200 <= response.status_code < 500, (url, response.status_code)
    widget.refresh_from_db()
    assert widget.quick_exit_url.startswith("https://")
    from openline.chat.questions import question_create

    asked = question_create(
        widget=widget, actor_id=alice.pk, stage="pre", kind="scale", prompt="How are you?"
    )
    list_answer = f'{{"answers": {{"{asked.pk}": [1, 2]}}}}'.encode()
    bodies = [b"[]", b'{"answers": 5}', list_answer, b"\xff", b'{"name": 5}']
    for body in bodies:
        for path in ("start", "survey"):
            response = admin.post(
                f"/chat/{widget.public_id}/{path}",
                data=body,
                content_type="application/json",
                headers={"Origin": ORIGIN},
            )
            assert 400 <= response.status_code < 500, (path, body, response.status_code)

"""The widget's public HTTP side and the web-chat settings page."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from openline.chat.models import ChatSession, ChatWidget
from openline.chat.tests.conftest import ORIGIN
from openline.messaging.models import Channel, Conversation, ConversationStatus

pytestmark = pytest.mark.django_db


def _start(client: Client, widget: Any, origin: str = ORIGIN, body: Any = None) -> Any:
    return client.post(
        f"/chat/{widget.public_id}/start",
        data=json.dumps(body if body is not None else {"name": "Sam"}),
        content_type="application/json",
        headers={"Origin": origin},
    )


def test_widget_script_is_served_small_and_embeddable(client: Client) -> None:
    import gzip

    response = client.get("/widget.js")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/javascript")
    assert response["Cross-Origin-Resource-Policy"] == "cross-origin"
    source = b"".join(response.streaming_content) if response.streaming else response.content
    assert b"attachShadow" in source  # styles isolated from the host page
    assert len(gzip.compress(source)) < 8_000


def test_config_answers_allowed_origins_only(client: Client, widget: Any) -> None:
    ok = client.get(f"/chat/{widget.public_id}/config", headers={"Origin": ORIGIN})
    assert ok.status_code == 200
    assert ok["Access-Control-Allow-Origin"] == ORIGIN
    assert ok.json() == {
        "name": "Talk to us",
        "color": "#1f5fbf",
        "greeting": "Hi, we are here.",
        "offline_text": "We are closed; call 988 any time.",
        "online": True,
        "next_opening": None,
        "busy": False,
        "busy_message": "All our counselors are busy right now. Please try again in a few minutes.",
        "busy_help": "We are closed; call 988 any time.",  # the offline text, with no busy text
        "quick_exit_url": "https://www.google.com/",
        "prechat": [],
        "survey": [],
    }
    refused = client.get(
        f"/chat/{widget.public_id}/config", headers={"Origin": "https://evil.example"}
    )
    assert refused.status_code == 403
    assert "Access-Control-Allow-Origin" not in refused
    assert refused.json()["error"] == "origin_refused"
    assert client.get("/chat/nope/config", headers={"Origin": ORIGIN}).status_code == 404


def test_start_opens_a_waiting_chat_conversation(client: Client, widget: Any) -> None:
    response = _start(client, widget)
    assert response.status_code == 201, response.content
    assert response["Access-Control-Allow-Origin"] == ORIGIN
    token = response.json()["token"]
    session = ChatSession.objects.get()
    assert session.token_hash != token and len(token) >= 40  # only a hash is stored
    conversation = session.conversation
    assert conversation.channel == Channel.CHAT
    assert conversation.status == ConversationStatus.WAITING
    assert conversation.number_id == widget.number_id
    assert conversation.contact.name == "Sam" and conversation.contact.phone == ""


def test_preflight_and_refusals_store_nothing(client: Client, widget: Any) -> None:
    preflight = client.options(f"/chat/{widget.public_id}/start", headers={"Origin": ORIGIN})
    assert preflight.status_code == 204
    assert preflight["Access-Control-Allow-Origin"] == ORIGIN
    assert (
        client.options(
            f"/chat/{widget.public_id}/start", headers={"Origin": "https://evil.example"}
        ).status_code
        == 403
    )
    assert _start(client, widget, origin="https://evil.example").status_code == 403
    assert _start(client, widget, body=["not", "an", "object"]).status_code == 400
    bad = client.post(
        f"/chat/{widget.public_id}/start",
        data=b"\xff{",
        content_type="application/json",
        headers={"Origin": ORIGIN},
    )
    assert bad.status_code == 400
    huge = _start(client, widget, body={"name": "x" * 25_000})
    assert huge.status_code == 413
    assert client.get(f"/chat/{widget.public_id}/start").status_code == 405
    assert not Conversation.objects.exists()


def _config(client: Client, widget: Any) -> dict[str, Any]:
    return client.get(f"/chat/{widget.public_id}/config", headers={"Origin": ORIGIN}).json()


def test_inbox_switched_offline_refuses_new_chats_with_the_offline_text(
    client: Client, widget: Any, alice: Any
) -> None:
    from openline.availability.services import availability_set

    assert _config(client, widget)["online"] is True  # a staffed shift covers now
    availability_set(
        organization_id=widget.organization_id, actor_id=alice.pk, number_id=widget.number_id,
        mode="offline",
    )  # fmt: skip
    config = _config(client, widget)
    assert config["online"] is False and config["next_opening"] is None  # nobody knows when
    response = _start(client, widget)
    assert response.status_code == 409
    assert response.json()["message"] == "We are closed; call 988 any time."
    assert not Conversation.objects.exists()


def test_chat_is_closed_until_a_staffed_shift_covers_now(
    client: Client, org: Any, alice: Any, bob: Any, sandbox_number: Any, put_online: Any
) -> None:
    from datetime import time, timedelta
    from zoneinfo import ZoneInfo

    from django.utils import timezone

    from openline.availability.services import shift_create, shift_sign_up
    from openline.chat.services import widget_create

    widget = widget_create(
        organization_id=org.pk, actor_id=alice.pk, number_id=sandbox_number.pk,
        display_name="Talk to us", allowed_origins=[ORIGIN], offline_text="Closed.",
    )  # fmt: skip
    config = _config(client, widget)
    assert config["online"] is False and config["next_opening"] is None
    tomorrow = timezone.now().astimezone(ZoneInfo(org.timezone)).date() + timedelta(days=1)
    shift = shift_create(
        organization_id=org.pk, actor_id=alice.pk, number_id=sandbox_number.pk, kind="normal",
        start_date=tomorrow, start_time=time(9), duration_minutes=480,
    )  # fmt: skip
    assert _config(client, widget)["next_opening"] is None  # nobody signed up yet
    shift_sign_up(
        organization_id=org.pk, actor_id=bob.pk, shift_id=shift.pk,
        occurrence_start=shift.first_start,
    )  # fmt: skip
    config = _config(client, widget)
    assert config["online"] is False
    assert config["next_opening"] == "tomorrow at 9:00 AM"  # Chicago time
    assert _start(client, widget).status_code == 409

    put_online(sandbox_number, bob)
    config = _config(client, widget)
    assert config["online"] is True and config["next_opening"] is None
    assert _start(client, widget).status_code == 201
    assert Conversation.objects.get().channel == Channel.CHAT


# --- settings page -------------------------------------------------------------------------


def _login(client: Client, email: str, password: str) -> Client:
    assert client.login(username=email, password=password)
    return client


def test_counselors_cannot_open_chat_settings(client: Client, bob: Any) -> None:
    assert (
        _login(client, "bob@example.org", "bob-pass-12").get("/chat-settings/").status_code == 403
    )


def test_chat_settings_show_the_inboxes_state_and_point_to_shifts(
    client: Client, sue: Any, online_inbox: Any, org: Any
) -> None:
    from openline.providers.services import number_add

    number_add(organization=org, provider="sandbox", e164="+12025550111", name="Youth line")
    _login(client, "sue@example.org", "supervisor-pass-123")
    page = client.get("/chat-settings/")
    html = " ".join(page.content.decode().split())
    assert page.status_code == 200
    assert '<td>Main line</td> <td><span class="badge badge-active">Open</span>' in html
    assert '<td>Youth line</td> <td><span class="badge badge-closed">Closed</span>' in html
    assert 'href="/shifts/"' in html and "Open chat" not in html  # no manual toggle here
    assert "New widget" not in html  # creating widgets is for admins
    refused = client.post("/chat-settings/", {"action": "availability", "number": online_inbox.pk})
    assert refused.status_code == 422


def test_admin_creates_a_widget_and_gets_its_snippet(
    client: Client, alice: Any, sandbox_number: Any
) -> None:
    _login(client, "alice@example.org", "alice-pass-1")
    bad = client.post(
        "/chat-settings/",
        {"action": "create", "display_name": "Chat", "number": sandbox_number.pk,
         "allowed_origins": "javascript:alert(1)", "color": "#112233"},
    )  # fmt: skip
    assert bad.status_code == 422
    assert not ChatWidget.objects.exists()
    done = client.post(
        "/chat-settings/",
        {"action": "create", "display_name": "Chat", "number": sandbox_number.pk,
         "allowed_origins": "https://www.example.org/help\nhttp://localhost:8080/",
         "color": "#112233"},
    )  # fmt: skip
    assert done.status_code == 302
    widget = ChatWidget.objects.get()
    assert widget.allowed_origins == ["http://localhost:8080", "https://www.example.org"]
    page = client.get("/chat-settings/").content.decode()
    assert f'data-widget="{widget.public_id}"' in page and "/widget.js" in page


def test_another_organization_neither_sees_nor_switches_our_chat(
    client: Client, widget: Any, other_org: Any
) -> None:
    from openline.core.services import user_create

    user_create(
        organization=other_org, email="olga@example.net", role="admin", password="olga-pass-12"
    )
    _login(client, "olga@example.net", "olga-pass-12")
    page = client.get("/chat-settings/").content.decode()
    assert widget.public_id not in page and "Main line" not in page
    client.post("/chat-settings/", {"action": "availability", "number": widget.number_id})
    from openline.availability.selectors import inbox_online

    assert inbox_online(widget.number_id)

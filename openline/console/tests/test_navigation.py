"""The main navigation marks exactly one item as the current page (aria-current="page"),
the one the page belongs to, on every page it leads to and on the pages below them."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import pytest
from django.test import Client

from openline.messaging.models import Conversation


class _Nav(HTMLParser):
    """The links of <nav aria-label="Main">: (href, text, is current)."""

    def __init__(self) -> None:
        super().__init__()
        self.depth = 0
        self.links: list[list[Any]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "nav" and (self.depth or found.get("aria-label") == "Main"):
            self.depth += 1
        elif tag == "a" and self.depth:
            self.links.append([found.get("href"), "", found.get("aria-current") == "page"])

    def handle_endtag(self, tag: str) -> None:
        if tag == "nav" and self.depth:
            self.depth -= 1

    def handle_data(self, data: str) -> None:
        if self.depth and self.links:
            self.links[-1][1] += data.strip()


def _nav(client: Client, url: str) -> list[list[Any]]:
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    parser = _Nav()
    parser.feed(response.content.decode())
    assert parser.links, f"{url} shows the main navigation"
    return parser.links


def _current(client: Client, url: str) -> list[str]:
    return [text for _, text, current in _nav(client, url) if current]


@pytest.mark.django_db
def test_every_nav_page_of_an_admin_marks_only_its_own_item(
    alice_client: Client, sandbox_number: Any
) -> None:
    links = _nav(alice_client, "/")
    names = [text for _, text, _ in links]
    assert {"Conversations", "Alerts", "Settings", "Phone simulator", "My alerts"} <= set(names)
    for href, text, _ in links:
        assert _current(alice_client, href) == [text], f"on {href}"


@pytest.mark.django_db
def test_alerts_page_is_alerts_only_not_settings(alice_client: Client, sandbox_number: Any) -> None:
    assert _current(alice_client, "/alerts/") == ["Alerts"]
    assert _current(alice_client, "/settings/") == ["Settings"]


@pytest.mark.django_db
def test_every_nav_page_of_a_counselor_marks_only_its_own_item(
    bob_client: Client, sandbox_number: Any
) -> None:
    links = _nav(bob_client, "/")
    assert "Settings" not in [text for _, text, _ in links]
    for href, text, _ in links:
        assert _current(bob_client, href) == [text], f"on {href}"


@pytest.mark.django_db
def test_pages_below_a_nav_item_mark_that_item(
    alice: Any, alice_client: Client, conversation: Conversation, sandbox_number: Any
) -> None:
    from openline.chat.services import widget_create
    from openline.console.services import saved_reply_save

    reply = saved_reply_save(
        organization_id=sandbox_number.organization_id,
        actor_id=alice.pk,
        reply=None,
        name="Hello",
        shortcut="hi",
        body="Hi, thanks for reaching out.",
    )
    widget = widget_create(
        organization_id=sandbox_number.organization_id,
        actor_id=alice.pk,
        number_id=sandbox_number.pk,
        display_name="Talk to us",
        allowed_origins=["https://www.example.org"],
    )
    below = {
        f"/conversations/{conversation.pk}/": "Conversations",
        f"/contacts/{conversation.contact_id}/": "Contacts",
        "/contacts/new": "Contacts",
        f"/saved-replies/{reply.pk}/": "Saved replies",
        "/shifts/new": "Shifts",
        "/shifts/mine/": "Shifts",
        "/shifts/offline-messages": "Shifts",
        f"/chat-settings/widgets/{widget.pk}/questions": "Web chat",
        f"/sandbox/phone/{sandbox_number.webhook_key}": None,  # the simulator has no nav
    }
    for url, item in below.items():
        if item is None:
            html = alice_client.get(url).content.decode()
            assert not re.search(r'<nav aria-label="Main"', html)
            continue
        assert _current(alice_client, url) == [item], f"on {url}"

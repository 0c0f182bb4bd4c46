"""The conversation page when the person's number cannot receive texts: the reply box is
off and says why, a reply is refused, and correcting the number type turns it back on."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from openline.contacts.models import Contact
from openline.messaging.models import Conversation, Direction, Message

PERSON = "+12025550187"  # the console conftest's texting person
NOT_TEXTABLE = (
    "+12025550187 is a {kind} number and cannot receive texts; "
    "correct the number type if this is wrong"
)


def _reply_box(
    client: Client, conversation: Conversation, name: str = "console:conversation"
) -> str:
    response = client.get(reverse(name, args=[conversation.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    match = re.search(rf'<section id="reply-box-{conversation.pk}".*?</section>', html, re.S)
    assert match, "reply box not rendered"
    return match.group(0)


def _disabled(box: str) -> bool:
    match = re.search(r"<fieldset( disabled)?>", box)
    assert match, "reply fieldset not rendered"
    return bool(match.group(1))


@pytest.mark.parametrize("kind", ["landline", "voip"])
def test_reply_box_is_off_with_the_not_textable_reason(
    alice_client: Client, org: Any, text_in: Any, kind: str
) -> None:
    Contact.objects.create(organization=org, phone=PERSON, number_type=kind)
    conversation = text_in("calling from my desk phone")

    for page in ("console:conversation", "console:conversation_pane"):
        box = _reply_box(alice_client, conversation, page)
        assert _disabled(box), page
        assert "Replies are off." in box
        assert NOT_TEXTABLE.format(kind=kind) in box
        assert "opted out" not in box  # the reason is the number, not consent


def test_reply_to_a_landline_is_refused_and_nothing_is_created(
    alice_client: Client, org: Any, text_in: Any
) -> None:
    Contact.objects.create(organization=org, phone=PERSON, number_type="landline")
    conversation = text_in("calling from my desk phone")
    url = reverse("console:conversation_reply", args=[conversation.pk])

    response = alice_client.post(url, {"body": "Can you text from a mobile?"})

    assert response.status_code == 422
    assert NOT_TEXTABLE.format(kind="landline") in response.content.decode()
    assert not Message.objects.filter(direction=Direction.OUTBOUND).exists()


def test_correcting_the_number_type_turns_replies_back_on(
    alice_client: Client, org: Any, text_in: Any
) -> None:
    contact = Contact.objects.create(organization=org, phone=PERSON, number_type="landline")
    conversation = text_in("this is actually my cell")
    assert _disabled(_reply_box(alice_client, conversation))

    edited = alice_client.post(
        reverse("console:contact_edit", args=[contact.pk]), {"name": "", "number_type": "mobile"}
    )

    assert edited.status_code == 302
    box = _reply_box(alice_client, conversation)
    assert not _disabled(box)
    assert "cannot receive texts" not in box

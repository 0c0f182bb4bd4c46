"""The live character / segment counter fragment."""

from __future__ import annotations

from django.test import Client
from django.urls import reverse

from openline.messaging.models import Conversation


def _count(client: Client, body: str, method: str = "get") -> str:
    response = getattr(client, method)(reverse("console:segments"), {"body": body})
    assert response.status_code == 200
    return response.content.decode()


def test_plain_text_is_gsm7(alice_client: Client) -> None:
    html = _count(alice_client, "a" * 42)
    assert "42 / 160 · 1 segment · GSM-7" in html
    assert "seg-warn" not in html


def test_accented_text_reports_ucs2_and_the_characters_forcing_it(alice_client: Client) -> None:
    html = _count(alice_client, "héllo ç")
    assert "7 / 70 · 1 segment · UCS-2" in html
    assert '<kbd title="latin small letter c with cedilla (U+00E7)">ç</kbd>' in html
    assert ">é</kbd>" not in html  # é is in the GSM-7 alphabet


def test_invisible_characters_are_named(alice_client: Client) -> None:
    html = _count(alice_client, "see you\u00a0soon", method="post")
    assert "UCS-2" in html
    assert "no-break space (U+00A0)" in html


def test_long_text_counts_concatenated_segments(alice_client: Client) -> None:
    assert "161 / 306 · 2 segments · GSM-7" in _count(alice_client, "x" * 161)


def test_crlf_from_a_form_counts_as_one_newline(alice_client: Client) -> None:
    assert "3 / 160 · 1 segment" in _count(alice_client, "a\r\nb", method="post")


def test_over_the_limit_is_flagged(alice_client: Client) -> None:
    html = _count(alice_client, "x" * 1601, method="post")
    assert "Too long: 1601 characters; the limit is 1600." in html


def test_reply_box_counter_posts_so_drafts_stay_out_of_urls(
    alice_client: Client, conversation: Conversation
) -> None:
    html = alice_client.get(
        reverse("console:conversation", args=[conversation.pk])
    ).content.decode()
    assert 'hx-post="/segments" hx-trigger="keyup changed delay:150ms' in html

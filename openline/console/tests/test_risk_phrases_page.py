"""The risk phrases page: admins edit the list, supervisors read it and try messages,
counselors are refused; each organization sees its own; bad input answers 422 beside the
field; a tried message is shown back and never stored or audited."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from openline.core.models import AuditEvent
from openline.messaging.models import Priority, RiskPhrase
from openline.messaging.risk import SUGGESTED_PHRASES

pytestmark = pytest.mark.django_db
PAGE = reverse("console:risk_phrases")
TRY = reverse("console:risk_phrases_try")
REMOVE = reverse("console:risk_phrase_remove")
RESET = reverse("console:risk_phrases_reset")


def test_an_admin_sees_the_suggested_list_marked_as_such(alice_client: Client) -> None:
    page = alice_client.get(PAGE)
    body = page.content.decode()
    assert page.status_code == 200
    assert "The suggested list" in body and "data-suggested-list" in body
    assert f"({len(SUGGESTED_PHRASES)})" in body
    assert 'data-phrase="kill myself"' in body
    assert 'action="/risk-phrases/remove"' in body and "Restore the suggested list" not in body


def test_an_admin_adds_a_phrase_and_the_list_becomes_the_organizations(
    alice_client: Client, org: Any, alice: Any
) -> None:
    added = alice_client.post(PAGE, {"phrase": "the bridge", "priority": Priority.HIGH})
    assert added.status_code == 302
    page = alice_client.get(PAGE).content.decode()
    assert "Your list" in page and "data-suggested-list" not in page
    assert 'data-phrase="the bridge"' in page and "Restore the suggested list" in page
    assert RiskPhrase.objects.filter(organization=org).count() == len(SUGGESTED_PHRASES) + 1
    assert AuditEvent.objects.filter(action="risk_phrase.add", actor_id=alice.pk).count() == 1


def test_an_admin_removes_a_phrase_and_restores_the_suggested_list(
    alice_client: Client, org: Any
) -> None:
    assert alice_client.post(REMOVE, {"phrase": "pills"}).status_code == 302
    page = alice_client.get(PAGE).content.decode()
    assert 'data-phrase="pills"' not in page and 'data-phrase="kill myself"' in page
    assert alice_client.post(RESET).status_code == 302
    page = alice_client.get(PAGE).content.decode()
    assert 'data-phrase="pills"' in page and "data-suggested-list" in page
    assert {e.action for e in AuditEvent.objects.filter(action__startswith="risk_phrase.")} == {
        "risk_phrase.remove",
        "risk_phrase.reset",
    }


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"phrase": "", "priority": "3"}, "phrase", "This field is required."),
        ({"phrase": "x" * 101, "priority": "3"}, "phrase", "at most 100 characters"),
        ({"phrase": "Kill myself!", "priority": "3"}, "phrase", "already on the list"),
        ({"phrase": "gun 🔫", "priority": "3"}, "phrase", "not both"),
        ({"phrase": "bridge", "priority": "0"}, "priority", "Select a valid choice"),
        ({"phrase": "bridge", "priority": "urgent"}, "priority", "Select a valid choice"),
    ],
)
def test_bad_input_answers_422_beside_the_field(
    alice_client: Client, org: Any, data: dict[str, str], field: str, message: str
) -> None:
    page = alice_client.post(PAGE, data)
    body = page.content.decode()
    assert page.status_code == 422
    beside = body[body.index(f'id="field-{field}"') :]
    beside = beside[: beside.index("</div>")]
    assert 'class="form-error"' in beside and message in beside, beside
    assert not RiskPhrase.objects.filter(organization=org).exists()


def test_removing_what_is_not_on_the_list_answers_422(alice_client: Client) -> None:
    page = alice_client.post(REMOVE, {"phrase": "not a phrase"})
    assert page.status_code == 422
    assert "That phrase is not on the list." in page.content.decode()


def test_trying_a_message_shows_the_phrase_and_stores_nothing(
    alice_client: Client, sue_client: Client, org: Any
) -> None:
    secret = "honestly I want to end it all tonight"
    for client in (alice_client, sue_client):
        page = client.post(TRY, {"sample": secret})
        body = page.content.decode()
        assert page.status_code == 200
        assert 'data-risk-result="match"' in body and "It matches “end it all”" in body
    calm = alice_client.post(TRY, {"sample": "the end. it was fine"}).content.decode()
    assert 'data-risk-result="none"' in calm
    assert not RiskPhrase.objects.filter(organization=org).exists()
    assert not AuditEvent.objects.filter(detail__contains="end it").exists()
    empty = alice_client.post(TRY, {"sample": ""})
    assert empty.status_code == 422 and "This field is required." in empty.content.decode()


def test_a_supervisor_reads_but_cannot_edit(sue_client: Client, org: Any) -> None:
    page = sue_client.get(PAGE).content.decode()
    assert 'data-phrase="kill myself"' in page
    assert 'action="/risk-phrases/remove"' not in page and 'name="priority"' not in page
    assert sue_client.post(PAGE, {"phrase": "bridge", "priority": "3"}).status_code == 403
    assert sue_client.post(REMOVE, {"phrase": "pills"}).status_code == 403
    assert sue_client.post(RESET).status_code == 403
    assert not RiskPhrase.objects.filter(organization=org).exists()


def test_a_counselor_is_refused_everything(bob_client: Client, org: Any) -> None:
    assert bob_client.get(PAGE).status_code == 403
    assert bob_client.post(TRY, {"sample": "pills"}).status_code == 403
    assert bob_client.post(PAGE, {"phrase": "bridge", "priority": "3"}).status_code == 403
    assert bob_client.post(REMOVE, {"phrase": "pills"}).status_code == 403
    assert not RiskPhrase.objects.filter(organization=org).exists()


def test_each_organization_sees_and_edits_only_its_own_list(
    alice_client: Client, charlie_client: Client, org: Any, other_org: Any
) -> None:
    alice_client.post(PAGE, {"phrase": "the bridge", "priority": "2"})
    other = charlie_client.get(PAGE).content.decode()
    assert 'data-phrase="the bridge"' not in other and "data-suggested-list" in other
    charlie_client.post(REMOVE, {"phrase": "the bridge"})
    assert RiskPhrase.objects.filter(organization=org, phrase="the bridge").exists()
    assert (
        charlie_client.post(TRY, {"sample": "at the bridge"})
        .content.decode()
        .count('data-risk-result="none"')
    )


def test_the_nav_links_the_page_for_supervisors_and_admins_only(
    alice_client: Client, sue_client: Client, bob_client: Client
) -> None:
    home = reverse("console:preferences")
    assert f'href="{PAGE}"' in alice_client.get(home).content.decode()
    assert f'href="{PAGE}"' in sue_client.get(home).content.decode()
    assert f'href="{PAGE}"' not in bob_client.get(home).content.decode()

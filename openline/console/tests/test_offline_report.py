"""The offline messages report (list, heat map by hour of the week in the organization's
zone, follow-up): what it shows, what it changes, and that counselors and other
organizations get nothing from it. (The auto-responses page beside it: availability's
test_responses_page.)"""

from __future__ import annotations

from datetime import timedelta

import pytest

from openline.availability.tests.support import sign_up, utc
from openline.console.reports import offline_heatmap
from openline.messaging.models import ConversationStatus

REPORT = "/shifts/offline-messages"
PERSON = "+13125550100"
OTHER = "+13125550101"
# Monday 10 March 2025, noon in Chicago (CDT since Sunday): the report looks back from here.
NOW = utc(2025, 3, 10, 17)


def _html(response) -> str:
    return " ".join(response.content.decode().split())


@pytest.fixture
def dora(dora):
    """The second counselor with her name, as the shift tests make her (the report's
    messages name who has a conversation)."""
    dora.display_name = "Dora"
    dora.save(update_fields=["display_name"])
    return dora


@pytest.fixture
def offline_texts(sandbox_number, other_number, text_in, clock, make_shift, bob):
    """Texts at known local hours (Chicago) while the inbox is offline, one while online,
    and one in another organization."""

    def text(number, phone, body):  # the console's text_in returns the conversation
        return text_in(body, from_number=phone, number=number).messages.get(body=body)

    shift = make_shift()  # Monday 3 March 09:00–17:00, staffed
    sign_up(shift, bob, utc(2025, 3, 3, 15))
    at = {
        "tue_22": utc(2025, 3, 5, 4, 30),  # Tuesday 4 March 22:30 CST
        "sat_3a": utc(2025, 3, 8, 9, 15),  # Saturday 03:15 CST
        "sat_3b": utc(2025, 3, 8, 9, 45),  # Saturday 03:45 CST
        "sun_10": utc(2025, 3, 9, 15, 5),  # Sunday 10:05 CDT (after the change)
    }
    sent = {}
    for name, moment in at.items():
        clock.set(moment)
        sent[name] = text(sandbox_number, PERSON if name != "sun_10" else OTHER, name)
    clock.set(utc(2025, 3, 3, 16))  # Monday 10:00, on shift
    sent["online"] = text(sandbox_number, "+13125550109", "online")
    clock.set(utc(2025, 3, 8, 9, 20))
    sent["theirs"] = text(other_number, PERSON, "elsewhere")  # Saturday too, other org
    clock.set(NOW)
    return sent


def test_heatmap_counts_texts_by_local_weekday_and_hour(offline_texts, org, clock):
    assert all(m.received_offline for k, m in offline_texts.items() if k != "online")
    assert not offline_texts["online"].received_offline
    heat = offline_heatmap(
        organization_id=org.pk, since=NOW - timedelta(days=28), until=NOW, tz=org.timezone
    )
    cells = {(day, c.hour): c for day, row in heat.rows for c in row}
    assert cells[("Tuesday", 22)].count == 1
    assert cells[("Saturday", 3)].count == 2
    assert cells[("Sunday", 10)].count == 1
    assert cells[("Monday", 10)].count == 0  # the online text is not in it
    assert heat.total == 4 and heat.peak == 2
    assert cells[("Saturday", 3)].level == 4 and cells[("Tuesday", 22)].level == 2
    assert cells[("Saturday", 3)].label == "Saturday 03:00–04:00: 2 texts"
    week = offline_heatmap(
        organization_id=org.pk, since=NOW - timedelta(days=2), until=NOW, tz=org.timezone
    )
    assert week.total == 1  # only Sunday's within the last two days


def test_report_page_shows_the_heatmap_list_and_follow_ups(
    offline_texts, sue_client, sandbox_number, django_assert_max_num_queries
):
    with django_assert_max_num_queries(16):
        response = sue_client.get(REPORT)
    assert response.status_code == 200
    html = _html(response)
    assert "4 texts while offline" in html
    # Saturday is row 5 (Monday 0); Tuesday row 1.
    assert 'title="Saturday 03:00–04:00: 2 texts" data-cell="5-3">2</td>' in html
    assert 'title="Tuesday 22:00–23:00: 1 text" data-cell="1-22">1</td>' in html
    assert 'title="Monday 10:00–11:00: 0 texts" data-cell="0-10"><span' in html
    for name in ("tue_22", "sat_3a", "sat_3b", "sun_10"):
        assert f'data-offline-text="{offline_texts[name].pk}"' in html
    assert f'data-offline-text="{offline_texts["online"].pk}"' not in html
    assert f'data-offline-text="{offline_texts["theirs"].pk}"' not in html
    assert "elsewhere" not in html and "sat_3a" not in html  # no message bodies listed
    waiting = {offline_texts["tue_22"].conversation_id, offline_texts["sun_10"].conversation_id}
    for conversation_id in waiting:
        assert f'data-followup="{conversation_id}"' in html
    assert f'data-followup="{offline_texts["online"].conversation_id}"' not in html
    week = _html(sue_client.get(f"{REPORT}?days=7&inbox={sandbox_number.pk}"))
    assert "4 texts while offline in Main line, last 7 days" in week


def test_follow_up_assigns_to_a_member_or_to_oneself(offline_texts, sue, sue_client, dora):
    first = offline_texts["tue_22"].conversation
    second = offline_texts["sun_10"].conversation
    response = sue_client.post(
        f"{REPORT}/{first.pk}/follow-up", {"user": dora.pk, "query": "days=7"}
    )
    assert response.status_code == 302 and response["Location"] == f"{REPORT}?days=7"
    first.refresh_from_db()
    assert (first.status, first.assigned_to) == (ConversationStatus.ACTIVE, dora)
    sue_client.post(f"{REPORT}/{second.pk}/follow-up", {})
    second.refresh_from_db()
    assert (second.status, second.assigned_to) == (ConversationStatus.ACTIVE, sue)
    html = _html(sue_client.get(REPORT))
    assert "data-followup" not in html and "Nobody who wrote while you were offline" in html
    # Taken already: told so, nothing changes.
    again = sue_client.post(f"{REPORT}/{first.pk}/follow-up", {}, follow=True)
    assert "Already taken: Dora has it" in _html(again)
    first.refresh_from_db()
    assert first.assigned_to == dora


def test_counselors_and_other_organizations_get_nothing(
    offline_texts, bob_client, charlie_client, sandbox_number
):
    conversation = offline_texts["tue_22"].conversation
    assert bob_client.get(REPORT).status_code == 403
    assert bob_client.post(f"{REPORT}/{conversation.pk}/follow-up", {}).status_code == 403
    theirs = charlie_client.get(REPORT)
    assert theirs.status_code == 200
    assert f'data-offline-text="{offline_texts["tue_22"].pk}"' not in _html(theirs)
    assert f'data-offline-text="{offline_texts["theirs"].pk}"' in _html(theirs)
    assert charlie_client.get(f"{REPORT}?inbox={sandbox_number.pk}").status_code == 404
    refused = charlie_client.post(f"{REPORT}/{conversation.pk}/follow-up", {})
    assert refused.status_code == 404
    conversation.refresh_from_db()
    assert conversation.status == ConversationStatus.WAITING


def test_supervisor_cannot_assign_to_someone_elsewhere(offline_texts, sue_client, charlie):
    conversation = offline_texts["tue_22"].conversation
    refused = sue_client.post(f"{REPORT}/{conversation.pk}/follow-up", {"user": charlie.pk})
    assert refused.status_code == 404
    conversation.refresh_from_db()
    assert conversation.assigned_to is None

"""The offline messages report (list, heat map by hour of the week in the organization's
zone, follow-up) and the auto-responses page: what they show, what they change, and that
counselors and other organizations get nothing from them."""

from __future__ import annotations

from datetime import timedelta

import pytest

from openline.availability.models import InboxResponses
from openline.availability.report import offline_heatmap
from openline.availability.tests.support import sign_up, utc
from openline.core.models import AuditEvent
from openline.messaging.models import ConversationStatus

REPORT = "/shifts/offline-messages"
RESPONSES = "/shifts/responses"
PERSON = "+13125550100"
OTHER = "+13125550101"
# Monday 10 March 2025, noon in Chicago (CDT since Sunday): the report looks back from here.
NOW = utc(2025, 3, 10, 17)


def _html(response) -> str:
    return " ".join(response.content.decode().split())


@pytest.fixture
def offline_texts(sandbox_number, other_number, text_in, clock, make_shift, bob):
    """Texts at known local hours (Chicago) while the inbox is offline, one while online,
    and one in another organization."""
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
        sent[name] = text_in(sandbox_number, PERSON if name != "sun_10" else OTHER, name)
    clock.set(utc(2025, 3, 3, 16))  # Monday 10:00, on shift
    sent["online"] = text_in(sandbox_number, "+13125550109", "online")
    clock.set(utc(2025, 3, 8, 9, 20))
    sent["theirs"] = text_in(other_number, PERSON, "elsewhere")  # Saturday too, other org
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
    assert bob_client.get(RESPONSES).status_code == 403
    theirs = charlie_client.get(REPORT)
    assert theirs.status_code == 200
    assert f'data-offline-text="{offline_texts["tue_22"].pk}"' not in _html(theirs)
    assert f'data-offline-text="{offline_texts["theirs"].pk}"' in _html(theirs)
    assert charlie_client.get(f"{REPORT}?inbox={sandbox_number.pk}").status_code == 404
    refused = charlie_client.post(f"{REPORT}/{conversation.pk}/follow-up", {})
    assert refused.status_code == 404
    conversation.refresh_from_db()
    assert conversation.status == ConversationStatus.WAITING
    assert charlie_client.get(f"{RESPONSES}?inbox={sandbox_number.pk}").status_code == 404
    form = {"inbox": sandbox_number.pk, **_form()}
    assert charlie_client.post(RESPONSES, form).status_code == 404
    assert not InboxResponses.objects.exists()


def test_supervisor_cannot_assign_to_someone_elsewhere(offline_texts, sue_client, charlie):
    conversation = offline_texts["tue_22"].conversation
    refused = sue_client.post(f"{REPORT}/{conversation.pk}/follow-up", {"user": charlie.pk})
    assert refused.status_code == 404
    conversation.refresh_from_db()
    assert conversation.assigned_to is None


# --- the auto-responses page --------------------------------------------------------------


def _form(**changes):
    return {
        "offline_enabled": "on",
        "offline_text": "Closed now; open again {next_open}. In danger? Call 911.",
        "offline_period_hours": "12",
        "greeting_text": "Hi from {organization}.",
        "busy_text": "Busy, hang on.",
        "busy_threshold": "4",
    } | changes


def test_supervisor_edits_an_inboxs_auto_responses_audited(
    sandbox_number, sue, sue_client, make_shift, bob, clock
):
    page = sue_client.get(RESPONSES)
    assert page.status_code == 200
    html = _html(page)
    assert "Everything here is off until you switch it on" in html
    assert "open again as soon as we can" in html  # the preview of the default text
    response = sue_client.post(RESPONSES, {"inbox": sandbox_number.pk, **_form()})
    assert response.status_code == 302
    saved = InboxResponses.objects.get(number=sandbox_number)
    assert saved.offline_on and not saved.greeting_on and not saved.busy_on
    assert (saved.offline_period_hours, saved.busy_threshold, saved.updated_by) == (12, 4, sue)
    assert AuditEvent.objects.filter(action="inbox.responses.update", actor=sue).exists()
    shift = make_shift(rrule="FREQ=DAILY")  # 09:00 Chicago; now is Monday 06:00
    sign_up(shift, bob, utc(2025, 3, 4, 15))
    preview = _html(sue_client.get(f"{RESPONSES}?inbox={sandbox_number.pk}"))
    assert "Closed now; open again tomorrow at 9:00 AM. In danger? Call 911." in preview


def test_a_switched_on_answer_needs_its_words(sandbox_number, sue_client):
    blank = sue_client.post(
        RESPONSES, {"inbox": sandbox_number.pk, **_form(greeting_enabled="on", greeting_text="")}
    )
    assert blank.status_code == 422
    assert "Write the greeting text or switch it off" in _html(blank)
    bad = sue_client.post(RESPONSES, {"inbox": sandbox_number.pk, **_form(busy_threshold="0")})
    assert bad.status_code == 422
    assert not InboxResponses.objects.exists()


def test_shifts_page_links_the_new_pages_for_managers(sue_client, bob_client, sandbox_number):
    assert f'href="{RESPONSES}"' in _html(sue_client.get("/shifts/"))
    assert f'href="{REPORT}"' in _html(sue_client.get("/shifts/"))
    assert f'href="{REPORT}"' not in _html(bob_client.get("/shifts/"))

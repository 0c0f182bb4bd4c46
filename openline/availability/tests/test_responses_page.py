"""The auto-responses page: what it shows, what it changes, that counselors and other
organizations get nothing from it, and the shifts page's links to it and to the offline
messages report (the console's; its own tests: console's test_offline_report)."""

from __future__ import annotations

from openline.availability.models import InboxResponses
from openline.availability.tests.support import sign_up, utc
from openline.core.models import AuditEvent

REPORT = "/shifts/offline-messages"
RESPONSES = "/shifts/responses"


def _html(response) -> str:
    return " ".join(response.content.decode().split())


def test_counselors_and_other_organizations_get_nothing(bob_client, charlie_client, sandbox_number):
    assert bob_client.get(RESPONSES).status_code == 403
    assert charlie_client.get(f"{RESPONSES}?inbox={sandbox_number.pk}").status_code == 404
    form = {"inbox": sandbox_number.pk, **_form()}
    assert charlie_client.post(RESPONSES, form).status_code == 404
    assert not InboxResponses.objects.exists()


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

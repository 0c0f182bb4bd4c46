from __future__ import annotations

import pytest

from openline.core.models import AuditEvent
from openline.messaging.models import Message


@pytest.fixture
def admin_client(client, alice):
    client.force_login(alice)
    return client


def test_admin_edits_keyword_replies_and_they_are_used(admin_client, org, sandbox_number, text_in):
    response = admin_client.post(
        "/settings/",
        {
            "name": "Riverside Warm Line",
            "contact_info": "call 555-0100",
            "welcome_text": "Riverside: welcome! Reply STOP to stop.",
            "opt_out_text": "Riverside: you are unsubscribed. Text START to come back.",
            "help_text": "",
        },
    )
    assert response.status_code == 302
    org.refresh_from_db()
    assert org.name == "Riverside Warm Line"
    assert AuditEvent.objects.filter(action="organization.update").count() == 1

    text_in("STOP")
    text_in("HELP")  # recorded, not answered: opted out
    text_in("START")
    text_in("HELP")
    bodies = list(Message.objects.filter(direction="out").values_list("body", flat=True))
    assert bodies[0] == "Riverside: you are unsubscribed. Text START to come back."
    assert bodies[1] == "Riverside: welcome! Reply STOP to stop."
    assert "call 555-0100" in bodies[2] and "Riverside Warm Line" in bodies[2]  # default help


@pytest.mark.parametrize(
    "field, text, error",
    [
        ("opt_out_text", "You are unsubscribed.", "START"),
        ("welcome_text", "Welcome!", "STOP"),
        ("help_text", "x" * 400, "under 320"),
    ],
)
def test_texts_must_keep_the_way_out(admin_client, org, field, text, error):
    data = {
        "name": org.name,
        "contact_info": "",
        "welcome_text": "",
        "opt_out_text": "",
        "help_text": "",
    }
    response = admin_client.post("/settings/", {**data, field: text})
    assert response.status_code == 422
    assert error in response.content.decode()
    org.refresh_from_db()
    assert getattr(org, field) == ""


def test_only_admins_open_settings(client, bob, charlie, org):
    client.force_login(bob)
    assert client.get("/settings/").status_code == 403
    assert client.post("/settings/", {"name": "Hijacked"}).status_code == 403
    client.force_login(charlie)  # an admin, of another organization
    client.post("/settings/", {"name": "Hijacked", "help_text": ""})
    org.refresh_from_db()
    assert org.name == "Riverside Crisis Line"

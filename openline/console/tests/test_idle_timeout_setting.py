"""The idle timeout on the Settings page: admins of the organization change it (audited,
within bounds, all of the form or nothing); nobody else can."""

from __future__ import annotations

from typing import Any

from django.test import Client

from openline.core.models import AuditEvent

FORM = {"name": "Riverside Crisis Line", "contact_info": "", "welcome_text": "", "help_text": ""}


def _post(client: Client, **values: Any) -> Any:
    return client.post("/settings/", {**FORM, "opt_out_text": "", **values})


def test_admin_sets_the_idle_timeout_and_it_is_audited(alice_client: Client, org: Any) -> None:
    page = alice_client.get("/settings/").content.decode()
    assert 'name="idle_timeout_minutes"' in page and 'value="30"' in page
    assert _post(alice_client, idle_timeout_minutes="15").status_code == 302
    org.refresh_from_db()
    assert org.idle_timeout_minutes == 15
    event = AuditEvent.objects.get(action="organization.idle_timeout")
    assert (event.organization_id, event.object_id) == (org.pk, str(org.pk))
    _post(alice_client, idle_timeout_minutes="15")  # unchanged: nothing more to audit
    assert AuditEvent.objects.filter(action="organization.idle_timeout").count() == 1


def test_an_empty_idle_timeout_means_the_default(alice_client: Client, org: Any) -> None:
    org.idle_timeout_minutes = 60
    org.save()
    assert _post(alice_client, idle_timeout_minutes="").status_code == 302
    org.refresh_from_db()
    assert org.idle_timeout_minutes == 30


def test_an_idle_timeout_out_of_bounds_is_refused_and_nothing_is_saved(
    alice_client: Client, org: Any
) -> None:
    for minutes, message in (
        ("2", "greater than or equal to 5"),
        ("721", "less than or equal to 720"),
    ):
        response = _post(alice_client, idle_timeout_minutes=minutes, name="Renamed")
        assert response.status_code == 422
        assert message in response.content.decode()
    response = _post(alice_client, idle_timeout_minutes="ten")
    assert response.status_code == 422 and "Enter a whole number" in response.content.decode()
    org.refresh_from_db()
    assert (org.name, org.idle_timeout_minutes) == ("Riverside Crisis Line", 30)


def test_a_refused_text_saves_no_idle_timeout_either(alice_client: Client, org: Any) -> None:
    response = _post(alice_client, idle_timeout_minutes="15", opt_out_text="You are unsubscribed.")
    assert response.status_code == 422
    org.refresh_from_db()
    assert org.idle_timeout_minutes == 30
    assert not AuditEvent.objects.filter(action="organization.idle_timeout").exists()


def test_only_the_organizations_admins_change_the_idle_timeout(
    bob_client: Client, charlie_client: Client, org: Any
) -> None:
    assert _post(bob_client, idle_timeout_minutes="600").status_code == 403
    charlie_client.post("/settings/", {**FORM, "opt_out_text": "", "idle_timeout_minutes": "600"})
    org.refresh_from_db()
    assert org.idle_timeout_minutes == 30

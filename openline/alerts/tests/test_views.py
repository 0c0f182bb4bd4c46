"""The alert pages: the policy and its calculator (admins), My alerts with its banner
(everyone), and another organization's people see none of it."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client

from conftest import Clock
from openline.alerts.models import AlertPolicy, AlertProfile
from openline.alerts.tests.conftest import OnShift, texted_codes
from openline.contacts.models import ConsentEvent
from openline.contacts.selectors import consent_state

pytestmark = pytest.mark.django_db


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


POLICY = {
    "enabled": "on",
    "reminder_minutes": "5",
    "reminders": "2",
    "escalate_after": "2",
    "after_hours_phone": "",
}


def test_admin_sets_the_policy_and_the_calculator_counts_the_texts(
    clock: Clock, on_shift: OnShift, sandbox_number: Any, alice: Any, bob: Any, sue: Any,
    dora: Any,
) -> None:  # fmt: skip
    on_shift(bob)
    on_shift(dora)
    on_shift(sue, kind="oncall")
    admin = _client(alice)
    saved = admin.post(f"/alerts/?inbox={sandbox_number.pk}", POLICY)
    assert saved.status_code == 302
    policy = AlertPolicy.objects.get(number=sandbox_number)
    assert (policy.enabled, policy.reminder_minutes, policy.reminders, policy.escalate_after) == (
        True,
        5,
        2,
        2,
    )
    page = admin.get(f"/alerts/?inbox={sandbox_number.pk}").content.decode()
    # 2 on shift × (new + 2 reminders) + 1 on call × escalation = 7 texts.
    assert re.search(r"data-total>\s*7\s*<", page)
    assert "10 min" in page and "Escalation" in page
    # The calculator follows the form before it is saved.
    preview = admin.get(
        "/alerts/calculator",
        {**POLICY, "inbox": sandbox_number.pk, "reminders": "5", "escalate_after": "0"},
    ).content.decode()
    assert re.search(r"data-total>\s*12\s*<", preview)  # 2 × (1 + 5)
    off = admin.get("/alerts/calculator", {**POLICY, "enabled": ""}).content.decode()
    assert "Alerts are off" in off


def test_escalation_without_a_reminder_frequency_is_refused_clearly(
    sandbox_number: Any, alice: Any
) -> None:
    refused = _client(alice).post("/alerts/", {**POLICY, "reminder_minutes": "0"})
    assert refused.status_code == 422
    assert "choose a reminder frequency" in refused.content.decode()
    bad_phone = _client(alice).post("/alerts/", {**POLICY, "after_hours_phone": "12"})
    assert bad_phone.status_code == 422 and "not a phone number" in bad_phone.content.decode()
    assert not AlertPolicy.objects.exists()


def test_only_admins_manage_alerts_and_other_organizations_see_nothing(
    sandbox_number: Any, other_number: Any, alice: Any, bob: Any, sue: Any, charlie: Any
) -> None:
    for user in (bob, sue):
        assert _client(user).get("/alerts/").status_code == 403
        assert _client(user).post("/alerts/", POLICY).status_code == 403
    outsider = _client(charlie)
    page = outsider.get(f"/alerts/?inbox={sandbox_number.pk}").content.decode()
    assert "Main line" not in page and "Clinic" in page
    outsider.post(f"/alerts/?inbox={sandbox_number.pk}", POLICY)
    assert not AlertPolicy.objects.filter(number=sandbox_number).exists()
    assert AlertPolicy.objects.get().number == other_number  # their own inbox, not ours


def test_my_alerts_records_permission_in_the_ledger_and_the_banner_says_what_is_missing(
    org: Any, bob: Any, sandbox_number: Any
) -> None:
    me = _client(bob)
    page = me.get("/alerts/me").content.decode()
    assert 'data-alerts-banner="missing"' in page and "add your mobile number" in page
    me.post("/alerts/me", {"mobile": "312-555-0123", "new_conversation_sms": "on"})
    page = me.get("/alerts/me").content.decode()
    assert "I permit SMS" in page and 'data-alerts-banner="missing"' in page
    me.post("/alerts/me", {"mobile": "312-555-0123", "permit": "on", "new_conversation_sms": "on"})
    assert AlertProfile.objects.get(user=bob).mobile == "+13125550123"
    # The permission is recorded once the code texted to the phone comes back.
    assert not ConsentEvent.objects.filter(phone="+13125550123").exists()
    assert "confirm your number" in me.get("/preferences/").content.decode()
    me.post("/alerts/me/confirm", {"code": texted_codes("+13125550123")[-1]})
    event = ConsentEvent.objects.get(phone="+13125550123")
    assert (event.kind, event.source, event.actor_id) == ("opt_in", "staff", bob.pk)
    assert 'data-alerts-banner="configured"' in me.get("/alerts/me").content.decode()
    assert 'data-alerts-banner="configured"' in me.get("/preferences/").content.decode()
    # Withdrawing is an opt-out in the ledger too.
    me.post("/alerts/me", {"mobile": "312-555-0123", "new_conversation_sms": "on"})
    assert consent_state(organization_id=org.pk, phone="+13125550123").opted_out
    bad = me.post("/alerts/me", {"mobile": "not a phone", "permit": "on"})
    assert bad.status_code == 422


def test_after_a_stop_text_only_start_from_that_phone_gives_permission_back(
    org: Any, bob: Any, sandbox_number: Any
) -> None:
    from openline.contacts.services.consent import consent_record_opt_out

    me = _client(bob)
    me.post("/alerts/me", {"mobile": "312-555-0123", "permit": "on", "new_conversation_sms": "on"})
    me.post("/alerts/me/confirm", {"code": texted_codes("+13125550123")[-1]})
    consent_record_opt_out(
        organization_id=org.pk, phone="+13125550123", source="keyword", text="STOP"
    )
    again = me.post(
        "/alerts/me", {"mobile": "312-555-0123", "permit": "on", "new_conversation_sms": "on"}
    )
    assert again.status_code == 422 and "texting START" in again.content.decode()
    assert consent_state(organization_id=org.pk, phone="+13125550123").opted_out


def test_the_alert_log_lists_only_our_alerts(
    clock: Clock, on_shift: OnShift, text_in: Any, sandbox_number: Any, alice: Any, bob: Any,
    charlie: Any,
) -> None:  # fmt: skip
    from openline.alerts.services import alert_policy_set
    from openline.alerts.sweep import alerts_sweep

    on_shift(bob)
    alert_policy_set(
        number=sandbox_number, actor_id=alice.pk, enabled=True, reminder_minutes=5,
        reminders=1, escalate_after=0,
    )  # fmt: skip
    text_in(sandbox_number, "+13125550199", "hello")
    alerts_sweep()
    ours = _client(alice).get("/alerts/").content.decode()
    assert "data-alert-log" in ours and "New conversation" in ours and "queued" in ours
    assert "data-alert-log" not in _client(charlie).get("/alerts/").content.decode()

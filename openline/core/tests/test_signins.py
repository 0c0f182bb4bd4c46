"""Every sign-in and failed sign-in is in the audit log of each organization the person works
in, with the address and browser; an unknown e-mail is recorded nowhere."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from openline.core.models import AuditEvent, Membership
from openline.core.signins import browser_name

CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0.0.0 Safari/537.36"
)


@pytest.fixture(autouse=True)
def _quick_passwords(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _post(email: str, password: str, address: str = "198.51.100.4", agent: str = CHROME) -> int:
    client = Client(REMOTE_ADDR=address, HTTP_USER_AGENT=agent)
    return client.post("/login/", {"username": email, "password": password}).status_code


def _events(action: str) -> list[tuple[int, int | None, str | None, str, str]]:
    rows = AuditEvent.objects.filter(action=action).order_by("organization_id", "id")
    return list(
        rows.values_list("organization_id", "actor_id", "ip_address", "user_agent", "detail")
    )


def test_a_sign_in_is_recorded_once_in_each_active_organization(
    bob: Any, org: Any, other_org: Any
) -> None:
    Membership.objects.create(organization=other_org, user=bob, role="staff")
    assert _post("bob@example.org", "bob-pass-12") == 302
    assert _events("auth.sign_in") == [
        (org.pk, bob.pk, "198.51.100.4", CHROME, ""),
        (other_org.pk, bob.pk, "198.51.100.4", CHROME, ""),
    ]
    Membership.objects.filter(organization=other_org, user=bob).update(is_active=False)
    AuditEvent.objects.all().delete()
    _post("bob@example.org", "bob-pass-12")
    assert [row[0] for row in _events("auth.sign_in")] == [org.pk]  # not where deactivated


def test_a_failed_sign_in_is_recorded_for_the_account_not_for_an_unknown_email(
    bob: Any, org: Any
) -> None:
    assert _post("Bob@Example.org", "wrong-password", address="2001:db8::7") == 200
    assert _events("auth.sign_in_failed") == [(org.pk, bob.pk, "2001:db8::7", CHROME, "")]
    _post("nobody@example.org", "wrong-password")
    assert AuditEvent.objects.filter(action="auth.sign_in_failed").count() == 1
    assert not AuditEvent.objects.filter(action="auth.sign_in").exists()


def test_a_sign_in_refused_while_paused_counts_as_failed(bob: Any, org: Any) -> None:
    for _ in range(4):
        _post("bob@example.org", "wrong-password")
    assert _post("bob@example.org", "wrong-password") == 429  # the fifth pauses signing in
    assert _post("bob@example.org", "bob-pass-12") == 429  # refused unchecked
    details = [row[4] for row in _events("auth.sign_in_failed")]
    assert details[:4] == [""] * 4
    assert details[-1] == "signing in paused"
    assert not AuditEvent.objects.filter(action="auth.sign_in").exists()


def test_a_long_browser_description_is_cut(bob: Any) -> None:
    _post("bob@example.org", "bob-pass-12", agent="X" * 1000)
    assert len(AuditEvent.objects.get(action="auth.sign_in").user_agent) == 300


def test_force_login_stays_cheap(bob: Any) -> None:
    client = Client()
    with CaptureQueriesContext(connection) as queries:
        client.force_login(bob)
    ours = [
        q["sql"]
        for q in queries.captured_queries
        if "core_auditevent" in q["sql"] or "otp_" in q["sql"] or "core_membership" in q["sql"]
    ]
    # memberships, one insert per organization, the two device look-ups
    assert len(ours) <= 4, ours


@pytest.mark.parametrize(
    ("agent", "name"),
    [
        (CHROME, "Chrome 130 on Linux"),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:131.0) Gecko/20100101 Firefox/131.0",
            "Firefox 131 on Windows 10",
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
            "Mobile Safari 17 on iOS 17",
        ),
        ("curl/8.5.0", "curl 8"),
        ("", "Unknown browser"),
    ],
)
def test_browser_names(agent: str, name: str) -> None:
    assert browser_name(agent) == name

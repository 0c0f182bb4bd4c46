"""The personal security page (login history in the organization's time zone, password
change) and an admin's view of a member's sign-ins."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from openline.core.models import AuditEvent, Membership

CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0.0.0 Safari/537.36"
)


@pytest.fixture(autouse=True)
def _quick_passwords(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _signed_in(email: str, password: str, address: str = "198.51.100.23") -> Client:
    client = Client(REMOTE_ADDR=address, HTTP_USER_AGENT=CHROME)
    assert client.post("/login/", {"username": email, "password": password}).status_code == 302
    return client


def test_the_security_page_shows_ones_sign_ins_with_address_and_browser(
    bob: Any, org: Any, other_org: Any
) -> None:
    Client(REMOTE_ADDR="192.0.2.99").post(
        "/login/", {"username": "bob@example.org", "password": "nope"}
    )
    client = _signed_in("bob@example.org", "bob-pass-12")
    AuditEvent.objects.filter(actor=bob, action="auth.sign_in").update(
        created_at=datetime(2026, 3, 2, 15, 4, tzinfo=UTC)
    )
    AuditEvent.objects.create(  # recorded in another organization: not shown here
        organization=other_org, actor=bob, action="auth.sign_in", ip_address="10.9.9.9"
    )
    page = client.get("/security/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "198.51.100.23" in html and "Chrome 130 on Linux" in html
    assert "Mar 2, 2026, 9:04 AM" in html  # 15:04 UTC in Chicago
    assert "192.0.2.99" in html and "Wrong password" in html
    assert "10.9.9.9" not in html
    assert "Set up a second factor" in html


def test_the_history_keeps_the_last_fifty(bob: Any, org: Any, bob_client: Client) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    AuditEvent.objects.all().delete()  # (bob_client's own sign-in)
    for n in range(60):
        event = AuditEvent.objects.create(
            organization=org, actor=bob, action="auth.sign_in", ip_address=f"10.0.0.{n}"
        )
        AuditEvent.objects.filter(pk=event.pk).update(created_at=start + timedelta(hours=n))
    html = bob_client.get("/security/").content.decode()
    assert html.count('class="sign-in-ok"') == 50
    assert "10.0.0.59<" in html and "10.0.0.10<" in html and "10.0.0.9<" not in html


def test_the_page_offers_to_sign_out_everywhere(bob_client: Client) -> None:
    html = bob_client.get("/security/").content.decode()
    assert f'action="{reverse("account:sign_out_everywhere")}"' in html


# --- admins: a member's sign-ins -------------------------------------------------------------


def _sign_ins_url(membership: Membership) -> str:
    return reverse("security:member_sign_ins", args=[membership.pk])


def test_an_admin_reads_a_members_sign_ins(alice_client: Client, bob: Any, org: Any) -> None:
    _signed_in("bob@example.org", "bob-pass-12", address="203.0.113.50")
    page = alice_client.get(_sign_ins_url(Membership.objects.get(user=bob)))
    assert page.status_code == 200
    html = page.content.decode()
    assert "203.0.113.50" in html and "Chrome 130 on Linux" in html and "bob@example.org" in html


def test_a_members_sign_ins_are_for_admins_of_their_organization_only(
    alice: Any, bob: Any, org: Any, bob_client: Client, sue_client: Client, charlie_client: Client
) -> None:
    _signed_in("alice@example.org", "alice-pass-1", address="203.0.113.51")
    url = _sign_ins_url(Membership.objects.get(user=alice))
    assert bob_client.get(url).status_code == 403
    assert sue_client.get(url).status_code == 403
    response = charlie_client.get(url)
    assert response.status_code == 404 and "203.0.113.51" not in response.content.decode()
    assert charlie_client.get(_sign_ins_url(Membership(pk=999999))).status_code == 404


# --- password ---------------------------------------------------------------------------------


def test_changing_the_password_keeps_this_session_and_ends_the_others(bob: Any, org: Any) -> None:
    here = _signed_in("bob@example.org", "bob-pass-12")
    elsewhere = _signed_in("bob@example.org", "bob-pass-12", address="198.51.100.99")
    weak = here.post(
        "/security/password/",
        {"old_password": "bob-pass-12", "new_password1": "short", "new_password2": "short"},
    )
    assert weak.status_code == 422 and "too short" in weak.content.decode()
    wrong_old = here.post(
        "/security/password/",
        {
            "old_password": "nope",
            "new_password1": "a much longer pass phrase",
            "new_password2": "a much longer pass phrase",
        },
    )
    assert wrong_old.status_code == 422
    assert not AuditEvent.objects.filter(action="auth.password_changed").exists()

    done = here.post(
        "/security/password/",
        {
            "old_password": "bob-pass-12",
            "new_password1": "a much longer pass phrase",
            "new_password2": "a much longer pass phrase",
        },
    )
    assert done.status_code == 302 and done["Location"] == "/security/"
    assert here.get("/").status_code == 200
    assert elsewhere.get("/")["Location"].startswith("/login/")
    event = AuditEvent.objects.get(action="auth.password_changed")
    assert (event.organization_id, event.actor_id, event.ip_address) == (
        org.pk,
        bob.pk,
        "198.51.100.23",
    )
    assert _signed_in("bob@example.org", "a much longer pass phrase").get("/").status_code == 200


def test_anonymous_is_sent_to_sign_in_from_the_security_pages(client: Client) -> None:
    for url in ("/security/", "/security/password/", "/security/setup/", "/security/verify/"):
        assert client.get(url)["Location"].startswith("/login/?next="), url
    assert client.post("/security/recovery-codes/")["Location"].startswith("/login/")
    assert client.post("/security/disable/")["Location"].startswith("/login/")

"""A second factor at sign-in, through the pages: set up an authenticator app (a wrong code
refused and audited), sign out, sign in → asked for a code, a wrong code, the right one → the
console; recovery codes work once; the organization's rule sends members without one to
set it up (htmx requests too); an admin resets a lost phone, and only an admin of the
person's own organization can."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from openline.core.models import AuditEvent, Membership
from openline.core.second_factor import totp_begin, totp_confirm
from openline.core.tests.second_factor_support import app_code, let_throttle_pass, wrong_code

HTMX = {"HX-Request": "true", "HX-Current-URL": "http://testserver/contacts/?q=ann"}
BROWSER = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0.0.0 Safari/537.36"
)
VERIFY = "/security/verify/"
SETUP = "/security/setup/"


@pytest.fixture(autouse=True)
def _quick_passwords(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _sign_in(email: str, password: str, next_page: str = "") -> Client:
    client = Client(HTTP_USER_AGENT=BROWSER, REMOTE_ADDR="203.0.113.7")
    url = f"/login/?next={next_page}" if next_page else "/login/"
    response = client.post(url, {"username": email, "password": password, "next": next_page})
    assert response.status_code == 302, response.content[:500]
    return client


def _set_up(user: Any) -> tuple[TOTPDevice, list[str]]:
    """An app set up through the services (for tests about what comes after)."""
    device, _ = totp_begin(user=user)
    return totp_confirm(user=user, device_id=device.pk, code=app_code(device))


def _actions(user: Any) -> list[str]:
    return list(
        AuditEvent.objects.filter(actor=user).order_by("id").values_list("action", flat=True)
    )


def _codes(html: str) -> list[str]:
    return re.findall(r"<li><code>([a-z0-9]+)</code></li>", html)


# --- the whole flow ---------------------------------------------------------------------------


def test_set_up_sign_out_sign_in_and_pass_the_second_factor(bob: Any, org: Any) -> None:
    client = _sign_in("bob@example.org", "bob-pass-12")
    assert client.get("/").status_code == 200  # no second factor: straight to the console

    page = client.get(SETUP)
    assert page.status_code == 200
    html = page.content.decode()
    assert "<svg" in html and 'class="segno"' in html  # the QR code, inline
    device = TOTPDevice.objects.get(user=bob, confirmed=False)
    assert device.name == "Authenticator app"
    secret = re.search(r'<code id="totp-secret">([A-Z2-7 ]+)</code>', html)
    assert secret and len(secret.group(1).replace(" ", "")) == 32  # 20 bytes in base32
    assert client.get(SETUP).content.decode().count(secret.group(1)) == 1  # same on reload

    refused = client.post(SETUP, {"device": device.pk, "code": wrong_code(device)})
    assert refused.status_code == 422
    assert "That code is not right" in refused.content.decode()
    assert not TOTPDevice.objects.filter(user=bob, confirmed=True).exists()
    failed = AuditEvent.objects.get(actor=bob, action="auth.second_factor_failed")
    assert failed.detail == "while setting up" and failed.organization_id == org.pk

    let_throttle_pass(device)
    done = client.post(SETUP, {"device": device.pk, "code": app_code(device)})
    assert done.status_code == 200
    codes = _codes(done.content.decode())
    assert len(codes) == 10 and len(set(codes)) == 10
    assert sorted(
        StaticToken.objects.filter(device__user=bob).values_list("token", flat=True)
    ) == sorted(codes)
    assert (
        AuditEvent.objects.filter(
            actor=bob, action="second_factor.enabled", organization=org
        ).count()
        == 1
    )
    assert client.get("/").status_code == 200  # this session passed it by setting it up
    assert client.get(SETUP).status_code == 200  # (moving it to a new phone is allowed here)

    client.post("/logout/")
    client = _sign_in("bob@example.org", "bob-pass-12", next_page="/contacts/")
    assert client.get("/contacts/")["Location"] == f"{VERIFY}?next=/contacts/"
    assert client.get("/")["Location"] == f"{VERIFY}?next=/"
    fragment = client.get("/queue", headers=HTMX)
    assert fragment.status_code == 204
    assert fragment["HX-Redirect"] == f"{VERIFY}?next=/contacts/"
    assert client.get(SETUP)["Location"].startswith(VERIFY)  # no new app without the old one
    assert client.get(VERIFY).status_code == 200

    wrong = client.post(VERIFY, {"code": wrong_code(device), "next": "/contacts/"})
    assert wrong.status_code == 422 and "That code is not right" in wrong.content.decode()
    event = AuditEvent.objects.filter(actor=bob, action="auth.second_factor_failed").latest("id")
    assert (event.detail, event.ip_address) == ("authenticator code", "203.0.113.7")
    assert "Chrome" in event.user_agent
    assert client.get("/")["Location"].startswith(VERIFY)  # still not through

    let_throttle_pass(device)  # (a person takes the second the throttle asks for)
    right = client.post(VERIFY, {"code": app_code(device), "next": "/contacts/"})
    assert right.status_code == 302 and right["Location"] == "/contacts/"
    assert client.get("/contacts/").status_code == 200
    assert client.get("/").status_code == 200


def test_wrong_codes_are_throttled_by_the_device(bob: Any) -> None:
    device, _ = _set_up(bob)
    client = _sign_in("bob@example.org", "bob-pass-12")
    client.post(VERIFY, {"code": wrong_code(device)})
    # Right away, even the right code waits: the device throttles after a wrong one ...
    paused = client.post(VERIFY, {"code": app_code(device)})
    assert paused.status_code == 422
    assert "Too many wrong codes" in paused.content.decode()
    assert client.get("/").status_code == 302
    device.refresh_from_db()
    assert device.throttling_failure_count == 1  # ... (a refused try does not lengthen it)
    details = AuditEvent.objects.filter(actor=bob, action="auth.second_factor_failed")
    assert list(details.order_by("id").values_list("detail", flat=True)) == [
        "authenticator code",
        "authenticator code (paused after wrong codes)",
    ]
    let_throttle_pass(device)
    assert client.post(VERIFY, {"code": app_code(device)}).status_code == 302
    device.refresh_from_db()
    assert device.throttling_failure_count == 0


def test_a_recovery_code_works_once(bob: Any, org: Any) -> None:
    device, codes = _set_up(bob)
    client = _sign_in("bob@example.org", "bob-pass-12")
    used = client.post(VERIFY, {"recovery_code": codes[3].upper(), "next": "/"})
    assert used.status_code == 302 and used["Location"] == "/"
    assert client.get("/").status_code == 200
    event = AuditEvent.objects.get(actor=bob, action="auth.recovery_code_used")
    assert (event.organization_id, event.detail) == (org.pk, "9 recovery codes left")

    again = _sign_in("bob@example.org", "bob-pass-12")
    refused = again.post(VERIFY, {"recovery_code": codes[3]})
    assert refused.status_code == 422
    assert "used already" in refused.content.decode()
    assert again.get("/").status_code == 302
    assert (
        AuditEvent.objects.filter(
            actor=bob, action="auth.second_factor_failed", detail="recovery code"
        ).count()
        == 1
    )
    let_throttle_pass(StaticDevice.objects.get(user=bob))
    assert again.post(VERIFY, {"recovery_code": codes[4]}).status_code == 302


def test_new_recovery_codes_replace_the_old_ones(bob: Any, org: Any) -> None:
    _, old = _set_up(bob)
    client = _sign_in("bob@example.org", "bob-pass-12")
    client.post(VERIFY, {"recovery_code": old[0]})
    page = client.post("/security/recovery-codes/")
    assert page.status_code == 200
    new = _codes(page.content.decode())
    assert len(new) == 10 and not set(new) & set(old)
    assert client.get("/").status_code == 200  # this session stays verified
    assert AuditEvent.objects.filter(actor=bob, action="recovery_codes.regenerated").count() == 1

    other = _sign_in("bob@example.org", "bob-pass-12")
    assert other.post(VERIFY, {"recovery_code": old[1]}).status_code == 422
    let_throttle_pass(StaticDevice.objects.get(user=bob))
    assert other.post(VERIFY, {"recovery_code": new[1]}).status_code == 302


def test_a_second_factor_set_up_elsewhere_is_asked_for_within_a_minute(bob: Any) -> None:
    from openline.core import second_factor

    laptop = _sign_in("bob@example.org", "bob-pass-12")
    assert laptop.get("/").status_code == 200
    _set_up(bob)  # on another browser
    session = laptop.session
    session[second_factor.NO_DEVICE_AT] -= second_factor.RECHECK_SECONDS
    session.save()
    assert laptop.get("/")["Location"] == f"{VERIFY}?next=/"


# --- the organization's rule ------------------------------------------------------------------


def test_rule_everyone_sends_a_member_without_one_to_set_it_up_first(bob: Any, org: Any) -> None:
    client = _sign_in("bob@example.org", "bob-pass-12")
    assert client.get("/").status_code == 200
    org.require_second_factor = "everyone"
    org.save()

    assert client.get("/")["Location"] == f"{SETUP}?next=/"
    assert client.get("/contacts/")["Location"] == f"{SETUP}?next=/contacts/"
    assert client.get("/sandbox/phone")["Location"].startswith(SETUP)  # the simulator page too
    fragment = client.get("/queue", headers=HTMX)
    assert (fragment.status_code, fragment["HX-Redirect"]) == (204, f"{SETUP}?next=/contacts/")
    assert client.get("/healthz").status_code == 200  # exempt
    assert client.get("/security/")["Location"].startswith(SETUP)

    page = client.get(f"{SETUP}?next=/contacts/")
    assert page.status_code == 200 and "Your organization asks" in page.content.decode()
    assert "Not now" not in page.content.decode()
    device = TOTPDevice.objects.get(user=bob, confirmed=False)
    done = client.post(SETUP, {"device": device.pk, "code": app_code(device), "next": "/contacts/"})
    assert done.status_code == 200
    assert 'href="/contacts/"' in done.content.decode()  # continue where they were going
    assert client.get("/contacts/").status_code == 200
    assert client.get("/queue", headers=HTMX).status_code == 200


def test_rule_managers_asks_supervisors_and_admins_only(org: Any, bob: Any, sue: Any) -> None:
    org.require_second_factor = "managers"
    org.save()
    assert _sign_in("bob@example.org", "bob-pass-12").get("/").status_code == 200
    assert _sign_in("sue@example.org", "supervisor-pass-123").get("/")["Location"].startswith(SETUP)


def test_the_rule_applies_to_the_organization_the_session_works_in(
    bob: Any, org: Any, other_org: Any
) -> None:
    Membership.objects.create(organization=other_org, user=bob, role="counselor")
    other_org.require_second_factor = "everyone"
    other_org.save()
    client = _sign_in("bob@example.org", "bob-pass-12")
    assert client.get("/").status_code == 200  # working in Riverside (his first)
    session = client.session
    session["openline.organization_id"] = other_org.pk
    session.save()
    assert client.get("/")["Location"].startswith(SETUP)


def test_sign_out_and_the_api_work_without_the_second_factor(
    bob: Any, alice: Any, org: Any
) -> None:
    from openline.core.services import api_token_create

    _set_up(bob)
    client = _sign_in("bob@example.org", "bob-pass-12")
    assert client.get("/")["Location"].startswith(VERIFY)
    _, secret = api_token_create(organization=org, name="integration")
    api = client.get("/api/v1/conversations", HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert api.status_code == 200
    assert client.post("/logout/").status_code == 302
    assert client.get("/")["Location"].startswith("/login/")


def test_the_verify_page_sends_someone_without_a_second_factor_on(bob: Any) -> None:
    client = _sign_in("bob@example.org", "bob-pass-12")
    assert client.get(f"{VERIFY}?next=/contacts/")["Location"] == "/contacts/"
    assert client.get(f"{VERIFY}?next=https://evil.example/")["Location"] == "/"
    assert Client().get(VERIFY)["Location"].startswith("/login/")


# --- turning it off ---------------------------------------------------------------------------


def test_turning_it_off_needs_the_password_and_an_organization_that_allows_it(
    bob: Any, org: Any
) -> None:
    _set_up(bob)
    client = _sign_in("bob@example.org", "bob-pass-12")
    client.post(VERIFY, {"code": app_code(TOTPDevice.objects.get(user=bob))})

    wrong = client.post("/security/disable/", {"password": "not-it"})
    assert wrong.status_code == 422 and "That is not your password." in wrong.content.decode()
    org.require_second_factor = "everyone"
    org.save()
    assert "cannot be turned off" in client.get("/security/").content.decode()
    refused = client.post("/security/disable/", {"password": "bob-pass-12"})
    assert refused.status_code == 422 and "requires a second factor" in refused.content.decode()
    assert TOTPDevice.objects.filter(user=bob).exists()

    org.require_second_factor = "none"
    org.save()
    done = client.post("/security/disable/", {"password": "bob-pass-12"})
    assert done.status_code == 302
    assert not TOTPDevice.objects.filter(user=bob).exists()
    assert not StaticDevice.objects.filter(user=bob).exists()
    assert AuditEvent.objects.filter(actor=bob, action="second_factor.disabled").count() == 1
    assert client.get("/").status_code == 200
    assert _sign_in("bob@example.org", "bob-pass-12").get("/").status_code == 200


# --- an admin resets a lost phone ------------------------------------------------------------


def _reset_url(membership: Membership) -> str:
    return reverse("security:member_reset", args=[membership.pk])


def test_an_admin_resets_a_lost_phone(alice: Any, bob: Any, org: Any) -> None:
    org.require_second_factor = "everyone"
    org.save()
    _set_up(alice)
    _set_up(bob)
    bobs_browser = _sign_in("bob@example.org", "bob-pass-12")
    bobs_browser.post(VERIFY, {"code": app_code(TOTPDevice.objects.get(user=bob))})
    assert bobs_browser.get("/").status_code == 200

    admin = _sign_in("alice@example.org", "alice-pass-1")
    admin.post(VERIFY, {"code": app_code(TOTPDevice.objects.get(user=alice))})
    bob_membership = Membership.objects.get(user=bob, organization=org)
    confirm = admin.get(_reset_url(bob_membership))
    assert confirm.status_code == 200 and "signed out everywhere" in confirm.content.decode()
    done = admin.post(_reset_url(bob_membership))
    assert done.status_code == 302

    assert not TOTPDevice.objects.filter(user=bob).exists()
    assert not StaticDevice.objects.filter(user=bob).exists()
    event = AuditEvent.objects.get(action="second_factor.reset")
    assert (event.organization_id, event.actor_id, event.object_id) == (
        org.pk,
        alice.pk,
        str(bob_membership.pk),
    )
    assert bobs_browser.get("/")["Location"].startswith("/login/")  # his sessions ended
    again = _sign_in("bob@example.org", "bob-pass-12")  # the password alone signs him in ...
    assert again.get("/")["Location"].startswith(SETUP)  # ... and he sets up a new one

    nothing_left = admin.post(_reset_url(bob_membership))
    assert nothing_left.status_code == 422
    assert "has no second factor" in nothing_left.content.decode()


def test_without_the_rule_a_reset_member_signs_in_with_the_password_alone(
    alice: Any, bob: Any, org: Any, alice_client: Client
) -> None:
    _set_up(bob)
    membership = Membership.objects.get(user=bob, organization=org)
    assert alice_client.post(_reset_url(membership)).status_code == 302
    assert _sign_in("bob@example.org", "bob-pass-12").get("/").status_code == 200


def test_only_an_admin_of_the_persons_organization_can_reset_it(
    alice: Any, bob: Any, org: Any, charlie_client: Client, dora_client: Client, sue_client: Client
) -> None:
    _set_up(alice)
    membership = Membership.objects.get(user=alice, organization=org)
    assert charlie_client.get(_reset_url(membership)).status_code == 404
    assert charlie_client.post(_reset_url(membership)).status_code == 404
    assert dora_client.post(_reset_url(membership)).status_code == 403
    assert sue_client.post(_reset_url(membership)).status_code == 403  # supervisors neither
    assert TOTPDevice.objects.filter(user=alice, confirmed=True).exists()
    assert not AuditEvent.objects.filter(action="second_factor.reset").exists()


# --- the organization setting ----------------------------------------------------------------


def _settings(org: Any, **changes: str) -> dict[str, str]:
    return {
        "name": org.name,
        "contact_info": "",
        "welcome_text": "",
        "opt_out_text": "",
        "help_text": "",
        **changes,
    }


def test_an_admin_requires_a_second_factor_of_every_member(
    alice_client: Client, org: Any, alice: Any
) -> None:
    page = alice_client.get("/settings/").content.decode()
    assert "Require a second factor" in page and 'value="everyone"' in page
    bad = alice_client.post("/settings/", _settings(org, require_second_factor="sometimes"))
    assert bad.status_code == 422 and "Select a valid choice" in bad.content.decode()
    org.refresh_from_db()
    assert org.require_second_factor == "none"

    saved = alice_client.post("/settings/", _settings(org, require_second_factor="everyone"))
    assert saved.status_code == 302
    org.refresh_from_db()
    assert org.require_second_factor == "everyone"
    event = AuditEvent.objects.get(action="organization.second_factor_rule")
    assert (event.actor_id, event.detail) == (alice.pk, "none → everyone")
    # The admin herself has none yet: her next page is the set-up.
    assert alice_client.get("/settings/")["Location"].startswith(SETUP)


def test_a_settings_form_without_the_rule_leaves_it_alone(alice: Any, org: Any) -> None:
    org.require_second_factor = "managers"
    org.save()
    _set_up(alice)
    client = _sign_in("alice@example.org", "alice-pass-1")
    client.post(VERIFY, {"code": app_code(TOTPDevice.objects.get(user=alice))})
    assert client.post("/settings/", _settings(org, name="Riverside Line")).status_code == 302
    org.refresh_from_db()
    assert (org.name, org.require_second_factor) == ("Riverside Line", "managers")
    assert not AuditEvent.objects.filter(action="organization.second_factor_rule").exists()


def test_a_counselor_cannot_change_the_rule(bob_client: Client, org: Any) -> None:
    response = bob_client.post("/settings/", _settings(org, require_second_factor="none"))
    assert response.status_code == 403

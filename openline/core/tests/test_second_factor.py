"""The second-factor services: who must have one, whether a session passed it (what the
console socket asks), set-up, recovery codes, turning it off, and an admin's reset."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.core.exceptions import PermissionDenied, ValidationError
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from openline.core import second_factor as sf
from openline.core.models import AuditEvent, Membership, User
from openline.core.selectors import ORGANIZATION_SESSION_KEY
from openline.core.tests.second_factor_support import app_code, let_throttle_pass, wrong_code


def _member(user: Any, org: Any) -> Membership:
    return Membership.objects.select_related("organization").get(user=user, organization=org)


def _enable(user: Any) -> tuple[TOTPDevice, list[str]]:
    device, _ = sf.totp_begin(user=user)
    return sf.totp_confirm(user=user, device_id=device.pk, code=app_code(device))


@pytest.mark.parametrize(
    ("rule", "role", "required"),
    [
        ("none", "admin", False),
        ("managers", "counselor", False),
        ("managers", "staff", False),
        ("managers", "supervisor", True),
        ("managers", "admin", True),
        ("everyone", "counselor", True),
    ],
)
def test_who_must_have_a_second_factor(
    org: Any, bob: Any, rule: str, role: str, required: bool
) -> None:
    org.require_second_factor = rule
    org.save()
    Membership.objects.filter(user=bob).update(role=role)
    assert sf.second_factor_required(_member(bob, org)) is required
    assert sf.second_factor_required(None) is False


def test_begin_gives_an_otpauth_address_with_the_issuer(bob: Any, settings: Any) -> None:
    settings.OTP_TOTP_ISSUER = "Riverside OpenLine"
    device, uri = sf.totp_begin(user=bob)
    assert uri.startswith("otpauth://totp/Riverside%20OpenLine%3Abob%40example.org?secret=")
    assert "issuer=Riverside%20OpenLine" in uri and "digits=6" in uri and "period=30" in uri
    assert (device.name, device.confirmed) == ("Authenticator app", False)
    again, _ = sf.totp_begin(user=bob)
    assert again.pk == device.pk  # a reload keeps the secret being scanned


def test_confirm_turns_it_on_with_ten_recovery_codes(bob: Any, org: Any, other_org: Any) -> None:
    Membership.objects.create(organization=other_org, user=bob, role="counselor")
    device, _ = sf.totp_begin(user=bob)
    with pytest.raises(ValidationError, match="not right"):
        sf.totp_confirm(user=bob, device_id=device.pk, code=wrong_code(device))
    assert not sf.second_factor_enabled(bob.pk)
    let_throttle_pass(device)
    confirmed, codes = sf.totp_confirm(user=bob, device_id=device.pk, code=app_code(device))
    assert confirmed.confirmed and sf.second_factor_enabled(bob.pk)
    assert len(codes) == 10 and sf.recovery_codes_left(bob.pk) == 10
    assert StaticDevice.objects.get(user=bob).name == "Recovery codes"
    # audited in each of his organizations
    enabled = AuditEvent.objects.filter(action="second_factor.enabled", actor=bob)
    assert sorted(enabled.values_list("organization_id", flat=True)) == sorted(
        [org.pk, other_org.pk]
    )
    with pytest.raises(ValidationError, match="expired"):  # confirmed already
        sf.totp_confirm(user=bob, device_id=device.pk, code=app_code(device))


def test_someone_elses_set_up_cannot_be_confirmed(bob: Any, alice: Any) -> None:
    device, _ = sf.totp_begin(user=alice)
    with pytest.raises(ValidationError, match="expired"):
        sf.totp_confirm(user=bob, device_id=device.pk, code=app_code(device))
    assert not TOTPDevice.objects.filter(confirmed=True).exists()


def test_a_new_phone_replaces_the_old_app(bob: Any) -> None:
    old, _ = _enable(bob)
    new, _ = _enable(bob)
    assert list(TOTPDevice.objects.filter(user=bob).values_list("pk", flat=True)) == [new.pk]
    assert new.pk != old.pk
    details = AuditEvent.objects.filter(action="second_factor.enabled").order_by("id")
    assert list(details.values_list("detail", flat=True)) == [
        "authenticator app",
        "a new authenticator app",
    ]


def test_verify_accepts_the_app_code_or_a_recovery_code_once(bob: Any) -> None:
    device, codes = _enable(bob)
    assert sf.second_factor_verify(user=bob, code=app_code(device)) == device
    recovery = sf.second_factor_verify(
        user=bob, code=f" {codes[0][:4]}-{codes[0][4:]} ", recovery=True
    )
    assert isinstance(recovery, StaticDevice)
    assert sf.recovery_codes_left(bob.pk) == 9
    let_throttle_pass(recovery)
    with pytest.raises(ValidationError, match="used already"):
        sf.second_factor_verify(user=bob, code=codes[0], recovery=True)


def test_someone_without_a_device_cannot_verify(bob: Any) -> None:
    with pytest.raises(ValidationError):
        sf.second_factor_verify(user=bob, code="123456")
    with pytest.raises(ValidationError):
        sf.second_factor_verify(user=bob, code="abcdefgh", recovery=True)


def test_throttling_is_on_for_both_devices(bob: Any, settings: Any) -> None:
    device, codes = _enable(bob)
    assert device.get_throttle_factor() > 0
    assert StaticDevice.objects.get(user=bob).get_throttle_factor() > 0
    with pytest.raises(ValidationError):
        sf.second_factor_verify(user=bob, code=wrong_code(device))
    with pytest.raises(ValidationError, match="Too many wrong codes"):
        sf.second_factor_verify(user=bob, code=app_code(device))
    with pytest.raises(ValidationError):
        sf.second_factor_verify(user=bob, code="nope", recovery=True)
    with pytest.raises(ValidationError, match="Too many wrong codes"):
        sf.second_factor_verify(user=bob, code=codes[1], recovery=True)
    assert sf.recovery_codes_left(bob.pk) == 10  # the throttled one was not used up


def test_regenerating_needs_an_app_and_replaces_the_codes(bob: Any) -> None:
    with pytest.raises(ValidationError):
        sf.recovery_codes_regenerate(user=bob)
    _, old = _enable(bob)
    new = sf.recovery_codes_regenerate(user=bob)
    assert len(new) == 10 and not set(old) & set(new)
    assert StaticDevice.objects.filter(user=bob).count() == 1


def test_disable_is_refused_where_any_organization_requires_it(
    bob: Any, org: Any, other_org: Any
) -> None:
    _enable(bob)
    Membership.objects.create(organization=other_org, user=bob, role="counselor")
    other_org.require_second_factor = "everyone"
    other_org.save()
    with pytest.raises(ValidationError, match="Hilltop Clinic requires"):
        sf.second_factor_disable(user=bob)
    Membership.objects.filter(organization=other_org, user=bob).update(is_active=False)
    sf.second_factor_disable(user=bob)  # a deactivated membership asks nothing
    assert not sf.has_confirmed_device(bob.pk)
    assert AuditEvent.objects.filter(action="second_factor.disabled", organization=org).count() == 1


def test_reset_is_for_admins_of_the_persons_organization(
    alice: Any, bob: Any, charlie: Any, org: Any, other_org: Any
) -> None:
    _enable(bob)
    membership = _member(bob, org)
    with pytest.raises(PermissionDenied):  # a counselor
        sf.second_factor_reset_by_admin(
            organization=org, membership_id=membership.pk, actor_id=bob.pk
        )
    with pytest.raises(PermissionDenied):  # an admin, but of another organization
        sf.second_factor_reset_by_admin(
            organization=org, membership_id=membership.pk, actor_id=charlie.pk
        )
    with pytest.raises(Membership.DoesNotExist):  # his organization, not bob's
        sf.second_factor_reset_by_admin(
            organization=other_org, membership_id=membership.pk, actor_id=charlie.pk
        )
    assert sf.has_confirmed_device(bob.pk)
    epoch = User.objects.get(pk=bob.pk).session_epoch

    sf.second_factor_reset_by_admin(
        organization=org, membership_id=membership.pk, actor_id=alice.pk
    )
    assert not sf.has_confirmed_device(bob.pk)
    assert User.objects.get(pk=bob.pk).session_epoch == epoch + 1
    event = AuditEvent.objects.get(action="second_factor.reset")
    assert (event.organization_id, event.actor_id, event.object_type) == (
        org.pk,
        alice.pk,
        "membership",
    )


def test_the_rule_changes_only_to_known_values_and_is_audited(org: Any, alice: Any) -> None:
    with pytest.raises(ValidationError):
        sf.organization_set_second_factor_rule(organization=org, actor_id=alice.pk, rule="always")
    sf.organization_set_second_factor_rule(organization=org, actor_id=alice.pk, rule="managers")
    sf.organization_set_second_factor_rule(organization=org, actor_id=alice.pk, rule="managers")
    org.refresh_from_db()
    assert org.require_second_factor == "managers"
    assert AuditEvent.objects.filter(action="organization.second_factor_rule").count() == 1


# --- what the console socket asks --------------------------------------------------------------


def _session(**values: Any) -> SessionStore:
    session = SessionStore()
    for key, value in values.items():
        session[key] = value
    session.save()
    return SessionStore(session.session_key)


def test_satisfied_without_a_device_unless_required(bob: Any, org: Any) -> None:
    assert sf.second_factor_satisfied(bob, _session()) is True
    org.require_second_factor = "everyone"
    org.save()
    assert sf.second_factor_satisfied(bob, _session()) is False


def test_satisfied_only_when_the_session_passed_the_device(bob: Any, alice: Any) -> None:
    device, _ = _enable(bob)
    assert sf.second_factor_satisfied(bob, _session()) is False
    passed = {DEVICE_ID_SESSION_KEY: device.persistent_id}
    assert sf.second_factor_satisfied(bob, _session(**passed)) is True
    alices, _ = _enable(alice)  # someone else's device in the session does not count
    assert (
        sf.second_factor_satisfied(bob, _session(**{DEVICE_ID_SESSION_KEY: alices.persistent_id}))
        is False
    )
    TOTPDevice.objects.filter(pk=device.pk).update(confirmed=False)
    assert sf.second_factor_satisfied(bob, _session(**passed)) is False


def test_satisfied_follows_the_organization_of_the_session(
    bob: Any, org: Any, other_org: Any
) -> None:
    Membership.objects.create(organization=other_org, user=bob, role="counselor")
    other_org.require_second_factor = "everyone"
    other_org.save()
    assert sf.second_factor_satisfied(bob, _session()) is True
    assert (
        sf.second_factor_satisfied(bob, _session(**{ORGANIZATION_SESSION_KEY: other_org.pk}))
        is False
    )

"""Alert settings: an inbox's policy (admins) and each person's alert phone, permission and
preference (themselves). The permission is a consent-ledger entry for that phone, like any
other consent, so texting STOP to the alert number revokes it.

A phone typed on either page gets alerts only once it is confirmed with a code texted to
it (``confirmation``): before that it has received one code and nothing else, and the
ledger is not touched for it (the person typing it has not shown the phone is theirs)."""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from openline.alerts.confirmation import (
    CodeRefused,
    pending_code,
    phone_code_check,
    phone_code_send,
    phone_code_use,
    phone_codes_close,
)
from openline.alerts.models import ATTEMPTS, REMINDER_MINUTES, AlertPolicy, AlertProfile
from openline.alerts.sweep import permits_sms
from openline.contacts.models import ConsentSource
from openline.contacts.phones import InvalidPhoneNumber, normalize_phone
from openline.contacts.services.consent import (
    ConsentError,
    consent_record_opt_out,
    consent_record_own_opt_in,
)
from openline.core.services import audit_record
from openline.providers.models import Number

PERMIT_TEXT = "I permit {org} to send alert texts about waiting conversations to this phone."
CONFIRMED_TEXT = " (their own phone, confirmed with a code texted to it)"


def policy_for(number: Number) -> AlertPolicy:
    """The inbox's policy (alerts off until an admin turns them on)."""
    policy = AlertPolicy.objects.filter(number=number).first()
    return policy or AlertPolicy(organization_id=number.organization_id, number=number)


# The longest a high-risk conversation may wait before supervisors are texted.
MAX_HIGH_RISK_MINUTES = 120


def alert_policy_set(
    *,
    number: Number,
    actor_id: int | None,
    enabled: bool,
    reminder_minutes: int,
    reminders: int,
    escalate_after: int,
    after_hours_phone: str = "",
    high_risk_minutes: int | None = None,
) -> AlertPolicy:
    """Save the inbox's policy. A new after-hours phone is texted a code and gets notices
    once someone types that code on the alerts page (CodeRefused, and nothing saved, if
    the code cannot be sent)."""
    if reminder_minutes not in REMINDER_MINUTES:
        raise ValidationError("choose a reminder frequency from the list")
    if reminders not in ATTEMPTS or escalate_after not in ATTEMPTS:
        raise ValidationError("reminders and escalation take never or 1 to 5")
    if escalate_after and not reminder_minutes:
        raise ValidationError(
            "escalation comes one reminder interval after the last unanswered attempt: "
            "choose a reminder frequency"
        )
    if high_risk_minutes is not None and not 0 <= high_risk_minutes <= MAX_HIGH_RISK_MINUTES:
        raise ValidationError(f"high-risk alerts take 0 (never) to {MAX_HIGH_RISK_MINUTES} minutes")
    phone = _phone(after_hours_phone) if after_hours_phone.strip() else ""
    with transaction.atomic():
        policy = _locked_policy(number)
        if phone != policy.after_hours_phone:
            policy.after_hours_confirmed_phone, policy.after_hours_confirmed_at = "", None
            phone_codes_close(policy)
        policy.enabled = enabled
        policy.reminder_minutes = reminder_minutes
        policy.reminders = reminders
        policy.escalate_after = escalate_after
        if high_risk_minutes is not None:  # None: unchanged
            policy.high_risk_minutes = high_risk_minutes
        policy.after_hours_phone = phone
        policy.updated_by_id = actor_id
        policy.save()
        if phone and not policy.after_hours_confirmed and pending_code(policy) is None:
            phone_code_send(
                owner=policy, organization_name=number.organization.name, actor_id=actor_id
            )
        audit_record(
            organization_id=number.organization_id,
            actor_id=actor_id,
            action="alerts.policy",
            object_type="number",
            object_id=number.pk,
        )
    return policy


def _locked_policy(number: Number) -> AlertPolicy:
    policy = AlertPolicy.objects.select_for_update().filter(number=number).first()
    return policy or AlertPolicy(organization_id=number.organization_id, number=number)


def alert_policy_code_resend(*, number: Number, actor_id: int) -> None:
    """Text a new code to the inbox's unconfirmed after-hours phone."""
    with transaction.atomic():
        policy = _locked_policy(number)
        if not policy.after_hours_phone:
            raise CodeRefused("Save an after-hours phone first: the code goes to it.")
        if policy.after_hours_confirmed:
            raise CodeRefused("The after-hours phone is already confirmed.")
        phone_code_send(owner=policy, organization_name=number.organization.name, actor_id=actor_id)


def alert_policy_confirm(*, number: Number, actor_id: int, code: str) -> None:
    """Take the code texted to the after-hours phone: from now on notices go to it."""
    policy = policy_for(number)
    checked = phone_code_check(owner=policy, code=code)
    now = timezone.now()
    with transaction.atomic():
        if not phone_code_use(checked, now):
            raise CodeRefused("That code was just used. Reload the page.")
        AlertPolicy.objects.filter(pk=policy.pk, after_hours_phone=checked.phone).update(
            after_hours_confirmed_phone=checked.phone, after_hours_confirmed_at=now
        )
        _audit_confirmed(policy.organization_id, actor_id, "policy", policy.pk)


def _audit_confirmed(organization_id: int, actor_id: int, kind: str, pk: int) -> None:
    audit_record(
        organization_id=organization_id,
        actor_id=actor_id,
        action="alerts.phone_confirmed",
        object_type=kind,
        object_id=pk,
    )


def _phone(raw: str) -> str:
    try:
        return normalize_phone(raw)
    except InvalidPhoneNumber as exc:
        raise ValidationError(f"“{raw[:30]}” is not a phone number: {exc}") from None


def profile_for(*, organization_id: int, user_id: int) -> AlertProfile:
    profile = AlertProfile.objects.filter(organization_id=organization_id, user_id=user_id).first()
    return profile or AlertProfile(organization_id=organization_id, user_id=user_id)


def _locked_profile(*, organization_id: int, user_id: int) -> AlertProfile:
    profiles = AlertProfile.objects.select_for_update()
    profile = profiles.filter(organization_id=organization_id, user_id=user_id).first()
    return profile or AlertProfile(organization_id=organization_id, user_id=user_id)


def permit_shown(profile: AlertProfile) -> bool:
    """What "I permit SMS to this phone" shows: the ledger for a confirmed phone; for one
    waiting for its code, that they asked for it (the permission is recorded on confirming)."""
    if not profile.mobile:
        return False
    if profile.is_confirmed:
        return permits_sms(organization_id=profile.organization_id, phone=profile.mobile)
    return pending_code(profile) is not None


@dataclass(frozen=True, slots=True)
class ProfileSaved:
    profile: AlertProfile
    code_sent: bool


def alert_profile_set(
    *,
    organization_id: int,
    organization_name: str,
    user_id: int,
    mobile: str,
    permit: bool,
    new_conversation_sms: bool,
) -> ProfileSaved:
    """Save a person's alert phone and preference. A new phone is unconfirmed: with their
    permission it is texted a code (CodeRefused, and nothing saved, if it cannot be).
    For a confirmed phone, record their permission (or its withdrawal) in the consent
    ledger when it changes."""
    phone = _phone(mobile) if mobile.strip() else ""
    with transaction.atomic():
        profile = _locked_profile(organization_id=organization_id, user_id=user_id)
        if phone != profile.mobile:  # a new number proves nothing yet
            profile.confirmed_phone, profile.confirmed_at = "", None
            phone_codes_close(profile)
        profile.mobile = phone
        profile.new_conversation_sms = new_conversation_sms
        profile.save()
        code_sent = bool(phone) and _settle_permission(profile, organization_name, permit)
    return ProfileSaved(profile, code_sent)


def _settle_permission(profile: AlertProfile, organization_name: str, permit: bool) -> bool:
    """Apply "I permit SMS" to the saved phone; True when that texted it a code."""
    if not profile.is_confirmed:
        if not permit:
            phone_codes_close(profile)
            return False
        if pending_code(profile) is not None:
            return False  # already texted: they type it, or ask for a new one
        phone_code_send(
            owner=profile, organization_name=organization_name, actor_id=profile.user_id
        )
        return True
    permitted = permits_sms(organization_id=profile.organization_id, phone=profile.mobile)
    if permit and not permitted:
        _record_permission(profile, organization_name)
    elif not permit and permitted:
        consent_record_opt_out(
            organization_id=profile.organization_id,
            phone=profile.mobile,
            source=ConsentSource.STAFF,
            evidence="Withdrew permission for alert texts in their profile.",
            actor_id=profile.user_id,
        )
    return False


def _record_permission(profile: AlertProfile, organization_name: str) -> None:
    """The person's own opt-in for their own, confirmed phone. Not a staff opt-in for
    someone else (those need a supervisor): the code proved the phone is theirs. Like any
    opt-in it never undoes an opt-out they made by text."""
    try:
        consent_record_own_opt_in(
            organization_id=profile.organization_id,
            phone=profile.mobile,
            evidence=PERMIT_TEXT.format(org=organization_name) + CONFIRMED_TEXT,
            actor_id=profile.user_id,
        )
    except ConsentError as exc:
        raise ValidationError(str(exc)) from None
    audit_record(
        organization_id=profile.organization_id,
        actor_id=profile.user_id,
        action="alerts.permit",
        object_type="alertprofile",
        object_id=profile.pk,
    )


def alert_profile_code_resend(
    *, organization_id: int, organization_name: str, user_id: int
) -> None:
    """Text a new code to the person's unconfirmed phone (one they asked a code for)."""
    with transaction.atomic():
        profile = _locked_profile(organization_id=organization_id, user_id=user_id)
        if profile.is_confirmed:
            raise CodeRefused("Your number is already confirmed.")
        if not profile.mobile or pending_code(profile) is None:
            raise CodeRefused(
                "Enter your mobile number, tick “I permit SMS to this phone” and save: "
                "the code goes to the number you save."
            )
        phone_code_send(owner=profile, organization_name=organization_name, actor_id=user_id)


def alert_profile_confirm(
    *, organization_id: int, organization_name: str, user_id: int, code: str
) -> str:
    """Take the code texted to the person's phone: the phone is confirmed and their
    permission recorded. Returns a note when the permission could not be recorded."""
    profile = profile_for(organization_id=organization_id, user_id=user_id)
    checked = phone_code_check(owner=profile, code=code)
    now = timezone.now()
    with transaction.atomic():
        if not phone_code_use(checked, now):
            raise CodeRefused("That code was just used. Reload the page.")
        AlertProfile.objects.filter(pk=profile.pk, mobile=checked.phone).update(
            confirmed_phone=checked.phone, confirmed_at=now
        )
        _audit_confirmed(organization_id, user_id, "alertprofile", profile.pk)
        profile.refresh_from_db()
        if not profile.is_confirmed or permits_sms(
            organization_id=organization_id, phone=profile.mobile
        ):
            return ""
        try:
            _record_permission(profile, organization_name)
        except ValidationError as exc:
            return exc.messages[0]
    return ""


def alert_readiness(*, organization_id: int, user_id: int) -> list[str]:
    """What stops alerts from reaching this person; empty when they are configured."""
    profile = profile_for(organization_id=organization_id, user_id=user_id)
    missing = []
    if not profile.mobile:
        missing.append("add your mobile number")
    elif not profile.is_confirmed:
        missing.append(
            "confirm your number with the code we texted to it"
            if pending_code(profile) is not None
            else "tick “I permit SMS to this phone” and confirm your number with the code "
            "we text to it"
        )
    elif not permits_sms(organization_id=organization_id, phone=profile.mobile):
        missing.append("tick “I permit SMS to this phone” (or text START if you texted STOP)")
    if not profile.new_conversation_sms:
        missing.append("turn on “New conversation alert by SMS”")
    return missing

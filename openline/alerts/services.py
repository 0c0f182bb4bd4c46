"""Alert settings: an inbox's policy (admins) and each person's alert phone, permission and
preference (themselves). The permission is a consent-ledger entry for that phone, like any
other consent, so texting STOP to the alert number revokes it."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction

from openline.alerts.models import ATTEMPTS, REMINDER_MINUTES, AlertPolicy, AlertProfile
from openline.alerts.sweep import permits_sms
from openline.contacts.models import ConsentSource
from openline.contacts.phones import InvalidPhoneNumber, normalize_phone
from openline.contacts.services import consent_record_opt_in, consent_record_opt_out
from openline.core.services import audit_record
from openline.providers.models import Number

PERMIT_TEXT = "I permit {org} to send alert texts about waiting conversations to this phone."


def policy_for(number: Number) -> AlertPolicy:
    """The inbox's policy (alerts off until an admin turns them on)."""
    policy = AlertPolicy.objects.filter(number=number).first()
    return policy or AlertPolicy(organization_id=number.organization_id, number=number)


def alert_policy_set(
    *,
    number: Number,
    actor_id: int | None,
    enabled: bool,
    reminder_minutes: int,
    reminders: int,
    escalate_after: int,
    after_hours_phone: str = "",
) -> AlertPolicy:
    if reminder_minutes not in REMINDER_MINUTES:
        raise ValidationError("choose a reminder frequency from the list")
    if reminders not in ATTEMPTS or escalate_after not in ATTEMPTS:
        raise ValidationError("reminders and escalation take never or 1 to 5")
    if escalate_after and not reminder_minutes:
        raise ValidationError(
            "escalation comes one reminder interval after the last unanswered attempt: "
            "choose a reminder frequency"
        )
    phone = _phone(after_hours_phone) if after_hours_phone.strip() else ""
    policy = policy_for(number)
    policy.enabled = enabled
    policy.reminder_minutes = reminder_minutes
    policy.reminders = reminders
    policy.escalate_after = escalate_after
    policy.after_hours_phone = phone
    policy.updated_by_id = actor_id
    with transaction.atomic():
        policy.save()
        audit_record(
            organization_id=number.organization_id,
            actor_id=actor_id,
            action="alerts.policy",
            object_type="number",
            object_id=number.pk,
        )
    return policy


def _phone(raw: str) -> str:
    try:
        return normalize_phone(raw)
    except InvalidPhoneNumber as exc:
        raise ValidationError(f"“{raw[:30]}” is not a phone number: {exc}") from None


def profile_for(*, organization_id: int, user_id: int) -> AlertProfile:
    profile = AlertProfile.objects.filter(organization_id=organization_id, user_id=user_id).first()
    return profile or AlertProfile(organization_id=organization_id, user_id=user_id)


def alert_profile_set(
    *,
    organization_id: int,
    organization_name: str,
    user_id: int,
    mobile: str,
    permit: bool,
    new_conversation_sms: bool,
) -> AlertProfile:
    """Save a person's alert phone and preference; record their permission (or its
    withdrawal) for that phone in the consent ledger when it changes."""
    phone = _phone(mobile) if mobile.strip() else ""
    profile = profile_for(organization_id=organization_id, user_id=user_id)
    with transaction.atomic():
        profile.mobile = phone
        profile.new_conversation_sms = new_conversation_sms
        profile.save()
        if not phone:
            return profile
        permitted = permits_sms(organization_id=organization_id, phone=phone)
        if permit and not permitted:
            try:
                consent_record_opt_in(
                    organization_id=organization_id,
                    phone=phone,
                    source=ConsentSource.STAFF,
                    evidence=PERMIT_TEXT.format(org=organization_name),
                    actor_id=user_id,
                )
            except ValueError as exc:  # they texted STOP: only START from that phone undoes it
                raise ValidationError(str(exc)) from None
        elif not permit and permitted:
            consent_record_opt_out(
                organization_id=organization_id,
                phone=phone,
                source=ConsentSource.STAFF,
                evidence="Withdrew permission for alert texts in their profile.",
                actor_id=user_id,
            )
    return profile


def alert_readiness(*, organization_id: int, user_id: int) -> list[str]:
    """What stops alerts from reaching this person; empty when they are configured."""
    profile = profile_for(organization_id=organization_id, user_id=user_id)
    missing = []
    if not profile.mobile:
        missing.append("add your mobile number")
    elif not permits_sms(organization_id=organization_id, phone=profile.mobile):
        missing.append("tick “I permit SMS to this phone” (or text START if you texted STOP)")
    if not profile.new_conversation_sms:
        missing.append("turn on “New conversation alert by SMS”")
    return missing

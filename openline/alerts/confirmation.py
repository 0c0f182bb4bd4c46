"""Confirming an alert phone with a code texted to it, so that typing someone else's number
makes OpenLine send them one short code and nothing more.

A code is 6 digits, lives 10 minutes and takes 5 tries. Only a keyed hash of it is stored
(the text as sent stays in the phone's closed "Staff alerts" conversation, like every
alert). Codes are limited per phone (one a minute, five an hour, within an organization)
and per person asking (five an hour), so the feature cannot be used to spam a number.

The owner of a code is a person's alert profile (My alerts) or an inbox's alert policy
(its after-hours notice phone). Callers in ``services`` decide when to send one and what
confirming means for their owner."""

from __future__ import annotations

import math
import secrets
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db.models import F, QuerySet
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac

from openline.alerts.models import AlertPhoneCode, AlertPolicy, AlertProfile
from openline.core.services import audit_record
from openline.messaging.models import MessageKind

CODE_DIGITS = 6
CODE_TTL = timedelta(minutes=10)
MAX_ATTEMPTS = 5
RESEND_AFTER = timedelta(minutes=1)
MAX_PER_HOUR = 5
CODE_TEXT = (
    "OpenLine: your code to confirm alerts for {org} is {code}. It expires in 10 minutes. "
    "Didn't ask for it? Ignore this text."
)

Owner = AlertProfile | AlertPolicy
KEY_SALT = "openline.alerts.phone-code"


class CodeRefused(ValidationError):
    """A code could not be sent or was not accepted; ``status`` is the HTTP answer."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


def owner_phone(owner: Owner) -> str:
    return owner.mobile if isinstance(owner, AlertProfile) else owner.after_hours_phone


def _of(owner: Owner) -> dict[str, Owner]:
    return {"profile": owner} if isinstance(owner, AlertProfile) else {"policy": owner}


def _digest(phone: str, code: str) -> str:
    # Keyed with SECRET_KEY: a copy of the database alone does not give a 6-digit code away.
    digest = salted_hmac(KEY_SALT, f"{phone}:{code}", algorithm="sha256")
    return digest.hexdigest()


def pending_code(owner: Owner) -> AlertPhoneCode | None:
    """The latest code texted to the owner's current phone that is still open (it may
    have expired or run out of tries: then they ask for a new one)."""
    phone = owner_phone(owner)
    if not phone or owner.pk is None:
        return None
    codes = AlertPhoneCode.objects.filter(**_of(owner), phone=phone, closed_at__isnull=True)
    return codes.order_by("-created_at", "-pk").first()


def code_state(code: AlertPhoneCode | None) -> str:
    """ "waiting" (it can still be typed), "expired", "spent" (no tries left) or ""."""
    if code is None:
        return ""
    if code.attempts >= MAX_ATTEMPTS:
        return "spent"
    return "expired" if code.expires_at <= timezone.now() else "waiting"


def phone_codes_close(owner: Owner, now: datetime | None = None) -> None:
    """Withdraw the owner's open codes (the number changed, permission was withdrawn, or a
    newer code replaces them)."""
    if owner.pk is not None:
        AlertPhoneCode.objects.filter(**_of(owner), closed_at__isnull=True).update(
            closed_at=now or timezone.now()
        )


def phone_code_send(*, owner: Owner, organization_name: str, actor_id: int | None) -> None:
    """Text a new code to the owner's phone (saved), replacing any open one. Call inside
    the caller's transaction, holding the owner's row: a refusal (a limit, an opted-out
    phone) raises CodeRefused and the caller rolls back what it saved."""
    from openline.messaging.services.outbound import SendRefused, message_send

    phone, now = owner_phone(owner), timezone.now()
    _check_limits(owner.organization_id, phone, actor_id, now)
    code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
    phone_codes_close(owner, now)
    AlertPhoneCode.objects.create(
        organization_id=owner.organization_id,
        **_of(owner),
        requested_by_id=actor_id,
        phone=phone,
        code_hash=_digest(phone, code),
        expires_at=now + CODE_TTL,
    )
    try:
        # An alert, so it is kept in the phone's closed "Staff alerts" conversation (in no
        # queue) and an opted-out phone gets nothing. Sent from the inbox whose notices it
        # confirms, or the organization's first number for a person's alerts.
        message_send(
            organization_id=owner.organization_id,
            body=CODE_TEXT.format(org=organization_name, code=code),
            to=phone,
            number_id=owner.number_id if isinstance(owner, AlertPolicy) else None,
            kind=MessageKind.ALERT,
        )
    except SendRefused as exc:
        raise CodeRefused(f"No code was sent: {exc}.") from None
    audit_record(
        organization_id=owner.organization_id,
        actor_id=actor_id,
        action="alerts.phone_code_sent",
        object_type=type(owner).__name__.lower(),
        object_id=owner.pk,
    )


def _check_limits(organization_id: int, phone: str, actor_id: int | None, now: datetime) -> None:
    to_phone = AlertPhoneCode.objects.filter(organization_id=organization_id, phone=phone)
    if to_phone.filter(created_at__gt=now - RESEND_AFTER).exists():
        raise CodeRefused(
            "A code was texted to this number less than a minute ago. Wait a minute, then "
            "ask for a new one.",
            status=429,
        )
    hour_ago = now - timedelta(hours=1)
    asked = AlertPhoneCode.objects.filter(requested_by_id=actor_id, created_at__gt=hour_ago)
    if actor_id is not None and asked.count() >= MAX_PER_HOUR:
        raise CodeRefused(
            f"You have asked for {MAX_PER_HOUR} codes in the last hour. "
            f"Try again in {_minutes_until(asked, now)} minutes.",
            status=429,
        )
    texted = to_phone.filter(created_at__gt=hour_ago)
    if texted.count() >= MAX_PER_HOUR:
        raise CodeRefused(
            f"This number has been sent {MAX_PER_HOUR} codes in the last hour. "
            f"Try again in {_minutes_until(texted, now)} minutes.",
            status=429,
        )


def _minutes_until(codes: QuerySet[AlertPhoneCode], now: datetime) -> int:
    """Minutes until the oldest of these codes leaves the one-hour window."""
    oldest = codes.order_by("created_at").values_list("created_at", flat=True).first()
    assert oldest is not None
    return max(1, math.ceil((oldest + timedelta(hours=1) - now).total_seconds() / 60))


def phone_code_check(*, owner: Owner, code: str) -> AlertPhoneCode:
    """The owner's open code if ``code`` is it; otherwise raise CodeRefused. Each check
    spends one try, committed even when it fails: do not call it inside a transaction that
    a refusal rolls back."""
    pending = pending_code(owner)
    if pending is None:
        raise CodeRefused("No code is waiting for this number. Ask for a new code.")
    if pending.expires_at <= timezone.now():
        raise CodeRefused("That code has expired (codes last 10 minutes). Ask for a new one.")
    # Spend the try before comparing, so that guesses sent in parallel cannot exceed it.
    spent = AlertPhoneCode.objects.filter(
        pk=pending.pk, attempts__lt=MAX_ATTEMPTS, closed_at__isnull=True
    ).update(attempts=F("attempts") + 1)
    if not spent:
        raise CodeRefused("Too many wrong codes for this one. Ask for a new code.")
    if not constant_time_compare(_digest(pending.phone, code), pending.code_hash):
        left = MAX_ATTEMPTS - pending.attempts - 1
        more = f"{left} {'try' if left == 1 else 'tries'} left" if left else "ask for a new code"
        raise CodeRefused(f"That code is not right: check the text and type it again ({more}).")
    return pending


def phone_code_use(code: AlertPhoneCode, now: datetime) -> bool:
    """Close a checked code; False if a parallel request used it first."""
    return bool(
        AlertPhoneCode.objects.filter(pk=code.pk, closed_at__isnull=True).update(closed_at=now)
    )

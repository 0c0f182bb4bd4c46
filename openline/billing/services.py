"""Credits: added by an admin, reserved for messages on their way, settled when they finish.

Every change inserts ledger rows and updates the organization's ``CreditAccount`` in one
transaction. A reservation is a single conditional UPDATE (``available >= n``), so two
broadcasts queued at the same moment cannot both take the last credits, on PostgreSQL (the
row lock re-checks the condition) or on SQLite (one writer at a time)."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models import F, Sum, Value
from django.db.models.functions import Greatest
from django.utils import timezone

from openline.billing.models import (
    AVAILABLE_SIGN,
    CreditAccount,
    CreditEntry,
    CreditKind,
    CreditPurpose,
)
from openline.core.models import Membership, Role
from openline.core.services import audit_record

# A sanity cap on one purchase or allowance (a typo of three extra zeros is refused).
MAX_CREDITS_ADDED = 10_000_000
MAX_NOTE = 200


class CreditError(ValueError):
    """A request about credits that cannot be carried out; ``code`` says why."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


class InsufficientCredits(CreditError):
    def __init__(self, needed: int, available: int) -> None:
        super().__init__(
            f"{needed} credits needed, {available} available: {needed - available} short",
            "insufficient_credits",
        )
        self.needed, self.available, self.shortfall = needed, available, needed - available


@dataclass(frozen=True)
class Balance:
    available: int
    reserved: int
    owed: int = 0


def credit_balance(*, organization_id: int) -> Balance:
    account = CreditAccount.objects.filter(organization_id=organization_id).first()
    if account is None:
        return Balance(0, 0)
    return Balance(account.available, account.reserved, account.owed)


def credit_ledger_balance(*, organization_id: int) -> Balance:
    """The balance summed from the ledger itself (the account row is its cache)."""
    sums = dict(
        CreditEntry.objects.filter(organization_id=organization_id)
        .values_list("kind")
        .annotate(total=Sum("credits"))
        .values_list("kind", "total")
    )
    net = sum(AVAILABLE_SIGN[CreditKind(kind)] * total for kind, total in sums.items())
    reserved = sums.get(CreditKind.RESERVE, 0) - sums.get(CreditKind.RELEASE, 0)
    return Balance(max(net, 0), reserved, max(-net, 0))


def _account(organization_id: int) -> None:
    try:
        with transaction.atomic():
            CreditAccount.objects.get_or_create(organization_id=organization_id)
    except IntegrityError:  # made by a concurrent first use
        pass


def _entry(organization_id: int, kind: CreditKind, credits: int, **fields: object) -> CreditEntry:
    return CreditEntry.objects.create(
        organization_id=organization_id,
        kind=kind,
        credits=credits,
        created_at=timezone.now(),
        **fields,
    )


def credits_add(
    *, organization_id: int, credits: int, note: str, actor_id: int, kind: CreditKind
) -> CreditEntry:
    """An admin records a purchase or an allowance (amount, note, who). Audited."""
    if kind not in (CreditKind.PURCHASE, CreditKind.ALLOWANCE):
        raise CreditError("only a purchase or an allowance adds credits", "invalid")
    if isinstance(credits, bool) or not isinstance(credits, int) or credits <= 0:
        raise CreditError("credits must be a whole number above zero", "invalid")
    if credits > MAX_CREDITS_ADDED:
        raise CreditError(f"at most {MAX_CREDITS_ADDED:,} credits at a time", "invalid")
    note = note.strip()
    if not note:
        raise CreditError("say what the credits are (an invoice, the month)", "invalid")
    if len(note) > MAX_NOTE:
        raise CreditError(f"the note is at most {MAX_NOTE} characters", "invalid")
    if not Membership.objects.filter(
        organization_id=organization_id,
        user_id=actor_id,
        user__is_active=True,
        is_active=True,
        role=Role.ADMIN,
    ).exists():
        raise CreditError("only an admin can add credits", "forbidden")
    _account(organization_id)
    with transaction.atomic():
        entry = _entry(organization_id, kind, credits, note=note, actor_id=actor_id)
        _credit(organization_id, credits)
        audit_record(
            organization_id=organization_id,
            actor_id=actor_id,
            action=f"credits.{kind}",
            object_type="credit_entry",
            object_id=entry.pk,
        )
    return entry


def _credit(organization_id: int, credits: int) -> None:
    """Add ``credits``: what is owed is paid first, the rest becomes available."""
    CreditAccount.objects.filter(organization_id=organization_id).update(
        available=F("available") + Greatest(Value(credits) - F("owed"), Value(0)),
        owed=Greatest(F("owed") - Value(credits), Value(0)),
    )


def credits_debit_message(
    *, organization_id: int, message_id: int, credits: int, purpose: CreditPurpose
) -> CreditEntry | None:
    """Debit a text that is never held back for credits (a counselor's reply, an alert, an
    automatic answer: a crisis line does not stop answering when its bundle runs out).
    What the available credits do not cover is owed. Once per message; call it in the
    transaction that stores the message."""
    if credits <= 0:
        return None
    _account(organization_id)
    entry = _entry(
        organization_id, CreditKind.DEBIT, credits, purpose=purpose, message_id=message_id
    )
    # Both right-hand sides read the row as it was (SQL), so this moves exactly ``credits``.
    CreditAccount.objects.filter(organization_id=organization_id).update(
        available=Greatest(F("available") - Value(credits), Value(0)),
        owed=F("owed") + Greatest(Value(credits) - F("available"), Value(0)),
    )
    return entry


def credits_refund_message(*, organization_id: int, message_id: int) -> CreditEntry | None:
    """Give back what a message was debited: it failed before the carrier took it. Once;
    None when it was never debited (or is refunded already)."""
    debit = CreditEntry.objects.filter(
        organization_id=organization_id, message_id=message_id, kind=CreditKind.DEBIT
    ).first()
    if debit is None:
        return None
    try:
        with transaction.atomic():
            entry = _entry(
                organization_id,
                CreditKind.REFUND,
                debit.credits,
                purpose=debit.purpose,
                message_id=message_id,
            )
            _credit(organization_id, debit.credits)
    except IntegrityError:  # refunded already (a retry, another worker)
        return None
    return entry


def credits_reserve(
    *, organization_id: int, credits: int, purpose: CreditPurpose, note: str = ""
) -> CreditEntry:
    """Set ``credits`` aside, or raise InsufficientCredits (nothing changes)."""
    if credits <= 0:
        raise CreditError("a reservation is above zero credits", "invalid")
    _account(organization_id)
    with transaction.atomic():
        taken = CreditAccount.objects.filter(
            organization_id=organization_id, available__gte=credits
        ).update(available=F("available") - credits, reserved=F("reserved") + credits)
        if not taken:
            available = credit_balance(organization_id=organization_id).available
            raise InsufficientCredits(credits, available)
        return _entry(
            organization_id, CreditKind.RESERVE, credits, purpose=purpose, note=note[:MAX_NOTE]
        )


def credits_settle(*, reservation: CreditEntry, used: int) -> None:
    """The messages a reservation was for have finished and used ``used`` credits: release
    the reservation and debit what was used. Once only: settling again changes nothing."""
    if reservation.kind != CreditKind.RESERVE:
        raise CreditError("only a reservation can be settled", "invalid")
    if not 0 <= used <= reservation.credits:
        raise CreditError(f"used must be between 0 and {reservation.credits}", "invalid")
    org = reservation.organization_id
    try:
        with transaction.atomic():
            _entry(org, CreditKind.RELEASE, reservation.credits, settles=reservation)
            if used:
                _entry(
                    org, CreditKind.DEBIT, used, settles=reservation, purpose=reservation.purpose
                )
            CreditAccount.objects.filter(organization_id=org).update(
                available=F("available") + reservation.credits - used,
                reserved=F("reserved") - reservation.credits,
            )
    except IntegrityError:
        if CreditEntry.objects.filter(settles=reservation, kind=CreditKind.RELEASE).exists():
            return  # settled already (a retry, another worker)
        raise


# --- what a message costs --------------------------------------------------------------------


def credits_for_sms(*, phone: str, segments: int) -> int:
    """Credits for one text of ``segments`` segments to ``phone`` (E.164), at the rate of
    the number's country (settings.OPENLINE_CREDIT_RATES). A country without a rate raises
    CreditError: nothing is sent where the cost is unknown."""
    return _rate(phone, "sms") * segments


def credits_for_voice(*, phone: str, seconds: int) -> int:
    """Credits for one call: per started minute, at the rate of the number's country."""
    minutes = max(1, -(-seconds // 60)) if seconds > 0 else 0
    return _rate(phone, "voice") * minutes


def credit_rate(*, region: str, channel: str) -> int | None:
    """Credits per SMS segment or voice minute for a country (ISO code), None without one."""
    from django.conf import settings

    rate = settings.OPENLINE_CREDIT_RATES.get(region or "", {}).get(channel)
    return None if rate is None else int(rate)


def _rate(phone: str, channel: str) -> int:
    import phonenumbers

    region = phonenumbers.region_code_for_number(phonenumbers.parse(phone)) or ""
    rate = credit_rate(region=region, channel=channel)
    if rate is None:
        raise CreditError(f"no {channel} credit rate for country {region or 'unknown'}", "no_rate")
    return rate

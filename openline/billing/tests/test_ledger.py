"""The credit ledger: who may add credits, reservations that never overdraw (also when two
race), settling once, and a ledger nobody can edit."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction

from openline.billing.models import CreditAccount, CreditEntry, CreditKind, CreditPurpose
from openline.billing.services import (
    CreditError,
    InsufficientCredits,
    credit_balance,
    credit_ledger_balance,
    credits_add,
    credits_for_sms,
    credits_for_voice,
    credits_reserve,
    credits_settle,
)
from openline.core.models import AuditEvent


def _buy(org: Any, admin: Any, credits: int = 100) -> CreditEntry:
    return credits_add(
        organization_id=org.pk,
        credits=credits,
        note="invoice 2026-114",
        actor_id=admin.pk,
        kind=CreditKind.PURCHASE,
    )


def test_an_admin_adds_credits_with_a_note_and_it_is_audited(org: Any, alice: Any) -> None:
    entry = _buy(org, alice, 250)
    assert (entry.kind, entry.credits, entry.note, entry.actor_id) == (
        "purchase",
        250,
        "invoice 2026-114",
        alice.pk,
    )
    credits_add(
        organization_id=org.pk,
        credits=50,
        note="December allowance",
        actor_id=alice.pk,
        kind=CreditKind.ALLOWANCE,
    )
    assert credit_balance(organization_id=org.pk) == credit_ledger_balance(organization_id=org.pk)
    assert credit_balance(organization_id=org.pk).available == 300
    audit = AuditEvent.objects.filter(organization=org, object_type="credit_entry")
    assert sorted(audit.values_list("action", flat=True)) == [
        "credits.allowance",
        "credits.purchase",
    ]
    assert set(audit.values_list("actor_id", flat=True)) == {alice.pk}


@pytest.mark.parametrize("role", ["supervisor", "counselor", "staff"])
def test_only_an_admin_of_the_organization_adds_credits(org: Any, charlie: Any, role: str) -> None:
    from openline.core.services import user_create

    member = user_create(
        organization=org, email=f"{role}@example.org", role=role, password="a-long-pass-1"
    ).user
    for actor in (member, charlie):  # charlie is an admin of another organization
        with pytest.raises(CreditError) as refused:
            _buy(org, actor)
        assert refused.value.code == "forbidden"
    assert not CreditEntry.objects.exists()
    assert credit_balance(organization_id=org.pk).available == 0


@pytest.mark.parametrize(
    ("credits", "note", "message"),
    [
        (0, "x", "above zero"),
        (-5, "x", "above zero"),
        (True, "x", "above zero"),
        (10_000_001, "x", "at most 10,000,000"),
        (10, "   ", "say what the credits are"),
        (10, "n" * 201, "at most 200 characters"),
    ],
)
def test_bad_amounts_and_notes_are_refused_and_nothing_is_stored(
    org: Any, alice: Any, credits: Any, note: str, message: str
) -> None:
    with pytest.raises(CreditError, match=message):
        credits_add(
            organization_id=org.pk,
            credits=credits,
            note=note,
            actor_id=alice.pk,
            kind=CreditKind.PURCHASE,
        )
    assert not CreditEntry.objects.exists()
    assert not AuditEvent.objects.filter(object_type="credit_entry").exists()


def test_a_reservation_takes_credits_aside_and_one_too_big_changes_nothing(
    org: Any, alice: Any
) -> None:
    _buy(org, alice, 100)
    credits_reserve(
        organization_id=org.pk, credits=70, purpose=CreditPurpose.SMS, note="pool closed today"
    )
    assert credit_balance(organization_id=org.pk) == (
        b := credit_ledger_balance(organization_id=org.pk)
    )
    assert (b.available, b.reserved) == (30, 70)
    with pytest.raises(InsufficientCredits) as short:
        credits_reserve(organization_id=org.pk, credits=45, purpose=CreditPurpose.SMS)
    assert (short.value.needed, short.value.available, short.value.shortfall) == (45, 30, 15)
    assert str(short.value) == "45 credits needed, 30 available: 15 short"
    assert CreditEntry.objects.filter(kind=CreditKind.RESERVE).count() == 1
    assert credit_balance(organization_id=org.pk).available == 30


def test_settling_releases_the_reservation_and_debits_what_was_used_once(
    org: Any, alice: Any
) -> None:
    _buy(org, alice, 100)
    reservation = credits_reserve(organization_id=org.pk, credits=60, purpose=CreditPurpose.SMS)
    credits_settle(reservation=reservation, used=42)  # 18 messages failed before the carrier
    after = credit_balance(organization_id=org.pk)
    assert (after.available, after.reserved) == (58, 0)
    credits_settle(reservation=reservation, used=42)  # a retry: nothing more
    assert (
        credit_balance(organization_id=org.pk)
        == after
        == credit_ledger_balance(organization_id=org.pk)
    )
    assert list(CreditEntry.objects.values_list("kind", "credits", "purpose")) == [
        ("purchase", 100, ""),
        ("reserve", 60, "sms"),
        ("release", 60, ""),
        ("debit", 42, "sms"),  # spent on what the reservation was for
    ]
    with pytest.raises(CreditError, match="between 0 and 5"):
        credits_settle(
            reservation=credits_reserve(
                organization_id=org.pk, credits=5, purpose=CreditPurpose.SMS
            ),
            used=61,
        )


def test_one_organizations_credits_are_its_own(
    org: Any, other_org: Any, alice: Any, charlie: Any
) -> None:
    _buy(org, alice, 100)
    with pytest.raises(InsufficientCredits):
        credits_reserve(organization_id=other_org.pk, credits=1, purpose=CreditPurpose.SMS)
    credits_add(
        organization_id=other_org.pk,
        credits=5,
        note="trial",
        actor_id=charlie.pk,
        kind=CreditKind.ALLOWANCE,
    )
    assert credit_balance(organization_id=org.pk).available == 100
    assert credit_balance(organization_id=other_org.pk).available == 5


def test_the_ledger_cannot_be_edited_or_deleted(org: Any, alice: Any) -> None:
    entry = _buy(org, alice)
    entry.credits = 1_000_000
    with pytest.raises(ValueError, match="append-only"):
        entry.save()
    with pytest.raises(ValueError, match="append-only"):
        entry.delete()
    assert CreditEntry.objects.get().credits == 100


def test_the_database_refuses_a_negative_balance_whatever_the_code_does(
    org: Any, alice: Any
) -> None:
    _buy(org, alice, 10)
    with pytest.raises(IntegrityError), transaction.atomic():
        CreditAccount.objects.filter(organization=org).update(available=-1)
    assert credit_balance(organization_id=org.pk).available == 10


@pytest.mark.django_db(transaction=True)
def test_two_broadcasts_racing_for_the_last_credits_cannot_both_have_them(
    org: Any, alice: Any
) -> None:
    """Two senders reserve 60 of 100 credits at the same moment, each on its own database
    connection: exactly one gets them, and the balance never goes below zero."""
    _buy(org, alice, 100)
    start = threading.Barrier(2)
    outcomes: list[str] = []

    def reserve() -> None:
        try:
            start.wait(5)
            credits_reserve(organization_id=org.pk, credits=60, purpose=CreditPurpose.SMS)
            outcomes.append("reserved")
        except InsufficientCredits:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=reserve) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(outcomes) == ["refused", "reserved"]
    balance = credit_balance(organization_id=org.pk)
    assert (balance.available, balance.reserved) == (40, 60)
    assert balance == credit_ledger_balance(organization_id=org.pk)


@pytest.mark.parametrize(
    ("phone", "segments", "credits"),
    [("+12025550111", 1, 1), ("+12025550111", 3, 3), ("+14165550123", 2, 2)],
)
def test_an_sms_costs_the_countrys_rate_per_segment(
    phone: str, segments: int, credits: int
) -> None:
    assert credits_for_sms(phone=phone, segments=segments) == credits


@pytest.mark.parametrize(("seconds", "credits"), [(0, 0), (1, 1), (60, 1), (61, 2), (600, 10)])
def test_a_call_costs_the_rate_per_started_minute(seconds: int, credits: int) -> None:
    assert credits_for_voice(phone="+12025550111", seconds=seconds) == credits


def test_rates_are_settings_and_a_country_without_one_is_refused(settings: Any) -> None:
    with pytest.raises(CreditError, match="no sms credit rate for country GB") as refused:
        credits_for_sms(phone="+447400123456", segments=1)
    assert refused.value.code == "no_rate"
    settings.OPENLINE_CREDIT_RATES = {"GB": {"sms": 3, "voice": 4}}
    assert credits_for_sms(phone="+447400123456", segments=2) == 6
    assert credits_for_voice(phone="+447400123456", seconds=90) == 8

"""The Credits page (/credits/): admins add credits and see the ledger; supervisors read it;
counselors and other organizations get nothing."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from openline.billing.models import CreditEntry, CreditKind, CreditPurpose
from openline.billing.services import credits_add, credits_reserve, credits_settle
from openline.core.models import AuditEvent

URL = "/credits/"


def _signed_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _member(org: Any, role: str) -> Any:
    from openline.core.services import user_create

    return user_create(
        organization=org, email=f"{role}@example.org", role=role, password="a-long-pass-1"
    ).user


def test_an_admin_adds_credits_from_the_page(org: Any, alice: Any) -> None:
    client = _signed_in(alice)
    page = client.get(URL)
    assert page.status_code == 200
    assert b"No credits yet." in page.content
    assert b"{#" not in page.content and b"{% comment" not in page.content  # no template notes
    answer = client.post(URL, {"kind": "purchase", "credits": "500", "note": "invoice 9"})
    assert answer.status_code == 302
    entry = CreditEntry.objects.get()
    assert (entry.organization_id, entry.kind, entry.credits, entry.actor_id) == (
        org.pk,
        "purchase",
        500,
        alice.pk,
    )
    assert AuditEvent.objects.filter(action="credits.purchase", actor=alice).count() == 1
    page = client.get(URL)
    assert b'data-testid="available">500<' in page.content
    assert b"500 credits added." in page.content
    assert b"invoice 9" in page.content


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"kind": "purchase", "credits": "0", "note": "x"}, b"greater than or equal to 1"),
        ({"kind": "purchase", "credits": "ten", "note": "x"}, b"Enter a whole number."),
        ({"kind": "debit", "credits": "10", "note": "x"}, b"Select a valid choice."),
        ({"kind": "purchase", "credits": "10", "note": ""}, b"This field is required."),
        ({"kind": "purchase", "credits": "10", "note": "   "}, b"This field is required."),
        ({"kind": "purchase", "credits": "99999999999", "note": "x"}, b"less than or equal to"),
    ],
)
def test_bad_input_gets_the_form_back_with_the_error_and_stores_nothing(
    alice: Any, data: dict[str, str], error: bytes
) -> None:
    answer = _signed_in(alice).post(URL, data)
    assert answer.status_code == 422
    assert error in answer.content
    assert not CreditEntry.objects.exists()


def test_a_supervisor_reads_the_page_but_cannot_add(org: Any, alice: Any) -> None:
    credits_add(
        organization_id=org.pk, credits=80, note="trial", actor_id=alice.pk,
        kind=CreditKind.ALLOWANCE,
    )  # fmt: skip
    client = _signed_in(_member(org, "supervisor"))
    page = client.get(URL)
    assert page.status_code == 200
    assert b'data-testid="available">80<' in page.content
    assert b"Add credits</h2>" not in page.content
    assert client.post(URL, {"kind": "purchase", "credits": "5", "note": "x"}).status_code == 403
    assert CreditEntry.objects.count() == 1


@pytest.mark.parametrize("role", ["counselor", "staff"])
def test_counselors_and_staff_get_nothing(org: Any, role: str) -> None:
    client = _signed_in(_member(org, role))
    assert client.get(URL).status_code == 403
    assert client.post(URL, {"kind": "purchase", "credits": "5", "note": "x"}).status_code == 403
    assert not CreditEntry.objects.exists()


def test_another_organizations_admin_sees_and_adds_only_their_own(
    org: Any, other_org: Any, alice: Any, charlie: Any
) -> None:
    credits_add(
        organization_id=org.pk, credits=321, note="riverside invoice", actor_id=alice.pk,
        kind=CreditKind.PURCHASE,
    )  # fmt: skip
    client = _signed_in(charlie)
    page = client.get(URL)
    assert b"riverside invoice" not in page.content
    assert b'data-testid="available">0<' in page.content
    client.post(URL, {"kind": "purchase", "credits": "7", "note": "hilltop"})
    assert CreditEntry.objects.get(note="hilltop").organization_id == other_org.pk
    assert CreditEntry.objects.filter(organization=org).count() == 1


def test_signed_out_goes_to_sign_in(db: None) -> None:
    answer = Client().get(URL)
    assert answer.status_code == 302
    assert answer["Location"].startswith("/login/")


def test_spending_shows_by_day_and_purpose_with_what_came_back(org: Any, alice: Any) -> None:
    credits_add(
        organization_id=org.pk, credits=100, note="invoice", actor_id=alice.pk,
        kind=CreditKind.PURCHASE,
    )  # fmt: skip
    sms = credits_reserve(organization_id=org.pk, credits=40, purpose=CreditPurpose.SMS)
    credits_settle(reservation=sms, used=30)
    voice = credits_reserve(organization_id=org.pk, credits=10, purpose=CreditPurpose.VOICE)
    credits_settle(reservation=voice, used=4)
    page = _signed_in(alice).get(URL)
    assert b'data-testid="available">66<' in page.content
    assert b'data-testid="reserved">0<' in page.content
    assert b'<meter min="0" max="34" value="34"' in page.content
    assert b"SMS 30" in page.content and b"Voice 4" in page.content
    assert "−40".encode() in page.content  # the reservation, in the ledger
    # The chart: today's column stacked by purpose, to the day's total (34: the full height)
    html = page.content.decode()
    assert '<rect class="spend-sms" x="580.0" y="18.82"' in html  # 160 - 160 * 30/34
    assert '<rect class="spend-voice" x="580.0" y="0.0"' in html
    assert html.count("<rect ") == 2, html  # the other 29 days spent nothing
    assert '<div class="spend-voice"><dt>Voice</dt><dd>4</dd></div>' in html


def test_the_chart_counts_each_purpose_over_the_month_and_leaves_out_none(org: Any) -> None:
    from datetime import date

    from openline.billing.selectors import UsageDay, credit_usage_chart

    today = date.today()
    chart = credit_usage_chart(
        usage=[
            UsageDay(today, {"SMS": 3, "Alerts": 2}, 5),
            UsageDay(date.fromordinal(today.toordinal() - 29), {"SMS": 10}, 10),
            UsageDay(date.fromordinal(today.toordinal() - 40), {"SMS": 99}, 99),  # too old
        ],
        time_zone="UTC",
    )
    assert len(chart.columns) == 30 and chart.peak == 10  # of these 30 days only
    assert [c.total for c in chart.columns if c.total] == [10, 5]
    assert dict((label, n) for _, label, n in chart.totals) == {"SMS": 13, "Alerts": 2}


def test_the_page_says_what_is_owed_when_replies_went_beyond_the_balance(
    org: Any, alice: Any
) -> None:
    from openline.billing.services import credits_debit_message

    credits_debit_message(
        organization_id=org.pk, message_id=41, credits=3, purpose=CreditPurpose.ALERT
    )
    page = _signed_in(alice).get(URL).content.decode()
    assert 'data-testid="owed">3<' in page and "paid first from the next credits" in page

"""GET /api/v1/credits: the token's organization's balance, nobody else's."""

from __future__ import annotations

from typing import Any

from openline.api.tests.conftest import ApiClient
from openline.billing.models import CreditKind, CreditPurpose
from openline.billing.services import credits_add, credits_reserve


def test_the_balance_is_the_tokens_organizations_own(
    api: ApiClient, other_api: ApiClient, org: Any, alice: Any
) -> None:
    credits_add(
        organization_id=org.pk, credits=120, note="invoice 7", actor_id=alice.pk,
        kind=CreditKind.PURCHASE,
    )  # fmt: skip
    credits_reserve(organization_id=org.pk, credits=20, purpose=CreditPurpose.SMS)
    response = api.get("/credits")
    assert response.status_code == 200
    assert response.json() == {"available": 100, "reserved": 20, "owed": 0}
    assert other_api.get("/credits").json() == {"available": 0, "reserved": 0, "owed": 0}


def test_no_token_no_balance(org: Any) -> None:
    response = ApiClient(None).get("/credits")
    assert response.status_code == 401
    assert "available" not in response.json()

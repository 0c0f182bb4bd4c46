"""The API tokens page (admins): create with a name and scope (the secret shown once),
list, revoke with a confirmation."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from openline.core.models import ApiToken, AuditEvent
from openline.core.services import api_token_create

TOKENS = reverse("audit:tokens")


def _revoke_url(token: ApiToken) -> str:
    return reverse("audit:token_revoke", args=[token.pk])


def _api_get(secret: str) -> int:
    response = Client().get("/api/v1/conversations", HTTP_AUTHORIZATION=f"Bearer {secret}")
    return int(response.status_code)


def test_an_admin_creates_a_read_only_token_and_sees_its_secret_once(
    org: Any, alice: Any, alice_client: Client
) -> None:
    created = alice_client.post(TOKENS, {"name": "  Dashboard  ", "scope": "read"})
    assert created.status_code == 200
    assert created["Cache-Control"] == "no-store"
    html = created.content.decode()
    secret = re.search(r"data-token-secret>(olk_[\w-]+)<", html)
    assert secret, html
    token = ApiToken.objects.get(organization=org)
    assert (token.name, token.scope, token.created_by_id) == ("Dashboard", "read", alice.pk)
    assert token.token_hash == hashlib.sha256(secret.group(1).encode()).hexdigest()
    assert secret.group(1) not in token.token_hash
    assert "shown only this once" in html
    event = AuditEvent.objects.get(action="api_token.created")
    assert (event.actor_id, event.object_id) == (alice.pk, str(token.pk))
    assert event.detail == "Dashboard (read only)"
    assert _api_get(secret.group(1)) == 200

    listing = alice_client.get(TOKENS).content.decode()
    assert secret.group(1) not in listing
    row = listing.split(f'data-token="{token.pk}"')[1].split("</tr>")[0]
    assert "Dashboard" in row and token.prefix in row and "Read only" in row
    assert "alice@example.org" in row and "Revoke" in row
    assert "Never" not in row  # it was just used


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"name": "", "scope": "read"}, "name", "Give the token a name"),
        ({"name": "   ", "scope": "write"}, "name", "Give the token a name"),
        ({"name": "x" * 101, "scope": "write"}, "name", "under 100 characters"),
        ({"name": "CRM"}, "scope", "Choose what the token may do"),
        ({"name": "CRM", "scope": "admin"}, "scope", "Select a valid choice"),
    ],
)
def test_bad_token_forms_are_explained_and_make_nothing(
    alice_client: Client, data: dict, field: str, message: str
) -> None:
    response = alice_client.post(TOKENS, data)
    assert response.status_code == 422
    html = response.content.decode()
    assert message in html.split(f'id="id_{field}-error">')[1].split("</p>")[0]
    assert not ApiToken.objects.exists()


def test_revoking_asks_first_then_refuses_the_token_and_is_audited(
    org: Any, alice: Any, alice_client: Client
) -> None:
    token, secret = api_token_create(organization=org, name="Old CRM")
    confirm = alice_client.get(_revoke_url(token))
    assert confirm.status_code == 200 and "cannot be undone" in confirm.content.decode()
    token.refresh_from_db()
    assert token.revoked_at is None  # a GET changes nothing

    done = alice_client.post(_revoke_url(token), follow=True)
    assert done.redirect_chain == [(TOKENS, 302)]
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert _api_get(secret) == 401
    row = done.content.decode().split(f'data-token="{token.pk}"')[1].split("</tr>")[0]
    assert "Revoked" in row and "Revoke…" not in row
    alice_client.post(_revoke_url(token))  # again: nothing more happens
    events = AuditEvent.objects.filter(action="api_token.revoked")
    assert list(events.values_list("actor_id", "object_id")) == [(alice.pk, str(token.pk))]


def test_supervisors_and_counselors_cannot_see_make_or_revoke_tokens(
    org: Any, sue_client: Client, bob_client: Client
) -> None:
    token, secret = api_token_create(organization=org, name="CRM")
    for client in (sue_client, bob_client):
        assert client.get(TOKENS).status_code == 403
        assert client.post(TOKENS, {"name": "mine", "scope": "write"}).status_code == 403
        assert client.get(_revoke_url(token)).status_code == 403
        assert client.post(_revoke_url(token)).status_code == 403
    assert list(ApiToken.objects.values_list("name", "revoked_at")) == [("CRM", None)]
    assert _api_get(secret) == 200


def test_another_organizations_admin_cannot_see_or_revoke_these_tokens(
    org: Any, charlie_client: Client
) -> None:
    token, secret = api_token_create(organization=org, name="Riverside CRM")
    assert "Riverside CRM" not in charlie_client.get(TOKENS).content.decode()
    assert charlie_client.get(_revoke_url(token)).status_code == 404
    assert charlie_client.post(_revoke_url(token)).status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None and _api_get(secret) == 200
    assert not AuditEvent.objects.filter(action="api_token.revoked").exists()
    missing = reverse("audit:token_revoke", args=[999999])
    assert charlie_client.post(missing).status_code == 404


def test_the_log_shows_token_events(org: Any, alice_client: Client) -> None:
    alice_client.post(TOKENS, {"name": "Sync", "scope": "write"})
    html = alice_client.get(reverse("audit:log"), {"action": "area:tokens"}).content.decode()
    assert "Created an API token" in html and "Sync (read and write)" in html

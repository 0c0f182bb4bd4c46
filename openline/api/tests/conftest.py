"""API test helpers: a JSON client per organization token."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.http import HttpResponse
from django.test import Client

from openline.core.services import api_token_create

PERSON = "+12025550111"
SECOND_PERSON = "+12025550122"


class ApiClient:
    """Django's test client speaking JSON to /api/v1/ with one bearer token."""

    def __init__(self, secret: str | None) -> None:
        self.client = Client()
        self.headers = {"HTTP_AUTHORIZATION": f"Bearer {secret}"} if secret else {}

    def get(self, path: str, **params: Any) -> HttpResponse:
        return self.client.get(f"/api/v1{path}", params, **self.headers)

    def post(self, path: str, data: Any = None, *, raw: bytes | None = None) -> HttpResponse:
        body = raw if raw is not None else json.dumps(data)
        return self.client.post(
            f"/api/v1{path}", body, content_type="application/json", **self.headers
        )

    def patch(self, path: str, data: Any) -> HttpResponse:
        return self.client.patch(
            f"/api/v1{path}", json.dumps(data), content_type="application/json", **self.headers
        )


@pytest.fixture
def api(org: Any) -> ApiClient:
    """Authenticated as alice's organization (org)."""
    _, secret = api_token_create(organization=org, name="test")
    return ApiClient(secret)


@pytest.fixture
def other_api(other_org: Any) -> ApiClient:
    """Authenticated as charlie's organization (other_org): must never see org's data."""
    _, secret = api_token_create(organization=other_org, name="test")
    return ApiClient(secret)

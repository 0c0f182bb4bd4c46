"""Bearer-token authentication: every API request acts for the token's organization."""

from __future__ import annotations

from django.http import HttpRequest
from ninja.security import HttpBearer

from openline.core.models import ApiToken
from openline.core.services import api_token_authenticate


class OrganizationToken(HttpBearer):
    """``Authorization: Bearer olk_...``. A missing or unknown token makes ninja answer 401."""

    def authenticate(self, request: HttpRequest, token: str) -> ApiToken | None:
        return api_token_authenticate(token.strip())


def organization_id(request: HttpRequest) -> int:
    """The organization every query of this request is scoped to."""
    token: ApiToken = request.auth  # type: ignore[attr-defined]
    return token.organization_id

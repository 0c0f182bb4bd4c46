"""Bearer-token authentication: every API request acts for the token's organization."""

from __future__ import annotations

from django.http import HttpRequest
from ninja.security import HttpBearer

from openline.api.errors import ApiError
from openline.core.models import ApiToken, TokenScope
from openline.core.services import api_token_authenticate

READING = frozenset({"GET", "HEAD", "OPTIONS"})


class OrganizationToken(HttpBearer):
    """``Authorization: Bearer olk_...``. A missing, unknown or revoked token makes ninja
    answer 401; a read-only token may only read (403 for anything else)."""

    def authenticate(self, request: HttpRequest, token: str) -> ApiToken | None:
        found = api_token_authenticate(token.strip())
        if found is not None and found.scope != TokenScope.WRITE and request.method not in READING:
            raise ApiError(403, "read_only", "this token is read-only")
        return found


def organization_id(request: HttpRequest) -> int:
    """The organization every query of this request is scoped to."""
    token: ApiToken = request.auth  # type: ignore[attr-defined]
    return token.organization_id

from __future__ import annotations

import pytest

from openline.api.tests.conftest import ApiClient
from openline.core.models import ApiToken


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Bearer olk_not-a-real-token",
        "Bearer not-even-prefixed",
        "Basic YWxpY2U6cGFzcw==",
        "Bearer ",
    ],
)
def test_missing_or_bad_token_is_401_json(db, header):
    client = ApiClient(None)
    if header is not None:
        client.headers = {"HTTP_AUTHORIZATION": header}

    for response in (
        client.get("/conversations"),
        client.post("/messages", {"to": "+12025550111", "body": "hi"}),
        client.get("/contacts/lookup", phone="+12025550111"),
    ):
        assert response.status_code == 401
        assert response.json()["code"] == "unauthorized"
        assert response["WWW-Authenticate"].startswith("Bearer")


def test_bad_token_with_garbage_body_is_401_not_a_parse_error(db):
    client = ApiClient("olk_wrong")

    response = client.post("/messages", raw=b"\xff\xfe{{{")

    assert response.status_code == 401


def test_valid_token_records_last_use(api, org):
    token = ApiToken.objects.get(organization=org)
    assert token.last_used_at is None

    response = api.get("/conversations")

    assert response.status_code == 200
    token.refresh_from_db()
    assert token.last_used_at is not None


def test_openapi_schema_and_docs_are_served(client):
    schema = client.get("/api/v1/openapi.json")
    docs = client.get("/api/v1/docs")

    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert "/api/v1/messages" in paths
    assert "/api/v1/contacts/{contact_id}/consent" in paths
    assert schema.json()["components"]["securitySchemes"]["OrganizationToken"]["scheme"] == (
        "bearer"
    )
    assert docs.status_code == 200


def test_api_docs_address_leads_to_the_openapi_docs(client):
    import json
    import re

    docs = client.get("/api/docs", follow=True)

    assert docs.redirect_chain == [("/api/v1/docs", 302)]
    assert docs.status_code == 200
    html = docs.content.decode()
    settings = re.search(r'<script type="application/json" id="swagger-settings">(.*?)</script>',
                         html, re.S)  # fmt: skip
    assert settings, "the docs page is not Swagger UI"
    schema = client.get(json.loads(settings.group(1))["url"])
    assert schema.status_code == 200
    assert schema.json()["openapi"].startswith("3.")
    assert "/api/v1/messages" in schema.json()["paths"]

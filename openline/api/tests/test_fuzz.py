"""Property-based fuzzing: whatever a client sends, the API answers below 500, and a
refused request stores nothing."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote_from_bytes

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from openline.api.tests.conftest import PERSON, ApiClient
from openline.contacts.models import ConsentEvent, Contact
from openline.messaging.models import Message

FUZZ = settings(
    max_examples=150,
    deadline=None,
    database=None,  # no .hypothesis/ directory in the tree
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Text that includes what JSON can carry but a database cannot store: NUL, lone surrogates.
awkward_text = st.text(
    st.characters(codec=None, categories=["L", "N", "P", "S", "Z", "C", "M"]), max_size=40
) | st.text(st.characters(categories=["Cs", "Cc"]), max_size=5)
phones = st.sampled_from(
    [PERSON, "+12025550666", "+12025550999", "2025550111", "+1", "+999", "+12125550199", ""]
) | st.from_regex(r"\+?1?[0-9 ()-]{0,16}", fullmatch=True)
scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | awkward_text
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
field_values = phones | awkward_text | scalars | st.text(min_size=1590, max_size=1700)


def documents(fields: list[str]) -> st.SearchStrategy[Any]:
    """Plausible objects with the endpoint's fields (and sometimes junk), or any JSON."""
    plausible = st.fixed_dictionaries(
        {}, optional={name: field_values for name in [*fields, "extra"]}
    )
    return plausible | json_values


def bodies(fields: list[str], near_valid: st.SearchStrategy[Any] | None = None) -> Any:
    """Request bodies: any bytes, any JSON, objects with the endpoint's fields, and
    ``near_valid`` documents that reach the services."""
    docs = documents(fields) if near_valid is None else documents(fields) | near_valid
    as_json = docs.map(lambda doc: json.dumps(doc).encode())
    return as_json | st.binary(max_size=200)


message_text = st.text(max_size=30) | st.text(min_size=1595, max_size=1605) | awkward_text
near_valid_messages = st.fixed_dictionaries(
    {"to": phones, "body": message_text},
    optional={"from": st.sampled_from(["+12025550142", "+12125550199", "main", ""])},
)
near_valid_contacts = st.fixed_dictionaries(
    {"phone": phones},
    optional={
        "name": awkward_text,
        "number_type": st.sampled_from(["mobile", "landline", "voip", "unknown", "fax", ""]),
        "notes": awkward_text,
    },
)


def _assert_4xx_or_success(response: Any) -> None:
    event(f"status {response.status_code}")  # see --hypothesis-show-statistics
    assert response.status_code < 500
    if response.status_code >= 400:
        assert "code" in response.json()


@pytest.mark.django_db
@FUZZ
@given(raw=bodies(["to", "body", "from"], near_valid_messages))
@example(raw=b'{"to": "+12025550111", "body": "\\ud800"}')
@example(raw=b'{"to": "+12025550111", "body": "a\\u0000b"}')
@example(raw=b'{"to": "\\u0000", "body": "hi", "from": "\\udfff"}')
@example(raw=b"\xc3\x28")
def test_fuzzed_message_posts_never_500_and_refusals_store_nothing(
    api: ApiClient, sandbox_number: Any, raw: bytes
) -> None:
    before = Message.objects.count()

    response = api.post("/messages", raw=raw)

    _assert_4xx_or_success(response)
    if response.status_code != 201:
        assert Message.objects.count() == before


@pytest.mark.django_db
@FUZZ
@given(raw=bodies(["name", "phone", "number_type", "notes"], near_valid_contacts))
@example(raw=b'{"phone": "+12025550111", "name": "\\ud83d"}')
@example(raw=b'{"phone": "+12025550111", "notes": "\\u0000"}')
@example(raw=b'{"phone": "+12025550111", "number_type": "pager"}')
def test_fuzzed_contact_posts_never_500_and_refusals_store_nothing(
    api: ApiClient, raw: bytes
) -> None:
    before = Contact.objects.count()

    response = api.post("/contacts", raw=raw)

    _assert_4xx_or_success(response)
    if response.status_code != 201:
        assert Contact.objects.count() == before


@pytest.mark.django_db
@FUZZ
@given(
    raw=bodies(["action", "evidence", "text"])
    | st.fixed_dictionaries(
        {"action": st.sampled_from(["opt_in", "opt_out"])},
        optional={"evidence": field_values, "text": field_values},
    ).map(lambda doc: json.dumps(doc).encode())
)
@example(raw=b'{"action": "opt_in", "evidence": "\\ud800"}')
@example(raw=b'{"action": "opt_out", "text": "\\u0000"}')
@example(raw=b'{"action": "opt_in", "evidence": ""}')
def test_fuzzed_consent_posts_never_500_and_refusals_store_nothing(
    api: ApiClient, org: Any, sandbox_number: Any, raw: bytes
) -> None:
    contact, _ = Contact.objects.get_or_create(organization=org, phone=PERSON)
    events, messages = ConsentEvent.objects.count(), Message.objects.count()

    response = api.post(f"/contacts/{contact.pk}/consent", raw=raw)

    _assert_4xx_or_success(response)
    if response.status_code != 200:
        assert ConsentEvent.objects.count() == events
        assert Message.objects.count() == messages


# Query strings arrive as bytes; any bytes at all, percent-encoded, including invalid UTF-8.
query_values = (phones | st.text(max_size=20)).map(str.encode) | st.binary(max_size=20)


def _query(**params: bytes) -> str:
    return "&".join(f"{key}={quote_from_bytes(value)}" for key, value in params.items())


@pytest.mark.django_db
@FUZZ
@given(
    patch=documents(["name", "number_type", "notes"]),
    phone=query_values,
    status=query_values,
    number=query_values,
    limit=query_values | st.integers().map(lambda i: str(i).encode()),
)
@example(patch={}, phone=b"\xff", status=b"", number=b"\x00", limit=str(2**70).encode())
def test_fuzzed_reads_and_patches_never_500(
    api: ApiClient,
    org: Any,
    patch: Any,
    phone: bytes,
    status: bytes,
    number: bytes,
    limit: bytes,
) -> None:
    contact, _ = Contact.objects.get_or_create(organization=org, phone=PERSON)
    name = Contact.objects.values_list("name", flat=True).get(pk=contact.pk)

    responses = [
        api.patch(f"/contacts/{contact.pk}", patch),
        api.get(f"/contacts/lookup?{_query(phone=phone)}"),
        api.get(
            f"/conversations?{_query(status=status, number=number, limit=limit, offset=limit)}"
        ),
    ]

    for response in responses:
        _assert_4xx_or_success(response)
    if responses[0].status_code != 200:
        assert Contact.objects.values_list("name", flat=True).get(pk=contact.pk) == name

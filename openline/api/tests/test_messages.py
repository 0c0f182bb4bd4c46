from __future__ import annotations

import pytest

from openline.api.tests.conftest import PERSON
from openline.contacts.models import ConsentSource, Contact, NumberType
from openline.contacts.services.consent import consent_record_opt_out
from openline.messaging.models import Message, MessageKind, MessageStatus


def test_send_message_queues_an_automated_text_and_answers_201(api, sandbox_number):
    response = api.post("/messages", {"to": "(202) 555-0111", "body": "Your appointment is at 3"})

    assert response.status_code == 201, response.content
    data = response.json()
    message = Message.objects.get()
    assert data == {
        "id": message.pk,
        "status": "queued",
        "segments": 1,
        "encoding": "GSM-7",
        "conversation_id": message.conversation_id,
        "to": PERSON,
        "from": sandbox_number.e164,
    }
    assert message.kind == MessageKind.AUTOMATED
    assert message.conversation.organization_id == sandbox_number.organization_id


def test_sent_message_is_delivered_by_the_sandbox_carrier(api, sandbox_number, pipeline):
    response = pipeline.run(lambda: api.post("/messages", {"to": PERSON, "body": "hello"}))

    assert response.status_code == 201
    message = Message.objects.get(pk=response.json()["id"])
    assert message.status == MessageStatus.DELIVERED


def test_send_with_explicit_from_uses_that_number(api, org, sandbox_number):
    from openline.providers.services import number_add

    second = number_add(organization=org, provider="sandbox", e164="+12025550143")

    response = api.post("/messages", {"to": PERSON, "body": "hi", "from": "+1 202 555 0143"})

    assert response.status_code == 201
    assert response.json()["from"] == second.e164


def test_send_to_opted_out_person_is_409_and_stores_nothing(api, org, sandbox_number):
    consent_record_opt_out(
        organization_id=org.pk, phone=PERSON, source=ConsentSource.STAFF, evidence="phone call"
    )

    response = api.post("/messages", {"to": PERSON, "body": "hello"})

    assert response.status_code == 409
    assert response.json()["code"] == "opted_out"
    assert "opted out" in response.json()["detail"]
    assert not Message.objects.exists()


def test_send_after_stop_keyword_is_409_opted_out(api, sandbox_number, text_in):
    text_in(sandbox_number, PERSON, "STOP")
    before = Message.objects.count()

    response = api.post("/messages", {"to": PERSON, "body": "hello"})

    assert response.status_code == 409
    assert response.json()["code"] == "opted_out"
    assert Message.objects.count() == before


def test_send_to_landline_is_409_not_textable(api, org, sandbox_number):
    Contact.objects.create(organization=org, phone=PERSON, number_type=NumberType.LANDLINE)

    response = api.post("/messages", {"to": PERSON, "body": "hello"})

    assert response.status_code == 409
    assert response.json()["code"] == "not_textable"
    assert not Message.objects.exists()


def test_pending_free_text_opt_out_request_blocks_api_sends(api, sandbox_number, text_in):
    text_in(sandbox_number, PERSON, "please stop texting me")
    before = Message.objects.count()

    response = api.post("/messages", {"to": PERSON, "body": "Reminder: appointment at 3"})

    assert response.status_code == 409
    assert response.json()["code"] == "opt_out_pending"
    assert Message.objects.count() == before


def test_body_of_1600_characters_is_accepted(api, sandbox_number):
    response = api.post("/messages", {"to": PERSON, "body": "a" * 1600})

    assert response.status_code == 201
    assert response.json()["segments"] == 11


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"to": PERSON, "body": "a" * 1601}, "invalid_body"),
        ({"to": PERSON, "body": "   "}, "invalid_body"),
        ({"to": "not a phone", "body": "hi"}, "invalid_phone"),
        ({"to": "+1202555", "body": "hi"}, "invalid_phone"),
        ({"to": PERSON, "body": "hi", "from": "+12025550199"}, "invalid_from"),
        ({"to": PERSON, "body": "hi", "from": "nope"}, "invalid_from"),
    ],
)
def test_invalid_send_is_400_with_code_and_stores_nothing(api, sandbox_number, payload, code):
    response = api.post("/messages", payload)

    assert response.status_code == 400
    assert response.json()["code"] == code
    assert response.json()["detail"]
    assert not Message.objects.exists()
    assert not Contact.objects.exists()


def test_cannot_send_from_another_organizations_number(api, sandbox_number, other_number):
    response = api.post("/messages", {"to": PERSON, "body": "hi", "from": other_number.e164})

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_from"
    assert not Message.objects.exists()


def test_organization_without_a_number_gets_no_number(api):
    response = api.post("/messages", {"to": PERSON, "body": "hi"})

    assert response.status_code == 400
    assert response.json()["code"] == "no_number"


@pytest.mark.parametrize(
    "payload",
    [
        {"to": PERSON},
        {"to": PERSON, "body": 5},
        {"to": ["+12025550111"], "body": "hi"},
        {"to": PERSON, "body": "hi", "form": "+12025550142"},
        {"to": PERSON, "body": "nul \x00 byte"},
    ],
)
def test_wrong_shape_is_422_with_field_errors(api, sandbox_number, payload):
    response = api.post("/messages", payload)

    assert response.status_code == 422
    assert response.json()["code"] == "invalid_request"
    assert isinstance(response.json()["detail"], list)
    assert not Message.objects.exists()


@pytest.mark.parametrize(
    "raw",
    [
        b"{not json",
        b"\xff\xfe\x00garbage",
        b'{"to": "+12025550111", "body": "caf\xe9"}',  # Latin-1, not UTF-8
        b"[1, 2, 3]",
        b'"just a string"',
        b"null",
        b"1e999999",
        b"9" * 5000,
        b"[" * 5000,
    ],
)
def test_malformed_body_is_4xx_json(api, sandbox_number, raw):
    response = api.post("/messages", raw=raw)

    assert 400 <= response.status_code < 500
    assert "code" in response.json()
    assert not Message.objects.exists()


def test_lone_surrogate_in_body_is_422(api, sandbox_number):
    response = api.post("/messages", raw=b'{"to": "+12025550111", "body": "hi \\ud800"}')

    assert response.status_code == 422
    assert not Message.objects.exists()


def test_oversized_request_is_413(api, sandbox_number, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000

    response = api.post("/messages", {"to": PERSON, "body": "x" * 2000})

    assert response.status_code == 413
    assert response.json()["code"] == "too_large"


def test_send_to_voip_is_409_not_textable(api, org, sandbox_number):
    voip = "+445612345678"  # UK 056: VoIP in the numbering plan
    Contact.objects.create(organization=org, phone=voip, number_type=NumberType.VOIP)

    response = api.post("/messages", {"to": voip, "body": "hello"})

    assert response.status_code == 409
    assert response.json()["code"] == "not_textable"
    assert "cannot receive texts" in response.json()["detail"]
    assert not Message.objects.exists()


def test_send_to_an_unknown_voip_number_is_409_not_textable(api, sandbox_number):
    response = api.post("/messages", {"to": "+44 56 1234 5678", "body": "hello"})

    assert response.status_code == 409
    assert response.json()["code"] == "not_textable"
    assert not Message.objects.exists()

from __future__ import annotations

import pytest

from openline.api.tests.conftest import PERSON
from openline.contacts.models import ConsentEvent, Contact, NumberType
from openline.messaging.models import Message, MessageKind, MessageStatus


@pytest.fixture
def dana(org):
    return Contact.objects.create(organization=org, phone=PERSON, name="Dana")


def test_opt_in_records_evidence_and_sends_the_welcome(api, dana, sandbox_number, pipeline):
    response = pipeline.run(
        lambda: api.post(
            f"/contacts/{dana.pk}/consent",
            {"action": "opt_in", "evidence": "signed intake form 2024-05-01"},
        )
    )

    assert response.status_code == 200, response.content
    data = response.json()
    assert data["status"] == "opted_in"
    assert data["source"] == "api"
    event = ConsentEvent.objects.get()
    assert event.evidence == "signed intake form 2024-05-01"
    welcome = Message.objects.get(pk=data["welcome_message_id"])
    assert welcome.kind == MessageKind.AUTOMATED
    assert welcome.status == MessageStatus.DELIVERED


def test_opt_in_without_evidence_is_400_and_records_nothing(api, dana, sandbox_number):
    response = api.post(f"/contacts/{dana.pk}/consent", {"action": "opt_in", "evidence": "  "})

    assert response.status_code == 400
    assert response.json()["code"] == "evidence_required"
    assert not ConsentEvent.objects.exists()
    assert not Message.objects.exists()


def test_opt_in_after_person_texted_stop_is_409(api, org, sandbox_number, text_in):
    text_in(sandbox_number, PERSON, "STOP")
    contact = Contact.objects.get(organization=org, phone=PERSON)
    events = ConsentEvent.objects.count()

    response = api.post(
        f"/contacts/{contact.pk}/consent", {"action": "opt_in", "evidence": "they said yes"}
    )

    assert response.status_code == 409
    assert response.json()["code"] == "opted_out_by_person"
    assert "START" in response.json()["detail"]
    assert ConsentEvent.objects.count() == events


def test_opt_in_for_landline_records_consent_without_a_welcome(api, dana, sandbox_number):
    Contact.objects.filter(pk=dana.pk).update(number_type=NumberType.LANDLINE)

    response = api.post(f"/contacts/{dana.pk}/consent", {"action": "opt_in", "evidence": "form"})

    assert response.status_code == 200
    assert response.json()["status"] == "opted_in"
    assert response.json()["welcome_message_id"] is None


def test_opt_out_blocks_later_api_sends(api, dana, sandbox_number):
    response = api.post(
        f"/contacts/{dana.pk}/consent",
        {"action": "opt_out", "evidence": "asked on a call", "text": "no more texts please"},
    )
    send = api.post("/messages", {"to": PERSON, "body": "hello"})

    assert response.status_code == 200
    assert response.json()["status"] == "opted_out"
    event = ConsentEvent.objects.get()
    assert (event.source, event.text) == ("api", "no more texts please")
    assert send.status_code == 409
    assert send.json()["code"] == "opted_out"
    assert not Message.objects.exists()


def test_opt_out_without_evidence_is_still_recorded(api, dana):
    response = api.post(f"/contacts/{dana.pk}/consent", {"action": "opt_out"})

    assert response.status_code == 200
    assert response.json()["status"] == "opted_out"


def test_other_organization_cannot_change_consent(other_api, dana):
    response = other_api.post(f"/contacts/{dana.pk}/consent", {"action": "opt_out"})

    assert response.status_code == 404
    assert not ConsentEvent.objects.exists()


@pytest.mark.parametrize(
    "payload", [{"action": "subscribe", "evidence": "x"}, {"evidence": "x"}, {"action": None}]
)
def test_unknown_consent_action_is_422(api, dana, payload):
    response = api.post(f"/contacts/{dana.pk}/consent", payload)

    assert response.status_code == 422
    assert not ConsentEvent.objects.exists()


def test_an_api_opt_in_is_audited_with_its_token(api, dana, sandbox_number, pipeline):
    from openline.core.models import AuditEvent

    pipeline.run(
        lambda: api.post(
            f"/contacts/{dana.pk}/consent", {"action": "opt_in", "evidence": "web form 42"}
        )
    )

    audit = AuditEvent.objects.get(action="consent.opt_in")
    assert audit.api_token_id is not None and audit.actor_id is None
    assert audit.object_id == str(ConsentEvent.objects.get().pk)


def test_opt_in_after_a_confirmed_opt_out_request_is_409(api, org, sandbox_number, text_in, bob):
    from openline.messaging.services.conversation_consent import conversation_review_consent

    message = text_in(sandbox_number, PERSON, "please stop texting me")
    conversation_review_consent(
        conversation=message.conversation, actor_id=bob.pk, decision="opt_out"
    )
    contact = Contact.objects.get(organization=org, phone=PERSON)

    response = api.post(f"/contacts/{contact.pk}/consent", {"action": "opt_in", "evidence": "ok"})

    assert response.status_code == 409
    assert response.json()["code"] == "opted_out_by_person"

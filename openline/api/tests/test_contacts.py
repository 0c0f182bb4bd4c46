from __future__ import annotations

import pytest

from openline.api.tests.conftest import PERSON
from openline.contacts.models import ConsentSource, Contact, NumberType
from openline.contacts.services.consent import consent_record_opt_out


@pytest.fixture
def dana(org):
    return Contact.objects.create(organization=org, phone=PERSON, name="Dana")


def test_lookup_returns_contact_and_consent_state(api, org, dana):
    consent_record_opt_out(
        organization_id=org.pk, phone=PERSON, source=ConsentSource.STAFF, evidence="call"
    )

    response = api.get("/contacts/lookup", phone=PERSON)

    assert response.status_code == 200
    data = response.json()
    assert data["id"] == dana.pk
    assert data["name"] == "Dana"
    assert data["phone"] == PERSON
    assert data["number_type"] == "unknown"
    assert data["textable"] is True
    assert data["consent"]["status"] == "opted_out"
    assert data["consent"]["source"] == "staff"
    assert data["consent"]["opted_out_by_person"] is False


def test_lookup_of_unknown_phone_is_404(api, dana):
    response = api.get("/contacts/lookup", phone="+12025550199")

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


@pytest.mark.parametrize("phone", ["banana", "+1", "", "+1202555011\x00"])
def test_lookup_of_invalid_phone_is_400_with_reason(api, phone):
    response = api.get("/contacts/lookup", phone=phone)

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_phone"
    assert response.json()["detail"]


def test_lookup_without_phone_is_422(api):
    assert api.get("/contacts/lookup").status_code == 422


def test_other_organization_cannot_see_contacts(other_api, dana):
    lookup = other_api.get("/contacts/lookup", phone=PERSON)
    direct = other_api.get(f"/contacts/{dana.pk}")
    patch = other_api.patch(f"/contacts/{dana.pk}", {"name": "Stolen"})

    assert lookup.status_code == 404
    assert direct.status_code == 404
    assert patch.status_code == 404
    dana.refresh_from_db()
    assert dana.name == "Dana"


def test_get_contact_by_id(api, dana):
    response = api.get(f"/contacts/{dana.pk}")

    assert response.status_code == 200
    assert response.json()["name"] == "Dana"


def test_create_contact_normalises_phone(api, org):
    response = api.post(
        "/contacts", {"name": " Eli ", "phone": "202-555-0111", "number_type": "landline"}
    )

    assert response.status_code == 201, response.content
    contact = Contact.objects.get(organization=org)
    assert response.json()["id"] == contact.pk
    assert contact.phone == PERSON
    assert contact.name == "Eli"
    assert contact.number_type == NumberType.LANDLINE
    assert response.json()["textable"] is False
    assert response.json()["consent"]["status"] == "unknown"


def test_create_duplicate_phone_is_409(api, dana):
    response = api.post("/contacts", {"name": "Again", "phone": "+1 (202) 555-0111"})

    assert response.status_code == 409
    assert response.json()["code"] == "duplicate"
    assert Contact.objects.count() == 1


def test_same_phone_may_exist_in_another_organization(other_api, dana):
    response = other_api.post("/contacts", {"phone": PERSON})

    assert response.status_code == 201
    assert Contact.objects.filter(phone=PERSON).count() == 2


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        ({"phone": PERSON, "number_type": "pager"}, 400, "invalid_number_type"),
        ({"phone": "12"}, 400, "invalid_phone"),
        ({"phone": PERSON, "name": "x" * 201}, 422, "invalid_request"),
        ({"name": "No phone"}, 422, "invalid_request"),
    ],
)
def test_invalid_contact_is_refused_and_not_stored(api, payload, status, code):
    response = api.post("/contacts", payload)

    assert response.status_code == status
    assert response.json()["code"] == code
    assert not Contact.objects.exists()


def test_patch_updates_only_given_fields(api, dana):
    response = api.patch(f"/contacts/{dana.pk}", {"number_type": "mobile", "notes": "prefers AM"})

    assert response.status_code == 200
    dana.refresh_from_db()
    assert dana.name == "Dana"
    assert dana.number_type == NumberType.MOBILE
    assert dana.notes == "prefers AM"
    assert response.json()["number_type"] == "mobile"


def test_patch_with_invalid_number_type_is_400(api, dana):
    response = api.patch(f"/contacts/{dana.pk}", {"number_type": "fax"})

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_number_type"
    dana.refresh_from_db()
    assert dana.number_type == NumberType.UNKNOWN


def test_patch_cannot_change_phone(api, dana):
    response = api.patch(f"/contacts/{dana.pk}", {"phone": "+12025550199"})

    assert response.status_code == 422
    dana.refresh_from_db()
    assert dana.phone == PERSON

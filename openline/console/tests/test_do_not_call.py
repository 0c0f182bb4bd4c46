"""The voice do-not-call list page: supervisors and admins see their organization's list
(who, since when, pressed 9 or added by whom and why), add a number for a person who asked,
and remove what staff added, with a reason; a number whose owner pressed 9 stays. Counselors
get 403, another organization's entries never show, bad input is answered beside the field."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from openline.contacts.models import ConsentEvent, ConsentKind, ConsentSource
from openline.contacts.selectors import voice_do_not_call_entry
from openline.contacts.services.contacts import contact_create
from openline.contacts.services.voice import voice_opt_out_record
from openline.core.models import AuditEvent

URL = "/contacts/do-not-call/"
REMOVE = "/contacts/do-not-call/remove"
PRESSED = "+12125550009"


def _signed_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def listed(org: Any, alice: Any, sandbox_number: Any, other_org: Any, charlie: Any) -> None:
    contact_create(organization_id=org.pk, phone=PRESSED, name="Dan Roe")
    voice_opt_out_record(
        organization_id=org.pk, phone=PRESSED, source=ConsentSource.KEYPRESS,
        text="pressed 9 on a call", number_id=sandbox_number.pk,
    )  # fmt: skip
    voice_opt_out_record(
        organization_id=org.pk, phone="+12125550114", source=ConsentSource.STAFF,
        actor_id=alice.pk, text="asked on the phone not to be called",
    )  # fmt: skip
    voice_opt_out_record(
        organization_id=other_org.pk, phone="+13125550177", source=ConsentSource.STAFF,
        actor_id=charlie.pk, text="hilltop secret",
    )  # fmt: skip


def test_a_supervisor_sees_the_list_with_who_and_why(sue: Any, listed: None) -> None:
    with_sue = _signed_in(sue)
    page = with_sue.get(URL).content.decode()
    assert "On the list (2)" in page
    assert "Dan Roe" in page and "Pressed 9 on a call from +12025550142" in page
    assert "Cannot be removed: the person asked for it themselves." in page
    assert "Added by alice@example.org: “asked on the phone not to be called”" in page
    assert "+1 212-555-0114" in page and "Not a contact" in page
    assert "hilltop" not in page and "313" not in page  # another organization's
    assert 'aria-current="page">Contacts<' in page
    assert "<script>" not in page and "style=" not in page


def test_the_list_reads_in_a_few_queries(
    sue: Any, listed: None, django_assert_max_num_queries: Any
) -> None:
    with_sue = _signed_in(sue)
    with django_assert_max_num_queries(12):
        assert with_sue.get(URL).status_code == 200


def test_counselors_get_403_and_signed_out_visitors_sign_in(
    client: Client, org: Any, bob: Any, listed: None
) -> None:
    assert _signed_in(bob).get(URL).status_code == 403
    added = _signed_in(bob).post(URL, {"phone": "212 555 0188", "reason": "x"})
    assert added.status_code == 403
    removed = _signed_in(bob).post(REMOVE, {"phone": "+12125550114", "reason": "x"})
    assert removed.status_code == 403
    assert client.get(URL).status_code == 302
    assert client.post(URL, {"phone": "212 555 0188", "reason": "x"}).status_code == 302
    assert not ConsentEvent.objects.filter(phone="+12125550188").exists()
    assert voice_do_not_call_entry(organization_id=org.pk, phone="+12125550114") is not None


def test_an_admin_adds_a_number_written_any_way(org: Any, alice: Any, listed: None) -> None:
    with_alice = _signed_in(alice)
    answer = with_alice.post(URL, {"phone": "(212) 555-0188", "reason": "asked at the desk"})
    assert answer.status_code == 302
    entry = voice_do_not_call_entry(organization_id=org.pk, phone="+12125550188")
    assert entry is not None and entry.source == ConsentSource.STAFF
    assert entry.actor_id == alice.pk and entry.text == "asked at the desk"
    assert AuditEvent.objects.filter(action="consent.voice_opt_out").exists()
    page = with_alice.get(URL).content.decode()
    assert "+1 212-555-0188 will not be called by voice broadcasts." in page
    again = with_alice.post(URL, {"phone": "+12125550188", "reason": "twice"}, follow=True)
    assert "already on the do-not-call list" in again.content.decode()
    assert ConsentEvent.objects.filter(phone="+12125550188").count() == 1


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"phone": "not a number", "reason": "x"}, "phone"),
        ({"phone": "12", "reason": "x"}, "phone"),
        ({"phone": "", "reason": "x"}, "This field is required."),
        ({"phone": "+12125550188", "reason": ""}, "This field is required."),
    ],
)
def test_a_bad_number_or_no_reason_is_answered_next_to_the_field(
    alice: Any, listed: None, fields: dict[str, str], error: str
) -> None:
    answer = _signed_in(alice).post(URL, fields)
    assert answer.status_code == 422
    assert '<p class="form-error" role="alert">' in answer.content.decode()
    assert error.lower() in answer.content.decode().lower()
    assert not ConsentEvent.objects.filter(phone="+12125550188").exists()


def test_a_staff_entry_is_removed_with_a_reason(org: Any, alice: Any, listed: None) -> None:
    with_alice = _signed_in(alice)
    refused = with_alice.post(REMOVE, {"phone": "+12125550114", "reason": " "})
    assert refused.status_code == 422
    assert "Say why the number may be called again." in refused.content.decode()
    assert voice_do_not_call_entry(organization_id=org.pk, phone="+12125550114") is not None
    answer = with_alice.post(REMOVE, {"phone": "+12125550114", "reason": "asked to be called"})
    assert answer.status_code == 302
    assert voice_do_not_call_entry(organization_id=org.pk, phone="+12125550114") is None
    latest = ConsentEvent.objects.filter(phone="+12125550114").order_by("-id").first()
    assert latest is not None and latest.kind == ConsentKind.VOICE_OPT_IN
    assert latest.evidence == "asked to be called" and latest.actor_id == alice.pk


def test_a_number_whose_owner_pressed_9_cannot_be_removed(
    org: Any, alice: Any, listed: None
) -> None:
    answer = _signed_in(alice).post(REMOVE, {"phone": PRESSED, "reason": "they called us"})
    assert answer.status_code == 422
    assert "they pressed 9" in answer.content.decode()
    assert voice_do_not_call_entry(organization_id=org.pk, phone=PRESSED) is not None


def test_another_organizations_entry_cannot_be_removed_from_here(
    other_org: Any, alice: Any, listed: None
) -> None:
    answer = _signed_in(alice).post(REMOVE, {"phone": "+13125550177", "reason": "mine now"})
    assert answer.status_code == 422 and "is not on the do-not-call list" in answer.content.decode()
    assert voice_do_not_call_entry(organization_id=other_org.pk, phone="+13125550177") is not None
    assert "hilltop secret" not in answer.content.decode()


def test_a_remove_without_a_number_is_refused(alice: Any, listed: None) -> None:
    answer = _signed_in(alice).post(REMOVE, {"reason": "x"})
    assert answer.status_code == 422 and "Choose a number to remove." in answer.content.decode()


def test_the_contact_page_says_the_number_is_not_to_be_called(
    org: Any, sue: Any, listed: None
) -> None:
    from openline.contacts.models import Contact

    dan = Contact.objects.get(organization=org, phone=PRESSED)
    page = _signed_in(sue).get(f"/contacts/{dan.pk}/").content.decode()
    assert ">Do not call</a>" in page and 'title="Pressed 9 on a call on ' in page
    other = contact_create(organization_id=org.pk, phone="+12125550150", name="Eve")
    assert "Do not call" not in _signed_in(sue).get(f"/contacts/{other.pk}/").content.decode()

"""The consent ledger and its decisions (contacts.services.consent), without sending: what
is recorded, who may record it, what answer a keyword is owed, and who may be texted."""

from __future__ import annotations

from typing import Any

import pytest

from openline.contacts.keywords import KeywordKind, KeywordMatch
from openline.contacts.models import ConsentEvent, ConsentKind, ConsentSource, Contact
from openline.contacts.selectors import consent_state
from openline.contacts.services.consent import (
    ConsentError,
    consent_keyword_in_context,
    consent_record,
    consent_record_keyword,
    consent_record_opt_in,
    consent_record_opt_out,
    consent_record_opt_out_request,
    consent_record_provider_opt_out,
    consent_refusal,
    consent_review_check,
    consent_review_request,
    help_text,
    opt_out_text,
    welcome_text,
)

PERSON = "+12025550111"


def _staff_opt_in(org_id: int, actor_id: int) -> ConsentEvent:
    return consent_record_opt_in(
        organization_id=org_id,
        phone=PERSON,
        source=ConsentSource.STAFF,
        evidence="they said so on the phone",
        actor_id=actor_id,
    )


def _contact(org: Any, number_type: str = "mobile") -> Contact:
    return Contact.objects.create(organization=org, phone=PERSON, number_type=number_type)


def _keyword(org: Any, kind: KeywordKind, word: str) -> Any:
    return consent_record_keyword(
        organization=org,
        phone=PERSON,
        match=KeywordMatch(kind, word),
        text=word.lower(),
        number_id=None,
        simulated=False,
    )


# --- moved from messaging/tests (they test this module) ----------------------------------


def test_consent_events_are_append_only(sandbox_number):
    event = consent_record_opt_out(
        organization_id=sandbox_number.organization_id, phone=PERSON, source="staff"
    )
    event.text = "changed"
    with pytest.raises(ValueError, match="append-only"):
        event.save()


def test_recording_a_staff_opt_in_needs_a_supervisor_or_admin_and_is_audited(
    sandbox_number: Any, alice: Any, bob: Any
) -> None:
    from openline.core.models import AuditEvent

    with pytest.raises(ConsentError) as refused:
        _staff_opt_in(sandbox_number.organization_id, bob.pk)  # a counselor
    assert refused.value.code == "forbidden"
    assert not ConsentEvent.objects.exists()

    event = _staff_opt_in(sandbox_number.organization_id, alice.pk)
    audit = AuditEvent.objects.get(action="consent.opt_in")
    assert (audit.actor, audit.object_id) == (alice, str(event.pk))


# --- keywords: what is recorded and what the person is owed ------------------------------


def test_first_stop_is_owed_the_opt_out_confirmation_and_a_second_stop_nothing(org: Any) -> None:
    first = _keyword(org, KeywordKind.OPT_OUT, "STOP")
    second = _keyword(org, KeywordKind.OPT_OUT, "STOP")

    assert (first.event.kind, first.event.source) == (ConsentKind.OPT_OUT, ConsentSource.KEYWORD)
    assert (first.text, first.confirms_opt_out) == (opt_out_text(org), True)
    assert second.event.kind == ConsentKind.OPT_OUT and second.text is None


def test_start_is_owed_the_welcome_only_when_it_changes_something(org: Any) -> None:
    _keyword(org, KeywordKind.OPT_OUT, "STOP")
    first = _keyword(org, KeywordKind.OPT_IN, "START")
    again = _keyword(org, KeywordKind.OPT_IN, "START")

    assert (first.text, first.confirms_opt_out) == (welcome_text(org), False)
    assert again.event.kind == ConsentKind.OPT_IN and again.text is None


def test_help_is_recorded_and_owed_the_help_text(org: Any) -> None:
    answer = _keyword(org, KeywordKind.HELP, "HELP")

    assert (answer.event.kind, answer.event.text) == (ConsentKind.HELP, "help")
    assert answer.text == help_text(org)


def test_yes_opts_in_only_someone_opted_out_and_never_on_toll_free(org: Any) -> None:
    yes = KeywordMatch(KeywordKind.OPT_IN, "YES")
    here = {"organization_id": org.pk, "phone": PERSON, "simulated": False}

    assert consent_keyword_in_context(yes, **here, toll_free=False) is None  # just an answer
    _keyword(org, KeywordKind.OPT_OUT, "STOP")
    assert consent_keyword_in_context(yes, **here, toll_free=False) == yes
    assert consent_keyword_in_context(yes, **here, toll_free=True) is None
    # A START earlier in the same batch, not yet in the ledger, settles it too.
    assert consent_keyword_in_context(yes, **here, toll_free=False, opted_out=False) is None


# --- may this number be texted -----------------------------------------------------------


def test_a_landline_is_refused_before_consent_is_asked(org: Any) -> None:
    refusal = consent_refusal(contact=_contact(org, "landline"))

    assert refusal is not None and refusal.code == "not_textable"


def test_an_opt_out_refuses_every_text_but_the_confirmation_of_that_opt_out(org: Any) -> None:
    contact = _contact(org)
    event = consent_record_opt_out(
        organization_id=org.pk, phone=PERSON, source=ConsentSource.KEYWORD
    )

    refused = consent_refusal(contact=contact)
    assert refused is not None and refused.code == "opted_out"
    assert consent_refusal(contact=contact, confirming_event_id=event.pk) is None


def test_an_unreviewed_request_holds_back_automated_texts_only(org: Any) -> None:
    contact = _contact(org)
    consent_record_opt_out_request(
        organization_id=org.pk,
        phone=PERSON,
        text="stop texting me",
        number_id=None,
        simulated=False,
    )

    assert consent_refusal(contact=contact) is None
    held = consent_refusal(contact=contact, automated=True)
    assert held is not None and held.code == "opt_out_pending"


def test_a_carrier_reported_opt_out_is_the_persons_own(org: Any) -> None:
    event = consent_record_provider_opt_out(
        organization_id=org.pk, phone=PERSON, error_code="21610"
    )

    assert (event.source, event.text) == (
        ConsentSource.PROVIDER,
        "provider error 21610: recipient opted out",
    )
    assert consent_state(organization_id=org.pk, phone=PERSON).opted_out_by_person


# --- reviewing a free-text opt-out request -----------------------------------------------


def _request(org: Any) -> ConsentEvent:
    return consent_record(
        organization_id=org.pk,
        phone=PERSON,
        kind=ConsentKind.OPT_OUT_REQUEST,
        source=ConsentSource.MESSAGE,
        text="please stop texting me",
    )


def test_confirming_a_request_records_the_persons_words_as_their_opt_out(
    org: Any, bob: Any
) -> None:
    _request(org)

    event = consent_review_request(
        organization_id=org.pk, phone=PERSON, actor_id=bob.pk, decision="opt_out"
    )

    assert (event.kind, event.source, event.text) == (
        ConsentKind.OPT_OUT,
        ConsentSource.MESSAGE,
        "please stop texting me",
    )
    assert consent_state(organization_id=org.pk, phone=PERSON).opted_out_by_person
    from openline.core.models import AuditEvent

    assert AuditEvent.objects.filter(
        action="consent.request_confirmed", actor=bob, object_id=str(event.pk)
    ).exists()


def test_dismissing_a_request_needs_a_supervisor_and_a_reason(
    org: Any, alice: Any, bob: Any
) -> None:
    _request(org)

    with pytest.raises(ConsentError) as refused:
        consent_review_check(
            organization_id=org.pk, actor_id=bob.pk, decision="not_opt_out", reason="nah"
        )
    assert refused.value.code == "forbidden"
    consent_review_check(organization_id=org.pk, actor_id=bob.pk, decision="opt_out")
    event = consent_review_request(
        organization_id=org.pk,
        phone=PERSON,
        actor_id=alice.pk,
        decision="not_opt_out",
        reason=" they meant a friend ",
    )

    assert (event.kind, event.evidence) == (ConsentKind.REQUEST_DISMISSED, "they meant a friend")
    assert consent_state(organization_id=org.pk, phone=PERSON).pending_request is None

"""The ledger keeps the exact text shown: every consent event a reply answers is tied to
that reply, and the contact's consent history shows it."""

from __future__ import annotations

import pytest

from openline.contacts.models import ConsentEvent, ConsentKind, ConsentSource
from openline.contacts.selectors import consent_history
from openline.contacts.services.consent import help_text, opt_out_text, welcome_text
from openline.messaging.models import Message
from openline.messaging.services.conversation_consent import consent_opt_in_with_welcome

PERSON = "+12025550111"


@pytest.mark.parametrize(
    ("keyword", "kind", "expected"),
    [
        ("HELP", ConsentKind.HELP, help_text),
        ("STOP", ConsentKind.OPT_OUT, opt_out_text),
    ],
)
def test_each_keyword_answer_is_tied_to_its_event(sandbox_number, text_in, keyword, kind, expected):
    org = sandbox_number.organization
    received = f" {keyword.lower()}! "
    text_in(sandbox_number, PERSON, received)

    event = ConsentEvent.objects.get(kind=kind)
    assert event.text == received  # exactly what the person sent
    answer = Message.objects.get(consent_event=event)  # what they were shown in reply
    assert answer.body == expected(org)
    assert answer.conversation.contact.phone == PERSON


def test_start_after_stop_ties_the_welcome_to_the_opt_in(sandbox_number, text_in):
    org = sandbox_number.organization
    text_in(sandbox_number, PERSON, "STOP")
    text_in(sandbox_number, PERSON, "START")

    opt_out, opt_in = ConsentEvent.objects.filter(phone=PERSON).order_by("id")
    assert Message.objects.get(consent_event=opt_out).body == opt_out_text(org)
    assert Message.objects.get(consent_event=opt_in).body == welcome_text(org)


def test_staff_opt_in_ties_the_welcome_and_the_history_shows_it(
    sandbox_number, alice, pipeline, django_assert_max_num_queries
):
    org = sandbox_number.organization
    welcome = pipeline.run(
        lambda: consent_opt_in_with_welcome(
            organization_id=org.pk,
            phone=PERSON,
            source=ConsentSource.STAFF,
            evidence="Signed intake form",
            actor_id=alice.pk,
        )
    )
    event = ConsentEvent.objects.get(kind=ConsentKind.OPT_IN)
    assert welcome.consent_event_id == event.pk

    with django_assert_max_num_queries(1):
        [shown] = list(consent_history(organization_id=org.pk, phone=PERSON))
        assert shown.message.body == welcome_text(org)

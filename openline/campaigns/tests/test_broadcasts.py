"""Broadcasts end to end through the one send service and the sandbox carrier: who is
eligible (counted by the database), credits reserved and settled, quiet hours per
recipient, sticky senders, the opt-out footer, a reply reaching the queue, and no one
texted twice or skipped when a turn fails half-way."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, time
from typing import Any

import pytest

from openline.billing.models import CreditKind
from openline.billing.services import InsufficientCredits, credit_balance, credits_add
from openline.campaigns import services as campaign_services
from openline.campaigns.audience import AudienceError
from openline.campaigns.compose import FOOTER, ComposeError
from openline.campaigns.models import (
    Broadcast,
    BroadcastRecipient,
    BroadcastStatus,
    RecipientStatus,
    SendingWindow,
    StickySender,
)
from openline.campaigns.selectors import broadcast_progress
from openline.campaigns.services import (
    BroadcastError,
    broadcast_cancel,
    broadcast_create,
    broadcast_pause,
    broadcast_preview,
    broadcast_queue,
    broadcast_resume,
    broadcast_run,
)
from openline.contacts.models import ConsentSource, Contact, NumberType
from openline.contacts.services.consent import (
    consent_record_opt_in,
    consent_record_opt_out,
    consent_record_opt_out_request,
)
from openline.contacts.services.contacts import contact_create
from openline.contacts.services.tags import contact_set_tags, tag_get_or_create
from openline.messaging.models import ConversationStatus, Message, MessageKind
from openline.providers.services import number_add

# 14:00 UTC on a December day: 09:00 in New York (inside 08:00-21:00), 06:00 in Los Angeles.
MORNING = datetime(2026, 12, 4, 14, 0, tzinfo=UTC)


def _person(
    org: Any,
    admin: Any,
    phone: str,
    name: str,
    tags: tuple[str, ...] = (),
    *,
    opt_in: bool = True,
    **kw: Any,
) -> Contact:
    contact = contact_create(organization_id=org.pk, phone=phone, name=name, **kw)
    contact_set_tags(contact=contact, names=tags)
    if opt_in:
        consent_record_opt_in(
            organization_id=org.pk,
            phone=contact.phone,
            source=ConsentSource.STAFF,
            evidence="signed the class registration form",
            actor_id=admin.pk,
        )
    return contact


def _credits(org: Any, admin: Any, n: int) -> None:
    credits_add(
        organization_id=org.pk,
        credits=n,
        note="invoice 7",
        actor_id=admin.pk,
        kind=CreditKind.PURCHASE,
    )


@pytest.fixture
def people(org: Any, alice: Any, sandbox_number: Any) -> dict[str, Contact]:
    """Swimmers in New York and Los Angeles, in every consent state."""
    return {
        "ann": _person(org, alice, "+12125550101", "Ann Lee", ("swim",)),
        "ben": _person(org, alice, "+12125550102", "Ben Ortiz", ("swim", "staff")),
        "cat": _person(org, alice, "+13105550103", "Cat Wu", ("swim",)),  # Los Angeles
        "dan": _person(org, alice, "+12125550104", "Dan", ("swim",), opt_in=False),
        "eve": _person(
            org, alice, "+12125550105", "Eve", ("swim",), number_type=NumberType.LANDLINE
        ),
        "fay": _person(org, alice, "+12125550106", "Fay", ("swim",)),
        "gus": _person(org, alice, "+12125550107", "Gus", ("swim",)),
        "hal": _person(org, alice, "+12125550108", "Hal", ("yoga",)),
    }


def _states(org: Any, people: dict[str, Contact]) -> None:
    consent_record_opt_out(
        organization_id=org.pk, phone=people["fay"].phone, source=ConsentSource.KEYWORD, text="STOP"
    )
    consent_record_opt_out_request(
        organization_id=org.pk,
        phone=people["gus"].phone,
        text="please stop texting me",
        number_id=None,
        simulated=False,
    )


def _draft(
    org: Any,
    admin: Any,
    number: Any,
    body: str = "Hi {first_name}, the pool is closed today.",
    **audience: Any,
) -> Broadcast:
    swim = tag_get_or_create(organization_id=org.pk, name="swim")
    audience = audience or {"include_tags": [swim.pk]}
    return broadcast_create(
        organization_id=org.pk,
        actor_id=admin.pk,
        name="Pool closed",
        body=body,
        audience=audience,
        number_ids=[number.pk],
    )


def test_the_preview_counts_eligible_numbers_and_each_reason_the_rest_are_left_out(
    org: Any, alice: Any, sandbox_number: Any, people: dict[str, Contact]
) -> None:
    _states(org, people)
    staff = tag_get_or_create(organization_id=org.pk, name="staff")
    swim = tag_get_or_create(organization_id=org.pk, name="swim")
    broadcast = _draft(
        org,
        alice,
        sandbox_number,
        include_tags=[swim.pk],
        exclude_tags=[staff.pk],
        add_contacts=[people["hal"].pk],
    )
    _credits(org, alice, 3)
    preview = broadcast_preview(broadcast=broadcast, now=MORNING)
    # ann, cat, dan, eve, fay, gus (swim, not staff) + hal (picked by hand)
    assert preview.counts.selected == 7
    assert preview.sendable == 3  # ann, cat, hal
    assert preview.counts.excluded == {
        "not_textable": 1,
        "opted_out": 1,
        "opt_out_pending": 1,
        "no_opt_in": 1,
    }
    assert (preview.encoding, preview.segments) == ("GSM-7", 1)
    assert preview.credits_needed == 3 and preview.credits_available == 3 and preview.shortfall == 0
    [waiting] = preview.waiting  # Cat, in Los Angeles, until 08:00 there
    assert (waiting.time_zone, waiting.recipients) == ("America/Los_Angeles", 1)
    assert waiting.until == datetime(2026, 12, 4, 16, 0, tzinfo=UTC)


def test_a_dismissed_request_and_a_person_removed_by_hand_count_as_they_should(
    org: Any, alice: Any, sandbox_number: Any, people: dict[str, Contact]
) -> None:
    from openline.contacts.services.consent import consent_dismiss_request

    _states(org, people)
    consent_dismiss_request(
        organization_id=org.pk,
        phone=people["gus"].phone,
        actor_id=alice.pk,
        reason="asked about the schedule, not to stop",
    )
    broadcast = _draft(org, alice, sandbox_number)
    broadcast.audience["remove_contacts"] = [people["ann"].pk]
    counts = broadcast_preview(broadcast=broadcast, now=MORNING).counts
    assert counts.selected == 6 and counts.eligible == 3  # ben, cat, gus
    assert counts.excluded["opt_out_pending"] == 0


def test_queuing_without_enough_credits_is_refused_and_changes_nothing(
    org: Any, alice: Any, sandbox_number: Any, people: dict[str, Contact]
) -> None:
    _credits(org, alice, 2)
    broadcast = _draft(org, alice, sandbox_number)
    preview = broadcast_preview(broadcast=broadcast, now=MORNING)
    assert preview.credits_needed == 5 and preview.shortfall == 3
    with pytest.raises(InsufficientCredits) as refused:
        broadcast_queue(broadcast=broadcast, actor_id=alice.pk)
    assert refused.value.shortfall == 3
    broadcast.refresh_from_db()
    assert broadcast.status == BroadcastStatus.DRAFT and broadcast.reservation is None
    assert not BroadcastRecipient.objects.exists() and not StickySender.objects.exists()
    assert credit_balance(organization_id=org.pk).available == 2


def _send_all(pipeline: Any, broadcast: Broadcast, actor: Any) -> Broadcast:
    pipeline.run(
        lambda: broadcast_queue(broadcast=broadcast, actor_id=actor.pk), include_deferred=True
    )
    broadcast.refresh_from_db()
    return broadcast


@pytest.fixture
def open_everywhere(org: Any) -> None:
    SendingWindow.objects.create(organization=org, start=time(0, 0), end=time(23, 59, 59))


def test_a_broadcast_texts_every_eligible_person_once_and_settles_its_credits(
    org: Any,
    alice: Any,
    sandbox_number: Any,
    people: dict[str, Contact],
    pipeline: Any,
    open_everywhere: None,
) -> None:
    _states(org, people)
    _credits(org, alice, 20)
    broadcast = _send_all(pipeline, _draft(org, alice, sandbox_number), alice)
    assert broadcast.status == BroadcastStatus.FINISHED and broadcast.finished_at
    sent = Message.objects.filter(kind=MessageKind.BULK).select_related("conversation__contact")
    assert sorted(m.conversation.contact.name for m in sent) == ["Ann Lee", "Ben Ortiz", "Cat Wu"]
    ann = sent.get(conversation__contact=people["ann"])
    assert ann.body == "Hi Ann, the pool is closed today." + FOOTER
    assert ann.conversation.number_id == sandbox_number.pk
    assert {m.status for m in sent} <= {"sent", "delivered"}
    progress = broadcast_progress(broadcast_id=broadcast.pk)
    assert progress.counts["pending"] == 0 and progress.counts["queued"] == 0
    assert progress.counts["sent"] + progress.counts["delivered"] == 3
    # 3 texts of one segment: 3 debited, the rest of the reservation released.
    assert credit_balance(organization_id=org.pk).available == 17
    assert credit_balance(organization_id=org.pk).reserved == 0


def test_the_footer_goes_on_a_persons_first_broadcast_only_and_the_sender_sticks(
    org: Any,
    alice: Any,
    sandbox_number: Any,
    people: dict[str, Contact],
    pipeline: Any,
    open_everywhere: None,
) -> None:
    _credits(org, alice, 100)
    second = number_add(
        organization=org,
        provider="sandbox",
        e164="+12025550143",
        name="Second",
        segments_per_second=1000,
    )
    first = _send_all(pipeline, _draft(org, alice, sandbox_number), alice)
    senders = dict(
        BroadcastRecipient.objects.filter(broadcast=first).values_list("phone", "number_id")
    )
    again = broadcast_create(
        organization_id=org.pk,
        actor_id=alice.pk,
        name="Pool open",
        body="The pool is open again.",
        audience=first.audience,
        number_ids=[sandbox_number.pk, second.pk],
    )
    again = _send_all(pipeline, again, alice)
    rows = BroadcastRecipient.objects.filter(broadcast=again).select_related("message")
    assert {r.phone: r.number_id for r in rows} == senders  # nobody moved to the new number
    assert all(not r.footer and not r.message.body.endswith(FOOTER) for r in rows)


def test_recipients_outside_their_window_wait_for_it_to_open(
    org: Any, alice: Any, sandbox_number: Any, people: dict[str, Contact], pipeline: Any
) -> None:
    _credits(org, alice, 20)
    broadcast = _draft(org, alice, sandbox_number)
    # Not executed: the turn queuing starts would run on the real clock, and whether Los
    # Angeles is inside its window then depends on the hour the test runs.
    with pipeline._capture(execute=False):
        broadcast = broadcast_queue(broadcast=broadcast, actor_id=alice.pk)
    pipeline.run(lambda: broadcast_run(broadcast_id=broadcast.pk, now=MORNING))
    queued = dict(
        BroadcastRecipient.objects.filter(broadcast=broadcast).values_list("phone", "status")
    )
    assert queued[people["cat"].phone] == RecipientStatus.PENDING  # 06:00 in Los Angeles
    assert queued[people["ann"].phone] == RecipientStatus.QUEUED
    Broadcast.objects.filter(pk=broadcast.pk).update(last_run_at=None)
    pipeline.run(lambda: broadcast_run(broadcast_id=broadcast.pk, now=MORNING.replace(hour=16)))
    cat = BroadcastRecipient.objects.get(broadcast=broadcast, phone=people["cat"].phone)
    assert cat.status == RecipientStatus.QUEUED and cat.message is not None


def test_someone_who_opts_out_after_queuing_gets_nothing(
    org: Any,
    alice: Any,
    sandbox_number: Any,
    people: dict[str, Contact],
    pipeline: Any,
    open_everywhere: None,
) -> None:
    _credits(org, alice, 20)
    broadcast = _draft(org, alice, sandbox_number)
    with pipeline._capture(execute=True):
        broadcast = broadcast_queue(broadcast=broadcast, actor_id=alice.pk)
    consent_record_opt_out(
        organization_id=org.pk, phone=people["ben"].phone, source=ConsentSource.KEYWORD, text="STOP"
    )
    pipeline.run(include_deferred=True)
    ben = BroadcastRecipient.objects.get(broadcast=broadcast, phone=people["ben"].phone)
    assert ben.status == RecipientStatus.REFUSED and ben.reason.startswith("opted_out")
    assert not Message.objects.filter(
        conversation__contact=people["ben"], kind=MessageKind.BULK
    ).exists()
    broadcast.refresh_from_db()
    assert broadcast.status == BroadcastStatus.FINISHED
    # Five were eligible when it was queued (ann, ben, cat, fay, gus); four were texted.
    assert credit_balance(organization_id=org.pk).available == 20 - 4


def test_a_turn_that_fails_half_way_texts_nobody_twice_and_skips_nobody(
    org: Any,
    alice: Any,
    sandbox_number: Any,
    people: dict[str, Contact],
    pipeline: Any,
    open_everywhere: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _credits(org, alice, 20)
    broadcast = _draft(org, alice, sandbox_number)
    with pipeline._capture(execute=True):
        broadcast = broadcast_queue(broadcast=broadcast, actor_id=alice.pk)
    real_send = campaign_services.message_send
    calls = {"n": 0}

    def crash_on_second(**kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("worker died")
        return real_send(**kwargs)

    monkeypatch.setattr(campaign_services, "message_send", crash_on_second)
    with pytest.raises(RuntimeError):
        broadcast_run(broadcast_id=broadcast.pk, now=MORNING)
    # The whole chunk rolled back: nobody is marked queued without a message.
    assert (
        not BroadcastRecipient.objects.filter(broadcast=broadcast)
        .exclude(status=RecipientStatus.PENDING)
        .exists()
    )
    assert not Message.objects.filter(kind=MessageKind.BULK).exists()
    monkeypatch.setattr(campaign_services, "message_send", real_send)
    Broadcast.objects.filter(pk=broadcast.pk).update(last_run_at=None)
    pipeline.run(lambda: broadcast_run(broadcast_id=broadcast.pk), include_deferred=True)
    pipeline.run(
        lambda: broadcast_run(broadcast_id=broadcast.pk), include_deferred=True
    )  # a second runner
    per_contact = Message.objects.filter(kind=MessageKind.BULK).values_list(
        "conversation__contact", flat=True
    )
    assert sorted(per_contact) == sorted(people[p].pk for p in ("ann", "ben", "cat", "fay", "gus"))


def test_a_reply_to_a_broadcast_waits_in_the_queue_and_stop_opts_out(
    org: Any,
    alice: Any,
    sandbox_number: Any,
    people: dict[str, Contact],
    pipeline: Any,
    open_everywhere: None,
    text_in: Callable[..., Any],
) -> None:
    _credits(org, alice, 20)
    _send_all(pipeline, _draft(org, alice, sandbox_number), alice)
    reply = text_in(sandbox_number, people["ann"].phone, "Is the gym open?")
    conversation = reply.conversation
    assert conversation.status == ConversationStatus.WAITING and conversation.assigned_to_id is None
    # The counselor who opens it sees the broadcast it answers as its history.
    from openline.messaging.selectors import earlier_messages

    history = earlier_messages(conversation=conversation)
    assert [m.body for m in history] == ["Hi Ann, the pool is closed today." + FOOTER]
    # The counselor's pane names the broadcast the reply answers.
    from django.test import Client

    client = Client()
    client.force_login(alice)
    pane = client.get(f"/conversations/{conversation.pk}/").content.decode()
    assert "Broadcast “Pool closed”" in pane and "Is the gym open?" in pane
    text_in(sandbox_number, people["cat"].phone, "STOP")
    from openline.contacts.selectors import consent_state

    assert consent_state(organization_id=org.pk, phone=people["cat"].phone).opted_out


def test_pause_resume_and_cancel(
    org: Any,
    alice: Any,
    sandbox_number: Any,
    people: dict[str, Contact],
    pipeline: Any,
    open_everywhere: None,
) -> None:
    _credits(org, alice, 20)
    broadcast = _draft(org, alice, sandbox_number)
    with pipeline._capture(execute=True):
        broadcast = broadcast_queue(broadcast=broadcast, actor_id=alice.pk)
    assert credit_balance(organization_id=org.pk).reserved == 5
    broadcast = broadcast_pause(broadcast=broadcast, actor_id=alice.pk)
    pipeline.run(include_deferred=True)
    assert not Message.objects.filter(kind=MessageKind.BULK).exists()
    with pytest.raises(BroadcastError):
        broadcast_pause(broadcast=broadcast, actor_id=alice.pk)
    with pipeline._capture(execute=True):
        broadcast = broadcast_resume(broadcast=broadcast, actor_id=alice.pk)
    broadcast = broadcast_cancel(broadcast=broadcast, actor_id=alice.pk)
    pipeline.run(include_deferred=True)
    assert broadcast.status == BroadcastStatus.CANCELLED and broadcast.finished_at
    assert not Message.objects.filter(kind=MessageKind.BULK).exists()
    assert set(BroadcastRecipient.objects.values_list("status", flat=True)) == {"cancelled"}
    assert credit_balance(organization_id=org.pk) == credit_balance(
        organization_id=org.pk
    ).__class__(20, 0)


def test_a_counselor_cannot_send_and_nobody_can_use_another_organizations_tags_or_numbers(
    org: Any,
    alice: Any,
    bob: Any,
    sandbox_number: Any,
    other_org: Any,
    other_number: Any,
    charlie: Any,
) -> None:
    swim = tag_get_or_create(organization_id=org.pk, name="swim")
    with pytest.raises(BroadcastError) as refused:
        broadcast_create(
            organization_id=org.pk,
            actor_id=bob.pk,
            name="x",
            body="y",
            audience={},
            number_ids=[sandbox_number.pk],
        )
    assert refused.value.code == "forbidden"
    with pytest.raises(AudienceError):
        broadcast_create(
            organization_id=other_org.pk,
            actor_id=charlie.pk,
            name="x",
            body="y",
            audience={"include_tags": [swim.pk]},
            number_ids=[other_number.pk],
        )
    with pytest.raises(BroadcastError):
        broadcast_create(
            organization_id=other_org.pk,
            actor_id=charlie.pk,
            name="x",
            body="y",
            audience={},
            number_ids=[sandbox_number.pk],
        )
    with pytest.raises(ComposeError):
        broadcast_create(
            organization_id=org.pk,
            actor_id=alice.pk,
            name="x",
            body="Hi {nickname}",
            audience={},
            number_ids=[sandbox_number.pk],
        )


def test_an_empty_audience_selects_nobody_and_everyone_selects_every_contact(
    org: Any, alice: Any, sandbox_number: Any, people: dict[str, Contact]
) -> None:
    from openline.campaigns.audience import audience_counts

    assert audience_counts(organization_id=org.pk, audience={}).selected == 0
    everyone = audience_counts(organization_id=org.pk, audience={"everyone": True})
    assert (everyone.selected, everyone.eligible) == (8, 6)  # eve: landline; dan: no opt-in
    picked = audience_counts(organization_id=org.pk, audience={"add_contacts": [people["hal"].pk]})
    assert (picked.selected, picked.eligible) == (1, 1)
    with pytest.raises(AudienceError):
        broadcast_create(
            organization_id=org.pk, actor_id=alice.pk, name="x", body="y",
            audience={"everyone": "yes"}, number_ids=[sandbox_number.pk],
        )  # fmt: skip


def test_a_message_too_long_for_the_footer_is_refused_and_a_long_name_is_left_out_alone(
    org: Any, alice: Any, sandbox_number: Any, people: dict[str, Contact], settings: Any
) -> None:
    settings.OPENLINE_MAX_BODY_CHARS = 60
    with pytest.raises(ComposeError) as refused:
        _draft(org, alice, sandbox_number, body="x" * 38)
    assert "the limit is 37" in str(refused.value)
    people["ann"].name = "Annabelle-Marguerite Featherstonehaugh"
    people["ann"].save()
    _credits(org, alice, 20)
    broadcast = broadcast_queue(
        broadcast=_draft(org, alice, sandbox_number, body="Hi {name}, pool closed"),
        actor_id=alice.pk,
    )
    ann = BroadcastRecipient.objects.get(broadcast=broadcast, phone=people["ann"].phone)
    assert (
        ann.status == RecipientStatus.REFUSED and "too long with this person's name" in ann.reason
    )
    assert ann.credits == 0
    with pytest.raises(BroadcastError) as again:
        broadcast_queue(broadcast=broadcast, actor_id=alice.pk)
    assert again.value.code == "invalid_state"


def test_the_log_counts_a_sent_text_whose_message_was_removed_as_sent(
    org: Any, alice: Any, sandbox_number: Any, people: dict[str, Contact], pipeline: Any,
    open_everywhere: None,
) -> None:  # fmt: skip
    from openline.campaigns.selectors import broadcast_log

    _credits(org, alice, 20)
    broadcast = _send_all(pipeline, _draft(org, alice, sandbox_number), alice)
    ann = BroadcastRecipient.objects.get(broadcast=broadcast, phone=people["ann"].phone)
    Message.objects.filter(pk=ann.message_id).delete()  # retention removed it
    sent = broadcast_log(broadcast_id=broadcast.pk, status="sent")
    assert people["ann"].phone in {row.phone for row in sent}
    assert broadcast_progress(broadcast_id=broadcast.pk).counts["sent"] >= 1


@pytest.mark.django_db(transaction=True)
def test_two_broadcasts_queued_at_once_cannot_both_take_the_last_credits(
    org: Any, alice: Any, sandbox_number: Any, people: dict[str, Contact]
) -> None:
    """Each needs 5 of the 8 credits; both are queued at the same moment on their own
    database connections: one is queued, the other refused and left a draft."""
    import threading

    from django.db import connection

    _credits(org, alice, 8)
    drafts = [_draft(org, alice, sandbox_number) for _ in range(2)]
    start = threading.Barrier(2)
    outcomes: dict[int, str] = {}

    def queue(broadcast: Broadcast) -> None:
        try:
            start.wait(5)
            broadcast_queue(broadcast=broadcast, actor_id=alice.pk)
            outcomes[broadcast.pk] = "queued"
        except InsufficientCredits:
            outcomes[broadcast.pk] = "refused"
        finally:
            connection.close()

    threads = [threading.Thread(target=queue, args=(d,)) for d in drafts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(outcomes.values()) == ["queued", "refused"]
    refused = next(pk for pk, outcome in outcomes.items() if outcome == "refused")
    assert Broadcast.objects.get(pk=refused).status == BroadcastStatus.DRAFT
    assert not BroadcastRecipient.objects.filter(broadcast_id=refused).exists()
    balance = credit_balance(organization_id=org.pk)
    assert (balance.available, balance.reserved) == (3, 5)


def test_a_not_monitored_broadcast_answers_each_first_reply_once_and_the_reply_still_waits(
    org: Any, alice: Any, sandbox_number: Any, people: dict[str, Contact], pipeline: Any,
    open_everywhere: None, text_in: Callable[..., Any],
) -> None:  # fmt: skip
    from openline.campaigns.services import broadcast_replies_answer

    _credits(org, alice, 20)
    swim = tag_get_or_create(organization_id=org.pk, name="swim")
    broadcast = broadcast_create(
        organization_id=org.pk, actor_id=alice.pk, name="Closed", body="Pool closed today.",
        audience={"include_tags": [swim.pk]}, number_ids=[sandbox_number.pk],
        reply_mode="not_monitored",
    )  # fmt: skip
    _send_all(pipeline, broadcast, alice)
    reply = text_in(sandbox_number, people["ann"].phone, "Is the gym open?")
    text_in(sandbox_number, people["ben"].phone, "STOP")
    pipeline.run(lambda: broadcast_replies_answer())
    text_in(sandbox_number, people["ann"].phone, "Hello?")
    pipeline.run(lambda: broadcast_replies_answer())
    answers = Message.objects.filter(kind=MessageKind.AUTOMATED, body__startswith="Replies to")
    assert [m.conversation.contact_id for m in answers] == [people["ann"].pk]  # once; not Ben
    assert answers.get().body == "Replies to this number are not monitored. - Riverside Crisis Line"
    reply.conversation.refresh_from_db()
    assert reply.conversation.status == ConversationStatus.WAITING  # still reaches a person
    with pytest.raises(BroadcastError):
        broadcast_create(
            organization_id=org.pk, actor_id=alice.pk, name="x", body="y",
            audience={"everyone": True}, number_ids=[sandbox_number.pk], reply_mode="ignore",
        )  # fmt: skip


def test_a_resume_while_a_turn_waits_leaves_one_chain_of_turns(
    org: Any, alice: Any, sandbox_number: Any, people: dict[str, Contact], pipeline: Any,
    open_everywhere: None,
) -> None:  # fmt: skip
    """Pause and resume within a second: the turn queued before the pause and the one the
    resume queues must not both go on (that doubled the rate)."""
    from django_tasks_db.models import DBTaskResult

    _credits(org, alice, 20)
    with pipeline._capture(execute=True):
        broadcast = broadcast_queue(broadcast=_draft(org, alice, sandbox_number), actor_id=alice.pk)
        broadcast_pause(broadcast=broadcast, actor_id=alice.pk)
        broadcast_resume(broadcast=broadcast, actor_id=alice.pk)
    turns = DBTaskResult.objects.filter(task_path__endswith="run_broadcast")
    chains = sorted(t.args_kwargs["args"][1] for t in turns)
    assert chains == [1, 2]
    broadcast_run(broadcast_id=broadcast.pk, runner=1)  # the older chain: stops
    assert (
        not BroadcastRecipient.objects.filter(broadcast=broadcast)
        .exclude(status="pending")
        .exists()
    )
    broadcast_run(broadcast_id=broadcast.pk, runner=2)
    assert BroadcastRecipient.objects.filter(broadcast=broadcast, status="queued").count() == 5


def test_the_runner_hands_over_no_more_while_its_texts_wait_to_be_sent(
    org: Any, alice: Any, sandbox_number: Any, people: dict[str, Contact], pipeline: Any,
    open_everywhere: None,
) -> None:  # fmt: skip
    """At 1 segment a second the runner keeps AHEAD_SECONDS (2 s) of texts waiting for
    dispatch; a turn while they still wait hands over nobody, however long since the last."""
    from openline.messaging.services.dispatch import message_dispatch
    from openline.providers.models import Number

    Number.objects.filter(pk=sandbox_number.pk).update(segments_per_second=1.0)
    _credits(org, alice, 20)
    # Not executed: no turn and no dispatch runs unless this test runs it.
    with pipeline._capture(execute=False):
        broadcast = broadcast_queue(broadcast=_draft(org, alice, sandbox_number), actor_id=alice.pk)
        broadcast_run(broadcast_id=broadcast.pk)
    queued = BroadcastRecipient.objects.filter(broadcast=broadcast, status=RecipientStatus.QUEUED)
    assert queued.count() == 2
    Broadcast.objects.filter(pk=broadcast.pk).update(last_run_at=MORNING)  # long ago
    with pipeline._capture(execute=False):
        broadcast_run(broadcast_id=broadcast.pk)
    assert queued.count() == 2  # both still wait: nobody more
    Number.objects.filter(pk=sandbox_number.pk).update(segments_per_second=1000)
    for message_id in queued.values_list("message_id", flat=True):
        message_dispatch(message_id=message_id)
    with pipeline._capture(execute=False):
        broadcast_run(broadcast_id=broadcast.pk)
    assert queued.count() == 5  # sent: the next turn tops up (all three left, at 1000/s)


def test_the_runner_reports_progress_at_most_every_few_seconds_and_a_pause_always(
    org: Any, alice: Any, sandbox_number: Any, people: dict[str, Contact], pipeline: Any,
    open_everywhere: None, published: list[dict[str, Any]],
) -> None:  # fmt: skip
    """Counting a broadcast's progress reads every recipient row: the runner's turns report
    it at most every PROGRESS_EVERY seconds; pause (and cancel, and the end) always do."""
    from django.core.cache import cache

    from openline.providers.models import Number

    Number.objects.filter(pk=sandbox_number.pk).update(segments_per_second=1.0)
    _credits(org, alice, 20)
    with pipeline._capture(execute=False):
        broadcast = broadcast_queue(broadcast=_draft(org, alice, sandbox_number), actor_id=alice.pk)

    def reports() -> list[dict[str, Any]]:
        return [e for e in published if e.get("type") == "broadcast.progress"]

    for _ in range(3):
        with pipeline._capture(execute=True):
            broadcast_run(broadcast_id=broadcast.pk)
    assert len(reports()) == 1
    assert reports()[0]["counts"]["queued"] == 2
    cache.clear()  # as if PROGRESS_EVERY had passed
    with pipeline._capture(execute=True):
        broadcast_run(broadcast_id=broadcast.pk)
    assert len(reports()) == 2
    with pipeline._capture(execute=True):
        broadcast_pause(broadcast=broadcast, actor_id=alice.pk)
    assert [r["status"] for r in reports()] == ["sending", "sending", "paused"]


def test_however_high_the_rate_at_most_max_waiting_texts_wait_for_dispatch(
    org: Any, alice: Any, sandbox_number: Any, people: dict[str, Contact], pipeline: Any,
    open_everywhere: None, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """1,000 segments a second is more than this machine sends: the runner stops at
    MAX_WAITING texts waiting (3 here) instead of handing over two seconds' worth."""
    monkeypatch.setattr(campaign_services, "MAX_WAITING", 3)
    _credits(org, alice, 20)
    with pipeline._capture(execute=False):
        broadcast = broadcast_queue(broadcast=_draft(org, alice, sandbox_number), actor_id=alice.pk)
        broadcast_run(broadcast_id=broadcast.pk)
        broadcast_run(broadcast_id=broadcast.pk)
    queued = BroadcastRecipient.objects.filter(broadcast=broadcast, status=RecipientStatus.QUEUED)
    assert queued.count() == 3

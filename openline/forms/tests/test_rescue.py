"""The imminent-risk checklist: who may start, tick and end it, what is recorded (who and
when, audit rows, the console event), the section in the pane per role, and another
organization's people reach none of it."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.test import Client
from django.utils import dateformat, timezone

from conftest import Pipeline
from openline.core.models import AuditEvent, Membership
from openline.forms import rescue
from openline.forms.models import RiskChecklist, RiskStep
from openline.messaging.models import Conversation
from openline.messaging.services import assignment

pytestmark = pytest.mark.django_db
HTMX = {"HX-Request": "true"}
TEXTER = "+13125550177"
SECRET = "kestrel-88 is on the bridge"


def _member(user: Any, org: Any) -> Membership:
    return Membership.objects.get(user=user, organization=org)


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def waiting(text_in: Callable[..., Any], sandbox_number: Any) -> Conversation:
    return Conversation.objects.get(pk=text_in(sandbox_number, TEXTER, SECRET).conversation_id)


@pytest.fixture
def held(waiting: Conversation, org: Any, bob: Any) -> Conversation:
    """Bob's conversation (he assumed it)."""
    return assignment.conversation_assume(membership=_member(bob, org), conversation=waiting)


def _start(pipeline: Pipeline, membership: Membership, conversation: Conversation) -> Any:
    return pipeline.run(
        lambda: rescue.risk_checklist_start(membership=membership, conversation=conversation)
    )


# --- services ----------------------------------------------------------------------------------


def test_holder_starts_the_checklist_with_its_steps_audited_and_announced(
    pipeline: Pipeline, published: list[dict[str, Any]], org: Any, bob: Any, held: Conversation
) -> None:
    checklist = _start(pipeline, _member(bob, org), held)
    steps = list(checklist.steps.order_by("position").values_list("key", "done_at"))
    assert steps == [(key, None) for key, _ in rescue.DEFAULT_STEPS]
    assert (checklist.started_by_id, checklist.ended_at) == (bob.pk, None)
    audit = AuditEvent.objects.filter(action="risk_checklist.start")
    assert list(audit.values_list("actor_id", "object_type", "object_id")) == [
        (bob.pk, "conversation", str(held.pk))
    ]
    events = [e for e in published if e["type"] == "conversation.rescue"]
    assert [
        (e["action"], e["conversation_id"], e["checklist_id"], e["user_id"]) for e in events
    ] == [("start", held.pk, checklist.pk, bob.pk)]
    assert SECRET not in str(published) and TEXTER not in str(published)


def test_starting_twice_gives_the_open_checklist_and_announces_once(
    pipeline: Pipeline, published: list[dict[str, Any]], org: Any, bob: Any, held: Conversation
) -> None:
    first = _start(pipeline, _member(bob, org), held)
    second = _start(pipeline, _member(bob, org), held)
    assert first.pk == second.pk
    assert RiskChecklist.objects.filter(conversation=held).count() == 1
    assert RiskStep.objects.filter(checklist=first).count() == len(rescue.DEFAULT_STEPS)
    assert len([e for e in published if e["type"] == "conversation.rescue"]) == 1
    assert AuditEvent.objects.filter(action="risk_checklist.start").count() == 1


def test_only_those_who_can_reply_in_the_open_conversation_start_it(
    pipeline: Pipeline, org: Any, bob: Any, dora: Any, sue: Any, alice: Any, held: Conversation
) -> None:
    for outsider in (dora, sue, alice):  # another counselor; supervisors only monitoring
        with pytest.raises(rescue.RescueError):
            _start(pipeline, _member(outsider, org), held)
    assert not RiskChecklist.objects.exists()
    assignment.conversation_join(membership=_member(sue, org), conversation=held)
    checklist = _start(pipeline, _member(sue, org), held)
    assert checklist.started_by_id == sue.pk
    assignment.conversation_take_over(membership=_member(alice, org), conversation=held)
    step = checklist.steps.get(key="location")
    done = rescue.risk_step_mark(membership=_member(alice, org), step=step, done=True)
    assert done.done_by_id == alice.pk
    with pytest.raises(rescue.RescueError):  # bob no longer holds it
        rescue.risk_step_mark(membership=_member(bob, org), step=step, done=False)


def test_waiting_and_closed_conversations_are_refused(
    pipeline: Pipeline, org: Any, bob: Any, alice: Any, waiting: Conversation
) -> None:
    with pytest.raises(rescue.RescueError, match="Assume"):
        _start(pipeline, _member(bob, org), waiting)
    assignment.conversation_assume(membership=_member(bob, org), conversation=waiting)
    checklist = _start(pipeline, _member(bob, org), waiting)
    # Closed without a member (a member's close is refused while it is under way). The
    # after-commit hook that ends the checklist does not run here: the pane must still be
    # right if it never did.
    assignment.conversation_close_unattended(conversation_id=waiting.pk, note="The visitor left.")
    with pytest.raises(rescue.RescueError, match="closed"):
        _start(pipeline, _member(bob, org), waiting)
    with pytest.raises(rescue.RescueError, match="closed"):
        rescue.risk_step_mark(membership=_member(bob, org), step=checklist.steps.first(), done=True)
    with pytest.raises(rescue.RescueError, match="closed"):
        rescue.risk_checklist_end(membership=_member(alice, org), checklist=checklist)
    section = _section(_client(bob), waiting)
    assert "closed while this checklist was open" in section
    assert 'type="checkbox"' not in section and 'data-action="rescue-start"' not in section


def test_marking_a_step_records_who_and_when_and_unmarking_clears_it(
    pipeline: Pipeline, published: list[dict[str, Any]], org: Any, bob: Any, held: Conversation
) -> None:
    checklist = _start(pipeline, _member(bob, org), held)
    step = checklist.steps.get(key="emergency")
    before = timezone.now()
    done = pipeline.run(
        lambda: rescue.risk_step_mark(
            membership=_member(bob, org), step=step, done=True, note="  988 team on the way "
        )
    )
    assert (done.done_by_id, done.note) == (bob.pk, "988 team on the way")
    assert done.done_at is not None and before <= done.done_at <= timezone.now()
    first_at = done.done_at
    noted = rescue.risk_step_mark(membership=_member(bob, org), step=step, done=True, note="ETA 5")
    assert (noted.done_at, noted.note) == (first_at, "ETA 5")  # a note keeps who and when
    undone = rescue.risk_step_mark(membership=_member(bob, org), step=step, done=False)
    assert (undone.done_by_id, undone.done_at, undone.note) == (None, None, "")
    actions = list(
        AuditEvent.objects.filter(action__startswith="risk_step").values_list("action", "detail")
    )
    assert actions == [
        ("risk_step.done", f"emergency #{step.pk}"),
        ("risk_step.done", f"emergency #{step.pk}"),
        ("risk_step.undone", f"emergency #{step.pk}"),
    ]
    assert "988 team" not in str(AuditEvent.objects.values_list("detail", flat=True))
    assert ("step", step.checklist_id) in {
        (e["action"], e["checklist_id"]) for e in published if e["type"] == "conversation.rescue"
    }
    with pytest.raises(rescue.RescueError, match="500"):
        rescue.risk_step_mark(membership=_member(bob, org), step=step, done=True, note="x" * 501)


def test_ending_keeps_the_checklist_read_only_and_a_new_one_can_start(
    pipeline: Pipeline, org: Any, bob: Any, held: Conversation
) -> None:
    checklist = _start(pipeline, _member(bob, org), held)
    ended = rescue.risk_checklist_end(membership=_member(bob, org), checklist=checklist)
    assert (ended.ended_by_id, ended.ended_at is not None) == (bob.pk, True)
    with pytest.raises(rescue.RescueError, match="ended"):
        rescue.risk_step_mark(membership=_member(bob, org), step=checklist.steps.first(), done=True)
    with pytest.raises(rescue.RescueError, match="ended"):
        rescue.risk_checklist_end(membership=_member(bob, org), checklist=checklist)
    again = _start(pipeline, _member(bob, org), held)
    assert again.pk != checklist.pk
    assert AuditEvent.objects.filter(action="risk_checklist.end").count() == 1


def test_closing_with_the_checklist_under_way_is_refused_until_it_ends(
    pipeline: Pipeline, org: Any, bob: Any, alice: Any, held: Conversation
) -> None:
    checklist = _start(pipeline, _member(bob, org), held)
    for member in (_member(bob, org), _member(alice, org)):  # the holder, and an admin too
        with pytest.raises(assignment.AssignmentError) as refused:
            assignment.conversation_close(membership=member, conversation=held)
        assert refused.value.code == "incomplete" and str(refused.value).endswith(
            "End the imminent-risk checklist (what was done stays in the history)."
        )
    held.refresh_from_db()
    assert held.status == "active"
    rescue.risk_checklist_end(membership=_member(bob, org), checklist=checklist)
    pipeline.run(
        lambda: assignment.conversation_close(membership=_member(bob, org), conversation=held)
    )
    held.refresh_from_db()
    assert held.status == "closed"


def test_a_conversation_closed_without_a_member_ends_its_checklist_with_it(
    pipeline: Pipeline,
    published: list[dict[str, Any]],
    org: Any,
    bob: Any,
    held: Conversation,
) -> None:
    checklist = _start(pipeline, _member(bob, org), held)
    pipeline.run(
        lambda: assignment.conversation_close_unattended(
            conversation_id=held.pk, note="The visitor left."
        )
    )
    checklist.refresh_from_db()
    assert checklist.ended_at is not None and checklist.ended_by_id is None
    audit = AuditEvent.objects.get(action="risk_checklist.end")
    assert (audit.actor_id, audit.object_id) == (None, str(held.pk))
    assert ("end", held.pk) in [
        (e["action"], e["conversation_id"]) for e in published if e["type"] == rescue.EVENT
    ]
    section = _section(_client(bob), held)
    assert "ended when the conversation closed" in section


# --- the pane's section ------------------------------------------------------------------------


def _section(client: Client, conversation: Conversation) -> str:
    response = client.get(f"/forms/conversations/{conversation.pk}/rescue/", headers=HTMX)
    assert response.status_code == 200
    return response.content.decode()


def test_the_pane_offers_the_button_to_the_holder_and_shows_the_rest_read_only(
    org: Any, bob: Any, sue: Any, held: Conversation
) -> None:
    pane = _client(bob).get(f"/conversations/{held.pk}/pane", headers=HTMX).content.decode()
    assert f'id="rescue-{held.pk}"' in pane and 'data-action="rescue-start"' in pane
    assert "hx-confirm=" in pane
    monitoring = _client(sue).get(f"/conversations/{held.pk}/pane", headers=HTMX)
    assert 'data-action="rescue-start"' not in monitoring.content.decode()


def test_holder_starts_ticks_and_ends_from_the_section(
    org: Any, bob: Any, sue: Any, held: Conversation
) -> None:
    client = _client(bob)
    base = f"/forms/conversations/{held.pk}/rescue"
    started = client.post(f"{base}/start", headers=HTMX)
    assert started.status_code == 200
    checklist = RiskChecklist.objects.get(conversation=held)
    step = checklist.steps.get(key="location")
    for label in (label for _, label in rescue.DEFAULT_STEPS):
        assert label in started.content.decode()
    ticked = client.post(f"{base}/steps/{step.pk}", {"done": "1", "note": "Elm St"}, headers=HTMX)
    assert ticked.status_code == 200
    step.refresh_from_db()
    local = timezone.localtime(step.done_at, ZoneInfo(org.timezone))
    shown = dateformat.format(local, "g:i A T")
    body = ticked.content.decode()
    assert f"Done by {bob}" in body and shown in body and 'value="Elm St"' in body
    utc = dateformat.format(timezone.localtime(step.done_at, ZoneInfo("UTC")), "g:i A T")
    assert utc not in body  # the organization's zone, not the server's
    readonly = _section(_client(sue), held)
    assert "Read-only" in readonly and f'id="rescue-done-{step.pk}"' not in readonly
    assert f"Done by {bob}" in readonly
    unticked = client.post(f"{base}/steps/{step.pk}", {"note": ""}, headers=HTMX)
    assert unticked.status_code == 200 and "Done by" not in unticked.content.decode()
    ended = client.post(f"{base}/end", {"checklist": checklist.pk}, headers=HTMX)
    assert ended.status_code == 200
    body = ended.content.decode()
    assert f'id="rescue-past-{checklist.pk}"' in body and 'data-action="rescue-start"' in body


def test_refusals_answer_422_with_the_reason_beside_the_field(
    pipeline: Pipeline, org: Any, bob: Any, sue: Any, held: Conversation
) -> None:
    base = f"/forms/conversations/{held.pk}/rescue"
    refused = _client(sue).post(f"{base}/start", headers=HTMX)
    assert refused.status_code == 422
    assert "Only the counselor with this conversation" in refused.content.decode()
    checklist = _start(pipeline, _member(bob, org), held)
    step = checklist.steps.get(key="contact")
    long_note = _client(bob).post(
        f"{base}/steps/{step.pk}", {"done": "1", "note": "y" * 600}, headers=HTMX
    )
    assert long_note.status_code == 422
    body = long_note.content.decode()
    assert re.search(rf'id="rescue-note-{step.pk}"[^>]*aria-invalid="true"', body)
    assert f'id="rescue-note-error-{step.pk}"' in body and "500 characters" in body
    step.refresh_from_db()
    assert step.done_at is None
    wrong = _client(bob).post(f"{base}/end", {"checklist": "nope"}, headers=HTMX)
    assert wrong.status_code == 422 and "Reload the pane" in wrong.content.decode()
    plain = _client(sue).post(f"{base}/start")  # no htmx: back to the conversation's page
    assert plain.status_code == 302 and plain["Location"] == f"/conversations/{held.pk}/"


def test_another_organizations_people_and_ids_get_404(
    pipeline: Pipeline,
    org: Any,
    bob: Any,
    charlie: Any,
    dora: Any,
    held: Conversation,
    text_in: Callable[..., Any],
    sandbox_number: Any,
) -> None:
    checklist = _start(pipeline, _member(bob, org), held)
    step = checklist.steps.first()
    assert step is not None
    base = f"/forms/conversations/{held.pk}/rescue"
    outsider = _client(charlie)
    assert outsider.get(f"{base}/", headers=HTMX).status_code == 404
    assert outsider.post(f"{base}/start", headers=HTMX).status_code == 404
    assert outsider.post(f"{base}/steps/{step.pk}", {"done": "1"}, headers=HTMX).status_code == 404
    assert outsider.post(f"{base}/end", {"checklist": checklist.pk}).status_code == 404
    # dora may not read bob's conversation at all
    assert _client(dora).get(f"{base}/", headers=HTMX).status_code == 404
    # a step of one conversation through another conversation's URL
    other = Conversation.objects.get(
        pk=text_in(sandbox_number, "+13125550178", "hello").conversation_id
    )
    assignment.conversation_assume(membership=_member(bob, org), conversation=other)
    crossed = _client(bob).post(
        f"/forms/conversations/{other.pk}/rescue/steps/{step.pk}", {"done": "1"}, headers=HTMX
    )
    assert crossed.status_code == 404
    step.refresh_from_db()
    assert (
        step.done_at is None
        and not AuditEvent.objects.filter(actor=charlie)
        .exclude(action__startswith="auth.")
        .exists()
    )


def test_only_posts_change_anything(org: Any, bob: Any, held: Conversation) -> None:
    client = _client(bob)
    assert client.get(f"/forms/conversations/{held.pk}/rescue/start").status_code == 405
    assert not RiskChecklist.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_two_people_starting_at_once_make_one_checklist(
    org: Any, bob: Any, sue: Any, sandbox_number: Any
) -> None:
    import threading

    from django.db import close_old_connections

    from openline.messaging.models import InboundEvent
    from openline.messaging.services.inbound import inbound_process_pending

    InboundEvent.objects.create(
        organization=org,
        number=sandbox_number,
        provider="sandbox",
        provider_message_id="RESCUE-RACE",
        from_number=TEXTER,
        body="hello",
        received_at=timezone.now(),
    )
    inbound_process_pending()
    conversation = assignment.conversation_assume(
        membership=_member(bob, org), conversation=Conversation.objects.get()
    )
    assignment.conversation_join(membership=_member(sue, org), conversation=conversation)
    barrier = threading.Barrier(2)
    started: list[int] = []

    def start(user: Any) -> None:
        try:
            membership = _member(user, org)
            copy = Conversation.objects.get(pk=conversation.pk)
            barrier.wait(timeout=10)
            started.append(rescue.risk_checklist_start(membership=membership, conversation=copy).pk)
        finally:
            close_old_connections()

    threads = [threading.Thread(target=start, args=(u,)) for u in (bob, sue)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(started) == 2 and len(set(started)) == 1
    assert RiskChecklist.objects.filter(conversation=conversation).count() == 1
    assert AuditEvent.objects.filter(action="risk_checklist.start").count() == 1


def test_the_section_costs_a_query_per_checklist_and_ticked_step_at_most(
    pipeline: Pipeline, org: Any, bob: Any, held: Conversation, django_assert_max_num_queries: Any
) -> None:
    membership = _member(bob, org)
    for _ in range(2):  # two past checklists, each with every step ticked
        checklist = _start(pipeline, membership, held)
        for step in checklist.steps.all():
            rescue.risk_step_mark(membership=membership, step=step, done=True)
        rescue.risk_checklist_end(membership=membership, checklist=checklist)
    _start(pipeline, membership, held)
    client = _client(bob)
    _section(client, held)  # the session and membership are cached after the first
    steps = len(rescue.DEFAULT_STEPS)
    # The pane's context has no room for a prefetch: the section asks as it goes. Sign-in
    # and membership (4), the checklists (1), each one's steps and who started it (2 each),
    # who ended each past one (1 each) and who ticked each step (1 each).
    with django_assert_max_num_queries(4 + 1 + 3 * 2 + 2 + 2 * steps):
        body = _section(client, held)
    assert body.count("rescue-past-") == 2

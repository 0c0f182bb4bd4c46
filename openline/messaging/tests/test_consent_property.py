"""Property: whatever order keywords arrive in, staff record consent and messages are sent,
nothing reaches the provider for a number that has opted out (the single opt-out
confirmation excepted). The oracle below models the consent rules independently of the
ledger code, and every provider send is checked against it at the moment it happens."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase

from openline.contacts.keywords import KeywordKind, looks_like_opt_out_request, match_keyword
from openline.contacts.services.consent import ConsentError, consent_record_opt_out
from openline.core.services import organization_create, user_create
from openline.messaging.models import InboundEvent, Message, MessageKind
from openline.messaging.services.conversation_consent import consent_opt_in_with_welcome
from openline.messaging.services.inbound import inbound_process
from openline.messaging.services.outbound import SendRefused, message_send
from openline.providers.sandbox.provider import SandboxProvider
from openline.providers.services import number_add
from openline.runtime.worker import run_ready_tasks

PHONES = ["+12025550111", "+12025550112"]
BODIES = [
    "STOP",
    " stop. ",
    "Arrêt",
    "START",
    "yes",
    "UNSTOP",
    "HELP",
    "hello",
    "please stop texting me",
    "I can't stop crying",
]

operation = st.one_of(
    st.tuples(st.just("text"), st.sampled_from(PHONES), st.sampled_from(BODIES)),
    st.tuples(st.just("staff_opt_in"), st.sampled_from(PHONES)),
    st.tuples(st.just("staff_opt_out"), st.sampled_from(PHONES)),
    st.tuples(
        st.just("send"),
        st.sampled_from(PHONES),
        st.sampled_from([MessageKind.PERSONAL, MessageKind.AUTOMATED]),
    ),
    st.tuples(st.just("process"), st.sampled_from(PHONES)),
    st.tuples(st.just("dispatch"), st.just("")),
)


@dataclass
class Oracle:
    opted_out: dict[str, bool] = field(default_factory=dict)
    by_person: dict[str, bool] = field(default_factory=dict)
    pending_request: dict[str, bool] = field(default_factory=dict)
    confirmations_owed: dict[str, int] = field(default_factory=dict)

    def text(self, phone: str, body: str) -> None:
        match = match_keyword(body)
        if match is None:
            if looks_like_opt_out_request(body) and not self.opted_out.get(phone):
                self.pending_request[phone] = True
            return
        if match.kind == KeywordKind.OPT_OUT:
            if not self.opted_out.get(phone):
                self.confirmations_owed[phone] = self.confirmations_owed.get(phone, 0) + 1
            self.opted_out[phone] = True
            self.by_person[phone] = True
            self.pending_request[phone] = False
        elif match.kind == KeywordKind.OPT_IN:
            self.opted_out[phone] = False
            self.by_person[phone] = False
            self.pending_request[phone] = False

    def staff_out(self, phone: str) -> None:
        if not self.opted_out.get(phone):
            self.by_person[phone] = False  # a person's own opt-out stays theirs
        self.opted_out[phone] = True
        self.pending_request[phone] = False

    def staff_in_allowed(self, phone: str) -> bool:
        if self.opted_out.get(phone):
            return not self.by_person.get(phone)
        return not self.pending_request.get(phone)


class ConsentInterleavingTest(TestCase):
    @given(ops=st.lists(operation, min_size=1, max_size=25))
    @settings(max_examples=75, deadline=None, suppress_health_check=list(HealthCheck))
    def test_nothing_is_dispatched_to_an_opted_out_number(self, ops: list[tuple[str, ...]]) -> None:
        self._scenario(ops)

    def _scenario(self, ops: list[tuple[str, ...]]) -> None:
        org = organization_create(name="Prop Org", slug="prop-org")
        self.admin = user_create(
            organization=org, email="prop-admin@example.org", role="admin", password="x" * 12
        ).user
        number = number_add(
            organization=org, provider="sandbox", e164="+12025550142", segments_per_second=1e6
        )
        oracle = Oracle()
        pending: list[InboundEvent] = []
        counter = itertools.count()
        sent: list[int] = []
        original_send = SandboxProvider.send

        def checked_send(provider, num, *, to, body, status_url, idempotency_key):  # type: ignore[no-untyped-def]
            message = Message.objects.get(pk=int(idempotency_key.rsplit("-", 1)[1]))
            if oracle.opted_out.get(to):
                assert message.kind == MessageKind.CONSENT, f"sent to opted-out {to}"
                assert oracle.confirmations_owed.get(to, 0) > 0, "second confirmation"
                oracle.confirmations_owed[to] -= 1
            sent.append(message.pk)
            return original_send(
                provider,
                num,
                to=to,
                body=body,
                status_url=status_url,
                idempotency_key=idempotency_key,
            )

        SandboxProvider.send = checked_send  # type: ignore[method-assign]
        try:
            for op in ops:
                with self.captureOnCommitCallbacks(execute=True):
                    self._apply(op, org, number, oracle, pending, counter)
        finally:
            SandboxProvider.send = original_send  # type: ignore[method-assign]

    def _apply(self, op, org, number, oracle, pending, counter) -> None:  # type: ignore[no-untyped-def]
        kind = op[0]
        if kind == "text":
            pending.append(
                InboundEvent.objects.create(
                    organization=org,
                    number=number,
                    provider="sandbox",
                    provider_message_id=f"prop-{next(counter):06d}",
                    from_number=op[1],
                    body=op[2],
                    received_at=timezone.now(),
                )
            )
        elif kind == "process":
            for event in [e for e in pending if e.from_number == op[1]]:
                pending.remove(event)
                # Processing order per phone is arrival order.
                inbound_process(event_id=event.pk)
                oracle.text(event.from_number, event.body)
        elif kind == "staff_opt_in":
            try:
                consent_opt_in_with_welcome(
                    organization_id=org.pk,
                    phone=op[1],
                    source="staff",
                    evidence="form",
                    actor_id=self.admin.pk,
                )
            except ConsentError:
                assert not oracle.staff_in_allowed(op[1])
            else:
                assert oracle.staff_in_allowed(op[1])
                oracle.opted_out[op[1]] = False
                oracle.pending_request[op[1]] = False
        elif kind == "staff_opt_out":
            consent_record_opt_out(organization_id=org.pk, phone=op[1], source="staff")
            oracle.staff_out(op[1])
        elif kind == "send":
            try:
                message_send(organization_id=org.pk, to=op[1], body="Group is at 6pm", kind=op[2])
            except SendRefused as refused:
                if refused.code == "opted_out":
                    assert oracle.opted_out.get(op[1])
                else:
                    assert refused.code == "opt_out_pending" and op[2] == MessageKind.AUTOMATED
                    assert oracle.pending_request.get(op[1])
            else:
                assert not oracle.opted_out.get(op[1])
                if op[2] == MessageKind.AUTOMATED:
                    assert not oracle.pending_request.get(op[1])
        elif kind == "dispatch":
            run_ready_tasks(include_deferred=True)

"""Calls in the phone simulator: a voice broadcast's call rings on the simulated phone; a
member answers it (and gets what it plays), presses keys (9: on the do-not-call list, a
goodbye, the call ends), hangs up (billed for the seconds since answering) or declines it
(busy). Each step goes through the sandbox carrier's callbacks, so the call, the broadcast
and the do-not-call list move as they would with a real carrier. Only members of the
number's organization reach its calls; others learn nothing."""

from __future__ import annotations

from datetime import time, timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from openline.billing.models import CreditKind
from openline.billing.services import credits_add
from openline.campaigns.models import Broadcast, BroadcastRecipient, SendingWindow
from openline.campaigns.services import broadcast_create, broadcast_queue
from openline.campaigns.voice import recording_save
from openline.contacts.models import ConsentSource, NumberType
from openline.contacts.selectors import voice_do_not_call_entry
from openline.contacts.services.contacts import contact_create
from openline.messaging.models import Call, CallStatus
from openline.providers.sandbox.models import SandboxCall

PHONE = "+12125550110"
SAY = "The pool is closed today."


def _signed_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _base(number: Any) -> str:
    return f"/sandbox/phone/{number.webhook_key}"


def _actions(client: Client, number: Any, sandbox: SandboxCall) -> Any:
    """POST an action (answer, keypress, hangup, decline) about ``sandbox``'s call."""

    def act(action: str, **fields: Any) -> Any:
        return client.post(f"{_base(number)}/call/{action}", {"call": sandbox.pk, **fields})

    return act


@pytest.fixture
def ring(org: Any, alice: Any, sandbox_number: Any, pipeline: Any) -> Any:
    """Place a voice broadcast's call to a landline (no consent needed); it rings (the
    carrier's "let it ring" step is deferred and never runs here)."""
    sandbox_number.calls_per_second = 100.0
    sandbox_number.save(update_fields=["calls_per_second"])
    SendingWindow.objects.create(organization=org, start=time(0, 0), end=time(23, 59, 59))
    credits_add(
        organization_id=org.pk, credits=10, note="inv", actor_id=alice.pk,
        kind=CreditKind.PURCHASE,
    )  # fmt: skip

    def place(phone: str = PHONE, **message: Any) -> SandboxCall:
        contact = contact_create(
            organization_id=org.pk, phone=phone, name="Eve Park", number_type=NumberType.LANDLINE
        )
        broadcast = broadcast_create(
            organization_id=org.pk, actor_id=alice.pk, name=f"Call {phone}",
            audience={"add_contacts": [contact.pk]}, number_ids=[sandbox_number.pk],
            channel="voice", **(message or {"body": SAY, "language": "es-US"}),
        )  # fmt: skip
        pipeline.run(lambda: broadcast_queue(broadcast=broadcast, actor_id=alice.pk))
        return SandboxCall.objects.get(to=phone)

    return place


def _call_of(sandbox: SandboxCall) -> Call:
    return Call.objects.get(pk=sandbox.call_id)


def test_a_ringing_call_shows_on_the_phone_it_rings(
    alice: Any, sandbox_number: Any, ring: Any
) -> None:
    sandbox = ring()
    assert sandbox.status == "ringing" and _call_of(sandbox).status == CallStatus.RINGING
    client = _signed_in(alice)
    answer = client.get(_base(sandbox_number) + "/calls", {"phone": PHONE})
    assert answer.status_code == 200
    url = f"{_base(sandbox_number)}/call"
    assert answer.json() == {
        "calls": [
            {
                "id": sandbox.pk, "from": "+12025550142", "fromDisplay": "+1 202-555-0142",
                "status": "ringing",
                "urls": {a: f"{url}/{a}" for a in ("answer", "keypress", "hangup", "decline")},
            }
        ]
    }  # fmt: skip
    other = client.get(_base(sandbox_number) + "/calls", {"phone": "+12125550111"})
    assert other.json() == {"calls": []}
    bad = client.get(_base(sandbox_number) + "/calls", {"phone": "nope"})
    assert bad.status_code == 400


def test_the_phone_page_polls_for_calls_from_its_static_script(
    alice: Any, sandbox_number: Any
) -> None:
    page = _signed_in(alice).get(_base(sandbox_number)).content.decode()
    assert f'"callsUrl": "{_base(sandbox_number)}/calls"' in page
    assert "/static/sandbox/calls.js" in page and "/static/sandbox/calls.css" in page
    assert "Incoming call from" in page and 'aria-label="Press 9"' in page


def test_answering_gets_the_text_to_read_and_pressing_9_ends_it_on_the_do_not_call_list(
    org: Any, bob: Any, sandbox_number: Any, ring: Any, pipeline: Any
) -> None:
    sandbox = ring()
    client = _signed_in(bob)  # any member of the organization, a counselor too
    act = _actions(client, sandbox_number, sandbox)
    script = act("answer").json()
    assert script == {
        "hangup": False, "play_url": "", "say": SAY, "language": "es-US",
        "opt_out_prompt": "To stop these calls, press 9.", "seconds": 8, "time_limit": 60,
    }  # fmt: skip
    call = _call_of(sandbox)
    assert (call.status, call.answered_by) == (CallStatus.IN_PROGRESS, "human")
    assert act("answer").status_code == 409  # answered already

    assert act("keypress", digits="1").json() == {
        "hangup": False,
        "say": "",
        "replay": True,
    }
    assert act("keypress", digits="x").status_code == 400
    goodbye = act("keypress", digits="9").json()
    assert goodbye == {"hangup": True, "say": "You will not get these calls again. Goodbye."}
    call.refresh_from_db()
    assert call.status == CallStatus.COMPLETED and call.opted_out and call.duration >= 1
    entry = voice_do_not_call_entry(organization_id=org.pk, phone=PHONE)
    assert entry is not None and entry.source == ConsentSource.KEYPRESS
    assert act("hangup").status_code == 409  # it has ended
    assert act("keypress", digits="9").status_code == 409
    pipeline.run(include_deferred=True)  # the runner's next turn settles it
    assert Broadcast.objects.get().status == "finished"


def test_hanging_up_bills_the_seconds_since_answering(
    alice: Any, sandbox_number: Any, ring: Any
) -> None:
    sandbox = ring()
    client = _signed_in(alice)
    act = _actions(client, sandbox_number, sandbox)
    assert act("answer").status_code == 200
    SandboxCall.objects.filter(pk=sandbox.pk).update(
        answered_at=timezone.now() - timedelta(seconds=7)
    )
    ended = act("hangup").json()
    assert ended["ended"] is True and ended["duration"] in (7, 8)
    call = _call_of(sandbox)
    assert call.status == CallStatus.COMPLETED and call.duration == ended["duration"]
    assert call.outcome == "answered" and not call.opted_out and call.credits == 1


def test_hanging_up_at_once_still_counts_a_second(
    alice: Any, sandbox_number: Any, ring: Any
) -> None:
    sandbox = ring()
    client = _signed_in(alice)
    act = _actions(client, sandbox_number, sandbox)
    act("answer")
    assert act("hangup").json()["duration"] >= 1


def test_declining_reports_the_line_busy(alice: Any, sandbox_number: Any, ring: Any) -> None:
    sandbox = ring()
    client = _signed_in(alice)
    act = _actions(client, sandbox_number, sandbox)
    assert act("hangup").status_code == 409  # not answered
    assert act("decline").json() == {"ended": True}
    call = _call_of(sandbox)
    assert call.status == CallStatus.BUSY and call.duration == 0
    assert act("answer").json() == {"error": "This call is no longer ringing."}
    assert act("decline").status_code == 409
    listed = client.get(_base(sandbox_number) + "/calls", {"phone": PHONE}).json()
    assert listed == {"calls": []}


def test_a_recording_plays_from_this_servers_address(
    org: Any, alice: Any, sandbox_number: Any, ring: Any
) -> None:
    from openline.campaigns.tests.test_voice_pages import wav

    recording = recording_save(organization_id=org.pk, actor_id=alice.pk, name="r", data=wav(4))
    sandbox = ring(recording_id=recording.pk, body="")
    client = _signed_in(alice)
    script = _actions(client, sandbox_number, sandbox)("answer").json()
    assert script["play_url"] == f"/broadcasts/recordings/{recording.token}.wav"
    assert script["say"] == "" and script["seconds"] == 7
    assert client.get(script["play_url"]).status_code == 200


def test_a_call_the_carrier_already_ended_cannot_be_answered(
    alice: Any, sandbox_number: Any, ring: Any
) -> None:
    from openline.providers.sandbox.tasks import sandbox_call_end

    sandbox = ring()
    sandbox_call_end(sandbox, "no-answer")
    answer = _actions(_signed_in(alice), sandbox_number, sandbox)("answer")
    assert answer.status_code == 409
    assert _call_of(sandbox).status == CallStatus.NO_ANSWER


def test_only_members_of_the_numbers_organization_reach_its_calls(
    client: Client,
    charlie: Any,
    sandbox_number: Any,
    other_number: Any,
    ring: Any,
) -> None:
    sandbox = ring()
    theirs = _signed_in(charlie)
    for action in ("answer", "keypress", "hangup", "decline"):
        refused = _actions(theirs, sandbox_number, sandbox)(action, digits="9")
        assert refused.status_code == 404, action
        assert "There is no sandbox number of your organization" in refused.json()["error"]
        # Through their own number, the call is nobody's.
        wrong = _actions(theirs, other_number, sandbox)(action)
        assert wrong.status_code == 404 and wrong.json() == {
            "error": "There is no such call to this phone."
        }
        assert _actions(client, sandbox_number, sandbox)(action).status_code == 401
    listed = theirs.get(_base(sandbox_number) + "/calls", {"phone": PHONE})
    assert listed.status_code == 404 and "calls" not in listed.json()
    assert client.get(_base(sandbox_number) + "/calls", {"phone": PHONE}).status_code == 401
    sandbox.refresh_from_db()
    assert sandbox.status == "ringing" and _call_of(sandbox).status == CallStatus.RINGING


def test_call_actions_are_posts_with_the_pages_csrf_token(
    alice: Any, sandbox_number: Any, ring: Any
) -> None:
    sandbox = ring()
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    act = _actions(client, sandbox_number, sandbox)
    url = f"{_base(sandbox_number)}/call/answer"
    assert client.get(url, {"call": sandbox.pk}).status_code == 405
    assert act("answer").status_code == 403
    assert act("decline").status_code == 403
    sandbox.refresh_from_db()
    assert sandbox.status == "ringing"
    assert BroadcastRecipient.objects.get().call_id == sandbox.call_id


def test_an_unknown_action_or_call_is_not_found(alice: Any, sandbox_number: Any, ring: Any) -> None:
    sandbox = ring()
    client = _signed_in(alice)
    assert _actions(client, sandbox_number, sandbox)("pause").status_code == 404
    for call in ("", "abc", "²", "1" * 40, str(sandbox.pk + 1000)):
        answer = client.post(f"{_base(sandbox_number)}/call/answer", {"call": call})
        assert (
            answer.status_code == 404
            and answer.json()["error"] == "There is no such call to this phone."
        )
    sandbox.refresh_from_db()
    assert sandbox.status == "ringing"

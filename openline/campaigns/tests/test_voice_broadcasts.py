"""Voice broadcasts end to end through the call service and the sandbox's simulated calls:
who may be called (landlines too; never the do-not-call list, anyone who opted out, or a
mobile without consent), credits reserved per started minute and settled by the billed
duration, each outcome (answered, voicemail, busy, no answer), "press 9" putting the number
on the do-not-call list for good, and the checks made again just before a call."""

from __future__ import annotations

import io
import wave
from datetime import time
from typing import Any

import pytest

from openline.billing.models import CreditKind
from openline.billing.services import credit_balance, credits_add
from openline.campaigns.models import (
    BroadcastRecipient,
    BroadcastStatus,
    RecipientStatus,
    SendingWindow,
)
from openline.campaigns.selectors import broadcast_log, broadcast_progress
from openline.campaigns.services import (
    BroadcastError,
    broadcast_create,
    broadcast_preview,
    broadcast_queue,
)
from openline.campaigns.voice import (
    RecordingError,
    minutes_per_call,
    recording_probe,
    recording_save,
    recording_url,
)
from openline.contacts.models import ConsentKind, ConsentSource, Contact, NumberType
from openline.contacts.selectors import consent_state, voice_do_not_call_entry
from openline.contacts.services.consent import (
    ConsentError,
    consent_record_opt_in,
    consent_record_opt_out,
)
from openline.contacts.services.contacts import contact_create
from openline.contacts.services.tags import contact_set_tags, tag_get_or_create
from openline.contacts.services.voice import voice_opt_out_record, voice_opt_out_remove
from openline.messaging.models import Call, CallStatus
from openline.messaging.services.outbound import SendRefused, message_send


def _person(
    org: Any, admin: Any, phone: str, name: str, *, opt_in: bool = True, **kw: Any
) -> Contact:
    contact = contact_create(organization_id=org.pk, phone=phone, name=name, **kw)
    contact_set_tags(contact=contact, names=("swim",))
    if opt_in:
        consent_record_opt_in(
            organization_id=org.pk,
            phone=contact.phone,
            source=ConsentSource.STAFF,
            evidence="signed the class registration form",
            actor_id=admin.pk,
        )
    return contact


@pytest.fixture
def callable_number(sandbox_number: Any) -> Any:
    sandbox_number.calls_per_second = 100.0  # tests do not wait for call slots
    sandbox_number.save(update_fields=["calls_per_second"])
    return sandbox_number


@pytest.fixture
def families(org: Any, alice: Any, callable_number: Any) -> dict[str, Contact]:
    """Swimmers' phones, in New York, ending in the sandbox's call outcomes."""
    SendingWindow.objects.create(organization=org, start=time(0, 0), end=time(23, 59, 59))
    credits_add(
        organization_id=org.pk, credits=50, note="invoice 9", actor_id=alice.pk,
        kind=CreditKind.PURCHASE,
    )  # fmt: skip
    return {
        "ann": _person(org, alice, "+12125550110", "Ann"),  # answers and listens
        "ben": _person(org, alice, "+12125550001", "Ben"),  # busy
        "cat": _person(org, alice, "+12125550003", "Cat"),  # voicemail
        "dan": _person(org, alice, "+12125550009", "Dan"),  # presses 9
        # a landline without any opt-in: may be called (not texted)
        "eve": _person(
            org, alice, "+12125550111", "Eve", opt_in=False, number_type=NumberType.LANDLINE
        ),  # fmt: skip
        # a mobile without consent: not called
        "fay": _person(
            org, alice, "+12125550112", "Fay", opt_in=False, number_type=NumberType.MOBILE
        ),  # fmt: skip
        "gus": _person(org, alice, "+12125550113", "Gus"),  # texted STOP
        "hal": _person(org, alice, "+12125550114", "Hal"),  # on the do-not-call list
    }


def _voice_draft(org: Any, admin: Any, number: Any, **kw: Any) -> Any:
    swim = tag_get_or_create(organization_id=org.pk, name="swim")
    kw.setdefault("body", "The pool is closed today.")
    return broadcast_create(
        organization_id=org.pk,
        actor_id=admin.pk,
        name="Pool closed (call)",
        audience={"include_tags": [swim.pk]},
        number_ids=[number.pk],
        channel="voice",
        **kw,
    )


def _exclusions(org: Any, alice: Any, families: dict[str, Contact]) -> None:
    consent_record_opt_out(
        organization_id=org.pk, phone=families["gus"].phone, source=ConsentSource.KEYWORD,
        text="STOP",
    )  # fmt: skip
    voice_opt_out_record(
        organization_id=org.pk, phone=families["hal"].phone, source=ConsentSource.STAFF,
        actor_id=alice.pk, text="asked on the phone not to be called",
    )  # fmt: skip


def _wav(seconds: float, rate: int = 8000) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as audio:
        audio.setnchannels(1)
        audio.setsampwidth(2)
        audio.setframerate(rate)
        audio.writeframes(b"\x00\x00" * int(seconds * rate))
    return buffer.getvalue()


def test_the_voice_preview_calls_landlines_and_leaves_out_each_group_with_its_reason(
    org: Any, alice: Any, callable_number: Any, families: dict[str, Contact]
) -> None:
    _exclusions(org, alice, families)
    broadcast = _voice_draft(org, alice, callable_number)
    preview = broadcast_preview(broadcast=broadcast)
    assert preview.counts.selected == 8
    assert preview.sendable == 5  # ann, ben, cat, dan, eve (a landline)
    assert preview.counts.excluded == {
        "do_not_call": 1, "opted_out": 1, "opt_out_pending": 0, "no_opt_in": 1,
    }  # fmt: skip
    labels = {code: label for code, label, _ in preview.counts.excluded_rows}
    assert "do-not-call" in labels["do_not_call"]
    # "The pool is closed today." and the prompt: 8 s; with a greeting, 1 minute a call
    assert preview.seconds == 8 and preview.minutes_per_call == 1
    assert preview.credits_needed == 5 and preview.shortfall == 0
    assert preview.as_dict()["minutes_per_call"] == 1


def test_a_voice_broadcast_calls_each_eligible_number_once_and_settles_by_billed_minutes(
    org: Any, alice: Any, callable_number: Any, families: dict[str, Contact], pipeline: Any
) -> None:
    _exclusions(org, alice, families)
    broadcast = _voice_draft(org, alice, callable_number)
    pipeline.run(lambda: broadcast_queue(broadcast=broadcast, actor_id=alice.pk),
                 include_deferred=True)  # fmt: skip
    broadcast.refresh_from_db()
    assert broadcast.status == BroadcastStatus.FINISHED
    calls = {c.contact.name: c for c in Call.objects.select_related("contact")}
    assert sorted(calls) == ["Ann", "Ben", "Cat", "Dan", "Eve"]
    assert Call.objects.count() == 5  # nobody twice
    assert {name: c.outcome for name, c in calls.items()} == {
        "Ann": "answered", "Ben": "busy", "Cat": "voicemail", "Dan": "answered", "Eve": "answered",
    }  # fmt: skip
    assert calls["Cat"].answered_by == "machine" and calls["Cat"].duration == 16
    assert calls["Ben"].duration == 0 and calls["Ben"].credits == 0
    assert calls["Ann"].duration == 8 and calls["Ann"].credits == 1
    script = calls["Ann"].script
    assert script["say"] == "The pool is closed today." and "press 9" in script["opt_out_prompt"]
    progress = broadcast_progress(broadcast_id=broadcast.pk)
    assert progress.counts["answered"] == 3 and progress.counts["voicemail"] == 1
    assert progress.counts["busy"] == 1 and progress.done == progress.total == 5
    assert [r.phone for r in broadcast_log(broadcast_id=broadcast.pk, status="busy")] == [
        families["ben"].phone
    ]
    # reserved 5 (one minute each), billed 4 (busy costs nothing): 50 - 4
    balance = credit_balance(organization_id=org.pk)
    assert (balance.available, balance.reserved) == (46, 0)


def test_pressing_9_puts_the_number_on_the_do_not_call_list_for_good_but_not_off_texts(
    org: Any, alice: Any, callable_number: Any, families: dict[str, Contact], pipeline: Any
) -> None:
    broadcast = _voice_draft(org, alice, callable_number)
    pipeline.run(lambda: broadcast_queue(broadcast=broadcast, actor_id=alice.pk),
                 include_deferred=True)  # fmt: skip
    dan = families["dan"].phone
    entry = voice_do_not_call_entry(organization_id=org.pk, phone=dan)
    assert entry is not None and entry.kind == ConsentKind.VOICE_OPT_OUT
    assert entry.source == ConsentSource.KEYPRESS and Call.objects.get(phone=dan).opted_out
    # Texts are another matter: Dan is still opted in to them.
    assert consent_state(organization_id=org.pk, phone=dan).opted_in
    message_send(organization_id=org.pk, body="Class is back on Monday", to=dan)
    # The next voice broadcast leaves Dan out, and staff cannot take him off the list.
    again = _voice_draft(org, alice, callable_number)
    assert broadcast_preview(broadcast=again).counts.excluded["do_not_call"] == 1
    with pytest.raises(ConsentError) as refused:
        voice_opt_out_remove(organization_id=org.pk, phone=dan, actor_id=alice.pk,
                             evidence="he called to ask")  # fmt: skip
    assert refused.value.code == "opted_out_by_person"


def test_someone_who_opts_out_after_queuing_is_not_called(
    org: Any, alice: Any, callable_number: Any, families: dict[str, Contact], pipeline: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:  # fmt: skip
    broadcast = _voice_draft(org, alice, callable_number)
    with django_capture_on_commit_callbacks(execute=True):  # the first turn waits in the queue
        broadcast_queue(broadcast=broadcast, actor_id=alice.pk)
    voice_opt_out_record(
        organization_id=org.pk, phone=families["ann"].phone, source=ConsentSource.STAFF,
        actor_id=alice.pk, text="called the office",
    )  # fmt: skip
    consent_record_opt_out(
        organization_id=org.pk, phone=families["eve"].phone, source=ConsentSource.STAFF,
        actor_id=alice.pk, text="asked at the desk",
    )  # fmt: skip
    pipeline.run(include_deferred=True)
    refused = BroadcastRecipient.objects.filter(status=RecipientStatus.REFUSED)
    reasons = {r.phone: r.reason.split(":")[0] for r in refused}
    assert reasons == {families["ann"].phone: "do_not_call", families["eve"].phone: "opted_out"}
    assert not Call.objects.filter(phone__in=list(reasons)).exists()


def test_a_call_queued_before_an_opt_out_is_checked_again_before_it_is_placed(
    org: Any, alice: Any, callable_number: Any, families: dict[str, Contact],
    django_capture_on_commit_callbacks: Any,
) -> None:  # fmt: skip
    from openline.messaging.services.calls import call_dispatch, call_script, call_send
    from openline.providers.sandbox.models import SandboxCall

    call = call_send(
        organization_id=org.pk, to=families["ann"].phone, number_id=callable_number.pk,
        script=call_script(say="Pool closed", seconds=5), time_limit=60,
    )  # fmt: skip
    voice_opt_out_record(
        organization_id=org.pk, phone=families["ann"].phone, source=ConsentSource.STAFF,
        actor_id=alice.pk, text="called the office",
    )  # fmt: skip
    call_dispatch(call_id=call.pk)
    call.refresh_from_db()
    assert (call.status, call.error_code) == (CallStatus.FAILED, "do_not_call")
    assert not SandboxCall.objects.exists()
    with pytest.raises(SendRefused) as refused:
        call_send(organization_id=org.pk, to=families["fay"].phone,
                  number_id=callable_number.pk, script=call.script, time_limit=60)  # fmt: skip
    assert refused.value.code == "no_opt_in"


def test_a_recording_is_measured_and_its_length_sets_the_minutes_reserved(
    org: Any, alice: Any, callable_number: Any, families: dict[str, Contact]
) -> None:
    recording = recording_save(
        organization_id=org.pk, actor_id=alice.pk, name="Snow day", data=_wav(95.2)
    )
    assert (recording.content_type, recording.seconds) == ("audio/wav", 96)
    assert recording_url(recording).endswith(f"/broadcasts/recordings/{recording.token}.wav")
    broadcast = _voice_draft(org, alice, callable_number, body="", recording_id=recording.pk)
    assert minutes_per_call(broadcast) == 3  # 30 s greeting + 96 s + 3 s prompt
    assert broadcast_preview(broadcast=broadcast).credits_needed == 7 * 3  # all but Fay


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"hello, this is not audio", "WAV or MP3"),
        (b"RIFF\x00\x00\x00\x00WAVEjunk", "cannot be read"),
        (b"RIFF" + b"\x00" * (11 * 1024 * 1024), "the limit is 10 MB"),
    ],
)
def test_files_that_are_not_playable_audio_are_refused_with_a_reason(
    data: bytes, message: str
) -> None:
    with pytest.raises(RecordingError) as refused:
        recording_probe(data)
    assert message in str(refused.value)


def test_too_long_or_too_short_recordings_and_bad_voice_drafts_are_refused(
    org: Any, alice: Any, other_org: Any, callable_number: Any, families: dict[str, Contact]
) -> None:
    with pytest.raises(RecordingError, match="the limit is 300"):
        recording_save(organization_id=org.pk, actor_id=alice.pk, name="x", data=_wav(301, 800))
    with pytest.raises(RecordingError, match="shorter than a second"):
        recording_save(organization_id=org.pk, actor_id=alice.pk, name="x", data=_wav(0.5))
    theirs = recording_save(organization_id=other_org.pk, actor_id=None, name="x", data=_wav(2))
    for kw, error in (
        ({"body": ""}, "record or upload"),
        ({"body": "", "recording_id": theirs.pk}, "not one of this organization's"),
        ({"language": "xx-XX"}, "language is one of"),
        ({"body": "x" * 1001}, "the limit is 1000"),
    ):
        with pytest.raises(BroadcastError, match=error):
            _voice_draft(org, alice, callable_number, **kw)


def test_only_managers_change_the_call_list_and_only_staff_entries_come_off_it(
    org: Any, alice: Any, bob: Any, families: dict[str, Contact]
) -> None:
    phone = families["ann"].phone
    with pytest.raises(ConsentError):
        voice_opt_out_record(organization_id=org.pk, phone=phone, source=ConsentSource.STAFF,
                             actor_id=bob.pk)  # fmt: skip
    first = voice_opt_out_record(organization_id=org.pk, phone=phone,
                                 source=ConsentSource.STAFF, actor_id=alice.pk)  # fmt: skip
    again = voice_opt_out_record(organization_id=org.pk, phone=phone,
                                 source=ConsentSource.STAFF, actor_id=alice.pk)  # fmt: skip
    assert again.pk == first.pk  # already on it: nothing added
    with pytest.raises(ConsentError, match="say why"):
        voice_opt_out_remove(organization_id=org.pk, phone=phone, actor_id=alice.pk, evidence=" ")
    voice_opt_out_remove(organization_id=org.pk, phone=phone, actor_id=alice.pk,
                         evidence="she asked for the reminders by phone again")  # fmt: skip
    assert voice_do_not_call_entry(organization_id=org.pk, phone=phone) is None


def test_calls_a_crashed_worker_left_are_placed_once_never_twice(
    org: Any, alice: Any, callable_number: Any, families: dict[str, Contact], pipeline: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:  # fmt: skip
    """The three places a kill -9 can leave a call: queued with its dispatch task lost (the
    worker died between the commit and the enqueue); marked calling with nothing placed (it
    died between the claim and the request); marked calling with the call placed but its
    id not stored (it died during the provider's answer, and with it the carrier's task).
    The sweep asks the provider: each is placed, or adopted, exactly once."""
    from datetime import timedelta

    from django.utils import timezone
    from django_tasks_db.models import DBTaskResult

    from openline.messaging.services.calls import (
        CALL_LOST_AFTER,
        CALL_STUCK_AFTER,
        _claim,
        call_script,
        call_send,
        call_urls,
        calls_reconcile,
    )
    from openline.providers.registry import get_provider
    from openline.providers.sandbox.models import SandboxCall

    script = call_script(say="Pool closed", seconds=5)

    def send(name: str) -> Call:
        return call_send(organization_id=org.pk, to=families[name].phone,
                         number_id=callable_number.pk, script=script, time_limit=60)  # fmt: skip

    lost = send("ann")
    with django_capture_on_commit_callbacks(execute=False):  # the enqueues never happen
        unplaced = send("eve")
        _claim(unplaced.pk)  # marked calling; the worker dies before place_call
        placed = send("cat")  # its voicemail takes it
        _claim(placed.pk)
    get_provider("sandbox").place_call(  # the provider takes it; the worker dies
        callable_number, to=placed.phone, urls=call_urls(placed), time_limit=60,
        idempotency_key=f"openline-call-{placed.pk}",
    )  # fmt: skip
    DBTaskResult.objects.all().delete()  # what the dead worker held, the carrier's task too
    now = timezone.now()
    assert calls_reconcile(now=now) == 0  # too soon to tell a lost task from a slow one
    later = now + CALL_LOST_AFTER + timedelta(seconds=1)
    pipeline.run(lambda: calls_reconcile(now=later), include_deferred=True)
    lost.refresh_from_db()
    assert lost.status == CallStatus.COMPLETED
    unplaced.refresh_from_db()
    assert unplaced.status == CallStatus.CALLING  # its worker may still be placing it: wait
    assert not SandboxCall.objects.filter(to=unplaced.phone).exists()

    stuck_past = now + CALL_STUCK_AFTER + timedelta(seconds=1)
    pipeline.run(lambda: calls_reconcile(now=stuck_past), include_deferred=True)
    pipeline.run(lambda: calls_reconcile(now=stuck_past), include_deferred=True)  # no-op
    for call in (lost, unplaced, placed):
        call.refresh_from_db()
        assert call.status == CallStatus.COMPLETED, call.phone
        assert SandboxCall.objects.filter(to=call.phone).count() == 1, call.phone
        carrier = SandboxCall.objects.get(to=call.phone)
        assert call.provider_call_id == carrier.provider_call_id
        assert call.duration > 0 and call.credits > 0
    assert "placed again" in unplaced.error_message
    assert (unplaced.attempts, placed.attempts) == (2, 1)


def test_a_call_whose_placing_timed_out_is_adopted_or_placed_after_a_grace(
    org: Any, alice: Any, callable_number: Any, families: dict[str, Contact], pipeline: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:  # fmt: skip
    """UNKNOWN (the request may have reached the provider): the provider's record is taken
    when it has one; with none, the call is placed once the provider has had time to list
    it. A call the provider has that never reports ends failed, never placed again."""
    from datetime import timedelta

    from django.utils import timezone
    from django_tasks_db.models import DBTaskResult

    from openline.messaging.services.calls import (
        CALL_NO_REPORT_AFTER,
        CALL_STUCK_AFTER,
        CALL_UNKNOWN_GRACE,
        call_script,
        call_send,
        calls_reconcile,
    )
    from openline.providers.sandbox.models import SandboxCall

    script = call_script(say="Pool closed", seconds=5)
    with django_capture_on_commit_callbacks(execute=False):
        timed_out = call_send(organization_id=org.pk, to=families["ann"].phone,
                              number_id=callable_number.pk, script=script,
                              time_limit=60)  # fmt: skip
    Call.objects.filter(pk=timed_out.pk).update(status=CallStatus.UNKNOWN, attempts=1)
    now = timezone.now()
    assert calls_reconcile(now=now + CALL_UNKNOWN_GRACE / 2) == 0  # not listed yet, maybe
    pipeline.run(lambda: calls_reconcile(now=now + CALL_UNKNOWN_GRACE * 2), include_deferred=True)
    timed_out.refresh_from_db()
    assert timed_out.status == CallStatus.COMPLETED
    assert SandboxCall.objects.filter(to=timed_out.phone).count() == 1

    # Placed and then silent: a ringing call whose carrier never reports again.
    with django_capture_on_commit_callbacks(execute=False):
        silent = call_send(organization_id=org.pk, to=families["eve"].phone,
                           number_id=callable_number.pk, script=script, time_limit=60)  # fmt: skip
    SandboxCall.objects.create(organization=org, number=callable_number, to=silent.phone,
                               provider_call_id="SCsilent", call_id=silent.pk,
                               status="completed")  # fmt: skip
    Call.objects.filter(pk=silent.pk).update(status=CallStatus.RINGING, attempts=1,
                                             provider_call_id="SCsilent")  # fmt: skip
    DBTaskResult.objects.all().delete()
    overdue = now + timedelta(seconds=60) + CALL_STUCK_AFTER * 2
    assert calls_reconcile(now=overdue) == 1  # the carrier's record: completed
    silent.refresh_from_db()
    assert silent.status == CallStatus.COMPLETED
    Call.objects.filter(pk=silent.pk).update(status=CallStatus.RINGING)
    SandboxCall.objects.filter(provider_call_id="SCsilent").delete()  # the provider forgot it
    assert calls_reconcile(now=overdue) == 0  # nobody to ask yet: wait
    much_later = now + timedelta(seconds=60) + CALL_NO_REPORT_AFTER * 2
    assert calls_reconcile(now=much_later) == 1
    silent.refresh_from_db()
    assert (silent.status, silent.error_code) == (CallStatus.FAILED, "no_report")
    assert not SandboxCall.objects.filter(to=silent.phone).exists()


def test_a_simulated_call_answered_and_left_open_ends_at_its_time_limit(
    org: Any, alice: Any, callable_number: Any, families: dict[str, Contact], pipeline: Any
) -> None:
    """The phone simulator answers a call and its page is closed mid-call: the sandbox
    carrier hangs up at the call's time limit, so the broadcast can finish."""
    from datetime import timedelta

    from django.utils import timezone

    from openline.messaging.services.calls import call_script, call_send
    from openline.providers.sandbox.models import SandboxCall
    from openline.providers.sandbox.tasks import carrier_call, sandbox_call_answer

    script = call_script(say="Pool closed", seconds=5)
    call = pipeline.run(lambda: call_send(organization_id=org.pk, to=families["ann"].phone,
                        number_id=callable_number.pk, script=script, time_limit=60))  # fmt: skip
    ringing = SandboxCall.objects.get(call_id=call.pk)
    assert sandbox_call_answer(ringing, "human") is not None  # answered in the simulator
    SandboxCall.objects.filter(pk=ringing.pk).update(
        answered_at=timezone.now() - timedelta(seconds=61)
    )
    pipeline.run(lambda: carrier_call.call(ringing.provider_call_id, True))
    call.refresh_from_db()
    assert (call.status, call.duration, call.credits) == (CallStatus.COMPLETED, 60, 1)

"""The voice broadcast pages: composing a call (a text read aloud or a recording uploaded to
the recordings endpoint), its draft with who can be called and what it costs, sending it and
reading each call's outcome in the progress bar, the log and its CSV; the public address the
provider fetches a recording from. Counselors, other organizations and signed-out visitors
get nothing, and bad files are refused with a reason, never a 500."""

from __future__ import annotations

import csv
import io
import wave
from datetime import time
from typing import Any

import pytest
from django.test import Client

from openline.billing.models import CreditKind
from openline.billing.services import credits_add
from openline.campaigns.models import Broadcast, BroadcastStatus, SendingWindow, VoiceRecording
from openline.campaigns.voice import recording_save, recording_url
from openline.contacts.models import ConsentSource, Contact, NumberType
from openline.contacts.services.consent import consent_record_opt_in
from openline.contacts.services.contacts import contact_create
from openline.contacts.services.tags import contact_set_tags, tag_get_or_create
from openline.contacts.services.voice import voice_opt_out_record

SAY = "The pool is closed today."


def _signed_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def wav(seconds: float, rate: int = 8000) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as audio:
        audio.setnchannels(1)
        audio.setsampwidth(2)
        audio.setframerate(rate)
        audio.writeframes(b"\x00\x00" * int(seconds * rate))
    return buffer.getvalue()


def _upload(client: Client, data: bytes, name: str = "closed.wav") -> Any:
    return client.post("/broadcasts/recordings", {"audio": io.BytesIO(data), "name": name[:-4]})


def _person(org: Any, admin: Any, phone: str, name: str, *, opt_in: bool = True, **kw: Any) -> Any:
    contact = contact_create(organization_id=org.pk, phone=phone, name=name, **kw)
    contact_set_tags(contact=contact, names=["swim"])
    if opt_in:
        consent_record_opt_in(
            organization_id=org.pk, phone=phone, source=ConsentSource.STAFF,
            evidence="registration form", actor_id=admin.pk,
        )  # fmt: skip
    return contact


@pytest.fixture
def families(org: Any, alice: Any, sandbox_number: Any) -> dict[str, Contact]:
    """Phones ending in the sandbox's call outcomes; a landline without consent (called);
    a number on the do-not-call list (left out)."""
    sandbox_number.calls_per_second = 100.0
    sandbox_number.save(update_fields=["calls_per_second"])
    SendingWindow.objects.create(organization=org, start=time(0, 0), end=time(23, 59, 59))
    people = {
        "ann": _person(org, alice, "+12125550110", "Ann Lee"),  # answers
        "ben": _person(org, alice, "+12125550001", "Ben Ortiz"),  # busy
        "cat": _person(org, alice, "+12125550003", "Cat Wu"),  # voicemail
        "dan": _person(org, alice, "+12125550009", "Dan Roe"),  # presses 9
        "eve": _person(  # a landline without consent: called all the same
            org, alice, "+12125550111", "Eve Park", opt_in=False, number_type=NumberType.LANDLINE
        ),
        "hal": _person(org, alice, "+12125550114", "Hal Yun"),
    }
    voice_opt_out_record(
        organization_id=org.pk, phone=people["hal"].phone, source=ConsentSource.STAFF,
        actor_id=alice.pk, text="asked on the phone not to be called",
    )  # fmt: skip
    return people


def _compose(client: Client, org: Any, number: Any, **fields: Any) -> Any:
    swim = tag_get_or_create(organization_id=org.pk, name="swim")
    data = {
        "name": "Pool closed (call)", "channel": "voice", "include_tags": [swim.pk],
        "numbers": [number.pk], "reply_mode": "queue", "language": "en-US", **fields,
    }  # fmt: skip
    return client.post("/broadcasts/new", data)


# --- composing -----------------------------------------------------------------------------


def test_the_compose_page_offers_a_text_or_a_call_with_a_recorder_and_languages(
    alice: Any, sandbox_number: Any
) -> None:
    page = _signed_in(alice).get("/broadcasts/new").content.decode()
    assert 'value="sms"' in page and "Text (SMS)" in page
    assert 'value="voice"' in page and "Voice call" in page
    assert 'id="record-start"' in page and 'id="recording-file"' in page
    assert 'data-upload-url="/broadcasts/recordings"' in page
    assert "Spanish (US)" in page and 'name="say"' in page
    assert "/static/wavefile/wavefile.js" in page and "/static/campaigns/compose.js" in page
    assert "<script>" not in page and "style=" not in page  # the content policy forbids them


def test_the_wav_encoder_from_npm_is_served(client: Client) -> None:
    answer = client.get("/static/wavefile/wavefile.js")
    assert answer.status_code == 200
    assert b"WaveFile" in b"".join(answer)  # type: ignore[attr-defined]


def test_an_admin_composes_a_call_read_aloud_and_the_draft_says_who_and_what_it_costs(
    org: Any, alice: Any, sandbox_number: Any, families: dict[str, Contact]
) -> None:
    client = _signed_in(alice)
    answer = _compose(client, org, sandbox_number, say=SAY, language="es-US")
    assert answer.status_code == 302, answer.content.decode()[:2000]
    broadcast = Broadcast.objects.get()
    assert (broadcast.channel, broadcast.body, broadcast.language) == ("voice", SAY, "es-US")
    assert broadcast.recording is None
    page = client.get(f"/broadcasts/{broadcast.pk}/").content.decode()
    assert "Reads aloud in Spanish (US)" in page and SAY in page
    assert "Numbers that can be called" in page
    # Ann, Ben, Cat, Dan and Eve's landline; Hal is on the do-not-call list.
    assert 'data-testid="selected">6<' in page and 'data-testid="eligible">5<' in page
    assert "On the voice do-not-call list" in page
    assert 'data-testid="seconds">8<' in page and 'data-testid="minutes">1<' in page
    assert 'data-testid="needed">5<' in page and 'data-testid="available">0<' in page
    assert "Not enough credits" in page and "5 short" in page
    assert "Send now to 5" in page
    assert 'data-testid="sample"' not in page  # no text sample for a call


def test_a_call_needs_a_recording_or_a_text(
    org: Any, alice: Any, sandbox_number: Any, families: dict[str, Contact]
) -> None:
    answer = _compose(_signed_in(alice), org, sandbox_number, say="  ")
    assert answer.status_code == 422
    assert "Record or upload a message, or write a text to read." in answer.content.decode()
    assert not Broadcast.objects.exists()


def test_a_text_message_still_needs_its_text(
    org: Any, alice: Any, sandbox_number: Any, families: dict[str, Contact]
) -> None:
    answer = _compose(_signed_in(alice), org, sandbox_number, channel="sms", body="")
    assert answer.status_code == 422 and "Write the message." in answer.content.decode()


def test_an_uploaded_wav_becomes_the_calls_recording_with_a_player(
    org: Any, alice: Any, sandbox_number: Any, families: dict[str, Contact]
) -> None:
    client = _signed_in(alice)
    uploaded = _upload(client, wav(12))
    assert uploaded.status_code == 200, uploaded.content
    data = uploaded.json()
    recording = VoiceRecording.objects.get(pk=data["id"])
    assert data == {
        "id": recording.pk, "name": "closed", "seconds": 12,
        "url": f"/broadcasts/recordings/{recording.token}.wav",
    }  # fmt: skip
    assert recording.organization_id == org.pk and recording.created_by_id == alice.pk
    answer = _compose(client, org, sandbox_number, recording_id=recording.pk)
    assert answer.status_code == 302
    broadcast = Broadcast.objects.get()
    assert broadcast.recording_id == recording.pk and broadcast.body == ""
    page = client.get(f"/broadcasts/{broadcast.pk}/").content.decode()
    assert "Plays the recording “closed” (12 seconds)" in page
    assert f'src="/broadcasts/recordings/{recording.token}.wav"' in page
    assert 'data-testid="seconds">15<' in page  # 12 s and the prompt


def test_a_form_sent_back_with_a_mistake_keeps_its_recording(
    org: Any, alice: Any, sandbox_number: Any, families: dict[str, Contact]
) -> None:
    client = _signed_in(alice)
    recording_id = _upload(client, wav(3)).json()["id"]
    answer = _compose(client, org, sandbox_number, recording_id=recording_id, name="")
    page = answer.content.decode()
    assert answer.status_code == 422
    assert "Recording ready: “closed”, 3 seconds." in page
    assert f'value="{recording_id}"' in page


def test_a_call_cannot_play_another_organizations_recording(
    org: Any, alice: Any, charlie: Any, other_org: Any, other_number: Any
) -> None:
    theirs = recording_save(organization_id=org.pk, actor_id=alice.pk, name="x", data=wav(2))
    answer = _compose(_signed_in(charlie), other_org, other_number, recording_id=theirs.pk)
    assert answer.status_code == 422
    assert "not one of this organization" in answer.content.decode()
    assert not Broadcast.objects.exists()


# --- the recordings endpoint ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"hello, not a sound", "Upload a WAV or MP3 file (phones play only those)."),
        (b"RIFF\x10\x00\x00\x00WAVEjunkjunkjunk", "This WAV file cannot be read"),
        (b"\xff\xfb\x90\x00" + b"\x00" * 64, "This MP3 file cannot be read"),
        (wav(0.5), "The recording is shorter than a second."),
        (wav(301), "The recording is 301 seconds; the limit is 300."),
        (b"\x00" * (12 * 1024 * 1024), "The file is 12 MB; the limit is 10 MB."),
    ],
)
def test_files_that_are_not_a_usable_recording_are_refused_with_the_reason(
    alice: Any, sandbox_number: Any, data: bytes, error: str
) -> None:
    answer = _upload(_signed_in(alice), data)
    assert answer.status_code == 400
    assert answer.json()["error"].startswith(error)
    assert not VoiceRecording.objects.exists()


def test_an_upload_without_a_file_is_refused(alice: Any) -> None:
    answer = _signed_in(alice).post("/broadcasts/recordings", {"name": "nothing"})
    assert answer.status_code == 400
    assert answer.json() == {"error": "Choose a WAV or MP3 file, or record one."}


def test_only_signed_in_managers_upload_recordings(
    client: Client, bob: Any, sue: Any, charlie: Any, org: Any
) -> None:
    signed_out = _upload(client, wav(2))
    assert signed_out.status_code == 401 and "signed out" in signed_out.json()["error"]
    counselor = _upload(_signed_in(bob), wav(2))
    assert counselor.status_code == 403
    assert not VoiceRecording.objects.exists()
    assert _upload(_signed_in(sue), wav(2)).status_code == 200  # a supervisor
    theirs = _upload(_signed_in(charlie), wav(2))  # another organization's, for itself
    assert VoiceRecording.objects.get(pk=theirs.json()["id"]).organization_id != org.pk
    assert _signed_in(sue).get("/broadcasts/recordings").status_code == 405  # nothing listed


def test_the_upload_needs_the_csrf_token(alice: Any) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    assert _upload(client, wav(2)).status_code == 403
    assert not VoiceRecording.objects.exists()


# --- the public address of a recording -----------------------------------------------------


def test_the_provider_fetches_a_recording_by_its_token_without_signing_in(
    client: Client, org: Any, alice: Any
) -> None:
    data = wav(2)
    recording = recording_save(organization_id=org.pk, actor_id=alice.pk, name="x", data=data)
    path = recording_url(recording).removeprefix("http://127.0.0.1:8000")
    assert path == f"/broadcasts/recordings/{recording.token}.wav"
    answer = client.get(path)
    assert answer.status_code == 200 and answer["Content-Type"] == "audio/wav"
    assert answer.content == data
    assert client.head(path).status_code == 200
    assert client.post(path).status_code == 405


def test_an_mp3_recording_is_served_as_mpeg(client: Client, org: Any, alice: Any) -> None:
    recording = VoiceRecording.objects.create(
        organization=org, name="mp3", audio=b"ID3fake", content_type="audio/mpeg",
        seconds=3, token="t" * 43,
    )  # fmt: skip
    assert recording_url(recording).endswith(f"/broadcasts/recordings/{'t' * 43}.mp3")
    answer = client.get(f"/broadcasts/recordings/{'t' * 43}.mp3")
    assert answer.status_code == 200 and answer["Content-Type"] == "audio/mpeg"
    assert client.get(f"/broadcasts/recordings/{'t' * 43}.wav").status_code == 404


def test_unknown_tokens_and_listings_are_not_found(client: Client, org: Any, alice: Any) -> None:
    recording = recording_save(organization_id=org.pk, actor_id=alice.pk, name="x", data=wav(2))
    for path in (
        f"/broadcasts/recordings/{'x' * 43}.wav",
        f"/broadcasts/recordings/{recording.token[:-1]}Z.wav",
        f"/broadcasts/recordings/{recording.token}.ogg",
        f"/broadcasts/recordings/{recording.token}",
        "/broadcasts/recordings/",
        f"/broadcasts/recordings/{recording.pk}.wav",
    ):
        assert client.get(path).status_code == 404, path


# --- sending, the progress bar, the log and its CSV ----------------------------------------


@pytest.fixture
def sent(
    org: Any, alice: Any, sandbox_number: Any, families: dict[str, Contact], pipeline: Any
) -> Broadcast:
    credits_add(
        organization_id=org.pk, credits=20, note="inv", actor_id=alice.pk,
        kind=CreditKind.PURCHASE,
    )  # fmt: skip
    client = _signed_in(alice)
    assert _compose(client, org, sandbox_number, say=SAY).status_code == 302
    broadcast = Broadcast.objects.get()
    answer = pipeline.run(
        lambda: client.post(f"/broadcasts/{broadcast.pk}/send", {"when": "now"}),
        include_deferred=True,
    )
    assert answer.status_code == 302
    broadcast.refresh_from_db()
    assert broadcast.status == BroadcastStatus.FINISHED
    return broadcast


def test_a_sent_call_shows_each_outcome_in_the_bar_and_the_log(
    alice: Any, families: dict[str, Contact], sent: Broadcast
) -> None:
    client = _signed_in(alice)
    page = client.get(f"/broadcasts/{sent.pk}/").content.decode()
    assert 'data-total="5"' in page and 'data-done="5"' in page
    assert 'data-bucket="answered">3<' in page  # Ann, Dan (who pressed 9), Eve
    assert 'data-bucket="voicemail">1<' in page and 'data-bucket="busy">1<' in page
    assert "<dt>No answer</dt>" in page and 'href="?status=no_answer"' in page
    assert "Pressed 9" in page and '<h2 id="log-heading">Calls</h2>' in page
    busy = client.get(f"/broadcasts/{sent.pk}/?status=busy").content.decode()
    assert "Ben Ortiz" in busy and "Ann Lee" not in busy
    voicemail = client.get(f"/broadcasts/{sent.pk}/?status=voicemail").content.decode()
    assert "Cat Wu" in voicemail and "Voicemail" in voicemail and "16 s" in voicemail
    part = client.get(f"/broadcasts/{sent.pk}/progress").content.decode()
    assert 'data-bucket="answered">3<' in part and "<dt>Voicemail</dt>" in part
    listing = client.get("/broadcasts/").content.decode()
    assert "Voice call" in listing


def test_the_csv_log_of_a_call_has_outcome_duration_credits_and_pressed_9(
    alice: Any, families: dict[str, Contact], sent: Broadcast
) -> None:
    answer = _signed_in(alice).get(f"/broadcasts/{sent.pk}/log.csv")
    rows = list(csv.reader(io.StringIO(b"".join(answer).decode("utf-8-sig"))))
    assert rows[0] == [
        "recipient", "phone", "from", "queued_at", "outcome", "duration_seconds", "credits",
        "pressed_9", "error",
    ]  # fmt: skip
    by_name = {row[0]: row for row in rows[1:]}
    assert by_name["Ann Lee"][4:8] == ["answered", "8", "1", ""]
    assert by_name["Ben Ortiz"][4:8] == ["busy", "0", "0", ""]
    assert by_name["Cat Wu"][4:8] == ["voicemail", "16", "1", ""]
    assert by_name["Dan Roe"][4] == "answered" and by_name["Dan Roe"][7] == "yes"
    assert "Hal Yun" not in by_name  # never planned: on the do-not-call list


def test_counselors_and_other_organizations_see_no_voice_broadcast(
    bob: Any, charlie: Any, families: dict[str, Contact], sent: Broadcast
) -> None:
    for path in ("/", "/progress", "/log.csv"):
        assert _signed_in(bob).get(f"/broadcasts/{sent.pk}{path}").status_code == 403
        assert _signed_in(charlie).get(f"/broadcasts/{sent.pk}{path}").status_code == 404

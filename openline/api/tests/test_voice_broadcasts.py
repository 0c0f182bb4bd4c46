"""Voice broadcasts through the API: a recording uploaded (WAV or MP3, refused otherwise),
a call read aloud or playing it, its preview in minutes, progress and log by call outcome;
nothing of another organization's."""

from __future__ import annotations

import io
import wave
from datetime import time
from typing import Any

import pytest

from openline.api.tests.conftest import ApiClient
from openline.billing.models import CreditKind
from openline.billing.services import credits_add
from openline.campaigns.models import SendingWindow
from openline.contacts.models import NumberType
from openline.contacts.services.contacts import contact_create
from openline.contacts.services.tags import contact_set_tags


def _wav(seconds: float) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as audio:
        audio.setnchannels(1)
        audio.setsampwidth(2)
        audio.setframerate(8000)
        audio.writeframes(b"\x00\x00" * int(seconds * 8000))
    return buffer.getvalue()


def _upload(api: ApiClient, data: bytes, name: str = "snow.wav") -> Any:
    upload = io.BytesIO(data)
    upload.name = name
    return api.client.post(
        "/api/v1/recordings", {"file": upload, "name": "Snow day"}, **api.headers
    )


@pytest.fixture
def landlines(org: Any, alice: Any, sandbox_number: Any) -> list[Any]:
    SendingWindow.objects.create(organization=org, start=time(0, 0), end=time(23, 59, 59))
    credits_add(organization_id=org.pk, credits=30, note="invoice", actor_id=alice.pk,
                kind=CreditKind.PURCHASE)  # fmt: skip
    sandbox_number.calls_per_second = 100.0
    sandbox_number.save(update_fields=["calls_per_second"])
    people = []
    for phone, name in (("+12125550131", "Ann"), ("+12125550001", "Ben")):  # Ben: busy
        contact = contact_create(organization_id=org.pk, phone=phone, name=name,
                                 number_type=NumberType.LANDLINE)  # fmt: skip
        contact_set_tags(contact=contact, names=["swim"])
        people.append(contact)
    return people


def test_a_call_with_an_uploaded_recording_is_previewed_sent_and_logged_by_outcome(
    api: ApiClient, other_api: ApiClient, sandbox_number: Any, landlines: list[Any],
    pipeline: Any,
) -> None:  # fmt: skip
    uploaded = _upload(api, _wav(40))
    assert uploaded.status_code == 201, uploaded.content
    recording = uploaded.json()
    assert (recording["seconds"], recording["content_type"]) == (40, "audio/wav")
    create = {
        "name": "Snow day (call)",
        "channel": "voice",
        "recording_id": recording["id"],
        "number_ids": [sandbox_number.pk],
        "phones": [p.phone for p in landlines],
    }
    # Their token cannot use our recording.
    theirs = other_api.post("/broadcasts", {**create, "number_ids": [sandbox_number.pk]})
    assert theirs.status_code == 422
    created = api.post("/broadcasts", create)
    assert created.status_code == 201, created.content
    broadcast = created.json()
    assert (broadcast["channel"], broadcast["recording_id"]) == ("voice", recording["id"])
    preview = api.get(f"/broadcasts/{broadcast['id']}/preview").json()
    # 40 s + 3 s prompt + 30 s greeting: 2 minutes a call, for 2 landlines
    assert (preview["eligible"], preview["minutes_per_call"]) == (2, 2)
    assert preview["credits_needed"] == 4 and preview["message_seconds"] == 43
    sent = pipeline.run(lambda: api.post(f"/broadcasts/{broadcast['id']}/send"),
                        include_deferred=True)  # fmt: skip
    assert sent.status_code == 200, sent.content
    done = api.get(f"/broadcasts/{broadcast['id']}").json()
    assert done["status"] == "finished"
    assert done["progress"]["counts"]["answered"] == 1 and done["progress"]["counts"]["busy"] == 1
    log = api.get(f"/broadcasts/{broadcast['id']}/messages").json()["items"]
    by_phone = {row["phone"]: row for row in log}
    assert by_phone["+12125550131"]["status"] == "answered"
    assert by_phone["+12125550131"]["duration"] == 43 and by_phone["+12125550131"]["call_id"]
    assert by_phone["+12125550001"]["status"] == "busy"
    assert by_phone["+12125550001"]["credits"] == 0 and by_phone["+12125550131"]["credits"] == 1
    busy = api.get(f"/broadcasts/{broadcast['id']}/messages", status="busy").json()
    assert [row["phone"] for row in busy["items"]] == ["+12125550001"]
    assert other_api.get(f"/broadcasts/{broadcast['id']}/messages").status_code == 404


@pytest.mark.parametrize(
    ("data", "name", "status", "message"),
    [
        (b"not audio at all", "x.wav", 422, "WAV or MP3"),
        (b"RIFF\x00\x00\x00\x00WAVEbroken", "x.wav", 422, "cannot be read"),
        (b"\x00" * (10 * 1024 * 1024 + 1), "big.wav", 413, "over 10 MB"),
    ],
)
def test_a_file_that_is_not_playable_audio_is_refused_with_the_reason(
    api: ApiClient, data: bytes, name: str, status: int, message: str
) -> None:
    refused = _upload(api, data, name)
    assert refused.status_code == status and message in refused.content.decode()


def test_a_call_read_aloud_needs_a_text_or_a_recording_and_a_known_language(
    api: ApiClient, sandbox_number: Any, landlines: list[Any]
) -> None:
    base = {"name": "x", "channel": "voice", "number_ids": [sandbox_number.pk],
            "phones": [landlines[0].phone]}  # fmt: skip
    assert api.post("/broadcasts", base).status_code == 422
    assert api.post("/broadcasts", {**base, "body": "Hi", "language": "xx"}).status_code == 422
    made = api.post("/broadcasts", {**base, "body": "Hola", "language": "es-US"})
    assert made.status_code == 201 and made.json()["language"] == "es-US"
    assert api.post("/broadcasts", {**base, "channel": "fax", "body": "x"}).status_code == 422

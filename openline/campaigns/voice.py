"""Voice broadcasts: the recorded message (or text read aloud), what a call costs and how
long it may last, and handing a recipient to the call service.

Credits are per started minute per recipient (billing.credits_for_voice). Queuing reserves,
for everyone, the minutes the message takes plus a voicemail greeting before it
(answering-machine detection plays the message after the greeting); each call's time limit
is those minutes, so no call can cost more than was reserved. Settling debits what the
provider billed."""

from __future__ import annotations

import io
import math
import secrets
import wave
from typing import Any

from django.conf import settings
from django.db import transaction

from openline.campaigns.models import Broadcast, BroadcastRecipient, VoiceRecording
from openline.messaging.models import Call
from openline.messaging.services.calls import MAX_SAY, OPT_OUT_PROMPT, call_script, call_send

MAX_RECORDING_BYTES = 10 * 1024 * 1024
MAX_RECORDING_SECONDS = 300
# Seconds reserved in front of the message for a voicemail greeting, and for the prompt.
GREETING_ALLOWANCE = 30
PROMPT_SECONDS = 3
WORDS_PER_SECOND = 2.5  # text-to-speech reads about 150 words a minute


class RecordingError(ValueError):
    code = "invalid_recording"


def _wav_seconds(data: bytes) -> float:
    try:
        with wave.open(io.BytesIO(data)) as audio:
            rate = audio.getframerate()
            return audio.getnframes() / rate if rate else 0.0
    except (wave.Error, EOFError, RuntimeError, ValueError) as exc:  # RuntimeError: truncated
        raise RecordingError(f"this WAV file cannot be read: {exc}") from None


def _mp3_seconds(data: bytes) -> float:
    from mutagen import MutagenError
    from mutagen.mp3 import MP3

    try:
        info: Any = MP3(io.BytesIO(data)).info  # type: ignore[no-untyped-call]
        return float(info.length)
    except MutagenError as exc:
        raise RecordingError(f"this MP3 file cannot be read: {exc}") from None


def recording_probe(data: bytes) -> tuple[str, float]:
    """(content type, seconds) of a WAV or MP3 file; RecordingError for anything else."""
    if len(data) > MAX_RECORDING_BYTES:
        raise RecordingError(
            f"the file is {len(data) // (1024 * 1024)} MB; the limit is "
            f"{MAX_RECORDING_BYTES // (1024 * 1024)} MB"
        )
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "audio/wav", _wav_seconds(data)
    if data[:3] == b"ID3" or (len(data) > 1 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0):
        return "audio/mpeg", _mp3_seconds(data)
    raise RecordingError("upload a WAV or MP3 file (phones play only those)")


@transaction.atomic
def recording_save(
    *, organization_id: int, actor_id: int | None, name: str, data: bytes
) -> VoiceRecording:
    content_type, seconds = recording_probe(data)
    if seconds < 1:
        raise RecordingError("the recording is shorter than a second")
    if seconds > MAX_RECORDING_SECONDS:
        raise RecordingError(
            f"the recording is {seconds:.0f} seconds; the limit is {MAX_RECORDING_SECONDS}"
        )
    name = " ".join((name or "").split())[:120] or "Recording"
    return VoiceRecording.objects.create(
        organization_id=organization_id,
        name=name,
        audio=data,
        content_type=content_type,
        seconds=math.ceil(seconds),
        token=secrets.token_urlsafe(32),
        created_by_id=actor_id,
    )


def recording_url(recording: VoiceRecording) -> str:
    """Where the provider fetches it (no sign-in: the token is the credential)."""
    extension = "mp3" if recording.content_type == "audio/mpeg" else "wav"
    return f"{settings.PUBLIC_URL}/broadcasts/recordings/{recording.token}.{extension}"


def say_check(text: str) -> str:
    text = " ".join((text or "").split())
    if len(text) > MAX_SAY:
        raise RecordingError(f"the text to read is {len(text)} characters; the limit is {MAX_SAY}")
    return text


def message_seconds(broadcast: Broadcast) -> int:
    """About how long the message plays, the "press 9" prompt included."""
    if broadcast.recording is not None:
        seconds = broadcast.recording.seconds
    else:
        words = len(broadcast.body.split()) + len(OPT_OUT_PROMPT.split())
        seconds = math.ceil(words / WORDS_PER_SECOND)
    return seconds + PROMPT_SECONDS


def minutes_per_call(broadcast: Broadcast) -> int:
    """The minutes reserved for each call: a greeting, then the whole message."""
    return math.ceil((message_seconds(broadcast) + GREETING_ALLOWANCE) / 60)


def script_for(broadcast: Broadcast) -> dict[str, Any]:
    if broadcast.recording is not None:
        return call_script(
            play_url=recording_url(broadcast.recording), seconds=message_seconds(broadcast)
        )
    return call_script(
        say=broadcast.body, language=broadcast.language, seconds=message_seconds(broadcast)
    )


def voice_call_recipient(broadcast: Broadcast, recipient: BroadcastRecipient) -> Call:
    """Hand one recipient to the call service (raises SendRefused like message_send)."""
    return call_send(
        organization_id=broadcast.organization_id,
        to=recipient.phone,
        number_id=recipient.number_id,
        script=script_for(broadcast),
        time_limit=minutes_per_call(broadcast) * 60,
    )

"""The provider protocol: every SMS transport is an adapter with this shape.

Adapters are pure translators between a provider's wire format and OpenLine's types; the
pipelines (intake, processing, dispatch) own storage, retries and consent."""

from __future__ import annotations

import abc
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from openline.providers.models import Number


class WebhookError(ValueError):
    """The webhook is malformed; answer 400 with this message."""


class SignatureError(PermissionError):
    """The webhook signature is missing or wrong; answer 403."""


class ProviderError(Exception):
    """A send (or a look-up) failed. ``permanent`` errors are not retried; ``opted_out``
    records an opt-out.

    ``outcome_unknown``: the request may have reached the provider and been accepted (a
    timeout after it was sent, a connection dropped mid-request, a 5xx). Sending again could
    text the person twice, so dispatch asks the provider (``find_sent``) instead. Without it
    the request surely did not arrive or was refused before acceptance (connection refused,
    DNS failure, 429, a 4xx rejection), and trying again is safe."""

    def __init__(
        self,
        message: str,
        *,
        code: str = "",
        permanent: bool = False,
        opted_out: bool = False,
        retry_after: float | None = None,
        outcome_unknown: bool = False,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.permanent = permanent or opted_out
        self.opted_out = opted_out
        self.retry_after = retry_after
        # A refusal is an answer: its outcome is known.
        self.outcome_unknown = outcome_unknown and not self.permanent


@dataclass(frozen=True, slots=True)
class InboundMessage:
    provider_message_id: str
    from_number: str
    to_number: str
    body: str
    media_urls: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    provider_message_id: str
    status: str  # one of messaging.models.MessageStatus values
    error_code: str = ""
    opted_out: bool = False  # the carrier reports the recipient opted out


@dataclass(frozen=True, slots=True)
class SendResult:
    provider_message_id: str
    status: str = "sent"
    error_code: str = ""  # the provider's, when a looked-up message had failed


@dataclass(frozen=True, slots=True)
class CallScript:
    """What a call plays once answered: a recording (``play_url``, fetched by the
    provider) or ``say`` read by the provider's text-to-speech in ``language``; then, for a
    person (not a voicemail), "press 9 to stop these calls" when ``opt_out_prompt``."""

    play_url: str = ""
    say: str = ""
    language: str = "en-US"
    opt_out_prompt: str = ""
    seconds: int = 0  # about how long it plays (a simulated carrier's call lasts this long)


@dataclass(frozen=True, slots=True)
class CallResult:
    provider_call_id: str
    status: str = "calling"


@dataclass(frozen=True, slots=True)
class CallUpdate:
    """A call's status callback, mapped onto messaging.models.CallStatus values.
    ``answered_by``: "human", "machine" or "" (not detected); ``duration``: the billed
    seconds of a completed call."""

    provider_call_id: str
    status: str
    answered_by: str = ""
    duration: int = 0
    error_code: str = ""


@dataclass(frozen=True, slots=True)
class CallUrls:
    """Where the provider asks what to play (``answer``), reports a key press
    (``keypress``) and posts status callbacks (``status``) for one call."""

    answer: str
    keypress: str
    status: str


@dataclass(frozen=True, slots=True)
class WebhookRequest:
    """What an adapter may look at when verifying a webhook."""

    url: str  # the public URL the provider called (from OPENLINE_PUBLIC_URL)
    params: Mapping[str, list[str]]
    headers: Mapping[str, str]
    raw_body: bytes = b""
    extra: dict[str, str] = field(default_factory=dict)


class Provider(abc.ABC):
    slug: ClassVar[str]
    name: ClassVar[str]
    # Config keys an operator may set with `openline number add --config key=value`.
    config_keys: ClassVar[tuple[str, ...]] = ()
    secret_keys: ClassVar[tuple[str, ...]] = ()
    # A simulated carrier reaches no real phone: consent recorded through it counts only
    # for its own numbers (see contacts.models.ConsentEvent.simulated).
    simulated: ClassVar[bool] = False

    @abc.abstractmethod
    def verify(self, number: Number, request: WebhookRequest) -> None:
        """Raise SignatureError unless the request really came from the provider."""

    @abc.abstractmethod
    def parse_inbound(self, request: WebhookRequest) -> InboundMessage:
        """Raise WebhookError when the request is not a well-formed inbound message."""

    @abc.abstractmethod
    def parse_status(self, request: WebhookRequest) -> list[StatusUpdate]:
        """Statuses mapped onto MessageStatus values; raise WebhookError when malformed."""

    @abc.abstractmethod
    def send(
        self, number: Number, *, to: str, body: str, status_url: str, idempotency_key: str
    ) -> SendResult:
        """Hand one message to the provider; raise ProviderError (permanent, retryable, or
        ``outcome_unknown`` when the request may have been accepted).

        ``idempotency_key`` is the same for every attempt at one message, for providers that
        honour one (Telnyx's ``Idempotency-Key`` header replays the first answer; the
        sandbox derives its message id from it). Twilio documents none for creating
        messages, so its adapter ignores it and unknown outcomes are settled by
        ``find_sent``."""

    def find_sent(
        self,
        number: Number,
        *,
        to: str,
        body: str,
        since: datetime,
        exclude: Collection[str] = (),
    ) -> SendResult | None:
        """The provider's record of a text from ``number`` to ``to`` with exactly ``body``,
        created at or after ``since``, for a send whose outcome is unknown.

        Ids in ``exclude`` belong to other OpenLine messages and never match. Among several
        matches the oldest is returned: reconciliation settles the oldest message first,
        so identical texts pair up in the order they were sent. None means the provider
        has no such record; raise ProviderError when it cannot tell (down, unreachable,
        an error). This default cannot look anything up, so it always raises."""
        raise ProviderError(f"{self.name} cannot look up sent messages", code="no_lookup")

    def fetch_status(self, number: Number, provider_message_id: str) -> str | None:
        """The provider's current status of a message, for reconciliation; None if unknown."""
        return None

    # --- voice (broadcast calls) -----------------------------------------------------

    def place_call(
        self, number: Number, *, to: str, urls: CallUrls, time_limit: int, idempotency_key: str
    ) -> CallResult:
        """Start one outbound call; the provider asks ``urls.answer`` what to play once it
        is answered (after a voicemail greeting ends: answering-machine detection) and
        posts its statuses to ``urls.status``. ``time_limit``: seconds at most. Raise
        ProviderError like ``send``. This default has no voice."""
        raise ProviderError(f"{self.name} cannot place calls", code="no_voice", permanent=True)

    def find_call(
        self,
        number: Number,
        *,
        to: str,
        since: datetime,
        exclude: Collection[str] = (),
    ) -> CallUpdate | None:
        """The provider's record of a call from ``number`` to ``to`` created at or after
        ``since``, for a call whose worker died (or whose request timed out) before the
        provider's answer was stored: its id and status as a ``CallUpdate`` (a final one
        with its billed seconds and who answered, when the provider says).

        Ids in ``exclude`` belong to other OpenLine calls and never match; among several
        matches the oldest is returned. None means the provider has no such call, so
        placing it is safe; raise ProviderError when it cannot tell. This default cannot
        look anything up, so it always raises."""
        raise ProviderError(f"{self.name} cannot look up calls", code="no_lookup")

    def fetch_call(self, number: Number, provider_call_id: str) -> CallUpdate | None:
        """The provider's current record of a call it has, for a call whose final status
        never came (a lost callback); None when it cannot say."""
        return None

    def parse_call_status(self, request: WebhookRequest) -> CallUpdate:
        """A call status callback; raise WebhookError when malformed."""
        raise WebhookError(f"{self.name} has no voice callbacks")

    def parse_answer(self, request: WebhookRequest) -> tuple[str, str]:
        """(provider call id, answered_by: "human" | "machine" | "") of an answer request."""
        raise WebhookError(f"{self.name} has no voice callbacks")

    def parse_keypress(self, request: WebhookRequest) -> tuple[str, str]:
        """(provider call id, the digits pressed) of a key-press callback."""
        raise WebhookError(f"{self.name} has no voice callbacks")

    def call_document(
        self, script: CallScript | None, *, keypress_url: str, goodbye: str = ""
    ) -> tuple[str, bytes]:
        """Content type and body telling the provider what to do on the call: play
        ``script`` (listening for a key press at ``keypress_url`` when it has an opt-out
        prompt), or say ``goodbye`` and hang up (``script`` None)."""
        raise WebhookError(f"{self.name} has no voice callbacks")

    def inbound_ack(self) -> tuple[str, bytes]:
        """Content type and body of the answer to an accepted inbound webhook."""
        return "text/plain", b""

    def validate_config(self, config: Mapping[str, str]) -> dict[str, str]:
        unknown = set(config) - set(self.config_keys)
        if unknown:
            raise ValueError(f"unknown config keys for {self.slug}: {', '.join(sorted(unknown))}")
        return dict(config)

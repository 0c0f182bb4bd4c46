"""The provider protocol: every SMS transport is an adapter with this shape.

Adapters are pure translators between a provider's wire format and OpenLine's types; the
pipelines (intake, processing, dispatch) own storage, retries and consent."""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from openline.providers.models import Number


class WebhookError(ValueError):
    """The webhook is malformed; answer 400 with this message."""


class SignatureError(PermissionError):
    """The webhook signature is missing or wrong; answer 403."""


class ProviderError(Exception):
    """A send failed. ``permanent`` errors are not retried; ``opted_out`` records an opt-out."""

    def __init__(
        self,
        message: str,
        *,
        code: str = "",
        permanent: bool = False,
        opted_out: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.permanent = permanent or opted_out
        self.opted_out = opted_out
        self.retry_after = retry_after


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
        """Hand one message to the provider; raise ProviderError (permanent or not)."""

    def fetch_status(self, number: Number, provider_message_id: str) -> str | None:
        """The provider's current status of a message, for reconciliation; None if unknown."""
        return None

    def inbound_ack(self) -> tuple[str, bytes]:
        """Content type and body of the answer to an accepted inbound webhook."""
        return "text/plain", b""

    def validate_config(self, config: Mapping[str, str]) -> dict[str, str]:
        unknown = set(config) - set(self.config_keys)
        if unknown:
            raise ValueError(f"unknown config keys for {self.slug}: {', '.join(sorted(unknown))}")
        return dict(config)

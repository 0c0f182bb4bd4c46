"""Providers are plugins, registered from settings.OPENLINE_PROVIDERS (dotted paths).

Also the one registration point the other way round: where an in-process carrier (the
sandbox) hands the status reports a real carrier would post to the status webhook."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Protocol

from django.conf import settings
from django.utils.module_loading import import_string

from openline.providers.base import CallScript, CallUpdate, Provider, StatusUpdate

if TYPE_CHECKING:
    from openline.providers.models import Number


class StatusReceiver(Protocol):
    def __call__(self, *, number: Number, updates: list[StatusUpdate]) -> int:
        """Apply ``updates`` for messages sent from ``number``, all in one transaction, and
        return how many of the reported messages it knows (0: not stored yet)."""
        ...


class VoiceReceiver(Protocol):
    """What the provider's voice callbacks reach (messaging.services.calls); for an
    in-process carrier that places calls to simulated phones (the sandbox)."""

    def answer(
        self, *, number: Number, call_id: int, provider_call_id: str, answered_by: str
    ) -> CallScript | None: ...

    def keypress(
        self, *, number: Number, call_id: int, provider_call_id: str, digits: str
    ) -> str: ...

    def status(self, *, number: Number, call_id: int, update: CallUpdate) -> bool: ...


_status_receiver: StatusReceiver | None = None
_voice_receiver: VoiceReceiver | None = None


@functools.cache
def _registry() -> dict[str, Provider]:
    providers: dict[str, Provider] = {}
    for path in settings.OPENLINE_PROVIDERS:
        provider = import_string(path)()
        if provider.slug in providers:
            raise RuntimeError(f"provider slug {provider.slug!r} registered twice")
        providers[provider.slug] = provider
    return providers


def get_provider(slug: str) -> Provider:
    try:
        return _registry()[slug]
    except KeyError:
        raise LookupError(f"unknown provider {slug!r}") from None


def provider_slugs() -> list[str]:
    return sorted(_registry())


def is_simulated(provider_slug: str) -> bool:
    """Whether numbers of this provider reach only simulated phones (the sandbox). A
    provider no longer installed counts as real: its consent is the stricter kind."""
    provider = _registry().get(provider_slug)
    return provider is not None and provider.simulated


def status_receiver_set(receiver: StatusReceiver | None) -> None:
    """Set at start-up by the app that owns messages (messaging's ``ready()``), so that
    providers, which sit below it, never import it."""
    global _status_receiver
    _status_receiver = receiver


def status_receive(*, number: Number, updates: list[StatusUpdate]) -> int:
    """Hand an in-process carrier's status reports to the receiver; see StatusReceiver."""
    if _status_receiver is None:
        raise RuntimeError("no status receiver is set: is openline.messaging installed?")
    return _status_receiver(number=number, updates=updates)


def voice_receiver_set(receiver: VoiceReceiver | None) -> None:
    """Set at start-up by messaging, like ``status_receiver_set``."""
    global _voice_receiver
    _voice_receiver = receiver


def voice_receiver() -> VoiceReceiver:
    if _voice_receiver is None:
        raise RuntimeError("no voice receiver is set: is openline.messaging installed?")
    return _voice_receiver

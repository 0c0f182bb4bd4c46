"""Providers are plugins, registered from settings.OPENLINE_PROVIDERS (dotted paths)."""

from __future__ import annotations

import functools

from django.conf import settings
from django.utils.module_loading import import_string

from openline.providers.base import Provider


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

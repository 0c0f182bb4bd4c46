from __future__ import annotations

from django.core.exceptions import ValidationError

from openline.contacts.phones import InvalidPhoneNumber, normalize_phone
from openline.core.models import Organization
from openline.providers.models import DEFAULT_SEGMENTS_PER_SECOND, Number, NumberKind
from openline.providers.registry import get_provider, provider_slugs


def number_add(
    *,
    organization: Organization,
    provider: str,
    e164: str,
    config: dict[str, str] | None = None,
    name: str = "",
    kind: str = NumberKind.LONG_CODE,
    segments_per_second: float | None = None,
    calls_per_second: float = 1.0,
) -> Number:
    try:
        adapter = get_provider(provider)
    except LookupError:
        raise ValidationError(
            f"unknown provider {provider!r}; choose one of {', '.join(provider_slugs())}"
        ) from None
    if kind not in NumberKind.values:
        raise ValidationError(f"kind must be one of {', '.join(NumberKind.values)}")
    if kind == NumberKind.SHORT_CODE:
        if not (e164.isdigit() and 3 <= len(e164) <= 8):
            raise ValidationError("a short code is 3 to 8 digits")
        normalized = e164
    else:
        try:
            normalized = normalize_phone(e164)
        except InvalidPhoneNumber as exc:
            raise ValidationError(str(exc)) from None
    try:
        clean_config = adapter.validate_config(config or {})
    except ValueError as exc:
        raise ValidationError(str(exc)) from None
    if Number.objects.filter(provider=provider, e164=normalized).exists():
        raise ValidationError(f"{normalized} is already connected")
    rate = (
        DEFAULT_SEGMENTS_PER_SECOND[NumberKind(kind)]
        if segments_per_second is None
        else segments_per_second
    )
    if rate <= 0:
        raise ValidationError("segments per second must be positive")
    if calls_per_second <= 0:
        raise ValidationError("calls per second must be positive")
    return Number.objects.create(
        organization=organization,
        provider=provider,
        e164=normalized,
        name=name,
        kind=kind,
        segments_per_second=rate,
        calls_per_second=calls_per_second,
        config=clean_config,
    )


def number_webhook_urls(number: Number) -> dict[str, str]:
    from django.conf import settings

    base = f"{settings.PUBLIC_URL}/hooks/{number.provider}/{number.webhook_key}"
    return {"inbound_url": f"{base}/inbound", "status_url": f"{base}/status"}

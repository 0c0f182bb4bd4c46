from __future__ import annotations

import pytest

from openline.providers import registry
from openline.providers.base import Provider
from openline.providers.sandbox.provider import SandboxProvider


@pytest.fixture
def fresh_registry():
    registry._registry.cache_clear()
    yield
    registry._registry.cache_clear()


def test_providers_come_from_settings(fresh_registry, settings):
    settings.OPENLINE_PROVIDERS = ["openline.providers.sandbox.provider.SandboxProvider"]
    assert registry.provider_slugs() == ["sandbox"]
    assert isinstance(registry.get_provider("sandbox"), SandboxProvider)
    with pytest.raises(LookupError, match="unknown provider 'twilio'"):
        registry.get_provider("twilio")


def test_two_providers_with_one_slug_are_refused(fresh_registry, settings):
    settings.OPENLINE_PROVIDERS = [
        "openline.providers.twilio.provider.TwilioProvider",
        "openline.providers.twilio.provider.TwilioProvider",
    ]
    with pytest.raises(RuntimeError, match="registered twice"):
        registry.provider_slugs()


def test_an_adapter_must_implement_the_whole_protocol():
    class Half(Provider):
        slug = "half"
        name = "Half"

        def verify(self, number, request):
            return None

    with pytest.raises(TypeError, match="abstract"):
        Half()


def test_messaging_receives_the_in_process_carriers_status_reports(monkeypatch):
    from openline.messaging.apps import carrier_status_receive

    assert registry._status_receiver is carrier_status_receive
    monkeypatch.setattr(registry, "_status_receiver", None)
    with pytest.raises(RuntimeError, match="no status receiver"):
        registry.status_receive(number=None, updates=[])

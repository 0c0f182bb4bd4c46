"""The sandbox carrier's send records, as dispatch and reconciliation use them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from openline.providers.registry import get_provider
from openline.providers.sandbox.models import SandboxMessage

PERSON = "+12025550111"

pytestmark = pytest.mark.django_db


def _send(number: Any, body: str, key: str) -> str:
    result = get_provider("sandbox").send(
        number, to=PERSON, body=body, status_url="", idempotency_key=key
    )
    return str(result.provider_message_id)


def test_send_honours_the_idempotency_key(sandbox_number: Any) -> None:
    first = _send(sandbox_number, "hi", "openline-1")
    assert _send(sandbox_number, "hi", "openline-1") == first
    assert _send(sandbox_number, "hi", "openline-2") != first
    assert SandboxMessage.objects.count() == 2


def test_find_sent_matches_sender_recipient_and_exact_text_oldest_first(
    sandbox_number: Any,
) -> None:
    sandbox = get_provider("sandbox")
    since = timezone.now() - timedelta(seconds=1)
    first = _send(sandbox_number, "Okay", "openline-1")
    second = _send(sandbox_number, "Okay", "openline-2")
    _send(sandbox_number, "Okay!", "openline-3")

    def find(**kwargs: Any) -> Any:
        return sandbox.find_sent(sandbox_number, to=PERSON, body="Okay", since=since, **kwargs)

    found = find()
    assert (found.provider_message_id, found.status) == (first, "queued")
    assert find(exclude={first}).provider_message_id == second
    assert find(exclude={first, second}) is None
    later = timezone.now() + timedelta(seconds=1)
    assert sandbox.find_sent(sandbox_number, to=PERSON, body="Okay", since=later) is None
    assert sandbox.find_sent(sandbox_number, to="+12025550112", body="Okay", since=since) is None

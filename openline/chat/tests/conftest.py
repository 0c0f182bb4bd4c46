from __future__ import annotations

from typing import Any

import pytest

ORIGIN = "https://www.example.org"


@pytest.fixture
def widget(org: Any, alice: Any, online_inbox: Any) -> Any:
    """A widget on the sandbox inbox, which is online (a shift covers now)."""
    from openline.chat.services import widget_create

    sandbox_number = online_inbox
    return widget_create(
        organization_id=org.pk,
        actor_id=alice.pk,
        number_id=sandbox_number.pk,
        display_name="Talk to us",
        allowed_origins=[ORIGIN + "/help"],
        greeting="Hi, we are here.",
        offline_text="We are closed; call 988 any time.",
    )

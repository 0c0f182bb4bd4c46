from __future__ import annotations

from typing import Any

import pytest

ORIGIN = "https://www.example.org"


@pytest.fixture
def widget(org: Any, alice: Any, sandbox_number: Any) -> Any:
    from openline.chat.services import inbox_set_chat_online, widget_create

    inbox_set_chat_online(
        organization_id=org.pk, actor_id=alice.pk, number_id=sandbox_number.pk, online=True
    )
    return widget_create(
        organization_id=org.pk,
        actor_id=alice.pk,
        number_id=sandbox_number.pk,
        display_name="Talk to us",
        allowed_origins=[ORIGIN + "/help"],
        greeting="Hi, we are here.",
        offline_text="We are closed; call 988 any time.",
    )

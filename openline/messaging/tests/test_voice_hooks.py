"""The voice callbacks as an attacker and a careless integrator would call them: signed by
the number's provider or refused, bad input answered with a 4xx and a message, and another
organization's call never reachable through this number's address."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import pytest

from openline.contacts.models import NumberType
from openline.contacts.services.contacts import contact_create
from openline.messaging.models import Call, CallStatus
from openline.messaging.services.calls import call_script, call_send
from openline.providers.sandbox.provider import phone_token
from openline.providers.services import number_add


@pytest.fixture
def call(org: Any, sandbox_number: Any) -> Call:
    contact_create(
        organization_id=org.pk, phone="+12125550121", name="Eve", number_type=NumberType.LANDLINE
    )
    return call_send(
        organization_id=org.pk,
        to="+12125550121",
        number_id=sandbox_number.pk,
        script=call_script(say="The office is closed for snow.", seconds=6),
        time_limit=60,
    )


def _post(client: Any, number: Any, action: str, call_id: Any, fields: dict[str, str],
          token: str | None = None) -> Any:  # fmt: skip
    url = f"/voice/{number.provider}/{number.webhook_key}/{action}?call={call_id}"
    headers = {"X-Sandbox-Token": phone_token(number) if token is None else token}
    return client.post(
        url, urlencode(fields), content_type="application/x-www-form-urlencoded", headers=headers
    )


def test_an_answer_gets_the_script_and_statuses_move_the_call_forward_only(
    client: Any, sandbox_number: Any, call: Call
) -> None:
    answer = _post(client, sandbox_number, "answer", call.pk,
                   {"CallId": "SCabc", "AnsweredBy": "human"})  # fmt: skip
    assert answer.status_code == 200
    script = answer.json()
    assert script["say"] == "The office is closed for snow." and script["opt_out_prompt"]
    assert script["keypress_url"].endswith(f"/keypress?call={call.pk}")
    done = {"CallId": "SCabc", "CallStatus": "completed", "Duration": "61", "AnsweredBy": "human"}
    assert _post(client, sandbox_number, "status", call.pk, done).status_code == 200
    late = {"CallId": "SCabc", "CallStatus": "ringing"}
    assert _post(client, sandbox_number, "status", call.pk, late).status_code == 200
    call.refresh_from_db()
    assert (call.status, call.duration, call.credits) == (CallStatus.COMPLETED, 61, 2)
    assert call.provider_call_id == "SCabc"
    # Another provider id for the same call: not this call's callback.
    other = {"CallId": "SCzzz", "CallStatus": "busy"}
    assert _post(client, sandbox_number, "status", call.pk, other).status_code == 404


def test_bad_signatures_addresses_and_fields_get_a_clear_4xx_and_change_nothing(
    client: Any, org: Any, other_org: Any, sandbox_number: Any, call: Call
) -> None:
    fields = {"CallId": "SCabc", "CallStatus": "completed", "Duration": "30"}
    assert (
        _post(client, sandbox_number, "status", call.pk, fields, token="forged").status_code == 403
    )
    unknown = client.post(f"/voice/sandbox/nosuchkey/status?call={call.pk}", fields)
    assert unknown.status_code == 404
    for call_id in ("", "²", "٣", "1" * 40):
        missing = _post(client, sandbox_number, "status", call_id, fields)
        assert missing.status_code == 400 and b"call id" in missing.content
    bad = _post(client, sandbox_number, "status", call.pk, {**fields, "CallStatus": "exploded"})
    assert bad.status_code == 400 and b"CallStatus" in bad.content
    bad = _post(client, sandbox_number, "status", call.pk, {**fields, "Duration": "-3"})
    assert bad.status_code == 400
    assert client.get(f"/voice/sandbox/{sandbox_number.webhook_key}/status").status_code == 405
    assert (
        client.post(f"/voice/sandbox/{sandbox_number.webhook_key}/other?call=1").status_code == 404
    )
    # Their number, signed correctly, cannot reach our call by its id.
    theirs = number_add(organization=other_org, provider="sandbox", e164="+12025550199", name="X")
    assert _post(client, theirs, "status", call.pk, fields).status_code == 404
    assert (
        _post(client, theirs, "keypress", call.pk, {"CallId": "", "Digits": "9"}).status_code == 200
    )
    call.refresh_from_db()
    assert call.status == CallStatus.QUEUED and call.duration == 0 and not call.opted_out

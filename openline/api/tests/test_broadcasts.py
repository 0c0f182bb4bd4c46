"""The broadcasts API: create a draft from an audience, contact ids or phones; preview it;
send or schedule it (402 without the credits); pause, resume, cancel; read its progress
and its per-recipient log, never the texts; nothing of another organization's."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time, timedelta
from datetime import timezone as dt_timezone
from typing import Any

import pytest
from django.utils import timezone
from hypothesis import example, given
from hypothesis import strategies as st

from openline.api.tests.conftest import ApiClient
from openline.api.tests.test_fuzz import (
    FUZZ,
    _assert_4xx_or_success,
    _query,
    bodies,
    field_values,
    phones,
    query_values,
)
from openline.billing.models import CreditKind
from openline.billing.services import credit_balance, credits_add
from openline.campaigns.compose import FOOTER
from openline.campaigns.models import Broadcast, BroadcastRecipient, BroadcastStatus, SendingWindow
from openline.contacts.models import ConsentSource, Contact
from openline.contacts.services.consent import consent_record_opt_in, consent_record_opt_out
from openline.contacts.services.contacts import contact_create
from openline.contacts.services.tags import contact_set_tags, tag_get_or_create
from openline.core.models import ApiToken, AuditEvent
from openline.messaging.models import Message, MessageKind, MessageStatus

BODY = "Hi {first_name}, the pool is closed today."


def _person(org: Any, admin: Any, phone: str, name: str, tag: str, opt_in: bool = True) -> Contact:
    contact = contact_create(organization_id=org.pk, phone=phone, name=name)
    contact_set_tags(contact=contact, names=[tag])
    if opt_in:
        consent_record_opt_in(
            organization_id=org.pk,
            phone=contact.phone,
            source=ConsentSource.STAFF,
            evidence="signed the class registration form",
            actor_id=admin.pk,
        )
    return contact


@pytest.fixture
def people(org: Any, alice: Any, sandbox_number: Any) -> dict[str, Contact]:
    """Three swimmers (dan never opted in) and hal, who does yoga."""
    return {
        "ann": _person(org, alice, "+12125550101", "Ann Lee", "swim"),
        "ben": _person(org, alice, "+12125550102", "Ben Ortiz", "swim"),
        "dan": _person(org, alice, "+12125550104", "Dan", "swim", opt_in=False),
        "hal": _person(org, alice, "+12125550108", "Hal", "yoga"),
    }


@pytest.fixture
def swim(org: Any, people: dict[str, Contact]) -> int:
    return int(tag_get_or_create(organization_id=org.pk, name="swim").pk)


@pytest.fixture
def open_everywhere(org: Any) -> None:
    SendingWindow.objects.create(organization=org, start=time(0, 0), end=time(23, 59, 59))


def _credits(org: Any, admin: Any, n: int) -> None:
    credits_add(
        organization_id=org.pk, credits=n, note="invoice 7", actor_id=admin.pk,
        kind=CreditKind.PURCHASE,
    )  # fmt: skip


def _create(api: ApiClient, number: Any, **who: Any) -> dict[str, Any]:
    response = api.post(
        "/broadcasts", {"name": "Pool closed", "body": BODY, "number_ids": [number.pk], **who}
    )
    assert response.status_code == 201, response.content
    return dict(response.json())


def _queued(pipeline: Any, api: ApiClient, broadcast_id: int) -> dict[str, Any]:
    """Send it, without running the runner yet."""
    with pipeline._capture(execute=True):
        response = api.post(f"/broadcasts/{broadcast_id}/send")
    assert response.status_code == 200, response.content
    return dict(response.json())


# --- creating -------------------------------------------------------------------------------


def test_a_draft_from_an_audience_answers_201_and_is_audited_with_the_token(
    api: ApiClient, org: Any, sandbox_number: Any, people: dict[str, Contact], swim: int
) -> None:
    yoga = tag_get_or_create(organization_id=org.pk, name="yoga").pk
    data = _create(
        api,
        sandbox_number,
        audience={
            "include_tags": [swim],
            "exclude_tags": [yoga],
            "add_contacts": [people["hal"].pk],
            "remove_contacts": [people["dan"].pk],
        },
    )

    broadcast = Broadcast.objects.get()
    assert data["id"] == broadcast.pk and broadcast.organization_id == org.pk
    assert data["name"] == "Pool closed" and data["body"] == BODY
    assert data["status"] == "draft" and broadcast.status == BroadcastStatus.DRAFT
    assert data["number_ids"] == [sandbox_number.pk]
    assert data["audience"] == {
        "everyone": False,
        "include_tags": [swim],
        "exclude_tags": [yoga],
        "add_contacts": [people["hal"].pk],
        "remove_contacts": [people["dan"].pk],
        "filters": [],
    }
    assert data["scheduled_for"] is None and data["started_at"] is None
    assert data["progress"] == {
        "counts": dict.fromkeys(
            ["pending", "queued", "sent", "delivered", "failed", "refused", "cancelled"]
            + ["ringing", "answered", "voicemail", "busy", "no_answer"],  # a call's, 0 here
            0,
        ),
        "total": 0,
        "done": 0,
    }
    audit = AuditEvent.objects.get(action="broadcast.create")
    assert audit.api_token_id == ApiToken.objects.get(organization=org).pk
    assert audit.actor_id is None and audit.object_id == str(broadcast.pk)


def test_a_draft_from_contact_ids_picks_exactly_those_people(
    api: ApiClient, sandbox_number: Any, people: dict[str, Contact]
) -> None:
    data = _create(api, sandbox_number, contact_ids=[people["hal"].pk, people["ann"].pk])

    assert data["audience"]["add_contacts"] == sorted([people["ann"].pk, people["hal"].pk])
    assert data["audience"]["everyone"] is False and data["audience"]["include_tags"] == []
    preview = api.get(f"/broadcasts/{data['id']}/preview").json()
    assert (preview["selected"], preview["eligible"]) == (2, 2)


def test_a_draft_from_phones_in_any_format_picks_those_contacts(
    api: ApiClient, sandbox_number: Any, people: dict[str, Contact]
) -> None:
    data = _create(api, sandbox_number, phones=["(212) 555-0101", "+1 212 555 0108", "2125550101"])

    assert data["audience"]["add_contacts"] == sorted([people["ann"].pk, people["hal"].pk])


@pytest.mark.parametrize(
    ("phones", "code", "named"),
    [
        (["(212) 555-0101", "(202) 555-0199"], "invalid_audience", "(202) 555-0199"),
        (["+12125550101", "call me"], "invalid_phone", "call me"),
    ],
)
def test_a_phone_that_is_not_a_contact_here_is_422_naming_it(
    api: ApiClient,
    sandbox_number: Any,
    people: dict[str, Contact],
    phones: list[str],
    code: str,
    named: str,
) -> None:
    response = api.post(
        "/broadcasts",
        {"name": "x", "body": "y", "number_ids": [sandbox_number.pk], "phones": phones},
    )

    assert response.status_code == 422
    assert response.json()["code"] == code
    assert named in response.json()["detail"]
    assert "(212) 555-0101" not in response.json()["detail"]
    assert not Broadcast.objects.exists()


# --- preview and sending --------------------------------------------------------------------


def test_the_preview_counts_who_is_texted_who_is_left_out_and_the_credits(
    api: ApiClient, org: Any, alice: Any, sandbox_number: Any, swim: int
) -> None:
    _credits(org, alice, 5)
    data = _create(api, sandbox_number, audience={"include_tags": [swim]})

    response = api.get(f"/broadcasts/{data['id']}/preview")

    assert response.status_code == 200
    preview = response.json()
    assert preview["selected"] == 3 and preview["eligible"] == 2  # dan has no opt-in
    excluded = {row["reason"]: row["count"] for row in preview["excluded"]}
    assert excluded == {
        "not_textable": 0,
        "opted_out": 0,
        "opt_out_pending": 0,
        "no_opt_in": 1,
        "no_rate": 0,
    }
    assert (preview["encoding"], preview["segments_per_message"]) == ("GSM-7", 1)
    assert preview["credits_needed"] == 2 and preview["credits_available"] == 5
    assert preview["shortfall"] == 0


def test_sending_without_enough_credits_is_402_and_works_once_credits_are_added(
    api: ApiClient, org: Any, alice: Any, sandbox_number: Any, people: dict[str, Contact]
) -> None:
    _credits(org, alice, 1)
    data = _create(api, sandbox_number, audience={"everyone": True})  # ann, ben, hal

    refused = api.post(f"/broadcasts/{data['id']}/send", {})

    assert refused.status_code == 402
    assert refused.json()["code"] == "insufficient_credits"
    detail = refused.json()["detail"]
    assert "needs 3 credits" in detail and "1 are available" in detail and "2 short" in detail
    assert api.get(f"/broadcasts/{data['id']}").json()["status"] == "draft"
    assert not BroadcastRecipient.objects.exists()

    _credits(org, alice, 2)
    sent = api.post(f"/broadcasts/{data['id']}/send", {})

    assert sent.status_code == 200, sent.content
    assert sent.json()["status"] == "sending" and sent.json()["started_at"]
    assert sent.json()["progress"]["counts"]["pending"] == 3
    assert credit_balance(organization_id=org.pk).reserved == 3


def test_a_broadcast_sent_through_the_api_texts_everyone_and_its_log_shows_each_text(
    api: ApiClient,
    org: Any,
    alice: Any,
    sandbox_number: Any,
    people: dict[str, Contact],
    swim: int,
    pipeline: Any,
    open_everywhere: None,
) -> None:
    _credits(org, alice, 10)
    data = _create(api, sandbox_number, audience={"include_tags": [swim]})

    sent = pipeline.run(lambda: api.post(f"/broadcasts/{data['id']}/send"), include_deferred=True)

    assert sent.status_code == 200
    broadcast = api.get(f"/broadcasts/{data['id']}").json()
    assert broadcast["status"] == "finished" and broadcast["finished_at"]
    counts = broadcast["progress"]["counts"]
    assert counts["sent"] + counts["delivered"] == 2 and broadcast["progress"]["done"] == 2
    assert counts["pending"] == counts["queued"] == 0 and broadcast["progress"]["total"] == 2
    texts = Message.objects.filter(kind=MessageKind.BULK)
    assert texts.count() == 2

    log = api.get(f"/broadcasts/{data['id']}/messages")

    assert log.status_code == 200 and log.json()["count"] == 2
    rows = log.json()["items"]
    assert [row["contact_id"] for row in rows] == [people["ann"].pk, people["ben"].pk]
    assert [row["phone"] for row in rows] == [people["ann"].phone, people["ben"].phone]
    by_contact = {t.conversation.contact_id: t for t in texts.select_related("conversation")}
    for row in rows:
        text = by_contact[row["contact_id"]]
        assert row["message_id"] == text.pk and row["status"] == text.status
        assert row["status"] in ("sent", "delivered")
        assert row["number"] == sandbox_number.e164
        assert (row["segments"], row["credits"], row["error"]) == (1, 1, "")
        assert row["queued_at"]
        assert "body" not in row
    body = log.content.decode()
    assert "pool is closed" not in body and FOOTER.strip() not in body
    # Only what it used is spent.
    assert credit_balance(organization_id=org.pk).available == 8


def test_the_log_filters_by_status_and_shows_why_a_text_was_not_sent_or_failed(
    api: ApiClient,
    org: Any,
    alice: Any,
    sandbox_number: Any,
    people: dict[str, Contact],
    swim: int,
    pipeline: Any,
    open_everywhere: None,
) -> None:
    _credits(org, alice, 10)
    data = _create(api, sandbox_number, audience={"include_tags": [swim]})
    _queued(pipeline, api, data["id"])
    consent_record_opt_out(
        organization_id=org.pk, phone=people["ben"].phone, source=ConsentSource.KEYWORD, text="STOP"
    )
    pipeline.run(include_deferred=True)
    Message.objects.filter(conversation__contact=people["ann"], kind=MessageKind.BULK).update(
        status=MessageStatus.FAILED, error_code="30007", error_message="Carrier filtered"
    )
    url = f"/broadcasts/{data['id']}/messages"

    refused = api.get(url, status="refused").json()
    failed = api.get(url, status="failed").json()
    delivered = api.get(url, status="delivered").json()

    assert refused["count"] == 1
    [ben] = refused["items"]
    assert ben["contact_id"] == people["ben"].pk and ben["status"] == "refused"
    assert ben["error"].startswith("opted_out") and ben["message_id"] is None
    assert failed["count"] == 1
    [ann] = failed["items"]
    assert ann["contact_id"] == people["ann"].pk and ann["status"] == "failed"
    assert ann["error"] == "30007: Carrier filtered"
    assert delivered == {"items": [], "count": 0}
    progress = api.get(f"/broadcasts/{data['id']}").json()["progress"]["counts"]
    assert (progress["refused"], progress["failed"]) == (1, 1)


def test_the_log_is_paginated_and_its_queries_do_not_grow_with_it(
    api: ApiClient,
    org: Any,
    alice: Any,
    sandbox_number: Any,
    people: dict[str, Contact],
    pipeline: Any,
    open_everywhere: None,
    django_assert_max_num_queries: Any,
) -> None:
    _credits(org, alice, 10)
    data = _create(api, sandbox_number, audience={"everyone": True})
    pipeline.run(lambda: api.post(f"/broadcasts/{data['id']}/send"), include_deferred=True)
    url = f"/broadcasts/{data['id']}/messages"

    # token lookup + last_used update + the broadcast + count + one page (all joined)
    with django_assert_max_num_queries(5):
        everyone = api.get(url).json()
    second = api.get(url, limit=1, offset=1).json()

    assert everyone["count"] == 3 and len(everyone["items"]) == 3
    assert second["count"] == 3 and second["items"] == everyone["items"][1:2]


def test_a_broadcast_can_be_scheduled_with_an_aware_time_only(
    api: ApiClient, org: Any, alice: Any, sandbox_number: Any, people: dict[str, Contact]
) -> None:
    _credits(org, alice, 10)
    data = _create(api, sandbox_number, audience={"everyone": True})
    url = f"/broadcasts/{data['id']}/send"
    later = (timezone.now() + timedelta(days=2)).replace(microsecond=0)
    local = later.astimezone(UTC).replace(tzinfo=None)

    naive = api.post(url, {"scheduled_for": local.isoformat()})
    too_far = api.post(url, {"scheduled_for": (later + timedelta(days=400)).isoformat()})
    off_the_calendar = api.post(url, {"scheduled_for": "9999-12-31T23:00:00-05:00"})

    for refused in (naive, too_far, off_the_calendar):
        assert refused.status_code == 422, refused.content
        assert refused.json()["detail"]
    assert "timezone" in json.dumps(naive.json()["detail"])
    assert Broadcast.objects.get().status == BroadcastStatus.DRAFT

    new_york = later.astimezone(dt_timezone(timedelta(hours=-5))).isoformat()
    scheduled = api.post(url, {"scheduled_for": new_york})

    assert scheduled.status_code == 200, scheduled.content
    assert scheduled.json()["status"] == "scheduled" and scheduled.json()["started_at"] is None
    assert datetime.fromisoformat(scheduled.json()["scheduled_for"]) == later
    assert Broadcast.objects.get().scheduled_for == later


def test_pause_resume_and_cancel_and_409_for_a_broadcast_in_the_wrong_state(
    api: ApiClient,
    org: Any,
    alice: Any,
    sandbox_number: Any,
    people: dict[str, Contact],
    pipeline: Any,
) -> None:
    _credits(org, alice, 10)
    data = _create(api, sandbox_number, audience={"everyone": True})
    url = f"/broadcasts/{data['id']}"

    early = api.post(f"{url}/pause")
    assert early.status_code == 409 and early.json()["code"] == "invalid_state"
    assert "draft" in early.json()["detail"]

    assert _queued(pipeline, api, data["id"])["status"] == "sending"
    again = api.post(f"{url}/send")
    assert again.status_code == 409 and again.json()["code"] == "invalid_state"

    assert api.post(f"{url}/pause").json()["status"] == "paused"
    pipeline.run(include_deferred=True)
    assert not Message.objects.filter(kind=MessageKind.BULK).exists()
    twice = api.post(f"{url}/pause")
    assert twice.status_code == 409 and twice.json()["code"] == "invalid_state"

    with pipeline._capture(execute=True):
        assert api.post(f"{url}/resume").json()["status"] == "sending"
    cancelled = api.post(f"{url}/cancel")
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled" and cancelled.json()["finished_at"]
    assert cancelled.json()["progress"]["counts"]["cancelled"] == 3

    for action in ("pause", "resume", "cancel", "send"):
        late = api.post(f"{url}/{action}")
        assert late.status_code == 409, action
        assert late.json()["code"] == "invalid_state" and "cancelled" in late.json()["detail"]
    pipeline.run(include_deferred=True)
    assert not Message.objects.filter(kind=MessageKind.BULK).exists()
    assert credit_balance(organization_id=org.pk).available == 10
    assert credit_balance(organization_id=org.pk).reserved == 0


def test_a_broadcast_nobody_can_receive_is_409_no_recipients(
    api: ApiClient, sandbox_number: Any, people: dict[str, Contact]
) -> None:
    data = _create(api, sandbox_number, contact_ids=[people["dan"].pk])  # no opt-in

    response = api.post(f"/broadcasts/{data['id']}/send")

    assert response.status_code == 409 and response.json()["code"] == "no_recipients"
    assert Broadcast.objects.get().status == BroadcastStatus.DRAFT


def test_broadcasts_are_listed_newest_first_and_paginated(
    api: ApiClient,
    other_api: ApiClient,
    sandbox_number: Any,
    people: dict[str, Contact],
    django_assert_max_num_queries: Any,
) -> None:
    first = _create(api, sandbox_number, contact_ids=[people["ann"].pk])
    second = _create(api, sandbox_number, contact_ids=[people["ben"].pk])

    # token lookup + last_used update + count + one page + its numbers
    with django_assert_max_num_queries(5):
        listing = api.get("/broadcasts")
    paged = api.get("/broadcasts", limit=1, offset=1)

    assert listing.status_code == 200
    assert listing.json()["count"] == 2
    assert [item["id"] for item in listing.json()["items"]] == [second["id"], first["id"]]
    item = listing.json()["items"][0]
    assert item["number_ids"] == [sandbox_number.pk] and item["status"] == "draft"
    assert item["audience"]["add_contacts"] == [people["ben"].pk]
    assert [item["id"] for item in paged.json()["items"]] == [first["id"]]
    assert other_api.get("/broadcasts").json() == {"items": [], "count": 0}


# --- another organization -------------------------------------------------------------------

ENDPOINTS = [
    ("get", ""),
    ("get", "/preview"),
    ("get", "/messages"),
    ("post", "/send"),
    ("post", "/pause"),
    ("post", "/resume"),
    ("post", "/cancel"),
]


@pytest.mark.parametrize(("method", "suffix"), ENDPOINTS)
def test_another_organizations_token_gets_404_for_every_broadcast_endpoint(
    api: ApiClient,
    other_api: ApiClient,
    org: Any,
    alice: Any,
    sandbox_number: Any,
    people: dict[str, Contact],
    pipeline: Any,
    method: str,
    suffix: str,
) -> None:
    _credits(org, alice, 10)
    data = _create(api, sandbox_number, audience={"everyone": True})
    if suffix in ("/pause", "/cancel"):  # a state the action would apply to
        _queued(pipeline, api, data["id"])
    before = Broadcast.objects.values().get()

    theirs = getattr(other_api, method)(f"/broadcasts/{data['id']}{suffix}")
    missing = getattr(other_api, method)(f"/broadcasts/987654{suffix}")

    assert theirs.status_code == 404, theirs.content
    assert theirs.json() == missing.json() == {"code": "not_found", "detail": "broadcast not found"}
    assert Broadcast.objects.values().get() == before
    assert not AuditEvent.objects.filter(api_token__organization__slug="hilltop").exists()


@pytest.mark.parametrize("what", ["tag", "number", "contact", "phone"])
def test_another_organization_cannot_use_this_ones_tags_numbers_or_contacts(
    other_api: ApiClient,
    sandbox_number: Any,
    other_number: Any,
    people: dict[str, Contact],
    swim: int,
    what: str,
) -> None:
    request: dict[str, Any] = {"name": "x", "body": "y", "number_ids": [other_number.pk]}
    if what == "tag":
        request["audience"] = {"include_tags": [swim]}
    elif what == "number":
        request["audience"] = {"everyone": True}
        request["number_ids"] = [sandbox_number.pk]
    elif what == "contact":
        request["contact_ids"] = [people["ann"].pk]
    else:
        request["phones"] = [people["ann"].phone]

    response = other_api.post("/broadcasts", request)

    assert response.status_code == 422, response.content
    assert response.json()["code"] == ("invalid" if what == "number" else "invalid_audience")
    assert response.json()["detail"]
    assert not Broadcast.objects.exists()


# --- bad input ------------------------------------------------------------------------------


INVALID = "invalid_request"  # refused by the request's schema


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"contact_ids": [1], "audience": {"everyone": True}}, INVALID),  # two audiences
        ({"phones": ["+12125550101"], "contact_ids": [1]}, INVALID),
        ({"phones": None}, INVALID),  # none
        ({"contact_ids": []}, INVALID),
        ({"phones": ["+12125550101"] * 5_001}, INVALID),
        ({"number_ids": "1"}, INVALID),
        ({"number_ids": ["1"]}, INVALID),
        ({"number_ids": [True]}, INVALID),
        ({"number_ids": [2**64]}, INVALID),
        ({"number_ids": []}, INVALID),
        ({"number_ids": [987654]}, "invalid"),
        ({"contact_ids": [1.5]}, INVALID),
        ({"contact_ids": [0]}, INVALID),
        ({"contact_ids": [987654]}, "invalid_audience"),
        ({"phones": [5]}, INVALID),
        ({"name": 5}, INVALID),
        ({"name": ""}, "invalid"),
        ({"name": "x" * 121}, "invalid"),
        ({"body": ""}, "invalid_body"),
        ({"body": "Hi {nickname}"}, "invalid_body"),
        ({"body": "x" * 1601}, "invalid_body"),
        ({"body": "nul\u0000"}, INVALID),
        ({"from": "+12025550142"}, INVALID),  # unknown field
        ({"audience": {"everyone": "yes"}}, INVALID),
        ({"audience": {"tags": [1]}}, INVALID),
        ({"audience": {"include_tags": "1"}}, INVALID),
        ({"audience": {"include_tags": [987654]}}, "invalid_audience"),
        ({"audience": []}, INVALID),
    ],
)
def test_bad_broadcasts_are_4xx_with_a_message_and_store_nothing(
    api: ApiClient,
    sandbox_number: Any,
    people: dict[str, Contact],
    change: dict[str, Any],
    code: str,
) -> None:
    request = {"name": "Pool closed", "body": BODY, "number_ids": [sandbox_number.pk], **change}
    if not {"audience", "contact_ids", "phones"} & set(change):
        request["phones"] = ["+12125550101"]

    response = api.post("/broadcasts", request)

    assert response.status_code == 422, response.content
    assert response.json()["code"] == code
    assert response.json()["detail"]
    assert not Broadcast.objects.exists()


def test_the_request_the_bad_cases_change_is_itself_valid(
    api: ApiClient, sandbox_number: Any, people: dict[str, Contact]
) -> None:
    """The base request of the test above is valid: each case is refused for its change."""
    request = {"name": "Pool closed", "body": BODY, "number_ids": [sandbox_number.pk]}

    response = api.post("/broadcasts", {**request, "phones": ["+12125550101"]})

    assert response.status_code == 201


def test_the_largest_audience_the_api_takes_is_counted_without_error(
    api: ApiClient, org: Any, sandbox_number: Any
) -> None:
    """As many people added and removed by hand as a request may name, with tags left out
    too: the database takes every id the queries carry (SQLite caps them at 32,766)."""
    Contact.objects.bulk_create(
        Contact(organization=org, phone=f"+1212555{i:04d}") for i in range(5_000)
    )
    ids = list(Contact.objects.values_list("pk", flat=True))
    staff = tag_get_or_create(organization_id=org.pk, name="staff").pk
    data = _create(
        api,
        sandbox_number,
        audience={"add_contacts": ids, "remove_contacts": ids, "exclude_tags": [staff]},
    )
    half = _create(api, sandbox_number, contact_ids=ids)

    assert api.get(f"/broadcasts/{data['id']}/preview").json()["selected"] == 0
    preview = api.get(f"/broadcasts/{half['id']}/preview").json()
    assert preview["selected"] == 5_000 and preview["eligible"] == 0  # nobody opted in


@pytest.mark.parametrize(
    "raw", [b"{", b"\xc3\x28", b"[]", b"null", b'"now"', b'{"scheduled_for": 5}']
)
def test_bad_send_bodies_are_4xx(
    api: ApiClient, sandbox_number: Any, people: dict[str, Contact], raw: bytes
) -> None:
    data = _create(api, sandbox_number, audience={"everyone": True})

    response = api.post(f"/broadcasts/{data['id']}/send", raw=raw)

    if raw == b"null":  # no body at all: send now (here: no credits)
        assert response.status_code == 402
    else:
        assert 400 <= response.status_code < 500 and response.status_code != 402, raw
    assert response.json()["code"] and response.json()["detail"]
    assert Broadcast.objects.get().status == BroadcastStatus.DRAFT


def test_a_send_without_any_body_sends_now(
    api: ApiClient, org: Any, alice: Any, sandbox_number: Any, people: dict[str, Contact]
) -> None:
    _credits(org, alice, 10)
    data = _create(api, sandbox_number, audience={"everyone": True})

    response = api.post(f"/broadcasts/{data['id']}/send", raw=b"")

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "sending"


@pytest.mark.parametrize(
    "params", [{"status": "bogus"}, {"status": "SENT"}, {"limit": 0}, {"offset": 10**30}]
)
def test_bad_log_parameters_are_422(
    api: ApiClient, sandbox_number: Any, people: dict[str, Contact], params: dict[str, Any]
) -> None:
    data = _create(api, sandbox_number, audience={"everyone": True})

    response = api.get(f"/broadcasts/{data['id']}/messages", **params)

    assert response.status_code == 422
    assert response.json()["code"] == "invalid_request" and response.json()["detail"]


@pytest.mark.parametrize("broadcast_id", ["0", "-1", "abc", str(2**63), str(2**64), "1.5"])
@pytest.mark.parametrize(("method", "suffix"), ENDPOINTS)
def test_impossible_broadcast_ids_are_4xx(
    api: ApiClient, broadcast_id: str, method: str, suffix: str
) -> None:
    response = getattr(api, method)(f"/broadcasts/{broadcast_id}{suffix}")

    assert 400 <= response.status_code < 500
    assert response.json()["code"]


ids = st.lists(st.integers(min_value=-1, max_value=2**64) | st.just(1), max_size=3)
near_valid_broadcasts = st.tuples(
    st.fixed_dictionaries(
        {
            "name": st.sampled_from(["Pool", "", " "]) | field_values,
            "body": st.sampled_from(["Hi {first_name}", "{name}", "{x}"]) | field_values,
            "number_ids": st.just(["MAIN"]) | ids | field_values,
        }
    ),
    st.fixed_dictionaries(
        {},
        optional={
            "everyone": st.booleans() | field_values,
            "include_tags": ids | field_values,
            "exclude_tags": ids,
            "add_contacts": ids,
            "remove_contacts": ids,
            "extra": field_values,
        },
    ).map(lambda audience: {"audience": audience})
    | ids.map(lambda contact_ids: {"contact_ids": contact_ids})
    | st.lists(phones, max_size=3).map(lambda numbers: {"phones": numbers})
    | st.fixed_dictionaries({}, optional={"audience": ids, "phones": field_values}),
).map(lambda parts: {**parts[0], **parts[1]})


@pytest.mark.django_db
@FUZZ
@given(
    raw=bodies(["name", "body", "number_ids", "audience", "contact_ids", "phones"])
    | near_valid_broadcasts.map(lambda doc: json.dumps(doc).encode())
)
@example(raw=b'{"name": "x", "body": "y", "number_ids": [1], "contact_ids": [9223372036854775807]}')
@example(raw=b'{"name": "x", "body": "y", "number_ids": [1], "audience": {"add_contacts": [1]}}')
@example(raw=b'{"name": "x", "body": "y", "number_ids": ["MAIN"], "audience": {"everyone": true}}')
def test_fuzzed_broadcast_posts_never_500_and_refusals_store_nothing(
    api: ApiClient, sandbox_number: Any, raw: bytes
) -> None:
    before = Broadcast.objects.count()
    raw = raw.replace(b'"MAIN"', str(sandbox_number.pk).encode())  # the real number's id

    response = api.post("/broadcasts", raw=raw)

    _assert_4xx_or_success(response)
    if response.status_code != 201:
        assert Broadcast.objects.count() == before


times = st.datetimes(timezones=st.none() | st.timezones()).map(lambda t: t.isoformat())


@pytest.mark.django_db
@FUZZ
@given(
    raw=bodies(["scheduled_for"], st.fixed_dictionaries({"scheduled_for": times | field_values})),
    status=query_values,
    limit=query_values,
)
@example(raw=b'{"scheduled_for": "0001-01-01T00:00:00+14:00"}', status=b"sent", limit=b"1")
@example(raw=b'{"scheduled_for": "9999-12-31T23:59:59-14:00"}', status=b"\xff", limit=b"")
def test_fuzzed_sends_and_log_reads_never_500(
    api: ApiClient,
    org: Any,
    alice: Any,
    sandbox_number: Any,
    raw: bytes,
    status: bytes,
    limit: bytes,
) -> None:
    broadcast = Broadcast.objects.filter(status=BroadcastStatus.DRAFT).first()
    if broadcast is None:  # the first example, or the last one sent it
        if credit_balance(organization_id=org.pk).available < 10:
            _credits(org, alice, 1_000)
        contact = contact_create(
            organization_id=org.pk, phone=f"+1212555{Broadcast.objects.count():04d}"
        )
        consent_record_opt_in(
            organization_id=org.pk, phone=contact.phone, source=ConsentSource.STAFF,
            evidence="form", actor_id=alice.pk,
        )  # fmt: skip
        broadcast = Broadcast.objects.create(
            organization=org, name="x", body="y", audience={"everyone": True}
        )
        broadcast.numbers.set([sandbox_number])

    responses = [
        api.post(f"/broadcasts/{broadcast.pk}/send", raw=raw),
        api.get(f"/broadcasts/{broadcast.pk}/messages?{_query(status=status, limit=limit)}"),
    ]

    for response in responses:
        _assert_4xx_or_success(response)


# --- the OpenAPI document -------------------------------------------------------------------


def test_the_openapi_document_describes_the_broadcast_endpoints(api: ApiClient) -> None:
    response = api.get("/openapi.json")

    assert response.status_code == 200
    paths = response.json()["paths"]
    expected = {
        "/api/v1/broadcasts": {"get", "post"},
        "/api/v1/broadcasts/{broadcast_id}": {"get"},
        "/api/v1/broadcasts/{broadcast_id}/preview": {"get"},
        "/api/v1/broadcasts/{broadcast_id}/send": {"post"},
        "/api/v1/broadcasts/{broadcast_id}/pause": {"post"},
        "/api/v1/broadcasts/{broadcast_id}/resume": {"post"},
        "/api/v1/broadcasts/{broadcast_id}/cancel": {"post"},
        "/api/v1/broadcasts/{broadcast_id}/messages": {"get"},
    }
    for path, methods in expected.items():
        assert set(paths.get(path, {})) == methods, path
        for operation in paths[path].values():
            assert operation["tags"] == ["broadcasts"] and operation["summary"]
    send = paths["/api/v1/broadcasts/{broadcast_id}/send"]["post"]
    assert "402" in send["responses"] and "409" in send["responses"]
    log = paths["/api/v1/broadcasts/{broadcast_id}/messages"]["get"]
    status = next(p for p in log["parameters"] if p["name"] == "status")
    assert "delivered" in json.dumps(status)


def test_a_broadcast_with_conditions_and_a_reply_answer_is_made_through_the_api(
    api: ApiClient, org: Any, alice: Any, sandbox_number: Any
) -> None:
    from openline.contacts.models import FieldKind
    from openline.contacts.services.fields import contact_set_field, custom_field_create

    level = custom_field_create(
        organization_id=org.pk, name="Level", kind=FieldKind.CHOICE, choices=["Guppy", "Shark"]
    )
    shark = contact_create(organization_id=org.pk, phone="+12025550131", name="Sam")
    contact_create(organization_id=org.pk, phone="+12025550132", name="Gil")
    contact_set_field(contact=shark, field=level, raw="Shark")
    condition = {"on": f"field:{level.pk}", "op": "equals", "value": "Shark"}
    made = api.post(
        "/broadcasts",
        {"name": "Sharks", "body": "Hi {first_name}", "number_ids": [sandbox_number.pk],
         "audience": {"everyone": True, "filters": [condition]},
         "reply_mode": "not_monitored"},
    )  # fmt: skip
    assert made.status_code == 201, made.json()
    body = made.json()
    assert body["reply_mode"] == "not_monitored"
    assert body["audience"]["filters"] == [{**condition, "exclude": False}]
    preview = api.get(f"/broadcasts/{body['id']}/preview").json()
    assert preview["selected"] == 1
    wrong = api.post(
        "/broadcasts",
        {"name": "x", "body": "y", "number_ids": [sandbox_number.pk],
         "audience": {"filters": [{"on": "shoe_size", "op": "equals", "value": "9"}]}},
    )  # fmt: skip
    assert wrong.status_code == 422 and "shoe_size" in wrong.json()["detail"]
    bad_mode = api.post(
        "/broadcasts",
        {"name": "x", "body": "y", "number_ids": [sandbox_number.pk],
         "audience": {"everyone": True}, "reply_mode": "ignore"},
    )  # fmt: skip
    assert bad_mode.status_code == 422

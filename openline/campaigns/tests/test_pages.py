"""The broadcast pages: compose, preview with the credit warning, send, watch the
progress and export the log; counselors and other organizations get nothing."""

from __future__ import annotations

import csv
import io
from datetime import time
from typing import Any

import pytest
from django.test import Client

from openline.billing.models import CreditKind
from openline.billing.services import credit_balance, credits_add
from openline.campaigns.models import Broadcast, BroadcastStatus, SendingWindow
from openline.contacts.models import ConsentSource
from openline.contacts.services.consent import consent_record_opt_in
from openline.contacts.services.contacts import contact_create
from openline.contacts.services.tags import contact_set_tags, tag_get_or_create
from openline.core.models import AuditEvent


def _signed_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def swimmers(org: Any, alice: Any, sandbox_number: Any) -> list[Any]:
    SendingWindow.objects.create(organization=org, start=time(0, 0), end=time(23, 59, 59))
    people = []
    for i, name in enumerate(["Ann Lee", "=HYPERLINK(evil)", "Cat Wu"]):
        contact = contact_create(organization_id=org.pk, phone=f"+1212555010{i}", name=name)
        contact_set_tags(contact=contact, names=["swim"])
        consent_record_opt_in(
            organization_id=org.pk, phone=contact.phone, source=ConsentSource.STAFF,
            evidence="registration form", actor_id=alice.pk,
        )  # fmt: skip
        people.append(contact)
    return people


def _compose(client: Client, org: Any, number: Any) -> Broadcast:
    swim = tag_get_or_create(organization_id=org.pk, name="swim")
    answer = client.post(
        "/broadcasts/new",
        {"name": "Pool closed", "body": "Hi {first_name}, no swim today.",
         "include_tags": [swim.pk], "numbers": [number.pk], "reply_mode": "queue"},
    )  # fmt: skip
    assert answer.status_code == 302, answer.content.decode()[:2000]
    return Broadcast.objects.get(name="Pool closed")


def test_an_admin_composes_sees_the_shortfall_adds_credits_and_sends(
    org: Any, alice: Any, sandbox_number: Any, swimmers: list[Any], pipeline: Any
) -> None:
    client = _signed_in(alice)
    broadcast = _compose(client, org, sandbox_number)
    page = client.get(f"/broadcasts/{broadcast.pk}/").content.decode()
    assert 'data-testid="selected">3<' in page and 'data-testid="eligible">3<' in page
    assert "Not enough credits" in page and "3 short" in page
    refused = client.post(f"/broadcasts/{broadcast.pk}/send", {"when": "now"})
    assert refused.status_code == 422 and "3 short" in refused.content.decode()
    credits_add(
        organization_id=org.pk, credits=10, note="inv", actor_id=alice.pk, kind=CreditKind.PURCHASE
    )
    page = client.get(f"/broadcasts/{broadcast.pk}/").content.decode()
    assert "Not enough credits" not in page
    sent = pipeline.run(
        lambda: client.post(f"/broadcasts/{broadcast.pk}/send", {"when": "now"}),
        include_deferred=True,
    )
    assert sent.status_code == 302
    broadcast.refresh_from_db()
    assert broadcast.status == BroadcastStatus.FINISHED
    page = client.get(f"/broadcasts/{broadcast.pk}/").content.decode()
    assert 'data-total="3"' in page and 'data-done="3"' in page
    assert credit_balance(organization_id=org.pk).available == 7
    export = client.get(f"/broadcasts/{broadcast.pk}/log.csv")
    rows = list(csv.reader(io.StringIO(b"".join(export).decode("utf-8-sig"))))
    assert rows[0][:2] == ["recipient", "phone"] and len(rows) == 4
    assert "'=HYPERLINK(evil)" in [r[0] for r in rows]  # no formula reaches a spreadsheet
    assert AuditEvent.objects.filter(action="broadcast.export_log", actor=alice).exists()


def test_a_scheduled_broadcast_waits_and_a_person_can_be_left_out(
    org: Any, alice: Any, sandbox_number: Any, swimmers: list[Any]
) -> None:
    client = _signed_in(alice)
    credits_add(
        organization_id=org.pk, credits=10, note="inv", actor_id=alice.pk, kind=CreditKind.PURCHASE
    )
    broadcast = _compose(client, org, sandbox_number)
    client.post(f"/broadcasts/{broadcast.pk}/people", {"contact_id": swimmers[0].pk})
    client.post(f"/broadcasts/{broadcast.pk}/people", {"contact_id": swimmers[1].pk})
    page = client.get(f"/broadcasts/{broadcast.pk}/").content.decode()
    assert 'data-testid="eligible">1<' in page and "Put back" in page
    assert "Select all 3 again" in page  # everyone the audience selects
    client.post(f"/broadcasts/{broadcast.pk}/people", {"all": "1"})
    page = client.get(f"/broadcasts/{broadcast.pk}/").content.decode()
    assert 'data-testid="eligible">3<' in page and "Put back" not in page
    client.post(f"/broadcasts/{broadcast.pk}/people", {"contact_id": swimmers[0].pk})
    page = client.get(f"/broadcasts/{broadcast.pk}/").content.decode()
    assert 'data-testid="eligible">2<' in page and "Put back" in page
    past = client.post(
        f"/broadcasts/{broadcast.pk}/send", {"when": "later", "scheduled_for": "2020-01-01T09:00"}
    )
    assert past.status_code == 422 and "future" in past.content.decode()
    later = client.post(
        f"/broadcasts/{broadcast.pk}/send", {"when": "later", "scheduled_for": "2099-01-01T09:00"}
    )
    assert later.status_code == 302
    broadcast.refresh_from_db()
    assert broadcast.status == BroadcastStatus.SCHEDULED
    assert broadcast.scheduled_for.isoformat() == "2099-01-01T15:00:00+00:00"  # 09:00 in Chicago
    assert credit_balance(organization_id=org.pk).reserved == 2


def test_counselors_and_other_organizations_get_nothing(
    org: Any, alice: Any, bob: Any, charlie: Any, sandbox_number: Any, swimmers: list[Any]
) -> None:
    broadcast = _compose(_signed_in(alice), org, sandbox_number)
    own = f"/broadcasts/{broadcast.pk}"
    urls = ["/broadcasts/", "/broadcasts/new", f"{own}/", f"{own}/progress", f"{own}/log.csv"]
    counselor, stranger = _signed_in(bob), _signed_in(charlie)
    for url in urls:
        assert counselor.get(url).status_code == 403, url
    for url in urls[2:]:
        assert stranger.get(url).status_code == 404, url
    for path in ("send", "pause", "cancel", "people"):
        assert (
            stranger.post(f"/broadcasts/{broadcast.pk}/{path}", {"when": "now"}).status_code == 404
        )
    assert counselor.post(f"/broadcasts/{broadcast.pk}/send", {"when": "now"}).status_code == 403
    broadcast.refresh_from_db()
    assert broadcast.status == BroadcastStatus.DRAFT


def test_conditions_on_the_compose_page_narrow_the_audience(
    org: Any, alice: Any, sandbox_number: Any, swimmers: list[Any]
) -> None:
    from openline.contacts.models import FieldKind
    from openline.contacts.services.fields import contact_set_field, custom_field_create

    level = custom_field_create(
        organization_id=org.pk, name="Level", kind=FieldKind.CHOICE, choices=["Guppy", "Shark"]
    )
    contact_set_field(contact=swimmers[0], field=level, raw="Shark")
    client = _signed_in(alice)
    swim = tag_get_or_create(organization_id=org.pk, name="swim")
    form = {"name": "Sharks", "body": "Hi {first_name} ({level})", "include_tags": [swim.pk],
            "reply_mode": "queue",
            "numbers": [sandbox_number.pk], "c0_on": f"field:{level.pk}", "c0_op": "equals",
            "c0_value": "shark", "c1_on": "inbox", "c1_op": "equals",
            "c1_value": "not a number"}  # fmt: skip
    refused = client.post("/broadcasts/new", form)
    assert refused.status_code == 422 and "No such inbox here" in refused.content.decode()
    form.update(c1_on="", c1_value="")
    made = client.post("/broadcasts/new", form)
    assert made.status_code == 302
    broadcast = Broadcast.objects.get(name="Sharks")
    page = client.get(f"/broadcasts/{broadcast.pk}/").content.decode()
    assert 'data-testid="selected">1<' in page and "Hi Ann (Shark)" in page


def test_an_audience_is_saved_and_reused_for_the_next_broadcast(
    org: Any, alice: Any, charlie: Any, sandbox_number: Any, swimmers: list[Any]
) -> None:
    from openline.campaigns.models import Segment

    client = _signed_in(alice)
    first = _compose(client, org, sandbox_number)
    client.post(f"/broadcasts/{first.pk}/people", {"contact_id": swimmers[0].pk})
    assert client.post(f"/broadcasts/{first.pk}/save-audience", {"name": " "}).status_code == 422
    saved = client.post(f"/broadcasts/{first.pk}/save-audience", {"name": "Swimmers but Ann"})
    assert saved.status_code == 302
    segment = Segment.objects.get(name="Swimmers but Ann")
    assert "Swimmers but Ann" in client.get("/broadcasts/").content.decode()
    made = client.post(
        "/broadcasts/new",
        {"name": "Again", "body": "Pool open", "segment": segment.pk,
         "numbers": [sandbox_number.pk], "reply_mode": "not_monitored"},
    )  # fmt: skip
    assert made.status_code == 302
    again = Broadcast.objects.get(name="Again")
    assert again.audience["remove_contacts"] == [swimmers[0].pk]
    assert again.reply_mode == "not_monitored"
    page = client.get(f"/broadcasts/{again.pk}/").content.decode()
    assert 'data-testid="selected">2<' in page
    stranger = _signed_in(charlie)
    assert stranger.post(f"/broadcasts/segments/{segment.pk}/delete").status_code == 404
    assert client.post(f"/broadcasts/segments/{segment.pk}/delete").status_code == 302
    assert not Segment.objects.exists()

"""Campaigns relative to a date on the contact (issue 16): who is in (tags, a date, consent),
when each text goes (its day and local time, moved later into sending hours), once per step,
contact and date value, people entering and leaving as their date or tags change, credits
and consent as for broadcasts, pause and resume, and where a reply goes."""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import Any

import pytest
from django.utils import timezone

from openline.billing.models import CreditKind
from openline.billing.services import credit_balance, credits_add
from openline.campaigns.compose import FOOTER
from openline.campaigns.drips import campaign_plan, campaign_sends_due, campaigns_tick
from openline.campaigns.models import (
    Campaign,
    CampaignSend,
    CampaignSendStatus,
    CampaignStatus,
    CampaignStep,
    SendingWindow,
)
from openline.contacts.models import ConsentSource, Contact, FieldKind
from openline.contacts.services.consent import consent_record_opt_in, consent_record_opt_out
from openline.contacts.services.contacts import contact_create
from openline.contacts.services.fields import contact_set_field, custom_field_create
from openline.contacts.services.tags import contact_set_tags, tag_get_or_create
from openline.messaging.models import ConversationStatus, Message, MessageKind

NY = zoneinfo.ZoneInfo("America/New_York")


@pytest.fixture
def clinic(org: Any, alice: Any, sandbox_number: Any) -> dict[str, Any]:
    """Three patients in New York with a "last visit" date; Dan has no date, Eve opted out."""
    SendingWindow.objects.create(organization=org, start=time(8, 0), end=time(21, 0))
    credits_add(organization_id=org.pk, credits=100, note="invoice 3", actor_id=alice.pk,
                kind=CreditKind.PURCHASE)  # fmt: skip
    last_visit = custom_field_create(organization_id=org.pk, name="Last visit", kind=FieldKind.DATE)
    patients = tag_get_or_create(organization_id=org.pk, name="patients")
    people: dict[str, Contact] = {}
    for i, (name, visit) in enumerate(
        [
            ("Ann Lee", "2030-06-01"),
            ("Ben Ode", "2030-06-02"),
            ("Dan Fox", ""),
            ("Eve Roy", "2030-06-01"),
        ]  # fmt: skip
    ):
        contact = contact_create(organization_id=org.pk, phone=f"+1212555012{i}", name=name)
        contact_set_tags(contact=contact, names=("patients",))
        if visit:
            contact_set_field(contact=contact, field=last_visit, raw=visit)
        consent_record_opt_in(organization_id=org.pk, phone=contact.phone,
                              source=ConsentSource.STAFF, evidence="intake form",
                              actor_id=alice.pk)  # fmt: skip
        people[name.split()[0].lower()] = contact
    consent_record_opt_out(organization_id=org.pk, phone=people["eve"].phone,
                           source=ConsentSource.KEYWORD, text="STOP")  # fmt: skip
    campaign = Campaign.objects.create(
        organization=org, name="Check-up", date_field=last_visit.key, include_tag=patients,
        number=sandbox_number,
    )  # fmt: skip
    CampaignStep.objects.create(
        campaign=campaign, days=3, at_time=time(22, 30),
        template="Hi {first_name}, how are you doing since your visit?",
    )  # fmt: skip
    CampaignStep.objects.create(campaign=campaign, days=183, at_time=time(10, 0),
                                template="Hi {first_name}, time for a check-up.")  # fmt: skip
    return {"campaign": campaign, "people": people, "field": last_visit, "tag": patients}


def _sends(campaign: Campaign, status: str = CampaignSendStatus.PLANNED) -> list[tuple[str, Any]]:
    rows = CampaignSend.objects.filter(step__campaign=campaign, status=status)
    return sorted((s.contact.name, s.due_at.astimezone(NY)) for s in rows)


def test_people_with_the_date_and_the_tag_are_planned_at_their_local_time_in_sending_hours(
    clinic: dict[str, Any],
) -> None:
    campaign = clinic["campaign"]
    campaign_plan(campaign, now=datetime(2030, 6, 1, 12, tzinfo=NY))
    # 22:30 is outside 08:00-21:00: the next morning. Dan has no date; Eve opted out.
    assert _sends(campaign) == [
        ("Ann Lee", datetime(2030, 6, 5, 8, 0, tzinfo=NY)),
        ("Ann Lee", datetime(2030, 12, 1, 10, 0, tzinfo=NY)),
        ("Ben Ode", datetime(2030, 6, 6, 8, 0, tzinfo=NY)),
        ("Ben Ode", datetime(2030, 12, 2, 10, 0, tzinfo=NY)),
    ]
    assert campaign_plan(campaign, now=datetime(2030, 6, 1, 12, tzinfo=NY)) == 0  # again


def test_people_leave_and_enter_as_their_date_or_tags_change(clinic: dict[str, Any]) -> None:
    campaign, people = clinic["campaign"], clinic["people"]
    now = datetime(2030, 6, 1, 12, tzinfo=NY)
    campaign_plan(campaign, now=now)
    contact_set_field(contact=people["ann"], field=clinic["field"], raw="2030-07-01")
    contact_set_tags(contact=people["ben"], names=())
    contact_set_field(contact=people["dan"], field=clinic["field"], raw="2030-06-10")
    campaign_plan(campaign, now=now)
    planned = _sends(campaign)
    assert [name for name, _ in planned] == ["Ann Lee", "Ann Lee", "Dan Fox", "Dan Fox"]
    assert ("Ann Lee", datetime(2030, 7, 5, 8, 0, tzinfo=NY)) in planned
    withdrawn = _sends(campaign, CampaignSendStatus.WITHDRAWN)
    assert sorted(name for name, _ in withdrawn) == ["Ann Lee", "Ann Lee", "Ben Ode", "Ben Ode"]


def _texts(contact: Contact) -> list[str]:
    return list(
        Message.objects.filter(kind=MessageKind.CAMPAIGN, conversation__contact=contact)
        .order_by("pk")
        .values_list("body", flat=True)
    )


@pytest.fixture
def soon(clinic: dict[str, Any]) -> dict[str, Any]:
    """Ann's visit was 3 days ago, so her first text is due now (the window open all day)."""
    SendingWindow.objects.update(start=time(0, 0), end=time(23, 59, 59))
    visit = (timezone.now() - timedelta(days=3)).astimezone(NY).date()
    contact_set_field(contact=clinic["people"]["ann"], field=clinic["field"], raw=visit.isoformat())
    CampaignStep.objects.filter(days=3).update(
        at_time=(timezone.now() - timedelta(minutes=5)).astimezone(NY).time()
    )
    return clinic


def test_a_due_text_goes_once_with_the_footer_first_and_its_reply_reaches_the_queue(
    soon: dict[str, Any], pipeline: Any, sandbox_number: Any, text_in: Callable[..., Any]
) -> None:
    campaign, ann = soon["campaign"], soon["people"]["ann"]
    before = credit_balance(organization_id=campaign.organization_id).available
    pipeline.run(lambda: campaigns_tick())
    pipeline.run(lambda: campaign_sends_due())  # again: nothing more
    assert _texts(ann) == ["Hi Ann, how are you doing since your visit?" + FOOTER]
    assert credit_balance(organization_id=campaign.organization_id).available == before - 1
    reply = text_in(sandbox_number, ann.phone, "Much better, thanks")
    assert reply.conversation.status == ConversationStatus.WAITING  # a person reads it


def test_someone_who_opts_out_after_planning_gets_nothing(
    soon: dict[str, Any], pipeline: Any
) -> None:
    campaign, ann = soon["campaign"], soon["people"]["ann"]
    campaign_plan(campaign)
    consent_record_opt_out(organization_id=campaign.organization_id, phone=ann.phone,
                           source=ConsentSource.KEYWORD, text="STOP")  # fmt: skip
    pipeline.run(lambda: campaign_sends_due())
    assert _texts(ann) == []
    assert CampaignSend.objects.filter(contact=ann, status=CampaignSendStatus.SENT).count() == 0


def test_without_credits_a_text_waits_and_goes_once_credits_are_added(
    soon: dict[str, Any], pipeline: Any, alice: Any
) -> None:
    from openline.billing.models import CreditAccount

    campaign, ann = soon["campaign"], soon["people"]["ann"]
    CreditAccount.objects.filter(organization_id=campaign.organization_id).update(available=0)
    campaign_plan(campaign)
    pipeline.run(lambda: campaign_sends_due())
    send = CampaignSend.objects.get(contact=ann, status=CampaignSendStatus.PLANNED,
                                    step__days=3)  # fmt: skip
    assert send.reason == "waiting for credits" and _texts(ann) == []
    credits_add(organization_id=campaign.organization_id, credits=5, note="top-up",
                actor_id=alice.pk, kind=CreditKind.PURCHASE)  # fmt: skip
    pipeline.run(lambda: campaign_sends_due(now=send.due_at + timedelta(seconds=1)))
    assert len(_texts(ann)) == 1


def test_a_paused_campaign_sends_nothing_until_resumed_and_stale_texts_are_skipped(
    soon: dict[str, Any], pipeline: Any
) -> None:
    campaign, ann = soon["campaign"], soon["people"]["ann"]
    campaign_plan(campaign)
    Campaign.objects.filter(pk=campaign.pk).update(status=CampaignStatus.PAUSED)
    pipeline.run(lambda: campaign_sends_due())
    assert _texts(ann) == []
    Campaign.objects.filter(pk=campaign.pk).update(status=CampaignStatus.ACTIVE)
    pipeline.run(lambda: campaign_sends_due(now=timezone.now() + timedelta(days=2)))
    assert _texts(ann) == []
    assert CampaignSend.objects.get(contact=ann, step__days=3).status == CampaignSendStatus.SKIPPED


def test_the_date_can_be_the_day_the_contact_was_created(clinic: dict[str, Any], org: Any) -> None:
    campaign = clinic["campaign"]
    Campaign.objects.filter(pk=campaign.pk).update(date_field="created")
    campaign.refresh_from_db()
    campaign_plan(campaign)
    today = timezone.now().astimezone(zoneinfo.ZoneInfo(org.timezone)).date()
    values = set(CampaignSend.objects.values_list("date_value", flat=True))
    assert values == {today} and isinstance(next(iter(values)), date)
    # Dan has no "last visit" but was created today: he is in now.
    assert CampaignSend.objects.filter(contact=clinic["people"]["dan"]).count() == 2

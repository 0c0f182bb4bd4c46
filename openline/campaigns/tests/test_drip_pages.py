"""Campaign pages: create, add texts (with the segment counter and merge-field checks),
who is scheduled, pause and resume; managers only, each organization its own."""

from __future__ import annotations

from datetime import time
from typing import Any

import pytest
from django.test import Client

from openline.campaigns.drips import campaign_plan
from openline.campaigns.models import Campaign, CampaignSend, CampaignStatus, CampaignStep
from openline.contacts.models import ConsentSource, FieldKind
from openline.contacts.services.consent import consent_record_opt_in
from openline.contacts.services.contacts import contact_create
from openline.contacts.services.fields import contact_set_field, custom_field_create
from openline.core.models import AuditEvent


@pytest.fixture
def admin(alice: Any) -> Client:
    client = Client()
    client.force_login(alice)
    return client


@pytest.fixture
def last_visit(org: Any) -> Any:
    return custom_field_create(organization_id=org.pk, name="Last visit", kind=FieldKind.DATE)


def test_a_manager_creates_a_campaign_adds_texts_and_sees_who_is_scheduled(
    org: Any, alice: Any, admin: Client, last_visit: Any, sandbox_number: Any
) -> None:
    page = admin.get("/campaigns/new").content.decode()
    assert "Last visit" in page and "The day the contact was added" in page
    response = admin.post("/campaigns/new", {"name": "Check-up", "date_field": last_visit.key,
                                             "number": sandbox_number.pk})  # fmt: skip
    campaign = Campaign.objects.get(name="Check-up")
    assert response.status_code == 302 and response["Location"] == f"/campaigns/{campaign.pk}/"
    assert AuditEvent.objects.filter(action="campaign.created", actor=alice).exists()

    bad = admin.post(f"/campaigns/{campaign.pk}/steps",
                     {"days": 183, "when": "after", "at_time": "10:00",
                      "body": "Hi {first_name}, your {diagnosis} check-up"})  # fmt: skip
    assert bad.status_code == 200 and "unknown merge fields {diagnosis}" in bad.content.decode()
    assert not CampaignStep.objects.exists()
    ok = admin.post(f"/campaigns/{campaign.pk}/steps",
                    {"days": 2, "when": "before", "at_time": "09:30",
                     "body": "Hi {first_name}, time for a check-up."})  # fmt: skip
    assert ok.status_code == 302
    step = CampaignStep.objects.get()
    assert (step.days, step.at_time) == (-2, time(9, 30))

    ann = contact_create(organization_id=org.pk, phone="+12125550120", name="Ann Lee")
    consent_record_opt_in(organization_id=org.pk, phone=ann.phone, source=ConsentSource.STAFF,
                          evidence="intake", actor_id=alice.pk)  # fmt: skip
    contact_set_field(contact=ann, field=last_visit, raw="2099-06-01")
    campaign_plan(campaign)
    detail = admin.get(f"/campaigns/{campaign.pk}/").content.decode()
    # 09:30 in New York (her number), shown in the organization's zone (Chicago)
    assert "Ann Lee" in detail and "Sat 30 May 2099, 08:30" in detail
    assert 'hx-post="/segments"' in detail  # the live segment counter

    assert admin.post(f"/campaigns/{campaign.pk}/pause").status_code == 302
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.PAUSED
    assert "Resume" in admin.get(f"/campaigns/{campaign.pk}/").content.decode()
    admin.post(f"/campaigns/{campaign.pk}/resume")
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.ACTIVE
    assert admin.post(f"/campaigns/{campaign.pk}/explode").status_code == 404
    # Removing the text takes its planned texts with it.
    admin.post(f"/campaigns/{campaign.pk}/steps/{step.pk}/delete")
    assert not CampaignSend.objects.exists()
    assert "Campaigns" in admin.get("/broadcasts/").content.decode()


def test_bad_campaigns_are_refused_next_to_the_field(admin: Client, org: Any) -> None:
    response = admin.post("/campaigns/new", {"name": " ", "date_field": "created"})
    assert response.status_code == 200 and "This field is required" in response.content.decode()
    response = admin.post("/campaigns/new", {"name": "X", "date_field": "shoe_size"})
    assert response.status_code == 200 and "Select a valid choice" in response.content.decode()
    assert not Campaign.objects.exists()


def test_counselors_are_refused_and_other_organizations_see_nothing(
    org: Any, bob: Any, charlie: Any, last_visit: Any
) -> None:
    campaign = Campaign.objects.create(organization=org, name="Check-up", date_field="created")
    counselor = Client()
    counselor.force_login(bob)
    assert counselor.get("/campaigns/").status_code == 403
    assert (
        counselor.post("/campaigns/new", {"name": "x", "date_field": "created"}).status_code == 403
    )
    other = Client()
    other.force_login(charlie)
    for url in (f"/campaigns/{campaign.pk}/",):
        assert other.get(url).status_code == 404
    assert other.post(f"/campaigns/{campaign.pk}/pause").status_code == 404
    assert other.post(f"/campaigns/{campaign.pk}/steps", {"days": 1, "when": "after",
                      "at_time": "10:00", "body": "hi"}).status_code == 404  # fmt: skip
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.ACTIVE and not campaign.steps.exists()

"""Campaigns: texts relative to a date on each contact ("6 months after last visit", "3 days
after intake"), built on the broadcast machinery rather than beside it:

- who is in: the audience builder (``audience_numbers`` with the campaign's tags, eligible
  numbers only, consent decided in the database) and a date: a custom date field of the
  person, or the day the contact was created (the organization's zone);
- when: the step's day at its local time in the recipient's zone (from the number, as for
  broadcasts), moved *later* into the sending window when outside it (quiet hours);
- what: the broadcast merge fields and the opt-out footer on a person's first text of the
  campaign;
- sending: through the one send service (consent refused there too), at most once per step,
  contact and date value (a unique row, claimed out of PLANNED by one conditional UPDATE), and
  held while the organization's available credits do not cover it.

Contacts enter and leave as their date or tags change: each planning round (the scheduler,
at most once a minute per campaign) withdraws planned texts whose person no longer matches and
plans the new ones. A text more than STALE_AFTER past its time is not sent (a new date long in
the past, a campaign paused for days)."""

from __future__ import annotations

import logging
import zoneinfo
from datetime import date, datetime, timedelta
from typing import Any

from django.core.cache import cache
from django.db import transaction
from django.db.models import DateField, OuterRef, Subquery
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from openline.billing.services import CreditError, credit_balance, credits_for_sms
from openline.campaigns.audience import ELIGIBLE, audience_numbers
from openline.campaigns.compose import body_render
from openline.campaigns.models import (
    Campaign,
    CampaignSend,
    CampaignSendStatus,
    CampaignStatus,
    CampaignStep,
)
from openline.campaigns.services import is_manager, person_fields
from openline.campaigns.window import sending_window
from openline.contacts.models import Contact, FieldValue
from openline.contacts.phones import phone_time_zone
from openline.messaging.models import MessageKind
from openline.messaging.segments import count_segments
from openline.messaging.services.outbound import SendRefused, message_send

logger = logging.getLogger(__name__)

CREATED = "created"  # date_field for the day the contact was created
STALE_AFTER = timedelta(days=1)
PLAN_EVERY = 60  # seconds between planning rounds of one campaign
SENDS_PER_ROUND = 200
CREDIT_WAIT = timedelta(minutes=10)


def campaign_audience(campaign: Campaign) -> dict[str, Any]:
    """The campaign's people as an audience-builder audience."""
    audience: dict[str, Any] = {}
    if campaign.include_tag_id:
        audience["include_tags"] = [campaign.include_tag_id]
    else:
        audience["everyone"] = True
    if campaign.exclude_tag_id:
        audience["exclude_tags"] = [campaign.exclude_tag_id]
    return audience


def _members(campaign: Campaign, contact_id: int | None = None) -> list[tuple[int, str, date]]:
    """(contact id, phone, date value) of every eligible number in the campaign now."""
    org = campaign.organization
    numbers = audience_numbers(organization_id=org.pk, audience=campaign_audience(campaign))
    numbers = numbers.filter(ELIGIBLE).annotate(person=Coalesce("primary_id", "pk"))
    if contact_id is not None:
        numbers = numbers.filter(pk=contact_id)
    if campaign.date_field == CREATED:
        created = Contact.objects.filter(pk=OuterRef("person")).annotate(
            day=TruncDate("created_at", tzinfo=zoneinfo.ZoneInfo(org.timezone))
        )
        value = Subquery(created.values("day")[:1], output_field=DateField())
    else:
        field_values = FieldValue.objects.filter(
            contact_id=OuterRef("person"), field__key=campaign.date_field, date__isnull=False
        )
        value = Subquery(field_values.values("date")[:1], output_field=DateField())
    rows = (
        numbers.annotate(date_value=value)
        .exclude(date_value=None)
        .order_by("pk")
        .values_list("pk", "phone", "date_value")
    )
    return list(rows)


def send_time(step: CampaignStep, *, date_value: date, phone: str, default_zone: str) -> datetime:
    """The step's moment for one person: its day and local time, moved later into the
    sending window when outside it."""
    zone = phone_time_zone(phone, default=default_zone)
    local = datetime.combine(
        date_value + timedelta(days=step.days), step.at_time, tzinfo=zoneinfo.ZoneInfo(zone)
    )
    window = sending_window(organization_id=step.campaign.organization_id)
    return window.opens_at(local, zone).astimezone(zoneinfo.ZoneInfo("UTC"))


def campaign_plan(campaign: Campaign, *, now: datetime | None = None) -> int:
    """Withdraw planned texts of people who left, plan the missing ones; returns how many
    rows changed."""
    now = now or timezone.now()
    members = _members(campaign)
    current = {(contact_id, value) for contact_id, _, value in members}
    planned = CampaignSend.objects.filter(
        step__campaign=campaign, status=CampaignSendStatus.PLANNED
    ).values_list("pk", "contact_id", "date_value")
    gone = [pk for pk, contact_id, value in planned if (contact_id, value) not in current]
    withdrawn = CampaignSend.objects.filter(pk__in=gone).update(
        status=CampaignSendStatus.WITHDRAWN, reason="no longer in the campaign (date or tags)"
    )
    steps = list(campaign.steps.all())
    have = set(
        CampaignSend.objects.filter(step__campaign=campaign).values_list(
            "step_id", "contact_id", "date_value"
        )
    )
    org_zone = campaign.organization.timezone
    new: list[CampaignSend] = []
    for step in steps:
        step.campaign = campaign
        for contact_id, phone, value in members:
            if (step.pk, contact_id, value) in have:
                continue
            due = send_time(step, date_value=value, phone=phone, default_zone=org_zone)
            if due < now - STALE_AFTER:
                continue  # long past: not a message anyone expects now
            new.append(
                CampaignSend(
                    organization_id=campaign.organization_id,
                    step=step,
                    contact_id=contact_id,
                    date_value=value,
                    due_at=due,
                )
            )
    CampaignSend.objects.bulk_create(new, batch_size=1000, ignore_conflicts=True)
    return withdrawn + len(new)


def campaigns_tick(*, now: datetime | None = None) -> int:
    """The scheduler's round: plan active campaigns (each at most every PLAN_EVERY s),
    then send what is due."""
    now = now or timezone.now()
    for campaign in Campaign.objects.filter(status=CampaignStatus.ACTIVE).select_related(
        "organization"
    ):
        if cache.add(f"openline:campaign-plan:{campaign.pk}", True, PLAN_EVERY):
            with transaction.atomic():
                campaign_plan(campaign, now=now)
    return campaign_sends_due(now=now)


def campaign_sends_due(*, now: datetime | None = None) -> int:
    now = now or timezone.now()
    due = list(
        CampaignSend.objects.filter(
            status=CampaignSendStatus.PLANNED,
            due_at__lte=now,
            step__campaign__status=CampaignStatus.ACTIVE,
        )
        .order_by("due_at", "pk")
        .values_list("pk", flat=True)[:SENDS_PER_ROUND]
    )
    done = 0
    for send_id in due:
        try:
            done += _send_one(send_id, now)
        except Exception:
            logger.exception("campaign text %s could not be sent", send_id)
    return done


@transaction.atomic
def _send_one(send_id: int, now: datetime) -> int:
    send = (
        CampaignSend.objects.select_related("step__campaign__organization", "contact")
        .filter(pk=send_id, status=CampaignSendStatus.PLANNED)
        .first()
    )
    if send is None:
        return 0
    campaign = send.step.campaign
    planned = CampaignSend.objects.filter(pk=send_id, status=CampaignSendStatus.PLANNED)
    if now - send.due_at > STALE_AFTER:
        return planned.update(status=CampaignSendStatus.SKIPPED, reason="too late to send")
    member = _members(campaign, contact_id=send.contact_id)
    if not member or member[0][2] != send.date_value:
        return planned.update(
            status=CampaignSendStatus.WITHDRAWN, reason="no longer in the campaign (date or tags)"
        )
    phone = member[0][1]
    zone = phone_time_zone(phone, default=campaign.organization.timezone)
    window = sending_window(organization_id=campaign.organization_id)
    if not window.is_open(now, zone):  # quiet hours: wait for the window
        planned.update(due_at=window.opens_at(now, zone))
        return 0
    first = not CampaignSend.objects.filter(
        step__campaign=campaign, contact_id=send.contact_id, status=CampaignSendStatus.SENT
    ).exists()
    person = send.contact.primary_id or send.contact_id
    fields = person_fields(campaign.organization_id, send.step.template, [person]).get(person)
    text = body_render(send.step.template, contact=send.contact, fields=fields, footer=first)
    try:
        needed = credits_for_sms(phone=phone, segments=count_segments(text).segments)
    except CreditError:
        needed = 0
    if credit_balance(organization_id=campaign.organization_id).available < needed:
        planned.update(due_at=now + CREDIT_WAIT, reason="waiting for credits")
        return 0
    if not planned.update(status=CampaignSendStatus.SENT, sent_at=now, reason=""):
        return 0  # another scheduler took it
    try:
        with transaction.atomic():
            message = message_send(
                organization_id=campaign.organization_id,
                to=phone,
                number_id=campaign.number_id,
                body=text,
                kind=MessageKind.CAMPAIGN,
            )
    except SendRefused as exc:
        CampaignSend.objects.filter(pk=send_id).update(
            status=CampaignSendStatus.REFUSED, reason=f"{exc.code}: {exc}"[:200], sent_at=None
        )
        return 1
    CampaignSend.objects.filter(pk=send_id).update(message=message)
    return 1


# --- managing campaigns -------------------------------------------------------------------


class CampaignError(ValueError):
    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


MAX_STEP_DAYS = 3660


def _require_manager(organization_id: int, actor_id: int | None) -> None:
    if not is_manager(organization_id, actor_id):
        raise CampaignError("only a supervisor or an admin can change campaigns")


def campaign_create(
    *,
    organization_id: int,
    actor_id: int | None,
    name: str,
    date_field: str,
    include_tag_id: int | None = None,
    exclude_tag_id: int | None = None,
    number_id: int | None = None,
) -> Campaign:
    """A campaign (active, with no steps yet): validated and audited."""
    from openline.contacts.models import CustomField, FieldKind, Tag
    from openline.core.services import audit_record
    from openline.providers.models import Number

    _require_manager(organization_id, actor_id)
    name = " ".join((name or "").split())
    if not name or len(name) > 120:
        raise CampaignError("give the campaign a name of at most 120 characters", "name")
    dates = CustomField.objects.filter(
        organization_id=organization_id, kind=FieldKind.DATE, key=date_field
    )
    if date_field != CREATED and not dates.exists():
        raise CampaignError(
            "pick one of your date fields, or the day contacts were added", "date_field"
        )
    tags = Tag.objects.filter(organization_id=organization_id)
    for tag_id, field in ((include_tag_id, "include_tag"), (exclude_tag_id, "exclude_tag")):
        if tag_id is not None and not tags.filter(pk=tag_id).exists():
            raise CampaignError("that tag is not one of yours", field)
    numbers = Number.objects.filter(organization_id=organization_id, is_active=True)
    if number_id is not None and not numbers.filter(pk=number_id).exists():
        raise CampaignError("that number is not one of yours", "number")
    campaign = Campaign.objects.create(
        organization_id=organization_id,
        name=name,
        date_field=date_field,
        include_tag_id=include_tag_id,
        exclude_tag_id=exclude_tag_id,
        number_id=number_id,
        created_by_id=actor_id,
    )
    audit_record(organization_id=organization_id, actor_id=actor_id, action="campaign.created",
                 object_type="campaign", object_id=campaign.pk)  # fmt: skip
    return campaign


def campaign_step_add(
    *, campaign: Campaign, actor_id: int | None, days: int, at_time: Any, template: str
) -> CampaignStep:
    from openline.campaigns.compose import ComposeError, body_check
    from openline.contacts.models import CustomField

    _require_manager(campaign.organization_id, actor_id)
    if not -MAX_STEP_DAYS <= days <= MAX_STEP_DAYS:
        raise CampaignError(f"at most {MAX_STEP_DAYS} days before or after the date", "days")
    keys = CustomField.objects.filter(organization_id=campaign.organization_id).values_list(
        "key", flat=True
    )
    try:
        template = body_check(template, field_keys=keys)
    except ComposeError as exc:
        raise CampaignError(str(exc), "template") from exc
    step = CampaignStep.objects.create(
        campaign=campaign, days=days, at_time=at_time, template=template
    )
    cache.delete(f"openline:campaign-plan:{campaign.pk}")  # plan it at the next round
    return step


def campaign_step_delete(*, step: CampaignStep, actor_id: int | None) -> None:
    """Remove a step: its planned texts go with it; what was sent stays in the log."""
    _require_manager(step.campaign.organization_id, actor_id)
    if step.sends.exclude(status=CampaignSendStatus.PLANNED).exists():
        raise CampaignError("texts of this step went out already; pause the campaign instead")
    step.delete()


def campaign_set_status(*, campaign: Campaign, actor_id: int | None, status: str) -> None:
    from openline.core.services import audit_record

    _require_manager(campaign.organization_id, actor_id)
    if status not in CampaignStatus.values:
        raise CampaignError("a campaign is active or paused")
    Campaign.objects.filter(pk=campaign.pk).update(status=status)
    campaign.status = status
    audit_record(organization_id=campaign.organization_id, actor_id=actor_id,
                 action=f"campaign.{'resumed' if status == CampaignStatus.ACTIVE else 'paused'}",
                 object_type="campaign", object_id=campaign.pk)  # fmt: skip

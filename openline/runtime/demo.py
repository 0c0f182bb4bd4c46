"""The demo organization that `make run` creates on a fresh machine."""

from __future__ import annotations

import json
import secrets
from datetime import time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from openline.core.models import Organization
from openline.core.services import organization_create, user_create
from openline.providers.models import Number
from openline.providers.services import number_add

if TYPE_CHECKING:
    from openline.chat.models import ChatWidget

DEMO_SLUG = "demo"
DEMO_NUMBER = "+12025550123"
DEMO_ROLES = ("admin", "supervisor", "counselor")


def _credentials_file() -> Path:
    return Path(settings.VAR_DIR) / "demo-credentials.json"


@transaction.atomic
def demo_ensure() -> dict[str, object]:
    """Create the demo organization unless it exists; return its sign-in details."""
    path = _credentials_file()
    org = Organization.objects.filter(slug=DEMO_SLUG).first()
    if org is None:
        org = organization_create(
            name="Demo Warm Line", slug=DEMO_SLUG, timezone_name="America/New_York"
        )
        org.contact_info = "demo@openline.local"
        org.save(update_fields=["contact_info"])
        number_add(
            organization=org,
            provider="sandbox",
            e164=DEMO_NUMBER,
            name="Demo line",
            segments_per_second=10,
        )
        users = []
        for role in DEMO_ROLES:
            password = secrets.token_urlsafe(9)
            email = f"{role}@demo.openline.local"
            user_create(
                organization=org,
                email=email,
                role=role,
                password=password,
                display_name=f"Demo {role.capitalize()}",
            )
            users.append({"role": role, "email": email, "password": password})
        _demo_saved_replies(org)
        path.write_text(json.dumps({"users": users}, indent=2))
        path.chmod(0o600)
        created = True
    else:
        created = False
    users = json.loads(path.read_text())["users"] if path.exists() else []
    number = Number.objects.filter(organization=org).order_by("id").first()
    if number is not None:
        _demo_shifts(org, number)
    _demo_credits(org)
    widget = _demo_chat_widget(org, number)
    if number is not None:
        _demo_forms(org, number)
    return {
        "created": created,
        "organization": org.slug,
        "number": number.e164 if number else None,
        "users": users,
        "chat_demo_url": f"{settings.PUBLIC_URL}/widget-demo/{widget.public_id}"
        if widget
        else None,
    }


DEMO_SHIFT_TITLE = "Demo: always staffed"
DEMO_CREDITS = 1000


def _demo_credits(org: Organization) -> None:
    """A first allowance, so the demo's broadcasts can be sent (once: the ledger is
    append-only, and spending it is part of trying the demo)."""
    from openline.billing.models import CreditEntry, CreditKind
    from openline.billing.services import credits_add
    from openline.core.models import Membership

    if CreditEntry.objects.filter(organization=org).exists():
        return
    admin = Membership.objects.filter(organization=org, role="admin", is_active=True).first()
    if admin is not None:
        credits_add(
            organization_id=org.pk,
            credits=DEMO_CREDITS,
            note="Demo allowance",
            actor_id=admin.user_id,
            kind=CreditKind.ALLOWANCE,
        )


def _demo_shifts(org: Organization, number: Number) -> None:
    """Keep the demo line online: a daily shift around the clock (midnight to midnight,
    local) with the demo counselor and supervisor signed up for the next twelve weeks,
    topped up on every run. Its offline answer is on, so taking the inbox offline on the
    Shifts page and texting it shows the answer."""
    from openline.availability.models import InboxResponses, Shift
    from openline.availability.recurrence import expand
    from openline.availability.services import SERIES_WEEKS, shift_create, shift_sign_up_series
    from openline.core.models import Membership

    members = dict(
        Membership.objects.filter(organization=org, is_active=True).values_list("role", "user_id")
    )
    admin = members.get("admin")
    if admin is None:
        return
    shift = Shift.objects.filter(organization=org, number=number, title=DEMO_SHIFT_TITLE).first()
    if shift is None:
        shift = shift_create(
            organization_id=org.pk,
            actor_id=admin,
            number_id=number.pk,
            kind="normal",
            start_date=timezone.localtime(timezone=ZoneInfo(org.timezone)).date(),
            start_time=time(0, 0),
            duration_minutes=24 * 60,
            places=3,
            rrule="FREQ=DAILY",
            title=DEMO_SHIFT_TITLE,
        )
        InboxResponses.objects.get_or_create(
            number=number, defaults={"organization": org, "offline_enabled": True}
        )
    now = timezone.now()
    current = expand(shift, now, now + timedelta(days=2))
    for role in ("counselor", "supervisor"):
        if current and role in members:
            shift_sign_up_series(
                organization_id=org.pk,
                actor_id=admin,
                shift_id=shift.pk,
                occurrence_start=current[0].start,
                user_id=members[role],
                weeks=SERIES_WEEKS,
            )


def _demo_chat_widget(org: Organization, number: Number | None) -> ChatWidget | None:
    """A web-chat widget that may be embedded on OpenLine's own demo page (it takes chats
    while the demo line is online: see ``_demo_shifts``)."""
    from urllib.parse import urlsplit

    from openline.chat.models import ChatWidget
    from openline.chat.services import widget_create

    if number is None:
        return None
    public = urlsplit(settings.PUBLIC_URL)
    origin = f"{public.scheme}://{public.netloc}"
    widget = ChatWidget.objects.filter(organization=org).order_by("id").first()
    if widget is None:
        widget = widget_create(
            organization_id=org.pk,
            actor_id=None,
            number_id=number.pk,
            display_name="Demo Warm Line chat",
            allowed_origins=[origin],
            greeting="Hi, you've reached the Demo Warm Line. What's on your mind?",
            offline_text="Chat is closed right now. Text the demo number any time.",
        )
        _demo_chat_questions(widget)
    if not widget.busy_text:  # shown instead of a chat box when the queue is full
        widget.busy_text = "You can also text the demo number any time."
        widget.save(update_fields=["busy_text"])
    if origin not in widget.allowed_origins:  # served on another port this time
        widget.allowed_origins = sorted({*widget.allowed_origins, origin})
        widget.save(update_fields=["allowed_origins"])
    return widget


DEMO_CHAT_QUESTIONS: list[dict[str, Any]] = [
    {
        "stage": "pre",
        "kind": "choice",
        "prompt": "What would you like to talk about?",
        "required": True,
        "options_text": "Feeling lonely or low\nStress at home or work\n"
        "Thinking about ending my life | urgent\nSomething else",
    },
    {
        "stage": "pre",
        "kind": "scale",
        "prompt": "How are you feeling right now? (1 = very bad, 7 = very good)",
    },
    {
        "stage": "pre",
        "kind": "yesno",
        "prompt": "Are you safe right now?",
        "options_text": "No | high",
    },
]


def _demo_chat_questions(widget: Any) -> None:
    from openline.chat.questions import question_create

    for question in DEMO_CHAT_QUESTIONS:
        question_create(widget=widget, actor_id=None, **question)


DEMO_CONTACT_FORM: dict[str, Any] = {
    "sections": [
        {
            "key": "contact",
            "title": "About this contact",
            "fields": [
                {
                    "key": "reason",
                    "label": "Reason for contact",
                    "kind": "choice",
                    "required": True,
                    "options": [
                        "Loneliness",
                        "Stress at home or work",
                        "Thoughts of suicide",
                        "Housing or money",
                        "Something else",
                    ],
                },
                {
                    "key": "safety_plan",
                    "label": "Safety plan made?",
                    "kind": "yesno",
                    "required": True,
                    "show_if": {"field": "reason", "values": ["thoughts_of_suicide"]},
                },
                {
                    "key": "age_group",
                    "label": "Age group",
                    "kind": "choice",
                    "options": ["Under 18", "18 to 24", "25 to 64", "65 or older"],
                },
                {"key": "what_was_done", "label": "What was done", "kind": "long_text"},
            ],
        }
    ]
}
DEMO_SURVEY: dict[str, Any] = {
    "sections": [
        {
            "key": "after",
            "title": "",
            "fields": [
                {
                    "key": "helpful",
                    "label": "How helpful was this conversation? (1 = not at all, 7 = very)",
                    "kind": "scale",
                },
                {
                    "key": "anything_else",
                    "label": "Anything you would like us to know?",
                    "kind": "text",
                },
            ],
        }
    ]
}


def _demo_forms(org: Organization, number: Number) -> None:
    """A contact form, the risk screener and a survey after chats (once: what an admin
    changes afterwards is theirs)."""
    from openline.forms.models import Form
    from openline.forms.services import (
        form_create,
        form_create_screener,
        form_schema_save,
        form_use_set,
    )

    if Form.objects.filter(organization=org).exists():
        return
    contact = form_create(organization_id=org.pk, actor_id=None, name="Contact form")
    form_schema_save(form=contact, actor_id=None, schema=DEMO_CONTACT_FORM)
    survey = form_create(organization_id=org.pk, actor_id=None, name="After the conversation")
    form_schema_save(form=survey, actor_id=None, schema=DEMO_SURVEY)
    screener = form_create_screener(organization_id=org.pk, actor_id=None)
    form_use_set(number=number, purpose="contact", form=contact, actor_id=None)
    form_use_set(number=number, purpose="risk", form=screener, actor_id=None)
    form_use_set(number=number, purpose="post_survey", form=survey, by_text=False, actor_id=None)


DEMO_SAVED_REPLIES = [
    ("Greeting", "hi", "Hi, this is {counselor} with {organization}. I'm here and listening."),
    ("Check in", "checkin", "Are you safe right now?"),
    ("Closing", "bye", "Thank you for reaching out to {organization}. Text us any time."),
]


def _demo_saved_replies(org: Organization) -> None:
    from openline.console.models import SavedReply

    SavedReply.objects.bulk_create(
        SavedReply(organization=org, name=name, shortcut=shortcut, body=body)
        for name, shortcut, body in DEMO_SAVED_REPLIES
    )

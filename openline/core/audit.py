"""Reading the audit log: a human label for every action the code writes, the log filtered
for the audit page and its CSV, and who read a conversation's transcript."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Max, Min, Q, QuerySet

from openline.core.models import ApiToken, AuditEvent, User

_HOW = {
    "page": "on its page",
    "pane": "in the workspace",
    "thread": "(live thread)",
    "action": "(after an action)",
    "history": "as earlier history",
    "api": "through the API",
}

# Grouped by area (a slug, a label, its actions) for the audit page's action filter.
AREAS: list[tuple[str, str, dict[str, str]]] = [
    (
        "sign-in",
        "Sign-in and security",
        {
            "auth.sign_in": "Signed in",
            "auth.sign_in_failed": "Failed sign-in",
            "auth.second_factor_failed": "Wrong second-factor code",
            "auth.recovery_code_used": "Used a recovery code",
            "auth.sign_out_everywhere": "Signed out everywhere",
            "auth.password_reset": "Reset their password",
            "auth.password_changed": "Changed their password",
            "second_factor.enabled": "Turned on the second factor",
            "second_factor.disabled": "Turned off the second factor",
            "second_factor.reset": "Reset someone's second factor",
            "recovery_codes.regenerated": "Made new recovery codes",
        },
    ),
    (
        "transcripts",
        "Transcripts",
        {
            **{f"transcript.read.{how}": f"Read a transcript {text}" for how, text in _HOW.items()},
            **{
                f"transcript.monitor.{how}": f"Monitored a transcript {text}"
                for how, text in _HOW.items()
            },
            "transcript.read.export": "Exported a transcript (CSV)",
            "transcript.read.print": "Printed a transcript",
            "transcript.monitor.export": "Exported a transcript (CSV) while monitoring",
            "transcript.monitor.print": "Printed a transcript while monitoring",
        },
    ),
    (
        "conversations",
        "Conversations",
        {
            "conversation.take_over": "Took over a conversation",
            "conversation.join": "Joined a conversation",
            "risk_assessment.complete": "Completed a risk assessment",
            "risk_checklist.start": "Started the imminent-risk checklist",
            "risk_step.done": "Ticked an imminent-risk step",
            "risk_step.undone": "Unticked an imminent-risk step",
            "risk_checklist.end": "Ended the imminent-risk checklist",
        },
    ),
    (
        "consent",
        "Consent",
        {
            "consent.opt_in": "Recorded an opt-in",
            "consent.opt_out": "Recorded an opt-out",
            "consent.request_confirmed": "Confirmed an opt-out request",
            "consent.request_dismissed": "Dismissed an opt-out request",
            "consent.voice_opt_in": "Recorded a voice opt-in",
            "consent.voice_opt_out": "Recorded a voice opt-out",
        },
    ),
    (
        "team",
        "Team",
        {
            "member.invited": "Invited someone",
            "member.invitation_resent": "Re-sent an invitation",
            "member.invitation_withdrawn": "Withdrew an invitation",
            "member.joined": "Joined the organization",
            "member.role_changed": "Changed a role",
            "member.limit_changed": "Changed a conversation limit",
            "member.deactivated": "Deactivated a member",
            "member.reactivated": "Reactivated a member",
        },
    ),
    (
        "tokens",
        "API tokens",
        {
            "api_token.created": "Created an API token",
            "api_token.revoked": "Revoked an API token",
        },
    ),
    (
        "settings",
        "Settings",
        {
            "organization.update": "Changed the organization's texts",
            "organization.conversation_limits": "Changed conversation limits",
            "organization.idle_timeout": "Changed the idle sign-out time",
            "organization.second_factor_rule": "Changed who needs a second factor",
            "organization.survey_skip_word": "Changed the survey skip word",
            "alerts.policy": "Changed the alert policy",
            "alerts.phone_code_sent": "Sent an alert phone confirmation code",
            "alerts.phone_confirmed": "Confirmed an alert phone",
            "alerts.permit": "Changed permission for alert texts",
            "chat_widget.create": "Created a chat widget",
            "chat_widget.update": "Changed a chat widget",
            "chat_question.create": "Added a chat question",
            "chat_question.delete": "Removed a chat question",
            "inbox.responses.update": "Changed auto-responses",
            "inbox.availability.offline": "Switched an inbox offline",
            "inbox.availability.automatic": "Switched an inbox to follow shifts",
            "saved_reply.save": "Saved a saved reply",
            "saved_reply.delete": "Deleted a saved reply",
            "risk_phrase.add": "Added a risk phrase",
            "risk_phrase.remove": "Removed a risk phrase",
            "risk_phrase.reset": "Restored the suggested risk phrases",
            "reminder_settings.updated": "Changed reminder settings",
            "reminder_rule.created": "Created a reminder rule",
            "reminder_rule.updated": "Changed a reminder rule",
        },
    ),
    (
        "exports",
        "Exports",
        {
            "audit.export": "Exported the audit log",
            "contacts.export": "Exported contacts",
            "broadcast.export_log": "Exported a broadcast's log",
            "report.export": "Downloaded a report (CSV)",
        },
    ),
    (
        "contacts",
        "Contact imports",
        {
            "contact_import.upload": "Uploaded a contact import",
            "contact_import.accept": "Started a contact import",
            "contact_import.cancel": "Cancelled a contact import",
        },
    ),
    (
        "broadcasts",
        "Broadcasts and campaigns",
        {
            "broadcast.create": "Created a broadcast",
            "broadcast.send": "Sent a broadcast",
            "broadcast.schedule": "Scheduled a broadcast",
            "broadcast.paused": "Paused a broadcast",
            "broadcast.resumed": "Resumed a broadcast",
            "broadcast.cancelled": "Cancelled a broadcast",
            "campaign.created": "Created a campaign",
            "campaign.paused": "Paused a campaign",
            "campaign.resumed": "Resumed a campaign",
        },
    ),
    (
        "appointments",
        "Appointments",
        {
            "appointment.created": "Created an appointment",
            "appointment.updated": "Changed an appointment",
            "appointment.cancelled": "Cancelled an appointment",
            "appointment.confirmed_by_text": "Appointment confirmed by text",
            "appointment.cancelled_by_text": "Appointment cancelled by text",
            "appointment.reschedule_by_text": "Reschedule asked by text",
            "appointment_import.upload": "Uploaded an appointment import",
            "appointment_import.discard": "Discarded an appointment import",
            "appointment_import.run": "Imported appointments",
        },
    ),
    (
        "shifts",
        "Shifts",
        {
            "shift.create": "Created a shift",
            "shift.delete": "Deleted a shift",
            "shift.cancel_occurrence": "Cancelled a shift occurrence",
            "shift.sign_up": "Signed up for a shift",
            "shift.sign_up_series": "Signed up for a shift series",
            "shift.withdraw": "Withdrew from a shift",
            "calendar_feed.rotate": "Made a new calendar feed address",
        },
    ),
    (
        "forms",
        "Forms",
        {
            "form.created": "Created a form",
            "form.updated": "Renamed a form",
            "form.changed": "Changed a form's questions",
            "form.archived": "Archived a form",
            "form.restored": "Restored a form",
            "form.use_set": "Chose an inbox's form",
            "taxonomy.saved": "Saved a taxonomy",
        },
    ),
    (
        "system",
        "Credits and system",
        {
            "credits.purchase": "Bought credits",
            "credits.allowance": "Added a credit allowance",
            "inbound.parked_retry": "Retried parked incoming texts",
        },
    ),
]

ACTION_LABELS: dict[str, str] = {
    action: label for _, _, actions in AREAS for action, label in actions.items()
}


def action_label(action: str) -> str:
    """The label of ``action``; one the code writes but this list misses still reads."""
    label = ACTION_LABELS.get(action)
    if label is not None:
        return label
    words = action.replace("_", " ").replace(".", ": ", 1).replace(".", " ")
    return words[:1].upper() + words[1:]


AREA_ACTIONS: dict[str, list[str]] = {slug: list(actions) for slug, _, actions in AREAS}
AREA_PREFIX = "area:"


def action_choices() -> list[tuple[str, list[tuple[str, str]]]]:
    """For a grouped <select>: each area's "all of them" (``area:<slug>``), then its actions."""
    return [
        (label, [(f"{AREA_PREFIX}{slug}", f"All: {label.lower()}"), *actions.items()])
        for slug, label, actions in AREAS
    ]


def audit_events(
    organization_id: int,
    *,
    actor_id: int | None = None,
    action: str | None = None,
    conversation_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[AuditEvent]:
    """The organization's audit log, newest first, with who did it. ``action`` is one action,
    a prefix ending with a dot ("transcript.") or an area of the page's filter
    ("area:settings"); ``until`` is exclusive."""
    events = AuditEvent.objects.filter(organization_id=organization_id)
    if actor_id is not None:
        events = events.filter(actor_id=actor_id)
    if action:
        events = events.filter(_action_filter(action))
    if conversation_id is not None:
        events = events.filter(object_type="conversation", object_id=str(conversation_id))
    if since is not None:
        events = events.filter(created_at__gte=since)
    if until is not None:
        events = events.filter(created_at__lt=until)
    return events.select_related("actor", "api_token").order_by("-created_at", "-id")


def _action_filter(action: str) -> Q:
    if action.startswith(AREA_PREFIX):
        return Q(action__in=AREA_ACTIONS.get(action.removeprefix(AREA_PREFIX), []))
    if action.endswith("."):
        return Q(action__startswith=action)
    return Q(action=action)


@dataclass(frozen=True, slots=True)
class Reader:
    """Someone (or an integration) who read a conversation's transcript."""

    name: str
    actor_id: int | None
    api_token_id: int | None
    first_at: datetime
    last_at: datetime
    views: int  # reads in the console or through the API (once per view session)
    monitored: bool  # read while someone else held it
    exports: int
    prints: int


def _reader_name(row: dict[str, object]) -> str:
    if row["actor_id"] is not None:
        return str(row["actor__display_name"] or row["actor__email"])
    if row["api_token_id"] is not None:
        return f"API token {row['api_token__name'] or row['api_token__prefix']}"
    return "Someone no longer known"


def conversation_readers(organization_id: int, conversation_id: int) -> list[Reader]:
    """Who read this conversation's transcript, first reader first: one query."""
    exports = ("transcript.read.export", "transcript.monitor.export")
    prints = ("transcript.read.print", "transcript.monitor.print")
    rows = (
        AuditEvent.objects.filter(
            organization_id=organization_id,
            object_type="conversation",
            object_id=str(conversation_id),
            action__startswith="transcript.",
        )
        .values(
            "actor_id",
            "api_token_id",
            "actor__display_name",
            "actor__email",
            "api_token__name",
            "api_token__prefix",
        )
        .annotate(
            first_at=Min("created_at"),
            last_at=Max("created_at"),
            views=Count("pk", filter=~Q(action__in=exports + prints)),
            monitoring=Count("pk", filter=Q(action__startswith="transcript.monitor.")),
            exports=Count("pk", filter=Q(action__in=exports)),
            prints=Count("pk", filter=Q(action__in=prints)),
        )
        .order_by("first_at", "actor_id", "api_token_id")
    )
    return [
        Reader(
            name=_reader_name(row),
            actor_id=row["actor_id"],
            api_token_id=row["api_token_id"],
            first_at=row["first_at"],
            last_at=row["last_at"],
            views=row["views"],
            monitored=row["monitoring"] > 0,
            exports=row["exports"],
            prints=row["prints"],
        )
        for row in rows
    ]


def api_tokens(organization_id: int) -> QuerySet[ApiToken]:
    """The organization's API tokens, newest first, with who made each."""
    return (
        ApiToken.objects.filter(organization_id=organization_id)
        .select_related("created_by")
        .order_by("-created_at", "-id")
    )


def member_names(organization_id: int, user_ids: Iterable[str]) -> dict[str, str]:
    """Names of the organization's members (deactivated too) among ``user_ids`` (an
    event's object_id), for events about a person: one query."""
    ids = {int(pk) for pk in user_ids if pk.isdigit()}
    people = User.objects.filter(pk__in=ids, memberships__organization_id=organization_id)
    return {str(user.pk): str(user) for user in people.only("display_name", "email")}

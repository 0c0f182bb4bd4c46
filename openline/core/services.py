from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from datetime import timedelta

from django.contrib.sessions.backends.base import SessionBase
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from openline.core.models import (
    ApiToken,
    AuditEvent,
    Membership,
    Organization,
    Role,
    TokenScope,
    User,
    validate_timezone,
)
from openline.core.selectors import active_organization_ids

TOKEN_PREFIX = "olk_"


def organization_create(*, name: str, slug: str = "", timezone_name: str = "UTC") -> Organization:
    name = name.strip()
    if not name:
        raise ValidationError("organization name is required")
    slug = slugify(slug or name)
    if not slug:
        raise ValidationError("organization slug is required")
    validate_timezone(timezone_name)
    if Organization.objects.filter(slug=slug).exists():
        raise ValidationError(f"an organization with slug {slug!r} already exists")
    return Organization.objects.create(name=name, slug=slug, timezone=timezone_name)


@transaction.atomic
def user_create(
    *, organization: Organization, email: str, role: str, password: str, display_name: str = ""
) -> Membership:
    if role not in Role.values:
        raise ValidationError(f"role must be one of {', '.join(Role.values)}")
    if len(password) < 8:
        raise ValidationError("password must be at least 8 characters")
    email = User.objects.normalize_email(email.strip()).lower()
    user = User.objects.filter(email=email).first()
    if user is None:
        user = User.objects.create_user(email=email, password=password, display_name=display_name)
    if Membership.objects.filter(organization=organization, user=user).exists():
        raise ValidationError(f"{email} is already a member of {organization.slug}")
    return Membership.objects.create(organization=organization, user=user, role=role)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


API_TOKEN_NAME_LENGTH = 100


def api_token_create(
    *,
    organization: Organization,
    name: str = "",
    scope: str = TokenScope.WRITE,
    created_by_id: int | None = None,
) -> tuple[ApiToken, str]:
    """Returns the token row and the secret, which is shown once and stored only hashed.
    Audited (``created_by_id`` None: made at the server's command line)."""
    name = name.strip()
    if len(name) > API_TOKEN_NAME_LENGTH:
        raise ValidationError(f"a token's name is at most {API_TOKEN_NAME_LENGTH} characters")
    if scope not in TokenScope.values:
        raise ValidationError(f"scope must be one of {', '.join(TokenScope.values)}")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        token = ApiToken.objects.create(
            organization=organization,
            name=name,
            prefix=secret[:10],
            token_hash=_hash(secret),
            scope=scope,
            created_by_id=created_by_id,
        )
        audit_record(
            organization_id=organization.pk,
            actor_id=created_by_id,
            action="api_token.created",
            object_type="api_token",
            object_id=token.pk,
            detail=_token_detail(token),
        )
    return token, secret


def _token_detail(token: ApiToken) -> str:
    return f"{token.name or token.prefix} ({token.get_scope_display().lower()})"


class ApiTokenError(Exception):
    pass


@transaction.atomic
def api_token_revoke(*, organization_id: int, token_id: int, actor_id: int | None) -> ApiToken:
    """Revoke one of the organization's tokens: every request with it is refused from now
    on (401). Audited once; revoking a revoked token changes nothing."""
    token = (
        ApiToken.objects.select_for_update()
        .filter(organization_id=organization_id, pk=token_id)
        .first()
    )
    if token is None:
        raise ApiTokenError("there is no such token")
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        audit_record(
            organization_id=organization_id,
            actor_id=actor_id,
            action="api_token.revoked",
            object_type="api_token",
            object_id=token.pk,
            detail=_token_detail(token),
        )
    return token


def api_token_authenticate(secret: str) -> ApiToken | None:
    """The token this secret belongs to, unless it is unknown or revoked; records its use."""
    if not secret.startswith(TOKEN_PREFIX):
        return None
    token = (
        ApiToken.objects.select_related("organization")
        .filter(token_hash=_hash(secret), revoked_at__isnull=True)
        .first()
    )
    if token is not None:
        token.last_used_at = timezone.now()
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=token.last_used_at)
    return token


def audit_record(
    *,
    organization_id: int,
    actor_id: int | None,
    action: str,
    object_type: str = "",
    object_id: object = "",
    api_token_id: int | None = None,
    detail: str = "",
    ip_address: str | None = None,
    user_agent: str = "",
) -> None:
    """Append one event. ``detail`` is a short description holding no message content;
    the address and browser are kept for sign-ins."""
    AuditEvent.objects.create(
        organization_id=organization_id,
        actor_id=actor_id,
        api_token_id=api_token_id,
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        detail=detail[:200],
        ip_address=ip_address or None,
        user_agent=user_agent[:300],
    )


def audit_person_everywhere(
    *,
    user_id: int,
    action: str,
    detail: str = "",
    ip_address: str | None = None,
    user_agent: str = "",
) -> None:
    """A person's own account event (a sign-in, a new password, a second factor), recorded
    in every organization they are an active member of: each one's admins see it."""
    for organization_id in active_organization_ids(user_id):
        audit_record(
            organization_id=organization_id,
            actor_id=user_id,
            action=action,
            object_type="user",
            object_id=user_id,
            detail=detail,
            ip_address=ip_address,
            user_agent=user_agent,
        )


# --- transcript reads ------------------------------------------------------------------------
# Reading a conversation's text is audited once per person, conversation and view session:
# the console refreshes a thread every few seconds, and a row per refresh would bury the reads
# that matter. A console view session is the signed-in Django session (signing out, its
# expiry, or signing in from another browser starts a new one); the conversations recorded
# in it live in the session itself, which the request has loaded anyway, so a refresh costs
# no query. An API token has no session: its view session lasts an hour from its last
# recorded read.

TRANSCRIPT_READS = ("page", "pane", "thread", "action", "history", "api")
TRANSCRIPT_EXPORTS = ("export", "print")
API_READ_SESSION = timedelta(hours=1)
_SESSION_KEY = "openline.transcripts_read"
# More than a long shift opens; past it the oldest are forgotten (at worst, one more row).
_SESSION_REMEMBERS = 2000


def transcript_action(how: str, *, monitoring: bool = False) -> str:
    """The audit action for reading a transcript ``how``: ``transcript.read.pane``, or
    ``transcript.monitor.pane`` for a supervisor reading one someone else holds."""
    if how not in TRANSCRIPT_READS + TRANSCRIPT_EXPORTS:
        raise ValueError(f"unknown way of reading a transcript: {how!r}")
    return f"transcript.{'monitor' if monitoring else 'read'}.{how}"


def _transcript_events(
    organization_id: int,
    conversation_ids: Iterable[int],
    action: str,
    *,
    actor_id: int | None = None,
    api_token_id: int | None = None,
) -> None:
    AuditEvent.objects.bulk_create(
        AuditEvent(
            organization_id=organization_id,
            actor_id=actor_id,
            api_token_id=api_token_id,
            action=action,
            object_type="conversation",
            object_id=str(conversation_id),
        )
        for conversation_id in conversation_ids
    )


def audit_transcript_read(
    *,
    session: SessionBase,
    organization_id: int,
    actor_id: int,
    conversation_ids: Iterable[int],
    how: str,
    monitoring: bool = False,
) -> list[int]:
    """Record that ``actor_id`` read these conversations' text ``how``, except those already
    recorded in this view session (``session``, the signed-in one). Returns the ids recorded
    now. Two requests racing in one session may both record: once more, never once less."""
    action = transcript_action(how, monitoring=monitoring)
    remembered = session.get(_SESSION_KEY) or {}
    seen: list[int] = remembered.get("ids", []) if remembered.get("actor") == actor_id else []
    known = set(seen)
    new = [cid for cid in dict.fromkeys(conversation_ids) if cid not in known]
    if not new:
        return []
    _transcript_events(organization_id, new, action, actor_id=actor_id)
    session[_SESSION_KEY] = {"actor": actor_id, "ids": (seen + new)[-_SESSION_REMEMBERS:]}
    return new


def audit_transcript_read_by_token(
    *, organization_id: int, api_token_id: int, conversation_id: int
) -> bool:
    """Record an API token's read of a conversation's text, unless it has one recorded in
    the last API_READ_SESSION (an integration pages through a transcript in many calls).
    Returns whether it recorded one."""
    action = transcript_action("api")
    recent = AuditEvent.objects.filter(
        organization_id=organization_id,
        api_token_id=api_token_id,
        action=action,
        object_type="conversation",
        object_id=str(conversation_id),
        created_at__gte=timezone.now() - API_READ_SESSION,
    )
    if recent.exists():
        return False
    _transcript_events(organization_id, [conversation_id], action, api_token_id=api_token_id)
    return True


def audit_transcript_export(
    *, organization_id: int, actor_id: int, conversation_id: int, how: str
) -> None:
    """Exporting or printing a transcript takes a copy away: each one is its own event, and
    it neither counts as nor replaces the view session's read."""
    if how not in TRANSCRIPT_EXPORTS:
        raise ValueError(f"unknown kind of export: {how!r}")
    _transcript_events(
        organization_id, [conversation_id], transcript_action(how), actor_id=actor_id
    )


ORGANIZATION_TEXT_FIELDS = ("name", "contact_info", "welcome_text", "opt_out_text", "help_text")
MAX_AUTO_TEXT = 320  # two GSM-7 segments: keyword replies stay short and cheap


def organization_update_texts(
    *, organization: Organization, actor_id: int, **values: str
) -> Organization:
    """Change the organization's name, contact line and keyword reply texts (empty text =
    the built-in default). Every change is written to the audit log."""
    unknown = set(values) - set(ORGANIZATION_TEXT_FIELDS)
    if unknown:
        raise ValidationError(f"unknown fields: {', '.join(sorted(unknown))}")
    cleaned = {key: value.strip() for key, value in values.items()}
    if "name" in cleaned and not cleaned["name"]:
        raise ValidationError("the organization needs a name")
    for key in ("welcome_text", "opt_out_text", "help_text"):
        if len(cleaned.get(key, "")) > MAX_AUTO_TEXT:
            raise ValidationError(f"keep automatic replies under {MAX_AUTO_TEXT} characters")
    if cleaned.get("opt_out_text") and "START" not in cleaned["opt_out_text"].upper():
        raise ValidationError("the opt-out confirmation must say how to opt back in (START)")
    for key in ("welcome_text", "help_text"):
        if cleaned.get(key) and "STOP" not in cleaned[key].upper():
            raise ValidationError("welcome and help texts must say how to stop (STOP)")
    changed = [key for key, value in cleaned.items() if getattr(organization, key) != value]
    for key in changed:
        setattr(organization, key, cleaned[key])
    if changed:
        organization.save(update_fields=changed)
        audit_record(
            organization_id=organization.pk,
            actor_id=actor_id,
            action="organization.update",
            object_type="organization",
            object_id=organization.pk,
        )
    return organization


MAX_CONVERSATION_LIMIT = 50


def limit_label(value: int | None) -> str:
    return "default" if value is None else str(value)


def organization_set_conversation_limits(
    *, organization: Organization, actor_id: int, default: int, overrides: dict[int, int | None]
) -> None:
    """How many active conversations a counselor may hold: the organization's default and
    per-person overrides (None = the default), keyed by membership id. Audited: the
    default as ``organization.conversation_limits``, each person's change as
    ``member.limit_changed`` ("default → 7")."""
    for value in [default, *overrides.values()]:
        if value is not None and not 1 <= value <= MAX_CONVERSATION_LIMIT:
            raise ValidationError(f"limits must be between 1 and {MAX_CONVERSATION_LIMIT}")
    members = Membership.objects.filter(organization=organization, pk__in=list(overrides))
    if members.count() != len(overrides):
        raise ValidationError("unknown member")
    with transaction.atomic():
        organization.max_conversations_per_counselor = default
        organization.save(update_fields=["max_conversations_per_counselor"])
        for member in members.select_for_update():
            before, after = member.max_conversations, overrides[member.pk]
            if before == after:
                continue
            member.max_conversations = after
            member.save(update_fields=["max_conversations"])
            audit_record(
                organization_id=organization.pk,
                actor_id=actor_id,
                action="member.limit_changed",
                object_type="user",
                object_id=member.user_id,
                detail=f"{limit_label(before)} → {limit_label(after)}",
            )
        audit_record(
            organization_id=organization.pk,
            actor_id=actor_id,
            action="organization.conversation_limits",
            object_type="organization",
            object_id=organization.pk,
        )

"""A person's own account: password reset, signing out everywhere. Their organizations are
told in the audit log (each one they are an active member of)."""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.contrib.auth import HASH_SESSION_KEY
from django.contrib.sessions.backends.base import SessionBase
from django.core.cache import cache
from django.db import transaction
from django.db.models import F

from openline.core.models import User
from openline.core.realtime import publish_signed_out_on_commit
from openline.core.selectors import active_organization_ids
from openline.core.services import audit_person_everywhere

# Reset e-mails per address and hour: enough for a person who lost the first one, too few
# for someone using the form to flood another person's mailbox. Counted in Django's cache
# (a fixed hour from the first request for that address); the default cache lives in each
# process, so a deployment with several web processes allows this many per process, unless
# it configures a shared cache.
PASSWORD_RESETS_PER_HOUR = 3
_RESET_WINDOW_SECONDS = 3600


def password_reset_allowed(*, email: str) -> bool:
    """Count a reset request for ``email`` (whether or not it has an account, so the answer
    never tells) and say whether an e-mail may go out for it."""
    digest = hashlib.sha256(email.strip().lower().encode()).hexdigest()
    key = f"openline:password-reset:{digest}"
    cache.add(key, 0, _RESET_WINDOW_SECONDS)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr: a new hour starts
        cache.set(key, 1, _RESET_WINDOW_SECONDS)
        count = 1
    return count <= PASSWORD_RESETS_PER_HOUR


def password_reset_users(*, email: str) -> list[User]:
    """Who may receive a reset link for ``email``: an active account (any letter case)
    with a usable password that is an active member of at least one organization."""
    users = User.objects.filter(
        email__iexact=email.strip(),
        is_active=True,
        memberships__is_active=True,
    ).distinct()
    return [user for user in users if user.has_usable_password()]


@transaction.atomic
def user_password_reset(
    *, user_id: int, password: str, ip_address: str | None = None, user_agent: str = ""
) -> User:
    """Set the password chosen through a reset link (the caller validated it). The new
    password hash changes the session hash, which ends every other session of the person."""
    user = User.objects.select_for_update().get(pk=user_id)
    user.set_password(password)
    user.save(update_fields=["password"])
    audit_person_everywhere(
        user_id=user_id, action="auth.password_reset", ip_address=ip_address, user_agent=user_agent
    )
    return user


@transaction.atomic
def user_sign_out_everywhere(
    *,
    user_id: int,
    keep_session: SessionBase | None = None,
    ip_address: str | None = None,
    user_agent: str = "",
) -> User:
    """End every session of the person at its next request by raising their session epoch;
    ``keep_session`` (this browser's) stays signed in: it gets a new key and the new hash,
    as django.contrib.auth.update_session_auth_hash does for a password change."""
    User.objects.filter(pk=user_id).update(session_epoch=F("session_epoch") + 1)
    user = User.objects.get(pk=user_id)
    if keep_session is not None:
        keep_session.cycle_key()
        keep_session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    audit_person_everywhere(
        user_id=user_id,
        action="auth.sign_out_everywhere",
        ip_address=ip_address,
        user_agent=user_agent,
    )
    # Open consoles close now rather than at their next request or recheck.
    publish_signed_out_on_commit(
        organization_ids=active_organization_ids(user_id),
        user_id=user_id,
        keep_session=keep_session.session_key if keep_session is not None else None,
    )
    return user


def public_url_parts() -> tuple[str, bool]:
    """The host (with port) and whether to use https, from OPENLINE_PUBLIC_URL: links in
    e-mails point there, never at the Host header a request claimed."""
    from urllib.parse import urlsplit

    parts = urlsplit(settings.PUBLIC_URL)
    return parts.netloc, parts.scheme == "https"

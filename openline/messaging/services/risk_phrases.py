"""An organization's risk phrases (messaging.risk): admins add and remove them, or go back to
the suggested list. Each change is audited.

An organization with no phrases of its own follows ``SUGGESTED_PHRASES`` (and so gets its
improvements). Its first edit copies the suggested list into its own rows, then applies the
change, so removing one suggested phrase keeps all the others. A list is never empty: removing
the last phrase would silently bring the whole suggested list back, so it is refused; "restore
the suggested list" deletes the organization's rows."""

from __future__ import annotations

from django.db import transaction

from openline.core.models import Organization
from openline.core.services import audit_record
from openline.messaging.models import Priority, RiskPhrase
from openline.messaging.risk import MAX_PHRASE, SUGGESTED_PHRASES, is_emoji, phrase_key

MAX_PHRASES = 500
PRIORITIES = (Priority.ELEVATED, Priority.HIGH, Priority.URGENT)


class RiskPhraseError(Exception):
    """A refused change; ``field`` names the form field the message belongs beside."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def phrase_clean(phrase: str) -> str:
    """The phrase as stored: spaces collapsed; RiskPhraseError("phrase") when it cannot be
    one (empty, too long, no letter, digit or emoji, or words and emoji mixed)."""
    text = " ".join(phrase.split())
    if not text:
        raise RiskPhraseError("phrase", "type a word, a phrase or an emoji")
    if len(text) > MAX_PHRASE:
        raise RiskPhraseError("phrase", f"a phrase has at most {MAX_PHRASE} characters")
    has_words = any(c.isalnum() for c in text)
    if not has_words and not is_emoji(text):
        raise RiskPhraseError("phrase", "type a word, a phrase or an emoji, not only punctuation")
    if has_words and is_emoji("".join(c for c in text if not c.isalnum() and not c.isspace())):
        raise RiskPhraseError(
            "phrase", "a phrase is words or emoji, not both: add the emoji as its own phrase"
        )
    return text


def _lock(organization_id: int) -> list[RiskPhrase]:
    """Lock the organization's list (its row: one change at a time) and return its rows,
    copying the suggested list in first when it has none."""
    Organization.objects.select_for_update().filter(pk=organization_id).first()
    rows = list(RiskPhrase.objects.filter(organization_id=organization_id).order_by("id"))
    if rows:
        return rows
    RiskPhrase.objects.bulk_create(
        RiskPhrase(organization_id=organization_id, phrase=phrase, priority=priority)
        for phrase, priority in SUGGESTED_PHRASES
    )
    return list(RiskPhrase.objects.filter(organization_id=organization_id).order_by("id"))


def _audit(organization_id: int, actor_id: int | None, action: str, detail: str) -> None:
    audit_record(
        organization_id=organization_id,
        actor_id=actor_id,
        action=action,
        object_type="risk_phrases",
        object_id=organization_id,
        detail=detail[:200],
    )


@transaction.atomic
def risk_phrase_add(
    *, organization_id: int, actor_id: int | None, phrase: str, priority: int
) -> RiskPhrase:
    """Add a phrase at ``priority`` (elevated, high or urgent). Refused: a phrase the list
    already has once folded ("Kill myself!" is "kill myself"), or a list at its limit."""
    text = phrase_clean(phrase)
    if priority not in PRIORITIES:
        raise RiskPhraseError("priority", "choose elevated, high or urgent")
    rows = _lock(organization_id)
    key = phrase_key(text)
    same = next((row for row in rows if phrase_key(row.phrase) == key), None)
    if same is not None:
        raise RiskPhraseError(
            "phrase", f"“{same.phrase}” is already on the list ({same.get_priority_display()})"
        )
    if len(rows) >= MAX_PHRASES:
        raise RiskPhraseError("phrase", f"a list has at most {MAX_PHRASES} phrases")
    row = RiskPhrase.objects.create(
        organization_id=organization_id, phrase=text, priority=priority, created_by_id=actor_id
    )
    _audit(organization_id, actor_id, "risk_phrase.add", f"{text} ({Priority(priority).label})")
    return row


@transaction.atomic
def risk_phrase_remove(*, organization_id: int, actor_id: int | None, phrase: str) -> None:
    """Take a phrase (as listed, or any spelling that folds to it) off the list."""
    rows = _lock(organization_id)
    key = phrase_key(phrase) if phrase.strip() else ""
    found = next((row for row in rows if key and phrase_key(row.phrase) == key), None)
    if found is None:
        raise RiskPhraseError("phrase", "that phrase is not on the list")
    if len(rows) == 1:
        raise RiskPhraseError(
            "phrase",
            "the list needs at least one phrase (with none, the suggested list applies): "
            "add another first, or restore the suggested list",
        )
    found.delete()
    _audit(organization_id, actor_id, "risk_phrase.remove", found.phrase)


@transaction.atomic
def risk_phrases_reset(*, organization_id: int, actor_id: int | None) -> int:
    """Go back to the suggested list: the organization's own phrases are deleted. Returns
    how many there were."""
    Organization.objects.select_for_update().filter(pk=organization_id).first()
    deleted, _ = RiskPhrase.objects.filter(organization_id=organization_id).delete()
    if deleted:
        _audit(organization_id, actor_id, "risk_phrase.reset", f"{deleted} phrases replaced")
    return deleted

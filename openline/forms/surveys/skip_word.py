"""The organization's survey skip word: the one word a texter replies with to leave a
survey (pre: straight to a counselor; post: no more questions). Changed on the Settings
page, audited."""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.db import transaction

from openline.contacts.keywords import match_keyword
from openline.core.models import Organization
from openline.core.services import audit_record

DEFAULT = "SKIP"
MAX_CHARS = 20
# Words a survey reads as answers: a skip word must not be one of them.
_ANSWERS = {"y", "yes", "n", "no", "ok", "yeah", "yep", "nope"}


def skip_word_problem(word: str) -> str | None:
    """Why ``word`` cannot be the skip word, or None."""
    if not re.fullmatch(rf"[^\W\d_]{{2,{MAX_CHARS}}}", word):
        return f"the skip word is one word of 2 to {MAX_CHARS} letters"
    if match_keyword(word) is not None:
        return f"{word.upper()} already means something (STOP, HELP, START...); choose another word"
    if word.casefold() in _ANSWERS:
        return f"{word.upper()} answers yes/no questions; choose another word"
    return None


def survey_skip_word_set(*, organization: Organization, actor_id: int, word: str) -> Organization:
    """Change the skip word (empty: the default, SKIP); audited as
    ``organization.survey_skip_word``. Raises ValidationError saying what to change."""
    word = word.strip().upper() or DEFAULT
    problem = skip_word_problem(word)
    if problem is not None:
        raise ValidationError(problem)
    if organization.survey_skip_word == word:
        return organization
    with transaction.atomic():
        organization.survey_skip_word = word
        organization.save(update_fields=["survey_skip_word"])
        audit_record(
            organization_id=organization.pk,
            actor_id=actor_id,
            action="organization.survey_skip_word",
            object_type="organization",
            object_id=organization.pk,
            detail=word,
        )
    return organization

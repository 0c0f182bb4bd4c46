"""Risk phrases: words, phrases and emoji in an inbound text that raise its conversation's
priority, so the most at-risk person is answered first.

Matching is transparent on purpose: a phrase matches when its words appear in the text in
order as whole words (case, accents, punctuation and extra spaces ignored; "800 mg" and
"800mg" alike), and an emoji matches wherever it appears. No stemming and no guessing, so an
admin can predict what a phrase will match from the phrase alone, and the queue row shows
which phrase raised the priority.

An organization with no phrases of its own uses ``SUGGESTED_PHRASES``."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from openline.messaging.models import Priority, RiskPhrase

# (phrase, priority). Words people in crisis use in texts to crisis lines; the test set in
# messaging/tests/test_risk.py holds texts that must and must not match.
SUGGESTED_PHRASES: tuple[tuple[str, int], ...] = (
    ("kill myself", Priority.URGENT),
    ("killing myself", Priority.URGENT),
    ("end my life", Priority.URGENT),
    ("end it", Priority.URGENT),
    ("end it all", Priority.URGENT),
    ("suicide", Priority.URGENT),
    ("suicidal", Priority.URGENT),
    ("want to die", Priority.URGENT),
    ("wanna die", Priority.URGENT),
    ("better off dead", Priority.URGENT),
    ("overdose", Priority.URGENT),
    ("od", Priority.HIGH),
    ("pills", Priority.HIGH),
    ("800mg", Priority.HIGH),
    ("hang myself", Priority.URGENT),
    ("cut myself", Priority.HIGH),
    ("cutting", Priority.HIGH),
    ("self harm", Priority.HIGH),
    ("hurt myself", Priority.HIGH),
    ("gun", Priority.URGENT),
    ("🔫", Priority.URGENT),
    ("💊", Priority.HIGH),
    ("🔪", Priority.HIGH),
    ("⚰️", Priority.HIGH),
)

MAX_PHRASE = 100


@dataclass(frozen=True, slots=True)
class RiskHit:
    phrase: str
    priority: int

    @property
    def reason(self) -> str:
        return f"Risk phrase: “{self.phrase}”"


def _fold(text: str) -> str:
    """Lower case without accents; letters and digits kept, everything else a space, and a
    number run together with its unit ("800 mg" -> "800mg")."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    words = re.sub(r"[^\w]+", " ", plain).strip()
    return re.sub(r"(\d) (?=[a-z])", r"\1", words)


def _is_emoji(phrase: str) -> bool:
    return not any(c.isalnum() for c in phrase)


def _emoji_key(text: str) -> str:
    # Emoji variation selectors and skin tones do not change what the picture means.
    return "".join(
        c for c in text if not ("\ufe00" <= c <= "\ufe0f" or "\U0001f3fb" <= c <= "\U0001f3ff")
    )


@dataclass(frozen=True, slots=True)
class Matcher:
    words: re.Pattern[str] | None
    emoji: tuple[tuple[str, str, int], ...]  # (key, phrase, priority)
    priorities: dict[str, tuple[str, int]]  # folded phrase -> (phrase, priority)

    def match(self, text: str) -> RiskHit | None:
        """The highest-priority phrase found in ``text`` (among equals, the first in the text)."""
        hits: list[RiskHit] = []
        if self.words is not None:
            for found in self.words.finditer(f" {_fold(text)} "):
                phrase, priority = self.priorities[found.group(1)]
                hits.append(RiskHit(phrase, priority))
        if self.emoji:
            key = _emoji_key(text)
            hits += [RiskHit(p, level) for k, p, level in self.emoji if k and k in key]
        return max(hits, key=lambda h: h.priority, default=None)


@lru_cache(maxsize=256)
def matcher_for(phrases: tuple[tuple[str, int], ...]) -> Matcher:
    """A matcher for a list of (phrase, priority); cached, since a list rarely changes and
    inbound processing asks for it once per batch."""
    priorities: dict[str, tuple[str, int]] = {}
    emoji: list[tuple[str, str, int]] = []
    for phrase, priority in phrases:
        if _is_emoji(phrase):
            emoji.append((_emoji_key(phrase.strip()), phrase.strip(), priority))
            continue
        folded = _fold(phrase)
        if folded and priorities.get(folded, ("", -1))[1] < priority:
            priorities[folded] = (phrase.strip(), priority)
    words = None
    if priorities:
        # Longest first, so "end it all" wins over "end it"; spaces around each phrase make
        # it match whole words only. A lookahead lets overlapping phrases all be found.
        alternatives = "|".join(re.escape(p) for p in sorted(priorities, key=len, reverse=True))
        words = re.compile(rf"(?<= )({alternatives})(?= )")
    return Matcher(words, tuple(emoji), priorities)


def risk_phrases(*, organization_id: int) -> tuple[tuple[str, int], ...]:
    """The organization's phrases, or the suggested list when it has none."""
    rows = tuple(
        RiskPhrase.objects.filter(organization_id=organization_id)
        .order_by("id")
        .values_list("phrase", "priority")
    )
    return rows or SUGGESTED_PHRASES


def matchers_for(organization_ids: Iterable[int]) -> dict[int, Matcher]:
    """One matcher per organization, from one query (inbound processing, per batch)."""
    ids = set(organization_ids)
    lists: dict[int, list[tuple[str, int]]] = {org: [] for org in ids}
    for org, phrase, priority in (
        RiskPhrase.objects.filter(organization_id__in=ids)
        .order_by("id")
        .values_list("organization_id", "phrase", "priority")
    ):
        lists[org].append((phrase, priority))
    return {org: matcher_for(tuple(rows) or SUGGESTED_PHRASES) for org, rows in lists.items()}


def risk_match(text: str, *, organization_id: int) -> RiskHit | None:
    """The risk phrase ``text`` contains, if any (web chat, tests, the phrases page)."""
    return matcher_for(risk_phrases(organization_id=organization_id)).match(text)

"""Risk phrases: words, phrases and emoji in an inbound text that raise its conversation's
priority, so the most at-risk person is answered first.

Matching is transparent on purpose: a phrase matches when its words appear in the text in
order as whole words, within one sentence (case, accents, apostrophes and extra spaces
ignored; "800 mg" and "800mg" alike; "the end. it was fine" is not "end it"), and an emoji
matches wherever it appears. No stemming and no guessing, so an admin can predict what a
phrase will match from the phrase alone ("ending it all" is its own phrase, not "end it"
stretched), and the queue row shows which phrase raised the priority.

An organization with no phrases of its own uses ``SUGGESTED_PHRASES``. The test set in
messaging/tests/test_risk.py documents what the suggested list matches and what it does not."""

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
    ("kms", Priority.URGENT),
    ("unalive myself", Priority.URGENT),
    ("end my life", Priority.URGENT),
    ("ending my life", Priority.URGENT),
    ("end it", Priority.URGENT),
    ("end it all", Priority.URGENT),
    ("ending it all", Priority.URGENT),
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

# A sentence break: phrases never match across one. A full stop, "!", "?" or ";" followed by
# a space or the end (so "2.5mg" stays one word, and "..." is a pause, not a break), a comma,
# or a new line.
_BREAK = re.compile(r"(?:(?<![.])[.](?![.])|[!?;]+)(?=\s|$)|,|\n")
# Apostrophe look-alikes. A text is read twice when it has one: with them deleted ("can’t"
# is "cant", as a phrase "can't" is folded) and as spaces ("OD'd" is "od d", so "od" matches).
_APOSTROPHE_CHARS = "'\u2018\u2019\u201b\u02bc\u0060\u00b4"
_APOSTROPHES = str.maketrans(dict.fromkeys(_APOSTROPHE_CHARS, ""))
_APOSTROPHES_SPACED = str.maketrans(dict.fromkeys(_APOSTROPHE_CHARS, " "))
_SEP = "|"  # a sentence break in folded text; no phrase word is ever this


@dataclass(frozen=True, slots=True)
class RiskHit:
    phrase: str
    priority: int

    @property
    def reason(self) -> str:
        return f"Risk phrase: “{self.phrase}”"


def _plain(text: str) -> str:
    text = text.casefold()
    if not text.isascii():
        decomposed = unicodedata.normalize("NFKD", text)
        text = "".join(c for c in decomposed if not unicodedata.combining(c))
    return text


def fold_words(text: str, *, spaced: bool = False) -> list[str]:
    """The text's words, folded: lower case without accents or apostrophes (deleted, or
    as spaces when ``spaced``), letters and digits kept, a number run together with its
    unit ("800 mg" -> "800mg"), and a "|" token where a sentence breaks."""
    plain = _plain(text).translate(_APOSTROPHES_SPACED if spaced else _APOSTROPHES)
    marked = _BREAK.sub(f" {_SEP} ", plain)
    words = re.sub(r"[^\w|]+", " ", marked).replace("_", " ").strip()
    return re.sub(r"(\d) (?=[a-z])", r"\1", words).split()


def phrase_key(phrase: str) -> str:
    """What makes two phrases the same (duplicates are refused): the folded words, or the
    emoji without variation selectors and skin tones."""
    if is_emoji(phrase):
        return _emoji_key(phrase.strip())
    return " ".join(w for w in fold_words(phrase) if w != _SEP)


def is_emoji(phrase: str) -> bool:
    """A phrase of pictures only (no letters or digits, at least one symbol)."""
    return not any(c.isalnum() for c in phrase) and any(
        unicodedata.category(c) == "So" for c in phrase
    )


def _emoji_key(text: str) -> str:
    # Emoji variation selectors, joiners and skin tones do not change what the picture means.
    return "".join(
        c
        for c in text
        if not ("\ufe00" <= c <= "\ufe0f" or "\U0001f3fb" <= c <= "\U0001f3ff" or c == "\u200d")
        and not c.isspace()
    )


@dataclass(frozen=True, slots=True)
class Matcher:
    # first word -> ((words...), phrase, priority), longest first
    words: dict[str, tuple[tuple[tuple[str, ...], str, int], ...]]
    emoji: tuple[tuple[str, str, int], ...]  # (key, phrase, priority)

    def match(self, text: str) -> RiskHit | None:
        """The highest-priority phrase found in ``text`` (among equals, words before emoji,
        then the first in the text). One dictionary look-up per word of the text, however
        long the list."""
        best: RiskHit | None = None
        if self.words:
            readings = [fold_words(text)]
            if any(c in _APOSTROPHE_CHARS for c in text):
                readings.append(fold_words(text, spaced=True))
            for tokens in readings:
                for i, token in enumerate(tokens):
                    for words, phrase, priority in self.words.get(token, ()):
                        if (best is None or priority > best.priority) and tuple(
                            tokens[i : i + len(words)]
                        ) == words:
                            best = RiskHit(phrase, priority)
        if self.emoji:
            key = _emoji_key(text)
            for k, phrase, priority in self.emoji:
                if (best is None or priority > best.priority) and k in key:
                    best = RiskHit(phrase, priority)
        return best


@lru_cache(maxsize=256)
def matcher_for(phrases: tuple[tuple[str, int], ...]) -> Matcher:
    """A matcher for a list of (phrase, priority); cached, since a list rarely changes and
    inbound processing asks for it once per batch. The same phrase twice keeps its highest
    priority."""
    by_words: dict[tuple[str, ...], tuple[str, int]] = {}
    emoji: dict[str, tuple[str, int]] = {}
    for phrase, priority in phrases:
        phrase = phrase.strip()
        if is_emoji(phrase):
            key = _emoji_key(phrase)
            if key and emoji.get(key, ("", -1))[1] < priority:
                emoji[key] = (phrase, priority)
            continue
        words = tuple(w for w in fold_words(phrase) if w != _SEP)
        if words and by_words.get(words, ("", -1))[1] < priority:
            by_words[words] = (phrase, priority)
    index: dict[str, list[tuple[tuple[str, ...], str, int]]] = {}
    for words, (phrase, priority) in sorted(by_words.items(), key=lambda w: -len(w[0])):
        index.setdefault(words[0], []).append((words, phrase, priority))
    return Matcher(
        {first: tuple(entries) for first, entries in index.items()},
        tuple((key, phrase, priority) for key, (phrase, priority) in emoji.items()),
    )


def risk_phrases(*, organization_id: int) -> tuple[tuple[str, int], ...]:
    """The organization's phrases, or the suggested list when it has none."""
    rows = tuple(
        RiskPhrase.objects.filter(organization_id=organization_id)
        .order_by("id")
        .values_list("phrase", "priority")
    )
    return rows or SUGGESTED_PHRASES


@dataclass(frozen=True, slots=True)
class PhraseList:
    """What the risk phrases page lists: (phrase, priority) rows, and whether they are the
    suggested list (the organization has none of its own)."""

    rows: tuple[tuple[str, int], ...]
    suggested: bool


def phrase_list(*, organization_id: int) -> PhraseList:
    rows = risk_phrases(organization_id=organization_id)
    return PhraseList(rows, rows is SUGGESTED_PHRASES)


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

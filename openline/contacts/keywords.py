"""Consent-keyword classification for inbound SMS bodies.

Two questions are answered here, and both directions of error are serious: a missed
opt-out is a legal (TCPA/CTIA) violation, and a false opt-out can silence a person in
crisis.

``match_keyword``
    Carrier-style *exact* keywords (STOP, START, HELP, ...). The whole message has to be
    exactly one keyword, apart from case, accents, surrounding whitespace and punctuation.
    The caller acts on these automatically.

``looks_like_opt_out_request``
    Free-text revocation of consent ("please stop texting me"), which the FCC says may be
    made by "any reasonable means". It is a small set of rules over normalised text, and it
    only *flags* a conversation for a human to confirm (the caller also holds back automated
    and bulk messages). So it aims for high precision on ordinary and crisis conversation,
    and accepts moderate recall on unusual phrasings.

The caller checks ``match_keyword`` first. ``looks_like_opt_out_request`` is also True for
every body that ``match_keyword`` classifies as OPT_OUT, so either order is safe.

This module is pure Python (no Django imports) so it can be used and tested on its own.
"""

from __future__ import annotations

import enum
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass


class KeywordKind(str, enum.Enum):  # noqa: UP042 -- public API, kept as (str, Enum)
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"


@dataclass(frozen=True, slots=True)
class KeywordMatch:
    kind: KeywordKind
    keyword: str  # the canonical keyword matched, upper-case, e.g. "STOP", "ARRET"


# ---------------------------------------------------------------------------------------
# Normalisation
# ---------------------------------------------------------------------------------------

# Apostrophe look-alikes phones produce ("don’t", "don`t"). They are deleted, not turned
# into spaces, so "don't" -> "dont" and "m'envoyer" -> "menvoyer".
_APOSTROPHES = str.maketrans(dict.fromkeys("'\u2018\u2019\u201b\u02bc\u02b9\u0060\u00b4\u2032", ""))

# Combining marks (accents, emoji variation selectors) and format characters (zero-width
# spaces, soft hyphens, joiners) are dropped.
_DROPPED_CATEGORIES = frozenset({"Mn", "Me", "Cf"})


def _strip_marks(text: str) -> str:
    text = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in text if unicodedata.category(ch) not in _DROPPED_CATEGORIES)


def _fold(text: str) -> str:
    """Case- and accent-fold: "ArrÊt" -> "arret", "ＳＴＯＰ" -> "stop", NBSP -> space.

    NFKD maps compatibility characters (full-width letters, ligatures, non-breaking
    spaces) to plain ones and splits accents off so they can be dropped. It is done on
    both sides of ``casefold()`` because either step can produce input for the other
    (e.g. "İ" casefolds to "i" plus a combining dot).
    """
    if text.isascii():  # most texts: NFKD changes nothing and no marks exist
        return text.lower()
    return _strip_marks(_strip_marks(text).casefold())


# ---------------------------------------------------------------------------------------
# Exact keywords
# ---------------------------------------------------------------------------------------

_KEYWORDS: dict[KeywordKind, tuple[str, ...]] = {
    KeywordKind.OPT_OUT: (
        "STOP",
        "STOPALL",
        "UNSUBSCRIBE",
        "CANCEL",
        "END",
        "QUIT",
        "REVOKE",
        "OPTOUT",
        "OPT-OUT",
        "ARRET",  # French; "ARRÊT" folds to this
        "ALTO",  # Spanish
        "PARAR",  # Spanish
    ),
    KeywordKind.OPT_IN: ("START", "YES", "UNSTOP"),
    KeywordKind.HELP: ("HELP", "INFO", "AYUDA", "AIDE"),
}

_KEYWORD_LOOKUP: dict[str, KeywordMatch] = {
    _fold(word): KeywordMatch(kind=kind, keyword=word)
    for kind, words in _KEYWORDS.items()
    for word in words
}

# Hyphen/underscore look-alikes inside a keyword: "OPT–OUT" (en dash), "opt_out".
_INNER_DASHES = re.compile(r"[\u2010-\u2015\u2212\ufe58\ufe63\uff0d_]")


def _strip_edges(text: str) -> str:
    """Remove everything that is not a letter or digit from both ends.

    Decision: this strips whitespace (including newlines and NBSP), trailing punctuation
    ("Stop.", "STOP?!", "stop ."), *and* leading/trailing quotes and brackets ("'stop'",
    '"STOP"', "(stop)"), Spanish inverted marks ("¡ALTO!", "¿AYUDA?") and emoji or
    emoticons ("STOP 🛑", "yes :)"). None of these can change the meaning of a message
    whose only word is a keyword, and every opt-out written that way must still count.
    """
    start, end = 0, len(text)
    while start < end and not text[start].isalnum():
        start += 1
    while end > start and not text[end - 1].isalnum():
        end -= 1
    return text[start:end]


def match_keyword(body: str) -> KeywordMatch | None:
    """Return the consent keyword that ``body`` consists of, or None.

    Only a message that is exactly one keyword matches: "Stop.", " stop!! ", "ArrÊt" and
    "'STOP'" match, but "stop it", "STOP STOP", "opt out" (two words) and "Stopp" do not.
    Those may still be caught by ``looks_like_opt_out_request``.
    """
    if not body:
        return None
    core = _strip_edges(_fold(body))
    core = _INNER_DASHES.sub("-", core)
    return _KEYWORD_LOOKUP.get(core)


# "YES" is an ordinary answer in a conversation ("are you safe right now?" - "yes"). It
# opts in only where an opt-in is what the person is answering: they are opted out, or a
# confirmation request is pending. Toll-free networks never take YES as an opt-in.
_CONDITIONAL_OPT_IN = frozenset({"YES"})
# CANCEL answering an appointment reminder ("Reply X or CANCEL to cancel the appointment,
# STOP to stop all texts") cancels the appointment, not every text: while OpenLine awaits
# an answer from this person on this number (messaging.answers) it is that answer, and the
# acknowledgement says how to stop all texts. Anywhere else it opts out, as the carriers'
# list has it. STOP, STOPALL, UNSUBSCRIBE... always opt out.
_CONDITIONAL_OPT_OUT = frozenset({"CANCEL"})


def keyword_in_context(
    match: KeywordMatch | None,
    *,
    opted_out: bool,
    opt_in_pending: bool,
    toll_free: bool,
    answer_awaited: bool = False,
) -> KeywordMatch | None:
    """``match`` as it counts for this person now: a conditional opt-in word outside an
    opt-in context, or CANCEL while an answer to a question is awaited, is conversation
    text (None). STOP, START, HELP... always count."""
    if match is None:
        return None
    if match.keyword in _CONDITIONAL_OPT_OUT:
        return None if answer_awaited else match
    if match.keyword not in _CONDITIONAL_OPT_IN:
        return match
    if toll_free or not (opted_out or opt_in_pending):
        return None
    return match


def is_conditional(match: KeywordMatch | None) -> bool:
    """Whether ``match`` needs the person's consent state or an awaited answer to decide
    (see above)."""
    return match is not None and match.keyword in _CONDITIONAL_OPT_IN | _CONDITIONAL_OPT_OUT


# ---------------------------------------------------------------------------------------
# Free-text opt-out requests
# ---------------------------------------------------------------------------------------
#
# The rules run on one clause at a time. A clause is folded, split on sentence punctuation
# and commas, and reduced to lower-case ASCII words separated by single spaces, so
# "Please, DON’T text me anymore!" becomes the clauses "please" and "dont text me anymore".
#
# The core rule: a verb of stopping or removal *and* an object that means this sender's
# messages (texts, messages, texting me, this number, your list, ...). Explicit opt-out
# phrases ("opt out", "unsubscribe", "opt me out") count on their own. On top of that:
#   * a negation or condition before the verb cancels the match ("don't stop texting me",
#     "I can't stop crying", "if you stop texting me ...");
#   * someone else as the subject cancels it ("my ex won't stop texting me", "how do I get
#     him to stop texting me");
#   * "stop texting" without "me" cancels it when "I" is the subject ("I need to stop
#     texting him", "I want to stop texting": that is about the writer's own behaviour);
#   * "from/of X" must name this sender: "unsubscribe from life" and "opt out of the
#     survey" are not opt-outs.

_SEGMENT_SPLIT = re.compile(r"[.!?;:,\n\r\u2026]+")
_NON_WORD = re.compile(r"[^a-z0-9]+")

# Words that may accompany a bare keyword ("stop please", "STOP NOW", "alto por favor").
_COURTESY_WORDS = frozenset(
    {
        *("please", "pls", "plz", "plse", "now", "thanks", "thank", "you", "thankyou", "thx"),
        *("ty", "already", "asap", "immediately", "all", "just", "ok", "okay", "k", "right"),
        *("away", "por", "favor", "porfa", "gracias", "ya", "svp", "sil", "vous", "plait"),
        "merci",
    }
)
# Bare words that, with only courtesy words, mean "opt me out". CANCEL, END and QUIT are
# left out on purpose: "cancel please" usually answers an appointment reminder, "end" and
# "quit" are too common in conversation. (As a whole message they are still keywords.)
# "stopp" is the doubled-letter typo; a human confirms either way.
_BARE_OPT_OUT_WORDS = frozenset(
    {
        *("stop", "stopall", "stopp", "unsubscribe", "unsub", "optout", "revoke", "arret"),
        *("alto", "parar"),
    }
)

# Tail of a clause that adds nothing: "... please", "... now", "... anymore".
_TAIL = (
    r"(?: (?:please|pls|plz|plse|now|thanks|thank you|thx|ty|asap|immediately|right now|"
    r"right away|already|anymore|any more|again|ever again|ok|okay|lol|k|omg|seriously))*$"
)

# ---- vocabulary for "this sender's messages" ----
_DET = (
    r"(?:(?:the|these|those|this|that|your|ur|yall|my|all|any|all of|any more|more|"
    r"further|future|such|so many|many|constant|stupid|annoying|damn|fucking|freaking) )"
)
_MOD = (
    r"(?:(?:text|txt|sms|automated|auto|daily|weekly|marketing|promotional|bulk|mass|spam|"
    r"reminder) )"
)
_NOUN = (
    r"(?:text messages?|txt msgs?|texts?|txts?|messages?|msgs?|sms(?:es)?|alerts?|"
    r"reminders?|notifications?|notifs?|spam|robotexts?|(?:text|txt|sms) updates)"
)
_GERUND_NOUN = r"(?:texting|txting|messaging|msging)"  # only after a determiner
_LIST = (
    r"(?:(?:text(?:ing)?|txt|sms|mailing|messaging|message|contact|distribution|subscriber|"
    r"subscription|call|calling|phone|marketing|notification|alert|reminder|broadcast) )?lists?"
)
_RECORDS = r"(?:contacts|contact list|database|system|records|files|directory)"
# Something that refers to this sender or its messages, after "from", "off", "of".
# Bare "this", "here", "you" only count at the end of the clause ("unsubscribe from this"),
# so "unsubscribe from this world" does not.
_THIS_SENDER = (
    rf"(?:{_DET}{{0,3}}(?:{_MOD}?{_NOUN}|{_GERUND_NOUN}|{_LIST}|{_RECORDS})\b"
    r"|(?:this|these|your|ur) (?:numbers?|service|program|campaign|newsletters?|stuff|"
    r"things?|line|shortcode|short code|group)\b"
    rf"|(?:this|these|here|everything|all|it all|all of (?:this|it|them)|you|u|you guys|yall)"
    rf"{_TAIL})"
)
# Messages from/to/in someone else: "the texts from my ex", "the messages in my head".
_NOT_THIRD_PARTY = (
    r"(?! (?:from|by|to|with|of) (?:him|her|them|my|his|their|that guy|that girl|people|"
    r"someone|somebody|he|she|other|others|some|random|strangers|everyone)\b)"
    r"(?! (?:in|inside|on) (?:my|his|her) (?:head|mind|brain)\b)"
)
# A time/place/channel limit is a preference, not a revocation: "don't text me at work",
# "don't text me until tomorrow", "don't message me on instagram".
_NOT_SCHEDULE = (
    r"(?! (?:before|after|until|till|til|during|while|when|tonight|today|tomorrow|yet|"
    r"between|at (?:work|school|night|home|\d+)|so (?:early|late)|this (?:early|late)|"
    r"in the (?:morning|evening|afternoon|night)|for a (?:bit|while|few|couple)|past \d+|"
    r"on (?!this\b|my (?:phone|number|cell)\b)\w+)\b)"
)
_ME = r"(?:me|us|this number|this phone|my (?:phone|number|cell|cell phone))"
_TEXT_VERB_ING = (
    r"(?:texting|txting|texing|txing|messaging|msging|msg|contacting|sending|spamming|"
    r"text|txt|message|contact)"
)
_TEXT_VERB = r"(?:text|txt|message|msg|sms|contact|send (?:any )?(?:more )?(?:texts|messages) to)"
_STOP = r"(?:stop|quit|cease|discontinue|halt)"

# ---- context checks on the words before a match ----

# Negation or condition: "don't", "please don't ever", "I don't want you to", "I can't",
# "if you", "why did you", "are you going to".
_NEGATED_PREFIX = re.compile(
    r"(?:\b(?:dont|do not|doesnt|does not|didnt|did not|never|not|cant|cannot|can not|wont|"
    r"will not|wouldnt|would not|shouldnt|should not|couldnt|isnt|arent|aint|no need to)"
    r"(?: (?:ever|you|u|ya|yall|please|pls|plz|want|wanna|need|needs|ask|asking|mean|meant|"
    r"really|think|gonna|going|to|dare|wish|like|would|will|should|could|just|even|be|able|"
    r"let|make|that|i|me|it|him|her|them))*"
    r"|\b(?:if|unless|when|once|until|till|before|after) (?:you|u|yall|ya|they|he|she)"
    r"(?: (?:ever|finally|eventually|just|do|did|really))?"
    r"|\b(?:why|how come) (?:did|do|would|does|have|are) (?:you|u|yall|ya|they)"
    r"(?: (?:just|suddenly|ever|going to|gonna))?"
    r"|\b(?:are|r|did|do|does|have|has|were|was|is) (?:you|u|yall|ya|they|it)"
    r"(?: (?:going to|gonna|ever|just|really|actually|planning to|about to|trying to|able to))*"
    r")$"
)
# Spanish "no dejen de escribirme", French "je ne veux pas me désinscrire". (Kept apart
# from English: "no stop texting me" is an English opt-out.)
_NEGATED_PREFIX_ES_FR = re.compile(
    r"(?:\b(?:no|nunca|jamas)(?: (?:quiero|quiero que|por favor|porfa|me|te|nos))*"
    r"|\bpas(?: (?:me|vous|nous))?)$"
)
# Someone else is the subject: "my ex won't", "get him to", "she needs to", "tell them to".
_THIRD_PARTY_PREFIX = re.compile(
    r"\b(?:he|she|they|him|her|them|people|someone|somebody|everyone|everybody|"
    r"my (?!number\b|phone\b|cell\b)\w+|his \w+|their \w+)"
    r"(?: (?:needs?|has|have|had|wants?|wanted|to|just|finally|please|will|would|should|"
    r"could|must|can|gotta|got|make|get|tell|ask|asked|told|keep|keeps|kept|wont|cant|dont|"
    r"doesnt|didnt|never|wouldnt|even|ever))*$"
)
# "I" is the subject: "I need to stop texting", "I'll stop sending messages".
_FIRST_PERSON_PREFIX = re.compile(
    r"\b(?:i|im|ive|ill|id|we|lets)\b(?: (?!you\b|u\b|yall\b)\w+){0,3}$"
)
# Finite "don't" with a subject describes, it does not request: "you don't text me anymore",
# "they never text me". ("I told you don't text me" is still a request.)
_SUBJECT_PREFIX = re.compile(
    r"(?:(?<!told )(?<!asked )(?<!tell )(?<!ask )\b(?:you|u|ya|yall)|\b(?:he|she|they|we|i|"
    r"people|nobody|someone|somebody|everyone|it)|\b(?:my|his|her|their) \w+)"
    r"(?: (?:just|still|even|really|usually|ever|also|probably|never))*$"
)

_PrefixCheck = Callable[[str], bool]


def _prefix_has(pattern: re.Pattern[str]) -> _PrefixCheck:
    return lambda prefix: pattern.search(prefix) is not None


_negated = _prefix_has(_NEGATED_PREFIX)
_negated_es_fr = _prefix_has(_NEGATED_PREFIX_ES_FR)
_third_party = _prefix_has(_THIRD_PARTY_PREFIX)
_first_person = _prefix_has(_FIRST_PERSON_PREFIX)
_has_subject = _prefix_has(_SUBJECT_PREFIX)
_no_more_is_descriptive = _prefix_has(
    # "I have no more messages", "there are no more texts": a statement, not a request.
    re.compile(r"\b(?:have|has|had|got|get|gets|theres|there are|there is|there were|with)$")
)


@dataclass(frozen=True, slots=True)
class _Rule:
    pattern: re.Pattern[str]
    # A match is discarded if any of these is true of the (last few) words before it.
    exclude_if: tuple[_PrefixCheck, ...] = (_negated, _third_party)


def _rule(regex: str, *exclude_if: _PrefixCheck) -> _Rule:
    return _Rule(re.compile(regex), exclude_if or (_negated, _third_party))


def _rule_es_fr(regex: str) -> _Rule:
    return _Rule(re.compile(regex), (_negated_es_fr, _third_party))


_RULES: tuple[_Rule, ...] = (
    # "why won't you stop texting me": a rhetorical request, despite the negation.
    _rule(
        rf"\bwhy (?:wont|dont|cant|will not|do not|can not|cannot) (?:you|u|yall|ya)"
        rf"(?: just)? {_STOP} (?:{_TEXT_VERB_ING}) {_ME}\b",
        _third_party,
    ),
    # "stop texting me", "quit messaging me", "stop sending me ...", "stop contacting me",
    # "stop calling and texting me".
    _rule(
        rf"\b{_STOP}(?: it)?(?: with)?(?: (?:calling|emailing|calling me|emailing me)"
        rf"(?: and| or| n| nor)?)? {_TEXT_VERB_ING} {_ME}\b{_NOT_SCHEDULE}"
    ),
    # "stop texting", "leave me alone stop texting" -- but not "I need to stop texting".
    _rule(
        rf"\b{_STOP} (?:texting|txting|texing|messaging|msging|sending|sending messages|"
        rf"sending texts){_TAIL}",
        _negated,
        _third_party,
        _first_person,
    ),
    # "stop the texts", "stop receiving messages", "stop sending me these messages",
    # "quit sending texts", "cancel the text alerts", "enough with the texts".
    _rule(
        rf"\b(?:{_STOP}|cancel|enough)(?: with)?(?: (?:receiving|getting|sending me|sending us|"
        rf"all))? (?:{_DET}{{1,3}}(?:{_MOD}?{_NOUN}|{_GERUND_NOUN})|{_MOD}?{_NOUN})\b"
        rf"(?! (?:me|us|you|u|him|her|them|back)\b){_NOT_THIRD_PARTY}"
    ),
    _rule(
        rf"\b{_STOP} sending (?:{_DET}{{0,3}}{_MOD}?{_NOUN})\b"
        rf"(?! (?:me|us|you|u|him|her|them|back)\b){_NOT_THIRD_PARTY}",
        _negated,
        _third_party,
        _first_person,
    ),
    # "end these messages" (needs a determiner: "the end" / "end it all" must not match).
    _rule(rf"\bend {_DET}{{1,3}}(?:{_MOD}?{_NOUN}|{_GERUND_NOUN})\b{_NOT_THIRD_PARTY}"),
    # "no more texts please", "no more text messages", "no texts please".
    _rule(
        rf"\bno more (?:{_DET}{{0,2}})(?:{_MOD}?{_NOUN}|{_GERUND_NOUN})\b{_NOT_THIRD_PARTY}",
        _no_more_is_descriptive,
        _third_party,
    ),
    _rule(
        rf"\bno {_MOD}?(?:texts|txts|messages|msgs|sms|texting|text messages) "
        r"(?:please|pls|plz|anymore|any more|again|thanks|thank you|ever)\b"
    ),
    # "don't text me", "do not contact me again", "please never text this number",
    # "I want you to not text me", "don't call or text me".
    _rule(
        rf"\b(?:dont|do not|never|dnt)(?: ever)?(?: (?:call|email|phone)(?: or| and| n| nor))? "
        rf"{_TEXT_VERB} {_ME}\b{_NOT_SCHEDULE}",
        _has_subject,
    ),
    _rule(
        rf"\b(?:to not|not to|to never|never to)(?: (?:call|email)(?: or| and| n| nor))? "
        rf"{_TEXT_VERB} {_ME}\b{_NOT_SCHEDULE}",
        _third_party,
    ),
    # "don't send me any more texts".
    _rule(
        rf"\b(?:dont|do not|never)(?: ever)? send (?:me |us )?{_DET}{{0,3}}{_MOD}?{_NOUN}\b"
        rf"{_NOT_THIRD_PARTY}",
        _has_subject,
    ),
    # "I don't want these texts", "I no longer wish to receive messages",
    # "I do not wish to be contacted".
    _rule(
        r"\b(?:dont|do not|no longer|never)(?: really)? (?:want|wish|need|wanna)"
        r"(?: to (?:get|receive|be getting|keep getting|keep receiving|be receiving|be sent|have))?"
        rf" (?:{_DET}{{0,3}}{_MOD}?{_NOUN}|{_DET}{{1,3}}{_GERUND_NOUN})\b{_NOT_THIRD_PARTY}",
        _third_party,
    ),
    _rule(
        r"\b(?:dont|do not|no longer|never)(?: really)? (?:want|wish|wanna|like) to be "
        r"(?:texted|txted|contacted|messaged|msged|sent (?:texts|messages))\b"
        rf"{_NOT_SCHEDULE}{_NOT_THIRD_PARTY}",
        _third_party,
    ),
    # "opt out", "opt-out", "opt me out", "I opted out" -- unless "opt out of <other thing>".
    _rule(r"\bopt(?:s|ed|ing)?(?: me| us| my number| this number)? ?out\b(?! (?:of|from|on)\b)"),
    _rule(rf"\bopt(?:s|ed|ing)?(?: me| us| my number)? ?out (?:of|from) {_THIS_SENDER}"),
    # "unsubscribe", "unsubscribe me", "unsub", "I unsubscribed" -- unless
    # "unsubscribe from <other thing>" ("... from the newsletter at school", "... from life").
    _rule(r"\bunsub(?:scribe|scribed|scribing)?\b(?: me| us| my number)?(?! (?:from|of|to)\b)"),
    _rule(
        r"\bunsub(?:scribe|scribed|scribing)?(?: me| us| my number)? (?:from|of|to) " + _THIS_SENDER
    ),
    # "remove me from this list", "take me off your list", "delete my number",
    # "please remove me" -- but not "remove the tick" or "take me off the waitlist".
    _rule(
        r"\b(?:remove|delete|erase|drop|unenroll|unregister|take|withdraw)"
        r" (?:me|us|my (?:phone |cell )?(?:number|info|information|contact info|details)|"
        rf"this number) (?:from|off)(?: of)? {_THIS_SENDER}"
    ),
    # Bare "remove me" / "delete my number". Not "erase me", "get me out of here": crisis talk.
    _rule(rf"\b(?:remove|unenroll|unregister) (?:me|us|this number)(?: off)?{_TAIL}"),
    _rule(
        r"\b(?:remove|delete|erase) (?:my|this) (?:phone |cell )?"
        rf"(?:number|info|information|contact info|details){_TAIL}"
    ),
    _rule(rf"\btake (?:me|us|my number|this number) off{_TAIL}"),
    # "cancel my subscription", "revoke my consent", "I withdraw consent to be texted".
    _rule(
        r"\b(?:cancel|end|stop|terminate|discontinue)(?: (?:my|the|this|your|text|sms))* "
        r"subscription\b"
    ),
    _rule(
        r"\b(?:revoke|revoking|revoked|withdraw|withdrawing|withdrawn)(?: my| all)? "
        r"(?:consent|permission|authorization)"
        rf"(?:{_TAIL}| (?:to|for) (?:be )?(?:text|txt|contact|messag|sms|the text|these|your)\w*)"
    ),
    # "I texted stop already", "I replied STOP twice", "I told you to stop".
    # Deliberately NOT "I said stop": that is how people describe assault ("I said stop
    # but he kept going").
    _rule(
        r"\b(?:texted|text|txted|replied|reply|responded|sent|send|typed|type|"
        r"told (?:you|u|yall|ya)(?: to)?|asked (?:you|u|yall|ya)(?: to)?) (?:you |u )?"
        r"(?:stop|stopall|unsubscribe|opt out|optout|remove me)"
        r"(?:$| (?:already|before|twice|again|earlier|yesterday|last|like|but|and|so|why|"
        r"please|many|multiple|several|a|\d+|two|three|four|five|ten|to (?:this|you|u|yall)))"
    ),
    # ---- Spanish (accents folded) ----
    # "no me envíen más mensajes", "no me escribas más", "no me contacten".
    _rule_es_fr(
        r"\bno (?:me |nos )?(?:envie|envies|envien|mande|mandes|manden|escriba|escribas|"
        r"escriban|contacte|contactes|contacten|textee|textees|texteen)"
        r"(?: (?:mas|nunca|otra vez|por favor|porfa))*"
        r"(?:$| (?:mas )?(?:mensajes|textos|sms|msjs?)| a este numero)"
    ),
    # "ya no quiero recibir mensajes", "no quiero más mensajes",
    # "no quiero que me envíen mensajes".
    _rule_es_fr(
        r"\bno quiero (?:recibir|seguir recibiendo|mas|que me (?:envien|manden|escriban|"
        r"contacten|sigan enviando|sigan mandando))(?: \w+){0,3}? "
        r"(?:mensajes|textos|sms|msjs?|mensajitos|notificaciones|alertas|recordatorios)\b"
        r"(?! de (?:el|ella|ellos|mi|mis)\b)"
    ),
    # "dejen de enviarme mensajes", "para de escribirme", "dejen de mandar mensajes".
    _rule_es_fr(
        r"\b(?:dejen|deje|deja|dejar|paren|pare|para|parar) de "
        r"(?:(?:enviar|mandar|escribir|textear|contactar)(?:me|nos)\b|"
        r"(?:enviar|mandar) (?:mas )?(?:mensajes|textos|sms)\b)"
    ),
    # "quiero darme de baja", "denme de baja" (not "estoy de baja", i.e. on sick leave).
    _rule_es_fr(
        r"\b(?:darme|darnos|dame|denme|deme|dar) de baja"
        r"(?:$| (?:por favor|porfa|ya)| (?:de|del) (?:esta |la |su |sus |los |estos )?"
        r"(?:lista|mensajes|textos|servicio|numero|sms|esto))"
    ),
    # "sáquenme de la lista", "borren mi número", "no más mensajes", "desuscribirme".
    _rule_es_fr(
        r"\b(?:quit|sac|saqu|borr|elimin)\w*(?:me|nos) de (?:la|su|esta|sus|tu) "
        r"(?:lista|base de datos)\b"
    ),
    _rule_es_fr(r"\b(?:borren|borrar|eliminen|eliminar) mi numero\b"),
    _rule_es_fr(r"\bno mas (?:mensajes|textos|sms|msjs?)\b"),
    _rule_es_fr(r"\b(?:desuscrib|desinscrib|cancelar (?:mi |la )?suscripcion)\w*"),
    # ---- French (accents folded, apostrophes deleted: "m'envoyer" -> "menvoyer") ----
    # "arrêtez de m'envoyer des messages", "arrête de m'écrire", "cessez de me contacter".
    _rule_es_fr(
        r"\b(?:arretez|arrete|arreter|arretes|cessez|cesse|cesser|stoppez) "
        r"(?:de (?:menvoyer|mecrire|me (?:contacter|texter|ecrire|envoyer|relancer))|"
        r"denvoyer (?:des |vos |ces )?(?:messages|sms|textos))\b"
    ),
    # "ne m'envoyez plus de messages", "ne me contactez plus".
    _rule_es_fr(
        r"\bne (?:menvoyez|mecrivez|me contactez|me textez|menvoie|mecris|me contacte|"
        r"me texte|nous envoyez|nous contactez) plus\b"
    ),
    # "je ne veux plus recevoir de messages", "je ne souhaite plus être contacté".
    _rule_es_fr(
        r"\bje ne (?:veux|souhaite|desire) plus (?:recevoir |avoir )?(?:de |d|vos |ces |les |des )?"
        r"(?:messages|sms|textos|texto|notifications|alertes|rappels)\b"
    ),
    _rule_es_fr(
        r"\bje ne (?:veux|souhaite|desire) plus etre "
        r"(?:contacte|contactee|sollicite|sollicitee)\b"
    ),
    # "désinscrivez-moi", "je veux me désabonner", "retirez-moi de votre liste".
    _rule_es_fr(r"\b(?:desinscri|desabonn)\w*"),
    _rule_es_fr(
        r"\b(?:retirez|retire|retirer|enlevez|enleve|enlever|supprimez|supprimer|effacez)"
        r" (?:moi|mon numero)(?:$| de (?:la|votre|cette|vos|ta) (?:liste|base))"
    ),
)


# Every rule's pattern in one: most texts match none, and one search per clause rules them
# all out (the rules' own checks then run only on a clause this finds something in).
_ANY_RULE = re.compile("|".join(f"(?:{rule.pattern.pattern})" for rule in _RULES))


def _clauses(body: str) -> list[str]:
    folded = _fold(body.translate(_APOSTROPHES))
    clauses = (_NON_WORD.sub(" ", part).strip() for part in _SEGMENT_SPLIT.split(folded))
    return [clause for clause in clauses if clause]


_UNKNOWN_SENDER = re.compile(
    r"(?:who (?:is|dis|this|are you|is this|the hell is this)(?: again)?|wrong (?:number|person)|"
    r"how did you get (?:my|this) number|i dont know you|i never signed up(?: for this)?|"
    r"i didnt sign up(?: for this)?|not interested|spam|new phone who dis)"
)


def _is_bare_opt_out(words: list[str]) -> bool:
    """Only opt-out words and courtesy words: "stop please", "STOP STOP", "opt out"."""
    joined = " ".join(words).replace("opt out", "optout")
    words = joined.split()
    return (
        bool(words)
        and any(w in _BARE_OPT_OUT_WORDS for w in words)
        and all(w in _BARE_OPT_OUT_WORDS or w in _COURTESY_WORDS for w in words)
    )


def _rule_matches(rule: _Rule, clause: str) -> bool:
    for match in rule.pattern.finditer(clause):
        # Only the last few words matter for the context checks, which keeps them cheap
        # on long messages.
        prefix = " ".join(clause[: match.start()].split()[-8:])
        if not any(check(prefix) for check in rule.exclude_if):
            return True
    return False


def looks_like_opt_out_request(body: str) -> bool:
    """True if ``body`` reads as a request to stop receiving messages from us.

    Intended to flag a conversation for a human to confirm, not to opt out silently.
    True for every body that ``match_keyword`` classifies as OPT_OUT, for bare opt-out
    words with courtesy words ("stop please", "STOP STOP", "opt out"), for a final
    sentence that is a bare opt-out word ("Who is this? STOP"), for a bare opt-out word
    next to only "who is this" / "wrong number"-type sentences ("STOP. Wrong number"), and
    for the free-text rules in ``_RULES``. Never True for OPT_IN or HELP keywords.

    Decisions on borderline cases:
    * "stop it", "please stop this", "leave me alone": False -- nothing refers to messages.
    * "I said stop": False -- it is how people describe assault; "I texted STOP" is True.
    * "cancel please", "cancel my appointment": False -- appointment requests.
    * "can I unsubscribe from the newsletter at school?": False -- "unsubscribe from X"
      counts only when X refers to us ("from this", "from your texts", "from your
      newsletter"); the same rule keeps "I want to unsubscribe from life" False.
    * "don't text me at work / until tomorrow", "stop texting me so late": False -- limits
      on timing or channel are preferences, not revocations.
    * "Stop! Please help me!": False -- in a longer message a bare STOP counts only as the
      final sentence or next to "who is this" / "wrong number"-type sentences.
    * "wrong number" alone, "stop calling me" (calls, not texts), "stop harassing me":
      False -- nothing refers to our messages; a human reads the conversation anyway.
    """
    if not body:
        return False
    keyword = match_keyword(body)
    if keyword is not None:
        return keyword.kind is KeywordKind.OPT_OUT
    clauses = _clauses(body)
    if not clauses:
        return False
    all_words = " ".join(clauses).split()
    if _is_bare_opt_out(all_words):
        return True
    if len(clauses) > 1 and _is_bare_opt_out(clauses[-1].split()):
        return True
    # "STOP. Wrong number", "Stop!! who is this": a bare opt-out word plus only the things
    # people say to an unknown sender. ("Stop. Please help me" stays False.)
    if any(_is_bare_opt_out(c.split()) for c in clauses) and all(
        _is_bare_opt_out(c.split()) or _UNKNOWN_SENDER.fullmatch(c) for c in clauses
    ):
        return True
    clauses = [clause for clause in clauses if _ANY_RULE.search(clause)]
    return any(_rule_matches(rule, clause) for rule in _RULES for clause in clauses)

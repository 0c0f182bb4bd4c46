"""Tests for consent-keyword classification (pure Python; no database needed)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openline.contacts.keywords import (
    KeywordKind,
    KeywordMatch,
    keyword_in_context,
    looks_like_opt_out_request,
    match_keyword,
)

OPT_OUT = KeywordKind.OPT_OUT
OPT_IN = KeywordKind.OPT_IN
HELP = KeywordKind.HELP


@pytest.fixture(autouse=True)
def _fresh_process_state() -> Iterator[None]:
    """Replace the project-wide autouse fixture (which needs Django) with a no-op.

    The classifier is pure Python, so these tests also run with ``-p no:django``.
    """
    yield


# Every keyword as a customer might type it, with the canonical keyword reported.
ALL_KEYWORDS: list[tuple[str, KeywordKind, str]] = [
    ("STOP", OPT_OUT, "STOP"),
    ("STOPALL", OPT_OUT, "STOPALL"),
    ("UNSUBSCRIBE", OPT_OUT, "UNSUBSCRIBE"),
    ("CANCEL", OPT_OUT, "CANCEL"),
    ("END", OPT_OUT, "END"),
    ("QUIT", OPT_OUT, "QUIT"),
    ("REVOKE", OPT_OUT, "REVOKE"),
    ("OPTOUT", OPT_OUT, "OPTOUT"),
    ("OPT-OUT", OPT_OUT, "OPT-OUT"),
    ("ARRET", OPT_OUT, "ARRET"),
    ("ARRÊT", OPT_OUT, "ARRET"),
    ("ALTO", OPT_OUT, "ALTO"),
    ("PARAR", OPT_OUT, "PARAR"),
    ("START", OPT_IN, "START"),
    ("YES", OPT_IN, "YES"),
    ("UNSTOP", OPT_IN, "UNSTOP"),
    ("HELP", HELP, "HELP"),
    ("INFO", HELP, "INFO"),
    ("AYUDA", HELP, "AYUDA"),
    ("AIDE", HELP, "AIDE"),
]


# --------------------------------------------------------------------------------------
# match_keyword: exact keywords
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("body", "kind", "keyword"), ALL_KEYWORDS)
def test_every_keyword_matches(body: str, kind: KeywordKind, keyword: str) -> None:
    assert match_keyword(body) == KeywordMatch(kind=kind, keyword=keyword)
    assert match_keyword(body.lower()) == KeywordMatch(kind=kind, keyword=keyword)


@pytest.mark.parametrize(
    ("body", "kind", "keyword"),
    [
        ("STOP", OPT_OUT, "STOP"),
        ("stop", OPT_OUT, "STOP"),
        (" Stop. ", OPT_OUT, "STOP"),
        ("Stop.", OPT_OUT, "STOP"),
        (" stop!! ", OPT_OUT, "STOP"),
        ("STOP?", OPT_OUT, "STOP"),
        ("stop .", OPT_OUT, "STOP"),
        ("\nSTOP\n", OPT_OUT, "STOP"),
        ("\u00a0stop\u00a0", OPT_OUT, "STOP"),  # non-breaking spaces
        ("\u202fstop\u3000", OPT_OUT, "STOP"),  # narrow NBSP, ideographic space
        ("\tStOp\r\n", OPT_OUT, "STOP"),
        ("'stop'", OPT_OUT, "STOP"),  # quotes are stripped on both sides
        ('"STOP"', OPT_OUT, "STOP"),
        ("“Stop”", OPT_OUT, "STOP"),
        ("(stop)", OPT_OUT, "STOP"),
        ("STOP 🛑", OPT_OUT, "STOP"),
        ("stop\u200b", OPT_OUT, "STOP"),  # zero-width space
        ("ＳＴＯＰ", OPT_OUT, "STOP"),  # full-width letters
        ("ArrÊt", OPT_OUT, "ARRET"),
        ("arret!", OPT_OUT, "ARRET"),
        ("arrêt", OPT_OUT, "ARRET"),
        ("Arre\u0302t", OPT_OUT, "ARRET"),  # decomposed accent
        ("¡ALTO!", OPT_OUT, "ALTO"),
        ("parar.", OPT_OUT, "PARAR"),
        ("OPT-OUT", OPT_OUT, "OPT-OUT"),
        ("opt-out", OPT_OUT, "OPT-OUT"),
        ("Opt–out", OPT_OUT, "OPT-OUT"),  # en dash
        ("optout", OPT_OUT, "OPTOUT"),
        ("Unsubscribe.", OPT_OUT, "UNSUBSCRIBE"),
        ("cancel", OPT_OUT, "CANCEL"),
        ("End", OPT_OUT, "END"),
        ("quit!", OPT_OUT, "QUIT"),
        ("yes", OPT_IN, "YES"),
        ("Yes!", OPT_IN, "YES"),
        ("yes :)", OPT_IN, "YES"),
        ("start", OPT_IN, "START"),
        ("unstop", OPT_IN, "UNSTOP"),
        ("info", HELP, "INFO"),
        ("Help?", HELP, "HELP"),
        ("¿Ayuda?", HELP, "AYUDA"),
        ("aide", HELP, "AIDE"),
    ],
)
def test_keyword_variants(body: str, kind: KeywordKind, keyword: str) -> None:
    assert match_keyword(body) == KeywordMatch(kind=kind, keyword=keyword)


@pytest.mark.parametrize(
    "body",
    [
        "",
        "   ",
        "\n\u00a0",
        "...",
        "🛑",
        "stop it",
        "stop please",
        "please stop",
        "STOP STOP",
        "stop all",  # two words; the single keyword is STOPALL
        "opt out",  # two words: not a carrier keyword (but see looks_like_opt_out_request)
        "Stopp",
        "stops",
        "S T O P",
        "s.t.o.p",
        "ST0P",
        "yes I need help",
        "help me",
        "yes please",
        "info please",
        "stop texting me",
        "I want to stop",
        "end it",
        "arretez",
        "unstoppable",
        "stop\nSent from my iPhone",
    ],
)
def test_not_a_keyword(body: str) -> None:
    assert match_keyword(body) is None


# --------------------------------------------------------------------------------------
# looks_like_opt_out_request: free-text revocation of consent
# --------------------------------------------------------------------------------------

OPT_OUT_REQUESTS = [
    # From the brief.
    "please stop texting me",
    "unsubscribe me",
    "stop sending me messages",
    "take me off your list",
    "remove me from this list",
    "don't text me anymore",
    "do not contact me again",
    "I want to opt out",
    "opt me out",
    "no more texts please",
    "leave me alone stop texting",
    "opt out",
    "OPT OUT",
    # Bare opt-out words, with courtesy words, or as the final sentence.
    "STOP",
    "Stop.",
    "END",
    "cancel",
    "stop please",
    "please stop",
    "Please stop!",
    "STOP STOP STOP",
    "STOP ALL",
    "stop now thank you",
    "Stop. Just stop.",
    "Stopp",
    "unsub",
    "Who is this? STOP",
    "STOP. Wrong number",
    "Stop!! who is this",
    "I keep getting texts from this number, stop",
    "🛑 STOP 🛑",
    "alto por favor",
    "arrêt svp",
    # Stop + texting/contacting me.
    "STOP TEXTING ME!!!",
    "Stop texting me, I'm fine",
    "can you stop texting me",
    "u can stop texting me now",
    "I want you to stop texting me",
    "quit texting me",
    "stop msging me",
    "stop txt me",
    "stop contacting me",
    "stop calling and texting me",
    "no, stop texting me",
    "no stop texting me",
    "why won't you stop texting me",
    "Can you please stop messaging me, I'm not interested",
    "please stop texting this number",
    # Stop + the messages.
    "stop the texts",
    "stop all texts",
    "stop with the messages",
    "enough with the texts",
    "can you stop sending these messages",
    "Stop sending me texts.",
    "stop sending messages",
    "I want to stop receiving texts",
    "I want to end these messages",
    "cancel the text alerts",
    "No more messages!",
    "no texts please",
    # Don't text me / don't want texts.
    "Don’t text me",
    "don't call or text me again",
    "do not text this number",
    "never text me again",
    "I want you to not text me",
    "I told you don't text me",
    "please don't text me back, my husband checks my phone",
    "don't send me any more texts",
    "I don't want these texts anymore",
    "I don't want to receive messages from you",
    "I no longer wish to receive texts",
    "I do not wish to be contacted",
    # Lists, numbers, subscriptions, consent.
    "please remove my number",
    "delete my number",
    "remove me please",
    "take me off",
    "please take me off your mailing list",
    "remove me from your contacts",
    "unsubscribe from this",
    "unsubscribe from your newsletter",
    "how do I unsubscribe?",
    "I unsubscribed but you keep texting me",
    "opt out of these texts",
    "how do I opt out?",
    "I opted out already",
    "cancel my subscription",
    "revoke my consent",
    "I withdraw my consent to be texted",
    # Complaints that an opt-out was already sent.
    "I texted stop already",
    "I replied STOP twice",
    "I told you to stop",
    # Spanish.
    "no me envíen más mensajes",
    "ya no quiero recibir mensajes",
    "dejen de enviarme mensajes",
    "no me manden más mensajes",
    "no me escribas más",
    "no quiero que me envíen mensajes",
    "para de enviarme mensajes",
    "quiero darme de baja",
    "sáquenme de la lista",
    "borren mi número",
    "no más mensajes por favor",
    # French.
    "arrêtez de m'envoyer des messages",
    "Arrêtez de m’envoyer des SMS",
    "ne m'envoyez plus de messages",
    "je ne veux plus recevoir de messages",
    "je ne souhaite plus être contacté",
    "désinscrivez-moi",
    "retirez-moi de votre liste",
]

NOT_OPT_OUT_REQUESTS = [
    # From the brief.
    "I can't stop crying",
    "stop by tomorrow?",
    "can you stop by the clinic",
    "I want to stop drinking",
    "I stopped taking my meds",
    "the bus stop is far",
    "I want to end it all",  # crisis statement, NOT an opt-out
    "I want to end my life",
    "I quit my job",
    "cancel my appointment",  # an appointment request
    "please help me stop",
    "how do I stop the panic",
    "don't stop talking to me",
    "please don't stop texting me",
    "text me back",
    "remove the tick",
    # Decision: "unsubscribe from X" counts only when X refers to us.
    "can I unsubscribe from the newsletter at school?",
    "I want to unsubscribe from life",
    "I want to opt out of life",
    "can I opt out of the survey?",
    # Other keywords.
    "help",
    "HELP",
    "yes",
    "info",
    "start",
    "ayuda",
    "",
    "   ",
    # "Stop" about something else, or with no object.
    "stop it",
    "stop saying that",
    "stop being so nice",
    "quit it",
    "make it stop",
    "I just want the pain to stop",
    "I want to stop the voices",
    "stop the messages in my head",
    "Can I stop taking my meds?",
    "Are you able to stop by?",
    "Stop! Please help me!",
    "Stop. I can't do this anymore",
    "wrong number",
    "who is this?",
    "stop, I'm crying",
    "I said stop but he kept going",  # assault disclosure, not an opt-out
    "I told him to stop",
    "I'm at the bus stop, text me",
    "I'll text you when I stop crying",
    # Someone else's texting.
    "I can't stop texting him",
    "my ex won't stop texting me",
    "how do I get him to stop texting me",
    "I want my ex to stop texting me",
    "he needs to stop texting me",
    "tell them to stop texting me",
    "I have no more messages from him",
    "my mom said stop texting so much",
    # The writer's own texting, or wanting more texts.
    "I'll stop texting you now",
    "I need to stop texting",
    "I stopped texting my friends",
    "I don't want you to stop texting me",
    "why did you stop texting me",
    "are you going to stop texting me?",
    "if you stop texting me I'll hurt myself",
    "you don't text me anymore",
    "I can't stop reading old messages",
    "I don't want to lose these messages",
    "please don't unsubscribe me",
    "I don't want to opt out",
    # End / cancel / quit / remove in ordinary use.
    "the end",
    "END of story",
    "I wish it would all end",
    "at the end of the messages it said call",
    "cancel please",
    "cancel that, I can make it",
    "remove me from the waiting list",
    "take me off the waitlist",
    "get me out of here",
    "I want to erase myself",
    "I want out",
    "leave me alone",
    "I don't need help",
    # Timing or channel preferences, not revocations.
    "don't text me at work",
    "don't text me until tomorrow",
    "don't message me on instagram",
    "stop texting me so late",
    # Spanish and French conversation.
    "no puedo parar de llorar",
    "quiero dejar de tomar",
    "mi ex no deja de escribirme",
    "por favor no dejen de escribirme",
    "estoy de baja por depresión",
    "estoy en un lugar muy alto",
    "je n'arrive pas à arrêter de pleurer",
    "arrête de me mentir",
    "je ne veux pas me désinscrire",
]


@pytest.mark.parametrize("body", OPT_OUT_REQUESTS)
def test_opt_out_request_detected(body: str) -> None:
    assert looks_like_opt_out_request(body) is True


@pytest.mark.parametrize("body", NOT_OPT_OUT_REQUESTS)
def test_ordinary_message_not_flagged(body: str) -> None:
    assert looks_like_opt_out_request(body) is False


def test_example_lists_are_disjoint_and_large_enough() -> None:
    assert not set(OPT_OUT_REQUESTS) & set(NOT_OPT_OUT_REQUESTS)
    assert len(OPT_OUT_REQUESTS) >= 25
    assert len(NOT_OPT_OUT_REQUESTS) >= 25


def test_opt_out_keywords_are_opt_out_requests_too() -> None:
    for body, kind, _ in ALL_KEYWORDS:
        assert looks_like_opt_out_request(body) is (kind is OPT_OUT), body


def test_opt_out_two_words_is_request_but_not_keyword() -> None:
    assert match_keyword("opt out") is None
    assert looks_like_opt_out_request("opt out") is True


def test_long_message_is_handled() -> None:
    body = "I can't stop crying and I don't know what to do. " * 300
    assert looks_like_opt_out_request(body) is False
    assert looks_like_opt_out_request(body + " Please stop texting me.") is True


# --------------------------------------------------------------------------------------
# Property-based tests
# --------------------------------------------------------------------------------------

_WHITESPACE = " \t\n\r\u00a0\u202f"
_LEADING = _WHITESPACE + "\"'“‘«¿¡("
_TRAILING = _WHITESPACE + ".!?,;:…\"'”’»)"
_LETTERS = st.characters(categories=["Lu", "Ll"])


@st.composite
def _random_case(draw: st.DrawFn, word: str) -> str:
    flips = draw(st.lists(st.booleans(), min_size=len(word), max_size=len(word)))
    return "".join(ch.upper() if up else ch.lower() for ch, up in zip(word, flips, strict=True))


@st.composite
def _keyword_variant(draw: st.DrawFn) -> tuple[str, KeywordKind, str]:
    body, kind, keyword = draw(st.sampled_from(ALL_KEYWORDS))
    return draw(_random_case(body)), kind, keyword


@settings(max_examples=300)
@given(
    variant=_keyword_variant(),
    leading=st.text(alphabet=_LEADING, max_size=4),
    trailing=st.text(alphabet=_TRAILING, max_size=4),
)
def test_keyword_survives_case_whitespace_and_punctuation(
    variant: tuple[str, KeywordKind, str], leading: str, trailing: str
) -> None:
    body, kind, keyword = variant
    text = leading + body + trailing
    assert match_keyword(text) == KeywordMatch(kind=kind, keyword=keyword)
    assert looks_like_opt_out_request(text) is (kind is OPT_OUT)


@settings(max_examples=300)
@given(
    variant=_keyword_variant(),
    separator=st.text(alphabet=_WHITESPACE, min_size=1, max_size=3),
    extra=st.text(alphabet=_LETTERS, min_size=1, max_size=10),
    trailing=st.text(alphabet=_TRAILING, max_size=3),
    before=st.booleans(),
)
def test_keyword_with_extra_word_is_not_a_keyword(
    variant: tuple[str, KeywordKind, str], separator: str, extra: str, trailing: str, before: bool
) -> None:
    body, _, _ = variant
    text = extra + separator + body if before else body + separator + extra
    assert match_keyword(text + trailing) is None


@given(st.text(max_size=300))
def test_never_raises_on_arbitrary_text(body: str) -> None:
    result = match_keyword(body)
    assert result is None or isinstance(result, KeywordMatch)
    assert looks_like_opt_out_request(body) in (True, False)


@given(body=st.sampled_from(NOT_OPT_OUT_REQUESTS).flatmap(_random_case))
def test_ordinary_messages_stay_unflagged_in_any_case(body: str) -> None:
    assert looks_like_opt_out_request(body) is False


@given(body=st.sampled_from(OPT_OUT_REQUESTS).flatmap(_random_case))
def test_opt_out_requests_detected_in_any_case(body: str) -> None:
    assert looks_like_opt_out_request(body) is True


# --- YES only where an opt-in is being answered ------------------------------------------


@pytest.mark.parametrize("body", ["yes", "YES", "Yes!"])
def test_yes_is_conversation_text_unless_an_opt_in_is_pending(body: str) -> None:
    match = match_keyword(body)

    assert keyword_in_context(match, opted_out=False, opt_in_pending=False, toll_free=False) is None
    assert keyword_in_context(match, opted_out=True, opt_in_pending=False, toll_free=False) == match
    assert keyword_in_context(match, opted_out=False, opt_in_pending=True, toll_free=False) == match


def test_yes_never_opts_in_on_a_toll_free_number() -> None:
    match = match_keyword("YES")

    assert keyword_in_context(match, opted_out=True, opt_in_pending=True, toll_free=True) is None


@pytest.mark.parametrize("body", ["START", "unstop", "STOP", "HELP", "info"])
def test_other_keywords_keep_their_meaning_in_any_context(body: str) -> None:
    match = match_keyword(body)

    for opted_out in (False, True):
        assert (
            keyword_in_context(match, opted_out=opted_out, opt_in_pending=False, toll_free=True)
            == match
        )

"""Twilio Programmable Messaging and Voice: inbound webhooks, status callbacks, the Messages
API, and voice broadcasts (the Calls API, TwiML for answered calls, call status callbacks).

`api_base` is configurable per number so tests run against a local fake Twilio."""

from __future__ import annotations

import email.utils
import hmac
import re
from collections.abc import Collection, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

import httpx
from twilio.request_validator import (  # type: ignore[import-untyped]
    HMAC_SHA1,
    HMAC_SHA256,
    RequestValidator,
    get_signature_algorithm,
)
from twilio.twiml.voice_response import VoiceResponse  # type: ignore[import-untyped]

from openline.providers.base import (
    CallResult,
    CallScript,
    CallUpdate,
    CallUrls,
    InboundMessage,
    Provider,
    ProviderError,
    SendResult,
    SignatureError,
    StatusUpdate,
    WebhookError,
    WebhookRequest,
)

if TYPE_CHECKING:
    from openline.providers.models import Number

DEFAULT_API_BASE = "https://api.twilio.com"
MESSAGE_SID = re.compile(r"^(SM|MM)[0-9a-fA-F]{32}$")
CALL_SID = re.compile(r"^CA[0-9a-fA-F]{32}$")
EMPTY_TWIML = b'<?xml version="1.0" encoding="UTF-8"?><Response></Response>'

# Twilio statuses onto OpenLine's forward-only set.
STATUS_MAP = {
    "accepted": "queued",
    "scheduled": "queued",
    "queued": "queued",
    "sending": "sending",
    "sent": "sent",
    "delivered": "delivered",
    "read": "delivered",
    "partially_delivered": "delivered",
    "undelivered": "undelivered",
    "failed": "failed",
    "canceled": "failed",
}
OPTED_OUT_CODES = frozenset({"21610"})
# Refused before acceptance (too many requests): nothing was created, try again later.
TRANSIENT_CODES = frozenset({"20429"})
# Twilio's own server errors: the message may or may not have been created.
SERVER_ERROR_CODES = frozenset({"20500", "20503"})
SIGNATURE_ALGORITHMS = frozenset({HMAC_SHA1, HMAC_SHA256})
# Errors raised before a byte of the request left: retrying cannot send a text twice.
NOT_SENT_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# How far apart Twilio's clock and ours may be when matching a looked-up message.
CLOCK_SKEW = timedelta(minutes=5)

# Twilio's call statuses onto messaging.models.CallStatus values.
CALL_STATUS_MAP = {
    "queued": "calling",
    "initiated": "calling",
    "ringing": "ringing",
    "in-progress": "in_progress",
    "completed": "completed",
    "busy": "busy",
    "no-answer": "no_answer",
    "failed": "failed",
    "canceled": "canceled",
}
# Answering-machine detection's verdicts. One we do not know (or "unknown") counts as not
# detected: refusing it would answer the answer request with an error, which Twilio reads
# out to whoever picked up.
ANSWERED_BY_MAP = {
    "human": "human",
    "machine_start": "machine",
    "machine_end_beep": "machine",
    "machine_end_silence": "machine",
    "machine_end_other": "machine",
    "fax": "machine",
}
CALL_EVENTS = ("initiated", "ringing", "answered", "completed")
RING_SECONDS = 30  # then no-answer: long enough for a person, and for the voicemail to pick up
MAX_TIME_LIMIT = 4 * 3600  # Twilio's longest call
GATHER_SECONDS = 5  # to press 9 after the prompt


class _Params:
    """The request validator wants a multi-dict, and repeated names must all count. It
    tries ``getall`` first (and ``getlist`` after an AttributeError): offering ``getall``
    saves an exception per field on every webhook."""

    def __init__(self, params: Mapping[str, list[str]]) -> None:
        self._params = params

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._params)

    def getall(self, name: str) -> list[str]:
        return self._params[name]

    getlist = getall


def _one(params: Mapping[str, list[str]], name: str, *, required: bool = True) -> str:
    values = params.get(name)
    if not values:
        if required:
            raise WebhookError(f"missing field {name}")
        return ""
    return values[0]


class TwilioProvider(Provider):
    slug = "twilio"
    name = "Twilio"
    config_keys: ClassVar[tuple[str, ...]] = ("account_sid", "auth_token", "api_base")
    secret_keys: ClassVar[tuple[str, ...]] = ("auth_token",)

    def __init__(self) -> None:
        self._client = httpx.Client(timeout=httpx.Timeout(10.0, connect=5.0))

    def validate_config(self, config: Mapping[str, str]) -> dict[str, str]:
        clean = super().validate_config(config)
        for key in ("account_sid", "auth_token"):
            if not clean.get(key):
                raise ValueError(f"twilio numbers need --config {key}=...")
        if not re.fullmatch(r"AC[0-9a-fA-F]{32}", clean["account_sid"]):
            raise ValueError("account_sid looks like AC followed by 32 hex digits")
        return clean

    # --- webhooks ------------------------------------------------------------------------

    def verify(self, number: Number, request: WebhookRequest) -> None:
        signature = request.headers.get("x-twilio-signature", "")
        if not signature:
            raise SignatureError("missing X-Twilio-Signature header")
        token = number.config.get("auth_token", "")
        algorithm = _signature_algorithm(request)
        if not token:
            raise SignatureError("this number has no auth_token configured")
        validator = RequestValidator(token)
        params = _Params(request.params)
        # The URL as configured is what Twilio signs in practice: one HMAC. The SDK's full
        # check (URL with and without the default port) runs only when that differs.
        expected = validator.compute_signature(request.url, params, algorithm=algorithm)
        if hmac.compare_digest(expected, signature):
            return
        if not validator.validate(request.url, params, signature, algorithm=algorithm):
            raise SignatureError("X-Twilio-Signature does not match this request")

    def parse_inbound(self, request: WebhookRequest) -> InboundMessage:
        params = request.params
        sid = _one(params, "MessageSid")
        if not MESSAGE_SID.match(sid):
            raise WebhookError("MessageSid is not a Twilio message id")
        media = tuple(
            _one(params, f"MediaUrl{i}", required=False)
            for i in range(min(_int(params, "NumMedia"), 10))
        )
        return InboundMessage(
            provider_message_id=sid,
            from_number=_one(params, "From"),
            to_number=_one(params, "To"),
            body=_one(params, "Body", required=False),
            media_urls=tuple(url for url in media if url),
        )

    def parse_status(self, request: WebhookRequest) -> list[StatusUpdate]:
        params = request.params
        sid = _one(params, "MessageSid")
        raw = _one(params, "MessageStatus").lower()
        if raw not in STATUS_MAP:
            raise WebhookError(f"unknown MessageStatus {raw!r}")
        code = _one(params, "ErrorCode", required=False)
        return [
            StatusUpdate(
                provider_message_id=sid,
                status=STATUS_MAP[raw],
                error_code=code,
                opted_out=code in OPTED_OUT_CODES,
            )
        ]

    def inbound_ack(self) -> tuple[str, bytes]:
        return "text/xml", EMPTY_TWIML

    # --- REST API ------------------------------------------------------------------------

    def _messages_url(self, number: Number) -> str:
        return f"{_api_base(number)}/2010-04-01/Accounts/{number.config['account_sid']}/Messages"

    def _auth(self, number: Number) -> tuple[str, str]:
        return number.config["account_sid"], number.config["auth_token"]

    def send(
        self, number: Number, *, to: str, body: str, status_url: str, idempotency_key: str
    ) -> SendResult:
        """POST the message. Twilio documents no idempotency key for creating messages
        (I-Twilio-Idempotency-Token is a header it sends on webhooks, not one it reads),
        so ``idempotency_key`` is not sent: an error that leaves the outcome unknown is
        raised as such, and dispatch settles it with ``find_sent``."""
        data = {"To": to, "From": number.e164, "Body": body, "StatusCallback": status_url}
        payload = self._create(self._messages_url(number) + ".json", number, data)
        sid = str(payload.get("sid", ""))
        if not MESSAGE_SID.match(sid):
            raise ProviderError(
                "Twilio accepted the message but its answer had no message id",
                code="bad_response",
                outcome_unknown=True,
            )
        return SendResult(
            provider_message_id=sid,
            status=STATUS_MAP.get(str(payload.get("status", "")), "queued"),
        )

    def _create(
        self, url: str, number: Number, data: Mapping[str, str | list[str]]
    ) -> dict[str, object]:
        """POST a create request (a message, a call); the created resource, or
        ProviderError: retryable when the request surely did not arrive or was refused
        before acceptance, ``outcome_unknown`` when Twilio may have acted on it."""
        try:
            response = self._client.post(url, data=data, auth=self._auth(number))
        except NOT_SENT_ERRORS as exc:
            raise ProviderError(f"could not connect to Twilio: {exc}", code="network") from exc
        except httpx.TimeoutException as exc:
            raise ProviderError(
                "Twilio did not answer in time", code="timeout", outcome_unknown=True
            ) from exc
        except (httpx.NetworkError, httpx.RemoteProtocolError, httpx.DecodingError) as exc:
            raise ProviderError(
                f"the connection to Twilio broke before it answered: {exc}",
                code="network",
                outcome_unknown=True,
            ) from exc
        except httpx.HTTPError as exc:  # the request could not even be built
            raise ProviderError(f"could not reach Twilio: {exc}", code="network") from exc
        payload = _json(response)
        if response.status_code in (200, 201):
            return payload
        raise _error(response, payload)

    # Twilio pages hold up to 1000; a page of this many covers one person's texts of a
    # day or two at once, and paging goes on up to LOOKUP_MAX_PAGES.
    LOOKUP_PAGE_SIZE = 100
    LOOKUP_MAX_PAGES = 20
    # Look-ups run in the scheduler, ahead of other periodic work: give up on a slow
    # Twilio sooner than a send would (the next round asks again).
    LOOKUP_TIMEOUT = httpx.Timeout(5.0, connect=3.0)

    def find_sent(
        self,
        number: Number,
        *,
        to: str,
        body: str,
        since: datetime,
        exclude: Collection[str] = (),
    ) -> SendResult | None:
        """Read the Messages list for From=number, To=``to`` and DateSent>= the GMT day of
        ``since`` (less CLOCK_SKEW), newest first, every page; match outbound messages
        with exactly ``body`` created since then, not in ``exclude``, and take the oldest.

        DateSent filters on date_sent, which Twilio sets when a message leaves its
        per-sender queue: moments after acceptance while OpenLine's own rate limit keeps
        that queue short. Reconciliation waits a grace period before it takes "no
        record" as an answer."""
        earliest = since - CLOCK_SKEW
        listed = self._list(
            number,
            "messages",
            self._messages_url(number) + ".json",
            {"To": to, "From": number.e164, "DateSent>": _gmt_day(earliest)},
        )
        oldest = _oldest(
            [
                record
                for record in listed
                if record.get("body") == body
                and str(record.get("direction", "")).startswith("outbound")
                and _is_candidate(record, MESSAGE_SID, earliest=earliest, exclude=exclude)
            ],
            earliest,
        )
        if oldest is None:
            return None
        code = oldest.get("error_code")
        return SendResult(
            provider_message_id=str(oldest["sid"]),
            status=STATUS_MAP.get(str(oldest.get("status", "")), "queued"),
            error_code="" if code is None else str(code),
        )

    def _list(
        self, number: Number, key: str, url: str, filters: Mapping[str, str]
    ) -> Iterator[dict[str, object]]:
        """Every record of a list resource (``key``: "messages" or "calls") for these
        filters, following next_page_uri; ProviderError when Twilio cannot be read or there
        are too many pages to tell."""
        params: dict[str, str] | None = {**filters, "PageSize": str(self.LOOKUP_PAGE_SIZE)}
        for _ in range(self.LOOKUP_MAX_PAGES):
            records, next_uri = self._get_page(number, key, url, params)
            yield from records
            if not next_uri:
                return
            url, params = _api_base(number) + next_uri, None
        raise ProviderError(
            f"too many {key} to this person to look through", code="lookup_too_long"
        )

    def _get_page(
        self, number: Number, key: str, url: str, params: dict[str, str] | None
    ) -> tuple[list[dict[str, object]], str]:
        """One page of a list resource: its records (under ``key``) and the next page's URI
        (or "")."""
        try:
            response = self._client.get(
                url, params=params, auth=self._auth(number), timeout=self.LOOKUP_TIMEOUT
            )
        except httpx.HTTPError as exc:
            raise ProviderError(f"could not read Twilio's {key}: {exc}", code="network") from exc
        payload = _json(response)
        if response.status_code != 200:
            raise _error(response, payload)
        records = payload.get(key)
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise ProviderError(f"Twilio's {key} list had no {key}", code="bad_response")
        next_uri = payload.get("next_page_uri")
        return records, next_uri if isinstance(next_uri, str) else ""

    def fetch_status(self, number: Number, provider_message_id: str) -> str | None:
        try:
            response = self._client.get(
                f"{self._messages_url(number)}/{provider_message_id}.json",
                auth=self._auth(number),
            )
        except httpx.HTTPError:
            return None
        if response.status_code != 200:
            return None
        return STATUS_MAP.get(str(_json(response).get("status", "")))

    # --- voice ---------------------------------------------------------------------------

    def place_call(
        self, number: Number, *, to: str, urls: CallUrls, time_limit: int, idempotency_key: str
    ) -> CallResult:
        """POST the call to the Calls API, with answering-machine detection that waits for a
        voicemail greeting to end (DetectMessageEnd) before Twilio asks ``urls.answer`` what
        to play, so a voicemail records the whole message.

        Twilio documents no idempotency key for creating calls, so ``idempotency_key`` is
        not sent: an error that may have reached Twilio is raised as ``outcome_unknown``,
        and the call is placed again only once ``find_call`` says Twilio has no such call."""
        data: dict[str, str | list[str]] = {
            "To": to,
            "From": number.e164,
            "Url": urls.answer,
            "Method": "POST",
            "StatusCallback": urls.status,
            "StatusCallbackMethod": "POST",
            "StatusCallbackEvent": list(CALL_EVENTS),
            "MachineDetection": "DetectMessageEnd",
            "Timeout": str(RING_SECONDS),
            "TimeLimit": str(max(1, min(time_limit, MAX_TIME_LIMIT))),
        }
        payload = self._create(self._calls_url(number), number, data)
        sid = str(payload.get("sid", ""))
        if not CALL_SID.match(sid):
            raise ProviderError(
                "Twilio accepted the call but its answer had no call id",
                code="bad_response",
                outcome_unknown=True,
            )
        return CallResult(provider_call_id=sid)

    def _calls_url(self, number: Number) -> str:
        return f"{_api_base(number)}/2010-04-01/Accounts/{number.config['account_sid']}/Calls.json"

    def fetch_call(self, number: Number, provider_call_id: str) -> CallUpdate | None:
        """The call resource (GET Calls/{Sid}.json), for a call whose final status callback
        never came; None when Twilio cannot be read or does not know the call."""
        if not CALL_SID.match(provider_call_id):
            return None
        url = self._calls_url(number).removesuffix(".json") + f"/{provider_call_id}.json"
        try:
            response = self._client.get(url, auth=self._auth(number), timeout=self.LOOKUP_TIMEOUT)
        except httpx.HTTPError:
            return None
        payload = _json(response)
        if response.status_code != 200 or payload.get("sid") != provider_call_id:
            return None
        try:
            return _call_update(payload)
        except ProviderError:
            return None

    def find_call(
        self,
        number: Number,
        *,
        to: str,
        since: datetime,
        exclude: Collection[str] = (),
    ) -> CallUpdate | None:
        """Read the Calls list twice, for From=number and To=``to``: (a) Status=queued, then
        (b) StartTime>= the GMT day of ``since`` (less CLOCK_SKEW), every page of each; match
        outbound-api calls created since then, not in ``exclude``, and take the oldest.

        Why two lists: start_time stays empty until Twilio dials a call, and a call waits
        (status "queued") behind the account's calls-per-second limit first, so no StartTime
        filter finds a call that was created but not dialed yet, and answering "no such
        call" then would call the person twice. Queued is read first: a call only moves on
        from queued, so one dialed between the two reads is in the second, whereas in the
        other order it could slip between both."""
        earliest = since - CLOCK_SKEW
        url = self._calls_url(number)
        mine = {"To": to, "From": number.e164}
        listed: dict[str, dict[str, object]] = {}
        for filters in ({"Status": "queued"}, {"StartTime>": _gmt_day(earliest)}):
            for record in self._list(number, "calls", url, {**mine, **filters}):
                # In both reads (dialed in between): the later one is current. The queued
                # ones are newer than the dialed ones, so "listed later is older" (on a tie
                # of date_created) holds across the two reads.
                listed[str(record.get("sid", ""))] = record
        oldest = _oldest(
            [
                record
                for record in listed.values()
                if record.get("direction") in (None, "outbound-api")
                and _is_candidate(record, CALL_SID, earliest=earliest, exclude=exclude)
            ],
            earliest,
        )
        return None if oldest is None else _call_update(oldest)

    def parse_call_status(self, request: WebhookRequest) -> CallUpdate:
        params = request.params
        sid = _call_sid(params)
        raw = _one(params, "CallStatus")
        status = CALL_STATUS_MAP.get(raw)
        if status is None:
            raise WebhookError(f"unknown CallStatus {raw[:40]!r}")
        duration = _one(params, "CallDuration", required=False) if status == "completed" else ""
        if duration and not (duration.isascii() and duration.isdigit()):
            raise WebhookError("CallDuration must be a whole number of seconds")
        return CallUpdate(
            provider_call_id=sid,
            status=status,
            answered_by=_answered_by(params),
            duration=int(duration or 0),
            error_code=_one(params, "ErrorCode", required=False)[:20],
        )

    def parse_answer(self, request: WebhookRequest) -> tuple[str, str]:
        return _call_sid(request.params), _answered_by(request.params)

    def parse_keypress(self, request: WebhookRequest) -> tuple[str, str]:
        return _call_sid(request.params), _one(request.params, "Digits", required=False)

    def call_document(
        self, script: CallScript | None, *, keypress_url: str, goodbye: str = ""
    ) -> tuple[str, bytes]:
        """TwiML. With an opt-out prompt the script and the prompt both play inside the
        <Gather>, so a key pressed at any moment counts (and cuts the playing short); a
        voicemail gets the script alone. Without a script: the goodbye, then hang up."""
        response = VoiceResponse()
        if script is None:
            if goodbye:
                response.say(goodbye)
            response.hangup()
        elif script.opt_out_prompt:
            gather = response.gather(
                num_digits=1, action=keypress_url, method="POST", timeout=GATHER_SECONDS
            )
            _play(gather, script)
            gather.say(script.opt_out_prompt, language=script.language)
        else:
            _play(response, script)
        body: str = response.to_xml()
        return "application/xml", body.encode()


def _play(verb: Any, script: CallScript) -> None:
    """The recording or the text of ``script``, nested in ``verb`` (TwiML Response or
    Gather)."""
    if script.play_url:
        verb.play(script.play_url)
    elif script.say:
        verb.say(script.say, language=script.language)


def _call_sid(params: Mapping[str, list[str]]) -> str:
    sid = _one(params, "CallSid")
    if not CALL_SID.match(sid):
        raise WebhookError("CallSid is not a Twilio call id")
    return sid


def _answered_by(params: Mapping[str, list[str]]) -> str:
    return ANSWERED_BY_MAP.get(_one(params, "AnsweredBy", required=False), "")


def _call_update(record: Mapping[str, object]) -> CallUpdate:
    """A looked-up call resource as a CallUpdate: its billed seconds when completed."""
    raw = str(record.get("status", ""))
    status = CALL_STATUS_MAP.get(raw)
    if status is None:
        raise ProviderError(f"Twilio listed a call with status {raw[:40]!r}", code="bad_response")
    duration = record.get("duration") if status == "completed" else None
    seconds = "" if duration is None else str(duration)
    if seconds and not (seconds.isascii() and seconds.isdigit()):
        raise ProviderError(
            f"Twilio listed a call lasting {seconds[:40]!r} seconds", code="bad_response"
        )
    return CallUpdate(
        provider_call_id=str(record["sid"]),
        status=status,
        answered_by=ANSWERED_BY_MAP.get(str(record.get("answered_by") or ""), ""),
        duration=int(seconds or 0),
    )


def _signature_algorithm(request: WebhookRequest) -> str:
    """The algorithm X-Twilio-Webhooks-Signature-Settings names (HMAC_SHA1 without one);
    one we cannot check makes the signature unverifiable, not the server broken."""
    header = request.headers.get("x-twilio-webhooks-signature-settings", "")
    algorithm: str = get_signature_algorithm(header)
    if algorithm.upper() not in SIGNATURE_ALGORITHMS:
        raise SignatureError(
            f"X-Twilio-Webhooks-Signature-Settings names the signature algorithm "
            f"{algorithm[:40]!r}; OpenLine checks only {' and '.join(sorted(SIGNATURE_ALGORITHMS))}"
        )
    return algorithm


def _created(record: Mapping[str, object]) -> datetime | None:
    raw = record.get("date_created")
    if not isinstance(raw, str):
        return None
    try:
        return email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None


def _is_candidate(
    record: Mapping[str, object],
    sid: re.Pattern[str],
    *,
    earliest: datetime,
    exclude: Collection[str],
) -> bool:
    """A record with a well-formed ``sid``, created at or after ``earliest``, that no other
    OpenLine message or call has claimed. One without a readable date_created still counts:
    a wrong "not found" would text or call the person twice."""
    if record.get("sid") in exclude or not sid.match(str(record.get("sid", ""))):
        return False
    created = _created(record)
    return created is None or created >= earliest


def _oldest(matches: list[dict[str, object]], earliest: datetime) -> dict[str, object] | None:
    """The oldest of ``matches`` by date_created. The lists are newest first and
    date_created has whole seconds: on a tie the one listed later is the older."""
    if not matches:
        return None
    return min(reversed(matches), key=lambda record: _created(record) or earliest)


def _gmt_day(moment: datetime) -> str:
    return moment.astimezone(UTC).date().isoformat()  # Twilio's list dates are GMT


def _api_base(number: Number) -> str:
    return (number.config.get("api_base") or DEFAULT_API_BASE).rstrip("/")


def _int(params: Mapping[str, list[str]], name: str) -> int:
    raw = _one(params, name, required=False)
    return int(raw) if raw.isascii() and raw.isdigit() else 0


def _json(response: httpx.Response) -> dict[str, object]:
    try:
        payload = response.json()
    except ValueError:
        return {}
    return payload if isinstance(payload, dict) else {}


def _error(response: httpx.Response, payload: dict[str, object]) -> ProviderError:
    code = str(payload.get("code", "") or response.status_code)
    message = str(payload.get("message", "") or f"Twilio answered HTTP {response.status_code}")
    status = response.status_code
    retry_after = response.headers.get("retry-after", "")
    if code in OPTED_OUT_CODES:
        return ProviderError(message, code=code, opted_out=True)
    if status >= 500 or code in SERVER_ERROR_CODES:
        # The error may have come after the message was created.
        return ProviderError(message, code=code, outcome_unknown=True)
    if status == 429 or code in TRANSIENT_CODES:
        return ProviderError(
            message,
            code=code,
            retry_after=float(retry_after) if retry_after.isdigit() else None,
        )
    return ProviderError(message, code=code, permanent=True)

"""A local fake Twilio that speaks the documented Messages and Calls APIs, for the tests. It
lives with them: test-only code is not shipped as part of the adapter.

    with FakeTwilio() as fake:
        number = number_add(..., config=fake.config())   # account_sid, auth_token, api_base
        fake.fail_next("server_error", times=2)            # script what Twilio answers
        ...
        fake.requests                                      # what it received
        fake.deliver_status(sid, "delivered")              # signed status callback

What it implements (https://www.twilio.com/docs/messaging/api/message-resource):
- POST /2010-04-01/Accounts/{AccountSid}/Messages.json, HTTP Basic auth (401, code 20003, on
  bad credentials), form fields To, From, Body, StatusCallback; 201 with the message resource.
  Like Twilio, it has no idempotency key: every POST that it accepts is a new message, with
  or without an I-Twilio-Idempotency-Token header (a header Twilio only sends on webhooks).
- GET  /2010-04-01/Accounts/{AccountSid}/Messages/{Sid}.json (404, code 20404, if unknown).
- GET  /2010-04-01/Accounts/{AccountSid}/Messages.json: the list resource, newest first
  (by date_sent), filtered by To, From and DateSent / DateSent> / DateSent< (Twilio's
  ``DateSent>=`` and ``DateSent<=`` as URL parameters: a GMT date YYYY-MM-DD, or a date and
  time YYYY-MM-DDTHH:MM:SSZ as Twilio's SDKs send), paged with PageSize (default 50, at most
  1000) and the ``next_page_uri`` / ``previous_page_uri`` it answers (PageToken PA/PB + sid).
  The fake has no per-sender queue: a message gets its date_sent as it is accepted (the
  create answer still shows null, as Twilio's does), so DateSent filters find it at once.
- Status callbacks signed with X-Twilio-Signature, computed by the twilio SDK's
  RequestValidator exactly as Twilio computes it.

Calls (https://www.twilio.com/docs/voice/api/call-resource):
- POST /2010-04-01/Accounts/{AccountSid}/Calls.json, same auth; required To, From and one of
  Url, Twiml or ApplicationSid. Checks what Twilio checks on create: 21201 / 21211 for a
  missing / invalid To, 21213 / 21212 for From, 21205 for a missing or non-absolute http(s)
  Url; other bad values (Method, StatusCallbackMethod, StatusCallbackEvent outside
  initiated/ringing/answered/completed, MachineDetection other than Enable or
  DetectMessageEnd, Timeout outside 1-600, TimeLimit outside 1-14400) answer 20001, and a
  StatusCallback that is not an absolute http(s) URL 21609 [the codes of those last ones are
  the fake's best reading of Twilio's error dictionary]. 201 with the call resource, status
  "queued". No idempotency key and no dedup: two identical POSTs are two calls.
- GET  /2010-04-01/Accounts/{AccountSid}/Calls/{Sid}.json (404, code 20404, if unknown).
  start_time is set when the fake is told the call was dialed (``call_progress`` to
  initiated, ringing or in-progress, or straight to completed, busy or no-answer): a call
  still queued, or one that went from queued to failed or canceled, has none. end_time is
  set when a dialed call reaches its final status (Twilio: "empty if the call did not
  complete successfully" [the fake reads that as "never dialed"]); date_updated moves with
  the status.
- GET  /2010-04-01/Accounts/{AccountSid}/Calls.json: the list resource, the same shape and
  paging as the messages list with the calls under "calls", filtered by To, From, Status
  (one of the statuses above) and StartTime / EndTime with their ``>=`` / ``<=`` forms
  (``StartTime>`` / ``StartTime<`` once parsed, values as for DateSent); a call without a
  start_time (end_time) never matches a StartTime (EndTime) filter. Newest first by
  date_created [U] (Twilio does not say how it orders calls: this is the fake's reading).
  Invalid values (PageSize, a date, Status, PageToken) answer 400, code 20001, like the
  messages list; ParentCallSid is not implemented (ignored, like any unknown parameter).
- Driving a call as Twilio would (each request signed with the account's auth token over the
  full URL and the form fields; ``post`` delivers it, over HTTP by default):

      fake.call_progress(sid, "ringing", post=...)    # StatusCallback, if the event is asked for
      answer = fake.call_answer(sid, answered_by="human", post=...)  # POST Url: the TwiML
      fake.call_press(sid, "9", post=...)             # POST the <Gather> action with Digits
      fake.call_progress(sid, "completed", duration=61, post=...)

  Like Twilio, AnsweredBy is sent only when the call asked for MachineDetection; the fake
  reads the TwiML it gets back and only a <Gather> it is waiting in can take a key press;
  "completed" and the other final statuses are always posted, the others only when their
  event is in StatusCallbackEvent.

Runs on the standard library's threading HTTP server, bound to 127.0.0.1 on a free port."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import email.utils
import hmac
import json
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit
from xml.etree import ElementTree

import httpx
import phonenumbers
from twilio.request_validator import RequestValidator

API_VERSION = "2010-04-01"
_MESSAGES = re.compile(rf"^/{API_VERSION}/Accounts/(AC[0-9a-fA-F]{{32}})/Messages\.json$")
_MESSAGE = re.compile(
    rf"^/{API_VERSION}/Accounts/(AC[0-9a-fA-F]{{32}})/Messages/((?:SM|MM)[0-9a-fA-F]{{32}})\.json$"
)
_CALLS = re.compile(rf"^/{API_VERSION}/Accounts/(AC[0-9a-fA-F]{{32}})/Calls\.json$")
_CALL = re.compile(
    rf"^/{API_VERSION}/Accounts/(AC[0-9a-fA-F]{{32}})/Calls/(CA[0-9a-fA-F]{{32}})\.json$"
)
_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
_GSM_HINT = re.compile(r"^[\x0a\x0d\x20-\x7e£¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ¤¡ÄÖÑÜ§¿äöñüà€]*$")
MAX_BODY_CHARS = 1600
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
_DAY = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
CALL_EVENTS = frozenset({"initiated", "ringing", "answered", "completed"})
MACHINE_DETECTION = frozenset({"Enable", "DetectMessageEnd"})
CALL_FINAL = frozenset({"completed", "busy", "no-answer", "failed", "canceled"})
# Statuses in which Twilio has dialed the call: the first one sets its start_time. A call
# that fails or is canceled while still queued was never dialed and never gets one.
CALL_DIALED = frozenset({"initiated", "ringing", "in-progress", "completed", "busy", "no-answer"})
# Which StatusCallbackEvent a call status is reported under.
CALL_EVENT_OF = {
    "queued": "",
    "initiated": "initiated",
    "ringing": "ringing",
    "in-progress": "answered",
    **{status: "completed" for status in CALL_FINAL},
}
ANSWERED_BY = frozenset(
    {
        "human",
        "machine_start",
        "machine_end_beep",
        "machine_end_silence",
        "machine_end_other",
        "fax",
        "unknown",
    }
)
MAX_RING_TIMEOUT = 600
MAX_TIME_LIMIT = 14400


@dataclass(frozen=True, slots=True)
class Failure:
    """One scripted answer. ``hang`` holds the connection open for that many seconds
    before answering (longer than the client's timeout simulates a lost answer);
    ``accept`` stores the message anyway, as Twilio may have before the line dropped;
    ``drop`` closes the connection without answering (a reset mid-request)."""

    status: int
    code: int
    message: str
    hang: float = 0.0
    accept: bool = False
    retry_after: str = ""
    drop: bool = False


FAILURES: dict[str, Failure] = {
    "server_error": Failure(500, 20500, "Internal Server Error"),
    "unavailable": Failure(503, 20503, "Service Unavailable"),
    "rate_limited": Failure(429, 20429, "Too Many Requests", retry_after="1"),
    "opted_out": Failure(400, 21610, "Attempt to send to unsubscribed recipient"),
    "invalid_to": Failure(400, 21211, "The 'To' number is not a valid phone number."),
    "hang": Failure(500, 20500, "Internal Server Error", hang=3.0),
    "drop": Failure(0, 0, "", drop=True),
}


@dataclass(slots=True)
class ReceivedRequest:
    """A request the fake received, and the status it answered (0 while unanswered)."""

    method: str
    path: str
    headers: Mapping[str, str]
    form: Mapping[str, str]
    account_sid: str
    authenticated: bool
    at: float  # time.monotonic() when it arrived
    status: int = 0  # also 0 for a scripted drop
    query: Mapping[str, str] = field(default_factory=dict)
    form_lists: Mapping[str, list[str]] = field(default_factory=dict)  # repeated names kept


@dataclass(slots=True)
class FakeMessage:
    sid: str
    account_sid: str
    to: str
    from_: str
    body: str
    status_callback: str
    status: str = "queued"
    error_code: int | None = None
    created: float = field(default_factory=time.time)
    sent: float | None = None  # date_sent: when it left for the carrier
    seq: int = 0  # arrival order, to sort messages created within one second

    def listed_at(self) -> tuple[float, int]:
        """Where the list puts it (newest first): by date_sent, else date_created."""
        return self.sent or self.created, self.seq

    def resource(self, *, as_created: bool = False) -> dict[str, Any]:
        """The message resource; ``as_created`` is the create answer, before it was sent."""
        date = email.utils.formatdate(self.created, usegmt=True)
        sent = None if as_created or self.sent is None else self.sent
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{self.sid}"
        return {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": self.body,
            "date_created": date,
            "date_sent": _rfc2822(sent),
            "date_updated": date,
            "direction": "outbound-api",
            "error_code": self.error_code,
            "error_message": None,
            "from": self.from_,
            "messaging_service_sid": None,
            "num_media": "0",
            "num_segments": str(num_segments(self.body)),
            "price": None,
            "price_unit": "USD",
            "sid": self.sid,
            "status": self.status,
            "subresource_uris": {"media": f"{uri}/Media.json"},
            "to": self.to,
            "uri": f"{uri}.json",
        }


@dataclass(slots=True)
class FakeCall:
    """A call the fake accepted, and what happened on it since."""

    sid: str
    account_sid: str
    to: str
    from_: str
    url: str
    twiml: str
    method: str
    status_callback: str
    status_callback_method: str
    status_callback_events: frozenset[str]
    machine_detection: str
    timeout: int
    time_limit: int
    status: str = "queued"
    answered_by: str = ""
    duration: int | None = None
    created: float = field(default_factory=time.time)
    updated: float | None = None  # date_updated, when it differs from date_created
    started: float | None = None  # start_time: when Twilio dialed it (None while queued)
    ended: float | None = None  # end_time: when a dialed call reached its final status
    seq: int = 0  # arrival order, to sort calls created within one second
    # The TwiML documents the call fetched, in order, and the <Gather> waiting for a key
    # press in the current one: (absolute action URL, method, numDigits).
    documents: list[str] = field(default_factory=list)
    gather: tuple[str, str, int] | None = None
    hung_up: bool = False  # the TwiML ended the call (<Hangup/>, or it ran out of verbs)
    errors: list[int] = field(default_factory=list)  # Twilio debugger codes (11200, 12100)
    sequence: int = 0  # SequenceNumber of the next status callback

    def listed_at(self) -> tuple[float, int]:
        """Where the list puts it (newest first): by date_created, the fake's reading."""
        return self.created, self.seq

    def move_to(self, status: str) -> None:
        """Take ``status``, stamping date_updated, start_time the first time the call is
        dialed, and end_time when a dialed call ends."""
        now = time.time()
        if status != self.status:
            self.updated = now
        if self.started is None and status in CALL_DIALED:
            self.started = now
        if status in CALL_FINAL and self.started is not None and self.ended is None:
            self.ended = now
        self.status = status

    def resource(self) -> dict[str, Any]:
        date = email.utils.formatdate(self.created, usegmt=True)
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Calls/{self.sid}"
        return {
            "account_sid": self.account_sid,
            "annotation": None,
            "answered_by": self.answered_by or None,
            "api_version": API_VERSION,
            "caller_name": None,
            "date_created": date,
            "date_updated": _rfc2822(self.created if self.updated is None else self.updated),
            "direction": "outbound-api",
            "duration": None if self.duration is None else str(self.duration),
            "end_time": _rfc2822(self.ended),
            "forwarded_from": None,
            "from": self.from_,
            "from_formatted": self.from_,
            "group_sid": None,
            "parent_call_sid": None,
            "phone_number_sid": "PN" + "0" * 32,
            "price": None,
            "price_unit": "USD",
            "queue_time": "0",
            "sid": self.sid,
            "start_time": _rfc2822(self.started),
            "status": self.status,
            "subresource_uris": {
                "events": f"{uri}/Events.json",
                "notifications": f"{uri}/Notifications.json",
                "payments": f"{uri}/Payments.json",
                "recordings": f"{uri}/Recordings.json",
            },
            "to": self.to,
            "to_formatted": self.to,
            "trunk_sid": None,
            "uri": f"{uri}.json",
        }


@dataclass(frozen=True, slots=True)
class WebhookAnswer:
    """What the application answered a webhook the fake made."""

    status: int
    content_type: str
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


# Delivers one signed webhook: (URL, form fields, headers) -> the application's answer.
Poster = Callable[[str, dict[str, str], dict[str, str]], WebhookAnswer]


def http_poster(url: str, params: dict[str, str], headers: dict[str, str]) -> WebhookAnswer:
    """Deliver over the network, as Twilio does (15 s, its timeout for TwiML answers)."""
    response = httpx.post(url, data=params, headers=headers, timeout=15.0)
    return WebhookAnswer(
        response.status_code, response.headers.get("content-type", ""), response.content
    )


def num_segments(body: str) -> int:
    """Twilio's count, roughly: GSM-looking text 160/153 per part, else UCS-2 70/67. The
    fake's own estimate, deliberately independent of OpenLine's segment counter."""
    if _GSM_HINT.match(body):
        single, part, units = 160, 153, len(body)
    else:
        single, part, units = 70, 67, len(body.encode("utf-16-le")) // 2
    return 1 if units <= single else -(-units // part)


def _rfc2822(moment: float | None) -> str | None:
    return None if moment is None else email.utils.formatdate(moment, usegmt=True)


def error_body(status: int, code: int, message: str) -> dict[str, Any]:
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


def _date_range(name: str, value: str) -> tuple[float, float]:
    """[start, end) of a date filter's value (DateSent, StartTime, EndTime): a whole GMT
    day, or the one second named."""
    try:
        if _DAY.match(value):
            day = datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC)
            return day.timestamp(), (day + timedelta(days=1)).timestamp()
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"Invalid {name} value {value!r}: expected YYYY-MM-DD") from None
    start = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
    return start, start + 1


def _int_param(query: Mapping[str, str], name: str, default: int) -> int:
    raw = query.get(name, "")
    if not raw:
        return default
    if not raw.isascii() or not raw.isdigit():
        raise ValueError(f"Invalid {name} value {raw!r}")
    return int(raw)


@dataclass(frozen=True, slots=True)
class _ListKind:
    """A list resource: where it lives (``path``), the key its page holds the records under,
    the sids its page tokens carry, its exact-match filters and date filters (each: the
    query parameter, the record's attribute), and the only values some filters take."""

    path: str
    key: str
    sid: str
    exact: tuple[tuple[str, str], ...]
    dates: tuple[tuple[str, str], ...]
    choices: tuple[tuple[str, frozenset[str]], ...] = ()

    @property
    def filters(self) -> tuple[str, ...]:
        """The filters, in the order page URIs repeat them. "DateSent>" and "DateSent<" are
        how ``DateSent>=...`` and ``DateSent<=...`` arrive once the query string is parsed
        (and likewise for the other dates)."""
        dated = tuple(name + op for name, _ in self.dates for op in ("", ">", "<"))
        return tuple(name for name, _ in self.exact) + dated

    @property
    def token(self) -> re.Pattern[str]:
        return re.compile(rf"^P[AB]{self.sid}[0-9a-fA-F]{{32}}$")


LISTS = {
    "Messages": _ListKind(
        path="Messages",
        key="messages",
        sid="(?:SM|MM)",
        exact=(("To", "to"), ("From", "from_")),
        dates=(("DateSent", "sent"),),
    ),
    "Calls": _ListKind(
        path="Calls",
        key="calls",
        sid="CA",
        exact=(("To", "to"), ("From", "from_"), ("Status", "status")),
        dates=(("StartTime", "started"), ("EndTime", "ended")),
        choices=(("Status", frozenset(CALL_EVENT_OF)),),
    ),
}
_Record = FakeMessage | FakeCall


@dataclass(frozen=True, slots=True)
class _Listing:
    """One GET of a list resource: its filters and which page."""

    kind: _ListKind
    filters: tuple[tuple[str, str], ...]
    # (the record's attribute, "" for the day named / ">" on or after / "<" on or before,
    # [start, end) of the value)
    ranges: tuple[tuple[str, str, float, float], ...]
    page_size: int
    page_number: int
    token: str

    @classmethod
    def parse(cls, kind: _ListKind, query: Mapping[str, str]) -> _Listing:
        filters = tuple((name, query[name]) for name in kind.filters if name in query)
        for name, allowed in kind.choices:
            if name in query and query[name] not in allowed:
                raise ValueError(f"Invalid {name} value {query[name]!r}")
        dates = dict(kind.dates)
        ranges = tuple(
            (dates[name.rstrip("<>")], name[len(name.rstrip("<>")) :], *_date_range(name, value))
            for name, value in filters
            if name.rstrip("<>") in dates
        )
        page_size = _int_param(query, "PageSize", DEFAULT_PAGE_SIZE)
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"PageSize must be between 1 and {MAX_PAGE_SIZE}")
        token = query.get("PageToken", "")
        if token and not kind.token.match(token):
            raise ValueError(f"Invalid PageToken value {token!r}")
        return cls(kind, filters, ranges, page_size, _int_param(query, "Page", 0), token)

    def matches(self, record: _Record) -> bool:
        wanted = dict(self.filters)
        for name, attribute in self.kind.exact:
            if name in wanted and getattr(record, attribute) != wanted[name]:
                return False
        return all(
            self._in_range(getattr(record, attribute), op, start, end)
            for attribute, op, start, end in self.ranges
        )

    @staticmethod
    def _in_range(when: float | None, op: str, start: float, end: float) -> bool:
        if when is None:  # never sent, dialed or ended: no filter on that date can match
            return False
        if op == ">":
            return when >= start
        if op == "<":
            return when < end
        return start <= when < end

    def page(self, account_sid: str, found: list[_Record]) -> dict[str, Any]:
        """The page of ``found`` (newest first) this request asked for, shaped like
        Twilio's list answer."""
        first = self._first_index(found)
        chunk = found[first : first + self.page_size]
        more = first + self.page_size < len(found)
        start = self.page_number * self.page_size
        return {
            "end": start + max(len(chunk) - 1, 0),
            "first_page_uri": self._uri(account_sid, 0, ""),
            self.kind.key: [record.resource() for record in chunk],
            "next_page_uri": (
                self._uri(account_sid, self.page_number + 1, "PA" + chunk[-1].sid)
                if more and chunk
                else None
            ),
            "page": self.page_number,
            "page_size": self.page_size,
            "previous_page_uri": (
                self._uri(account_sid, max(self.page_number - 1, 0), "PB" + chunk[0].sid)
                if first > 0 and chunk
                else None
            ),
            "start": start,
            "uri": self._uri(account_sid, self.page_number, self.token),
        }

    def _first_index(self, found: list[_Record]) -> int:
        """Where this page starts: after the PA sid, a page before the PB sid."""
        if not self.token:
            return 0
        sids = [record.sid for record in found]
        sid = self.token[2:]
        if sid not in sids:
            return len(found)
        position = sids.index(sid)
        if self.token.startswith("PA"):
            return position + 1
        return max(position - self.page_size, 0)

    def _uri(self, account_sid: str, page: int, token: str) -> str:
        params = [*self.filters, ("PageSize", str(self.page_size)), ("Page", str(page))]
        if token:
            params.append(("PageToken", token))
        return f"/{API_VERSION}/Accounts/{account_sid}/{self.kind.path}.json?{urlencode(params)}"


class FakeTwilio:
    """The fake server. Thread-safe; start() / stop(), or use it as a context manager."""

    def __init__(self, *, account_sid: str | None = None, auth_token: str | None = None) -> None:
        self.account_sid = account_sid or "AC" + secrets.token_hex(16)
        self.auth_token = auth_token or secrets.token_hex(16)
        self._accounts: dict[str, str] = {self.account_sid: self.auth_token}
        self._lock = threading.Lock()
        # Scripted answers for the next create POSTs, per resource (Messages, Calls).
        self._scripts: dict[str, deque[Failure]] = {"Messages": deque(), "Calls": deque()}
        self._released = threading.Event()
        self.requests: list[ReceivedRequest] = []
        self.messages: dict[str, FakeMessage] = {}
        self.calls: dict[str, FakeCall] = {}
        self.opted_out: set[str] = set()
        self._seq = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> FakeTwilio:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        server.daemon_threads = True
        self._server = server
        self._released.clear()
        self._thread = threading.Thread(
            target=server.serve_forever, name="fake-twilio", kwargs={"poll_interval": 0.05}
        )
        self._thread.daemon = True
        self._thread.start()
        return self

    def stop(self) -> None:
        self._released.set()  # let hanging handlers finish
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeTwilio:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the fake Twilio is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def config(self) -> dict[str, str]:
        """Number config that points OpenLine's Twilio adapter at this fake."""
        return {
            "account_sid": self.account_sid,
            "auth_token": self.auth_token,
            "api_base": self.url,
        }

    def add_account(self) -> tuple[str, str]:
        sid, token = "AC" + secrets.token_hex(16), secrets.token_hex(16)
        with self._lock:
            self._accounts[sid] = token
        return sid, token

    # --- scripting and inspection ---------------------------------------------------------

    def fail_next(
        self, kind: str | Failure, times: int = 1, *, on: str = "Messages", **changes: Any
    ) -> None:
        """The next ``times`` POSTs creating a resource ``on`` ("Messages" or "Calls")
        answer with ``kind``: one of FAILURES' names (server_error, unavailable,
        rate_limited, opted_out, invalid_to, hang, drop) or a Failure. ``changes`` override
        fields, e.g. ``hang=0.5``, ``retry_after="2"`` or ``accept=True``."""
        failure = FAILURES[kind] if isinstance(kind, str) else kind
        if changes:
            failure = dataclasses.replace(failure, **changes)
        with self._lock:
            self._scripts[on].extend([failure] * times)

    def opt_out(self, phone: str) -> None:
        """Like a recipient texting STOP to the sender: sends to them fail with 21610."""
        with self._lock:
            self.opted_out.add(phone)

    def send_requests(self) -> list[ReceivedRequest]:
        """The Messages POSTs received, in arrival order."""
        with self._lock:
            return [r for r in self.requests if r.method == "POST" and _MESSAGES.match(r.path)]

    def call_requests(self) -> list[ReceivedRequest]:
        """The Calls POSTs received (each one an attempt to place a call), in arrival order."""
        with self._lock:
            return [r for r in self.requests if r.method == "POST" and _CALLS.match(r.path)]

    def reset(self) -> None:
        with self._lock:
            for script in self._scripts.values():
                script.clear()
            self.requests.clear()
            self.messages.clear()
            self.calls.clear()
            self.opted_out.clear()

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> list[ReceivedRequest]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            sent = self.send_requests()
            if len(sent) >= count:
                return sent
            time.sleep(0.01)
        raise TimeoutError(f"the fake Twilio received {len(self.send_requests())} < {count}")

    # --- status callbacks ----------------------------------------------------------------

    def status_callback(
        self, sid: str, status: str, *, error_code: str | int | None = None
    ) -> tuple[str, dict[str, str], dict[str, str]]:
        """URL, form fields and headers of the callback Twilio would POST for ``sid``
        moving to ``status``, signed with the account's auth token. Updates the fake's
        record of the message, so GET .../Messages/{sid}.json reports it."""
        with self._lock:
            message = self.messages[sid]
            message.status = status
            if error_code is not None:
                message.error_code = int(error_code)
            token = self._accounts[message.account_sid]
        params = {
            "AccountSid": message.account_sid,
            "ApiVersion": API_VERSION,
            "From": message.from_,
            "MessageSid": sid,
            "MessageStatus": status,
            "SmsSid": sid,
            "SmsStatus": status,
            "To": message.to,
        }
        if error_code is not None:
            params["ErrorCode"] = str(error_code)
        signature = RequestValidator(token).compute_signature(message.status_callback, params)
        headers = {
            "X-Twilio-Signature": signature,
            "Content-Type": "application/x-www-form-urlencoded",
            "User-Agent": "TwilioProxy/1.1",
        }
        return message.status_callback, params, headers

    def deliver_status(
        self,
        sid: str,
        status: str,
        *,
        error_code: str | int | None = None,
        post: Callable[[str, dict[str, str], dict[str, str]], int] | None = None,
    ) -> int:
        """POST the signed status callback; returns the HTTP status it got. ``post`` lets
        a test deliver through something other than the network (an ASGI transport)."""
        url, params, headers = self.status_callback(sid, status, error_code=error_code)
        if post is not None:
            return post(url, params, headers)
        response = httpx.post(url, data=params, headers=headers, timeout=15.0)
        return response.status_code

    # --- driving calls, as Twilio does once a call is placed --------------------------------

    def call(self, sid: str) -> FakeCall:
        with self._lock:
            return self.calls[sid]

    def call_progress(
        self,
        sid: str,
        status: str,
        *,
        duration: int | None = None,
        answered_by: str = "",
        error_code: str | int | None = None,
        post: Poster | None = None,
    ) -> WebhookAnswer | None:
        """The call moves to ``status`` (initiated, ringing, in-progress, or a final one);
        POST the signed status callback, if the call asked for that event (a final status
        is always reported): the application's answer, or None when nothing was posted.
        ``duration``: CallDuration, seconds (completed only); ``answered_by``: AMD's
        verdict, only for a call that asked for MachineDetection."""
        if status not in CALL_EVENT_OF:
            raise ValueError(f"{status!r} is not a Twilio call status")
        if duration is not None and status != "completed":
            raise ValueError("Twilio reports CallDuration on completed calls only")
        with self._lock:
            call = self.calls[sid]
            if call.status in CALL_FINAL and status not in CALL_FINAL:
                raise ValueError(f"call {sid} already ended ({call.status})")
            if answered_by:
                call.answered_by = _check_answered_by(call, answered_by)
            call.move_to(status)
            if status == "completed":
                call.duration = duration or 0
            elif status in CALL_FINAL:
                call.duration = 0
            event = CALL_EVENT_OF[status]
            if not call.status_callback or not (
                status in CALL_FINAL or event in call.status_callback_events
            ):
                return None
            if call.status_callback_method != "POST":
                raise NotImplementedError("the fake posts status callbacks with POST only")
            call.sequence += 1
            extra = {
                "CallbackSource": "call-progress-events",
                "SequenceNumber": str(call.sequence - 1),
                "Timestamp": email.utils.formatdate(time.time(), usegmt=True),
            }
            if call.duration is not None and status == "completed":
                extra["CallDuration"] = str(call.duration)
                extra["Duration"] = str(-(-call.duration // 60))  # minutes, rounded up [U]
            if call.answered_by:
                extra["AnsweredBy"] = call.answered_by
            if error_code is not None:
                extra["ErrorCode"] = str(error_code)
            url, params, headers = self._signed(call, call.status_callback, extra)
        return (post or http_poster)(url, params, headers)

    def call_answer(
        self, sid: str, *, answered_by: str = "human", post: Poster | None = None
    ) -> WebhookAnswer:
        """Someone (or a voicemail, once its greeting ended) answered: request the call's
        Url for TwiML, with AnsweredBy when the call asked for MachineDetection, and read
        the document. Reports "in-progress" first when the call asked for "answered"."""
        with self._lock:
            call = self.calls[sid]
            if call.status in CALL_FINAL or call.status == "in-progress":
                raise ValueError(f"call {sid} cannot be answered now ({call.status})")
            verdict = (
                _check_answered_by(call, answered_by or "unknown") if call.machine_detection else ""
            )
        # Answered first; the detection's verdict comes with the Url request.
        self.call_progress(sid, "in-progress", post=post)
        with self._lock:
            call.answered_by = verdict
        if not call.url:  # created with Twiml: nothing to fetch
            self._read_document(call, "", call.twiml)
            return WebhookAnswer(200, "application/xml", call.twiml.encode())
        if call.method != "POST":
            raise NotImplementedError("the fake requests the call's Url with POST only")
        extra = {"AnsweredBy": verdict} if verdict else {}
        with self._lock:
            url, params, headers = self._signed(call, call.url, extra)
        answer = (post or http_poster)(url, params, headers)
        self._take(call, url, answer)
        return answer

    def call_press(self, sid: str, digits: str, *, post: Poster | None = None) -> WebhookAnswer:
        """The person presses ``digits`` while a <Gather> listens: POST its action (Digits
        and the call's fields) and read the document it answers."""
        with self._lock:
            call = self.calls[sid]
            if call.gather is None or call.status != "in-progress":
                raise ValueError(f"no <Gather> is listening on call {sid}")
            action, method, num_digits = call.gather
            if not digits or len(digits) > num_digits:
                raise ValueError(f"this <Gather> takes 1 to {num_digits} digits")
            if method != "POST":
                raise NotImplementedError("the fake requests Gather actions with POST only")
            extra = {"Digits": digits, "FinishedOnKey": "", "msg": "Gather End"}
            url, params, headers = self._signed(call, action, extra)
        answer = (post or http_poster)(url, params, headers)
        self._take(call, url, answer)
        return answer

    def _signed(
        self, call: FakeCall, url: str, extra: Mapping[str, str]
    ) -> tuple[str, dict[str, str], dict[str, str]]:
        """A webhook about ``call`` to ``url``: the fields Twilio sends with every voice
        request, plus ``extra``, signed with the account's auth token. Hold the lock."""
        params = {
            "AccountSid": call.account_sid,
            "ApiVersion": API_VERSION,
            "CallSid": call.sid,
            "CallStatus": call.status,
            "Called": call.to,
            "Caller": call.from_,
            "Direction": "outbound-api",
            "From": call.from_,
            "To": call.to,
            **extra,
        }
        token = self._accounts[call.account_sid]
        headers = {
            "X-Twilio-Signature": RequestValidator(token).compute_signature(url, params),
            "Content-Type": "application/x-www-form-urlencoded",
            "User-Agent": "TwilioProxy/1.1",
            "I-Twilio-Idempotency-Token": secrets.token_hex(16),
        }
        return url, params, headers

    def _take(self, call: FakeCall, url: str, answer: WebhookAnswer) -> None:
        """Twilio's reading of an answer to a TwiML request: anything but a 2xx is error
        11200 and the call ends (after "an application error has occurred")."""
        if not 200 <= answer.status < 300:
            with self._lock:
                call.errors.append(11200)
                call.gather, call.hung_up = None, True
            return
        self._read_document(call, url, answer.text)

    def _read_document(self, call: FakeCall, url: str, document: str) -> None:
        """Find what the fake needs in a TwiML document: the <Gather> it waits in, and
        whether the call ends with it. Not TwiML: error 12100, the call ends."""
        gather, hung_up, error = _read_twiml(url, document)
        with self._lock:
            call.documents.append(document)
            call.gather, call.hung_up = gather, hung_up
            if error:
                call.errors.append(error)

    # --- request handling (called on the server's threads) ---------------------------------

    def _authenticate(self, account_sid: str, header: str) -> bool:
        if not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:], validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        with self._lock:
            expected = self._accounts.get(user)
        return (
            expected is not None
            and user == account_sid
            and hmac.compare_digest(password.encode(), expected.encode())
        )

    def _next_failure(self, resource: str) -> Failure | None:
        with self._lock:
            script = self._scripts[resource]
            return script.popleft() if script else None

    def _create(self, account_sid: str, form: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
        problem = _validate(form)
        if problem is not None:
            return problem
        with self._lock:
            if form["To"] in self.opted_out:
                opted = FAILURES["opted_out"]
                return 400, error_body(400, opted.code, opted.message)
            self._seq += 1
            now = time.time()
            message = FakeMessage(
                sid="SM" + secrets.token_hex(16),
                account_sid=account_sid,
                to=form["To"],
                from_=form["From"],
                body=form["Body"],
                status_callback=form.get("StatusCallback", ""),
                created=now,
                sent=now,
                seq=self._seq,
            )
            self.messages[message.sid] = message
        return 201, message.resource(as_created=True)

    def _create_call(
        self, account_sid: str, form: Mapping[str, list[str]]
    ) -> tuple[int, dict[str, Any]]:
        one = {name: values[0] for name, values in form.items()}
        problem = _validate_call(one, form.get("StatusCallbackEvent", []))
        if problem is not None:
            return problem
        call = FakeCall(
            sid="CA" + secrets.token_hex(16),
            account_sid=account_sid,
            to=one["To"],
            from_=one["From"],
            url=one.get("Url", ""),
            twiml=one.get("Twiml", ""),
            method=one.get("Method", "POST").upper(),
            status_callback=one.get("StatusCallback", ""),
            status_callback_method=one.get("StatusCallbackMethod", "POST").upper(),
            # Without StatusCallbackEvent Twilio reports "completed" only.
            status_callback_events=frozenset(form.get("StatusCallbackEvent") or ["completed"]),
            machine_detection=one.get("MachineDetection", ""),
            timeout=int(one.get("Timeout", "60")),
            time_limit=int(one.get("TimeLimit", str(MAX_TIME_LIMIT))),
        )
        with self._lock:
            self._seq += 1
            call.seq = self._seq
            self.calls[call.sid] = call
        return 201, call.resource()

    def _fetch_call(self, account_sid: str, sid: str) -> tuple[int, dict[str, Any]]:
        with self._lock:
            call = self.calls.get(sid)
        if call is None or call.account_sid != account_sid:
            return 404, error_body(
                404,
                20404,
                f"The requested resource /{API_VERSION}/Accounts/{account_sid}/"
                f"Calls/{sid}.json was not found",
            )
        return 200, call.resource()

    def _list(
        self, resource: str, account_sid: str, query: Mapping[str, str]
    ) -> tuple[int, dict[str, Any]]:
        """GET on a list resource ("Messages" or "Calls"): a page of the account's own."""
        try:
            listing = _Listing.parse(LISTS[resource], query)
        except ValueError as exc:
            return 400, error_body(400, 20001, str(exc))
        with self._lock:
            records: list[_Record] = [
                *(self.calls.values() if resource == "Calls" else self.messages.values())
            ]
        found = sorted(
            (r for r in records if r.account_sid == account_sid and listing.matches(r)),
            key=lambda r: r.listed_at(),
            reverse=True,
        )
        return 200, listing.page(account_sid, found)

    def _fetch(self, account_sid: str, sid: str) -> tuple[int, dict[str, Any]]:
        with self._lock:
            message = self.messages.get(sid)
        if message is None or message.account_sid != account_sid:
            return 404, error_body(
                404,
                20404,
                f"The requested resource /{API_VERSION}/Accounts/{account_sid}/"
                f"Messages/{sid}.json was not found",
            )
        return 200, message.resource()

    def _record(self, request: ReceivedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _hang(self, seconds: float) -> None:
        self._released.wait(seconds)


def _is_phone_number(value: str) -> bool:
    if not _E164.match(value):
        return False
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse(value))
    except phonenumbers.NumberParseException:
        return False


def _validate(form: Mapping[str, str]) -> tuple[int, dict[str, Any]] | None:
    to, from_, body = form.get("To", ""), form.get("From", ""), form.get("Body", "")
    if not to:
        return 400, error_body(400, 21604, "A 'To' phone number is required.")
    if not _is_phone_number(to):
        return 400, error_body(400, 21211, f"The 'To' number {to} is not a valid phone number.")
    if not from_:
        return 400, error_body(400, 21603, "A 'From' phone number is required.")
    if not body:
        return 400, error_body(400, 21602, "Message body is required.")
    if len(body) > MAX_BODY_CHARS:
        return 400, error_body(
            400, 21617, "The concatenated message body exceeds the 1600 character limit."
        )
    return None


def _check_answered_by(call: FakeCall, answered_by: str) -> str:
    if not call.machine_detection:
        raise ValueError("Twilio sends AnsweredBy only for calls placed with MachineDetection")
    if answered_by not in ANSWERED_BY:
        raise ValueError(f"{answered_by!r} is not one of Twilio's AnsweredBy values")
    return answered_by


def _read_twiml(url: str, document: str) -> tuple[tuple[str, str, int] | None, bool, int]:
    """(the <Gather> the call waits in, whether the call ends with this document, error
    code) of a TwiML answer. Verbs after a Gather only run if it times out, so a Gather
    leaves the call open; a document without one ends the call when its verbs run out."""
    try:
        root = ElementTree.fromstring(document)
    except ElementTree.ParseError:
        return None, True, 12100
    if root.tag != "Response":
        return None, True, 12100
    for verb in root:
        if verb.tag == "Gather":
            action = urljoin(url, verb.get("action", ""))  # none: the document's own URL
            digits = verb.get("numDigits", "")
            return (
                (action, verb.get("method", "POST").upper(), int(digits) if digits else 1000),
                False,
                0,
            )
        if verb.tag == "Hangup":
            break
    return None, True, 0


def _is_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _whole(value: str, low: int, high: int) -> bool:
    return value.isascii() and value.isdigit() and low <= int(value) <= high


def _validate_call(form: Mapping[str, str], events: list[str]) -> tuple[int, dict[str, Any]] | None:
    """What Twilio refuses when creating a call, in the order it checks [U]."""
    to, from_ = form.get("To", ""), form.get("From", "")
    if not to:
        return 400, error_body(400, 21201, "No 'To' number is specified")
    if not _is_phone_number(to):
        return 400, error_body(400, 21211, f"The 'To' number {to} is not a valid phone number.")
    if not from_:
        return 400, error_body(400, 21213, "No 'From' number is specified")
    if not _is_phone_number(from_):
        return 400, error_body(
            400, 21212, f"The 'From' number {from_} is not a valid phone number."
        )
    url = form.get("Url", "")
    if not (url or form.get("Twiml") or form.get("ApplicationSid")):
        return 400, error_body(400, 21205, "Url, Twiml or ApplicationSid is required")
    if url and not _is_url(url):
        return 400, error_body(400, 21205, f"Url is not a valid URL: {url}")
    callback = form.get("StatusCallback", "")
    if callback and not _is_url(callback):
        return 400, error_body(400, 21609, f"StatusCallback is not a valid URL: {callback}")
    checks = (
        (form.get("Method", "POST").upper() in ("GET", "POST"), "Method"),
        (
            form.get("StatusCallbackMethod", "POST").upper() in ("GET", "POST"),
            "StatusCallbackMethod",
        ),
        (set(events) <= CALL_EVENTS, "StatusCallbackEvent"),
        (form.get("MachineDetection", "Enable") in MACHINE_DETECTION, "MachineDetection"),
        (_whole(form.get("Timeout", "60"), 1, MAX_RING_TIMEOUT), "Timeout"),
        (_whole(form.get("TimeLimit", str(MAX_TIME_LIMIT)), 1, MAX_TIME_LIMIT), "TimeLimit"),
    )
    for ok, name in checks:
        if not ok:
            return 400, error_body(400, 20001, f"Invalid {name} value")
    return None


@dataclass(frozen=True, slots=True)
class _Route:
    """Which REST resource a path names: a list (Messages, Calls) or one of its items."""

    account_sid: str
    resource: str
    sid: str = ""

    @classmethod
    def of(cls, path: str) -> _Route | None:
        for resource, many, one in (("Messages", _MESSAGES, _MESSAGE), ("Calls", _CALLS, _CALL)):
            if found := many.match(path):
                return cls(found.group(1), resource)
            if found := one.match(path):
                return cls(found.group(1), resource, found.group(2))
        return None


def _handler_for(fake: FakeTwilio) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "FakeTwilio/1.0"
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass  # quiet test output

        def do_POST(self) -> None:  # noqa: N802
            self._dispatch("POST")

        def do_GET(self) -> None:  # noqa: N802
            self._dispatch("GET")

        def _dispatch(self, method: str) -> None:
            arrived = time.monotonic()
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            form_lists = parse_qs(raw.decode("utf-8", "replace"))
            form = {k: v[0] for k, v in form_lists.items()}
            path, _, query_string = self.path.partition("?")
            query = {k: v[0] for k, v in parse_qs(query_string).items()}
            route = _Route.of(path)
            account_sid = route.account_sid if route else ""
            authenticated = bool(account_sid) and fake._authenticate(
                account_sid, self.headers.get("Authorization", "")
            )
            request = ReceivedRequest(
                method=method,
                path=path,
                headers={k.lower(): v for k, v in self.headers.items()},
                form=form,
                account_sid=account_sid,
                authenticated=authenticated,
                at=arrived,
                query=query,
                form_lists=form_lists,
            )
            fake._record(request)  # on arrival, so a test sees a request that still hangs
            answer = self._answer(method, route, form_lists, query, authenticated)
            if answer is None:  # a scripted drop: close without a word
                self.close_connection = True
                return
            status, payload, extra = answer
            request.status = status
            self._send(status, payload, extra)

        def _answer(
            self,
            method: str,
            route: _Route | None,
            form_lists: dict[str, list[str]],
            query: dict[str, str],
            authenticated: bool,
        ) -> tuple[int, dict[str, Any], dict[str, str]] | None:
            if route is None or (route.sid and method != "GET"):
                return 404, error_body(404, 20404, "The requested resource was not found"), {}
            if not authenticated:
                body = error_body(401, 20003, "Authenticate")
                body["detail"] = "Your AccountSid or AuthToken was incorrect."
                return 401, body, {"WWW-Authenticate": 'Basic realm="Twilio API"'}
            calls = route.resource == "Calls"
            if route.sid:
                fetch = fake._fetch_call if calls else fake._fetch
                return (*fetch(route.account_sid, route.sid), {})
            if method == "GET":
                return (*fake._list(route.resource, route.account_sid, query), {})
            form = {k: v[0] for k, v in form_lists.items()}

            def create() -> tuple[int, dict[str, Any]]:
                if calls:
                    return fake._create_call(route.account_sid, form_lists)
                return fake._create(route.account_sid, form)

            failure = fake._next_failure(route.resource)
            if failure is None:
                return (*create(), {})
            if failure.accept:
                create()
            if failure.hang:
                fake._hang(failure.hang)
            if failure.drop:
                return None
            extra = {"Retry-After": failure.retry_after} if failure.retry_after else {}
            return failure.status, error_body(failure.status, failure.code, failure.message), extra

        def _send(self, status: int, payload: dict[str, Any], extra: dict[str, str]) -> None:
            body = json.dumps(payload).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                for name, value in extra.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a scripted hang): nothing to answer

    return Handler

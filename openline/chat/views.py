"""The widget's public HTTP side: the script, its configuration, and starting a chat.

Cross-origin by design, and only for the origins a widget lists: the answer carries
Access-Control-Allow-Origin for those and is refused (403) for any other."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET

from openline.chat import limits, services
from openline.chat.models import ChatWidget, QuestionStage
from openline.chat.questions import AnswerError, question_view, questions_for
from openline.chat.survey import survey_submit, survey_view
from openline.forms.schema import AnswersError

WIDGET_JS = Path(__file__).parent / "static" / "chat" / "widget.js"
MAX_START_BODY = 20_000  # a name and the pre-chat answers
# A refused start's HTTP status. Busy (as many chats waiting as the widget allows) is a
# state of the service like offline, so 409 with Retry-After: a 503 would be logged as a
# server error each time a visitor is turned away. The widget tells them apart by "error".
REFUSAL_STATUS = {
    "unknown_widget": 404,
    "origin_refused": 403,
    "offline": 409,
    "busy": 409,
    "rate_limited": 429,
}


@cache
def _widget_source() -> bytes:
    return WIDGET_JS.read_bytes()


@require_GET
def widget_js(request: HttpRequest) -> HttpResponse:
    response = HttpResponse(_widget_source(), content_type="text/javascript; charset=utf-8")
    response["Cache-Control"] = "public, max-age=300"
    response["Cross-Origin-Resource-Policy"] = "cross-origin"
    return response


@require_GET
def widget_demo(request: HttpRequest, public_id: str) -> HttpResponse:
    """A plain page that embeds a widget, to try it (it works only if the widget allows
    OpenLine's own address, as the demo organization's does)."""
    from django.shortcuts import get_object_or_404, render

    from openline.chat.models import ChatWidget

    widget = get_object_or_404(ChatWidget, public_id=public_id, is_active=True)
    return render(request, "chat/widget_demo.html", {"widget": widget})


def _origin(request: HttpRequest) -> str:
    """The embedding page's origin. Browsers leave Origin out of same-origin GETs; the
    browser-set Sec-Fetch-Site header tells those apart (OpenLine's own demo page)."""
    origin = request.headers.get("Origin", "")
    if not origin and request.headers.get("Sec-Fetch-Site") == "same-origin":
        origin = f"{request.scheme}://{request.get_host()}"
    return origin


def _cors(response: HttpResponse, origin: str) -> HttpResponse:
    response["Access-Control-Allow-Origin"] = origin
    response["Vary"] = "Origin"
    return response


def _error(code: str, message: str, status: int) -> JsonResponse:
    return JsonResponse({"error": code, "message": message}, status=status)


def _refused(exc: services.ChatError) -> JsonResponse:
    status = REFUSAL_STATUS.get(exc.code, 400)
    if exc.retry_after is None:
        return _error(exc.code, str(exc), status)
    # In the body too: a cross-origin script cannot read Retry-After unless exposed.
    body = {"error": exc.code, "message": str(exc), "retry_after": exc.retry_after}
    response = JsonResponse(body, status=status)
    response["Retry-After"] = str(exc.retry_after)
    return response


@require_GET
def widget_config(request: HttpRequest, public_id: str) -> HttpResponse:
    origin = _origin(request)
    try:
        widget = services.widget_for(public_id, origin)
    except services.ChatError as exc:
        return _refused(exc)
    online, opens = services.widget_availability(widget)
    return _cors(
        JsonResponse(
            {
                "name": widget.display_name,
                "color": widget.color,
                "greeting": widget.greeting,
                "offline_text": widget.offline_text,
                "online": online,
                "next_opening": opens,
                # Only worth a query while open; a busy widget offers no chat box.
                "busy": online and services.widget_busy(widget),
                "busy_message": services.BUSY_TEXT,
                "busy_help": widget.busy_text or widget.offline_text,
                "quick_exit_url": widget.quick_exit_url,
                "prechat": [question_view(q) for q in questions_for(widget, QuestionStage.PRE)],
                # The inbox's post-chat survey form (chat.survey): empty when none.
                "survey": survey_view(widget),
            }
        ),
        origin,
    )


def _preflight(public_id: str, origin: str) -> HttpResponse:
    """Answer a CORS preflight, only for the widget's allowed origins."""
    try:
        services.widget_for(public_id, origin)
    except services.ChatError as exc:
        return _refused(exc)
    response = _cors(HttpResponse(status=204), origin)
    response["Access-Control-Allow-Methods"] = "POST"
    response["Access-Control-Allow-Headers"] = "Content-Type"
    response["Access-Control-Max-Age"] = "600"
    return response


def _json_body(request: HttpRequest) -> dict[str, Any]:
    """The request's JSON object; ValueError for anything else."""
    data = json.loads(request.body or b"{}")
    if not isinstance(data, dict):
        raise ValueError("not an object")
    return data


def _answer_refused(exc: AnswerError, origin: str) -> JsonResponse:
    return _cors(
        JsonResponse(
            {"error": "invalid_answer", "question": exc.question_id, "message": str(exc)},
            status=400,
        ),
        origin,
    )


def _posted(
    request: HttpRequest, public_id: str, field: str
) -> HttpResponse | tuple[ChatWidget, str, dict[str, Any], str]:
    """What the widget's POST endpoints share: the CORS preflight, the method, the origin,
    the size, and a JSON object whose ``field`` is a string. A refusal comes back as the
    response to send; otherwise (widget, origin, data, data[field])."""
    origin = request.headers.get("Origin", "")
    if request.method == "OPTIONS":
        return _preflight(public_id, origin)
    if request.method != "POST":
        return _error("method", "Use POST.", 405)
    try:
        widget = services.widget_for(public_id, origin)
    except services.ChatError as exc:
        return _refused(exc)
    if len(request.body) > MAX_START_BODY:
        return _cors(_error("too_large", "Too much data.", 413), origin)
    try:
        data = _json_body(request)
        value = data.get(field, "")
        if not isinstance(value, str):
            raise ValueError(field)
    except (ValueError, UnicodeDecodeError):
        return _cors(_error("invalid", "Send a JSON object.", 400), origin)
    return widget, origin, data, value


@csrf_exempt  # cross-origin by design; the origin list and the session token protect it
def chat_start(request: HttpRequest, public_id: str) -> HttpResponse:
    posted = _posted(request, public_id, "name")
    if isinstance(posted, HttpResponse):
        return posted
    widget, origin, data, name = posted
    try:
        limits.chat_start_throttle(widget=widget, address=request.META.get("REMOTE_ADDR", ""))
        started = services.chat_start(
            widget=widget, origin=origin, name=name, answers=data.get("answers")
        )
    except services.ChatError as exc:
        return _cors(_refused(exc), origin)
    except AnswerError as exc:
        return _answer_refused(exc, origin)
    return _cors(
        JsonResponse(
            {"token": started.token, "conversation": started.session.conversation_id}, status=201
        ),
        origin,
    )


@csrf_exempt  # as chat_start: the session token in the body is the proof
def chat_survey(request: HttpRequest, public_id: str) -> HttpResponse:
    """The visitor's post-chat survey answers, once, after the chat has ended."""
    posted = _posted(request, public_id, "token")
    if isinstance(posted, HttpResponse):
        return posted
    widget, origin, data, token = posted
    try:
        session = services.session_for(token, widget)
        survey_submit(session=session, raw=data.get("answers"))
    except services.ChatError as exc:
        status = 409 if exc.code in ("survey_closed", "no_survey") else 404
        return _cors(_error(exc.code, str(exc), status), origin)
    except AnswersError as exc:
        # 422 naming each refused question by its key (the widget marks the first).
        key, message = next(iter(exc.errors.items()))
        body = {"error": "invalid_answer", "field": key, "message": message, "errors": exc.errors}
        return _cors(JsonResponse(body, status=422), origin)
    return _cors(JsonResponse({"ok": True}, status=201), origin)

"""Every error the API returns is JSON ``{"code": ..., "detail": ...}`` with a 4xx status."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import HttpError, ValidationError

from openline.messaging.services.outbound import SendRefused

# Refusals a client can fix by changing the request are 400; the rest depend on the
# recipient's state (consent, number type) and are 409.
SEND_REFUSED_STATUS = {
    "invalid_phone": 400,
    "invalid_body": 400,
    "invalid_from": 400,
    "no_number": 400,
    "opted_out": 409,
    "not_textable": 409,
    "opt_out_pending": 409,
}

HTTP_ERROR_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    429: "throttled",
}


class ApiError(Exception):
    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail

    @classmethod
    def from_refusal(cls, exc: SendRefused) -> ApiError:
        return cls(SEND_REFUSED_STATUS.get(exc.code, 409), exc.code, str(exc))


def _respond(
    api: NinjaAPI, request: HttpRequest, status: int, code: str, detail: Any
) -> HttpResponse:
    return api.create_response(request, {"code": code, "detail": detail}, status=status)


def install_error_handlers(api: NinjaAPI) -> None:
    @api.exception_handler(ApiError)
    def api_error(request: HttpRequest, exc: ApiError) -> HttpResponse:
        return _respond(api, request, exc.status, exc.code, exc.detail)

    @api.exception_handler(ValidationError)
    def invalid_request(request: HttpRequest, exc: ValidationError) -> HttpResponse:
        return _respond(api, request, 422, "invalid_request", exc.errors)

    @api.exception_handler(HttpError)
    def http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
        if exc.message.startswith("Cannot parse request body"):
            detail = "the request body must be a JSON object encoded as UTF-8"
            return _respond(api, request, 400, "malformed_json", detail)
        code = HTTP_ERROR_CODES.get(exc.status_code, "error")
        response = _respond(api, request, exc.status_code, code, exc.message)
        if exc.status_code == 401:
            response["WWW-Authenticate"] = 'Bearer realm="openline"'
        return response

    @api.exception_handler(SuspiciousOperation)
    def suspicious(request: HttpRequest, exc: SuspiciousOperation) -> HttpResponse:
        # Django raises these while reading the request, e.g. a body over
        # DATA_UPLOAD_MAX_MEMORY_SIZE; without this they become an HTML page.
        if isinstance(exc, RequestDataTooBig):
            return _respond(api, request, 413, "too_large", "the request body is too large")
        return _respond(api, request, 400, "bad_request", "the request could not be read")

"""One JSON shape for every REST API error: ``{"error": {"code", "message", "details"}}``.

``code`` is a stable machine-readable word, ``message`` a sentence for people
and ``details`` an object with specifics (field errors, the rejected image) or
null. Unexpected exceptions are logged here and answered with a plain 500:
clients never see a traceback.

The handler knows Django's and DRF's exceptions and :class:`ApiError`; an app
whose services raise exceptions of their own registers how each is answered
(:func:`api_error_register`, from the app's ``AppConfig.ready``), so this
module imports no app.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

from django.core import exceptions as django_exceptions
from django.db import InterfaceError as DatabaseInterfaceError
from django.db import OperationalError as DatabaseOperationalError
from django.http import Http404
from redis.exceptions import RedisError
from rest_framework import exceptions, serializers
from rest_framework.response import Response

logger = logging.getLogger(__name__)


class ApiError(exceptions.APIException):
    """An error with its own status, code, message and details."""

    def __init__(
        self, *, status_code: int, code: str, message: str, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(detail=message, code=code)
        self.status_code = status_code
        self.code = code
        self.message = message
        self.details = details


class RequestTooLarge(ApiError):
    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(status_code=413, code="request_too_large", message=message, details=details)


class ServiceUnavailable(ApiError):
    def __init__(self, code: str, message: str, retry_after_s: int = 1) -> None:
        super().__init__(
            status_code=503, code=code, message=message, details={"retry_after_s": retry_after_s}
        )
        self.wait = retry_after_s


# An app's exception type → the function that turns one into the ApiError clients get.
_CONVERTERS: dict[type[BaseException], Callable[[Any], ApiError]] = {}


def api_error_register(*exception_types: type[BaseException], convert: Callable[[Any], ApiError]) -> None:
    """Answer each of ``exception_types`` (and its subclasses) raised in an API view with ``convert(exc)``."""
    for exception_type in exception_types:
        _CONVERTERS[exception_type] = convert


def _registered_error(exc: Exception) -> ApiError | None:
    for cls in type(exc).__mro__:  # the most specific registration wins
        convert = _CONVERTERS.get(cls)
        if convert is not None:
            return convert(exc)
    return None


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details}}


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """Turn any exception raised in an API view into the one error shape (DRF's EXCEPTION_HANDLER)."""
    exc = _as_api_exception(exc, context)
    headers: dict[str, str] = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    wait = getattr(exc, "wait", None)
    if wait:
        headers["Retry-After"] = str(_whole_seconds(wait))
    code, message, details = _describe(exc)
    return Response(error_body(code, message, details), status=exc.status_code, headers=headers)


def _as_api_exception(exc: Exception, context: dict[str, Any]) -> exceptions.APIException:
    if isinstance(exc, exceptions.APIException):
        return exc
    # An app's own registration wins over the generic answers below, even for a subclass of one of
    # Django's exceptions (a service's ValidationError that is really a conflict, say).
    registered = _registered_error(exc)
    if registered is not None:
        return registered
    if isinstance(exc, Http404):
        return exceptions.NotFound("Nothing was found at this address.")
    if isinstance(exc, django_exceptions.PermissionDenied):
        return exceptions.PermissionDenied()
    if isinstance(exc, django_exceptions.RequestDataTooBig):
        return RequestTooLarge("The request body is larger than the server accepts.")
    if isinstance(exc, django_exceptions.SuspiciousOperation):
        # TooManyFieldsSent, TooManyFilesSent, a malformed Host...: the request is at fault.
        return ApiError(status_code=400, code="bad_request", message=str(exc) or "The request was refused.")
    if isinstance(exc, django_exceptions.ValidationError):
        # Services refuse input with Django's ValidationError.
        return exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
    if isinstance(exc, RedisError | ConnectionError | TimeoutError):
        # The shared cache (throttles, decisions) or another service is down: a wait, not a bug.
        logger.warning("a service the API needs is unavailable: %s", exc)
        return ServiceUnavailable(
            "service_unavailable", "A service the API depends on is unavailable; retry shortly.", 5
        )
    if isinstance(exc, DatabaseOperationalError | DatabaseInterfaceError):
        logger.warning("the database is unavailable: %s", exc)
        return ServiceUnavailable("database_unavailable", "The database is unavailable; retry shortly.", 5)
    request = context.get("request")
    logger.error(
        "unexpected error in %s %s",
        getattr(request, "method", "?"),
        getattr(request, "path", "?"),
        exc_info=(type(exc), exc, exc.__traceback__),
    )
    return ApiError(
        status_code=500,
        code="server_error",
        message="Something went wrong on the server. It has been logged; please try again later.",
    )


def _whole_seconds(wait: float) -> int:
    return max(1, math.ceil(wait))


NOT_AUTHENTICATED_MESSAGE = "Send an API key as 'Authorization: Api-Key <key>', or sign in as staff."


def _describe(exc: exceptions.APIException) -> tuple[str, str, Any]:
    if isinstance(exc, ApiError):
        return exc.code, exc.message, exc.details
    if isinstance(exc, exceptions.ValidationError):
        detail = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        return "invalid", "Some of the input is not valid; see details.", detail
    if isinstance(exc, exceptions.Throttled):
        wait = _whole_seconds(exc.wait) if exc.wait is not None else None
        message = "Too many requests for this key." + (f" Retry in {wait} s." if wait else "")
        return "throttled", message, {"retry_after_s": wait}
    codes = exc.get_codes()
    code = codes if isinstance(codes, str) else exc.default_code
    message = str(exc.detail) if isinstance(exc.detail, str) else str(exc.default_detail)
    if isinstance(exc, exceptions.NotAuthenticated):
        message = NOT_AUTHENTICATED_MESSAGE
    elif isinstance(exc, exceptions.ParseError):
        # DRF prefixes the parser's own words with its name ("JSON parse error - ..."); keep the gist.
        message = f"The request body could not be parsed: {message.split(' - ', 1)[-1]}"
    return code, message, None


class ErrorBodySerializer(serializers.Serializer):
    code = serializers.CharField(help_text="A stable word for programs, e.g. invalid, throttled, too_large.")
    message = serializers.CharField(help_text="What went wrong, for people.")
    details = serializers.JSONField(
        allow_null=True, help_text="Specifics: field errors, the refused image, the wait; or null."
    )

    class Meta:
        ref_name = "ErrorBody"


class ErrorSerializer(serializers.Serializer):
    error = ErrorBodySerializer()

    class Meta:
        ref_name = "Error"

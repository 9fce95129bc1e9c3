"""One JSON shape for every REST API error: ``{"error": {"code", "message", "details"}}``.

``code`` is a stable machine-readable word, ``message`` a sentence for people
and ``details`` an object with specifics (field errors, the rejected image) or
null. Unexpected exceptions are logged here and answered with a plain 500:
clients never see a traceback.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from django.core import exceptions as django_exceptions
from django.http import Http404
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response

from emotions.batcher import BatcherClosed, Overloaded
from emotions.classifier import ModelUnavailable
from emotions.decoder import TOO_LARGE, TOO_MANY_PIXELS, UNDECODABLE, UNSUPPORTED_FORMAT, ImageRejected

logger = logging.getLogger(__name__)

# A decoder refusal and its status: too many pixels is "too large" in another unit, hence 413.
IMAGE_REJECTION_STATUS = {
    UNSUPPORTED_FORMAT: status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
    TOO_LARGE: status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
    TOO_MANY_PIXELS: status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
    UNDECODABLE: status.HTTP_400_BAD_REQUEST,
}


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


def image_rejected_error(rejected: ImageRejected, details: dict[str, Any] | None = None) -> ApiError:
    """Return the API error for an image the decoder refused, keeping its code and message."""
    return ApiError(
        status_code=IMAGE_REJECTION_STATUS.get(rejected.code, status.HTTP_400_BAD_REQUEST),
        code=rejected.code,
        message=f"The image was refused: {rejected.message}.",
        details=details,
    )


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
    if isinstance(exc, ImageRejected):
        return image_rejected_error(exc)
    if isinstance(exc, Overloaded | BatcherClosed):
        return ServiceUnavailable("overloaded", "The expression model is busy; retry in a moment.")
    if isinstance(exc, ModelUnavailable):
        # The reason (a file path, a load error) is for the operators' log and /healthz, not for clients.
        logger.warning("no expression model to serve: %s", exc)
        return ServiceUnavailable(
            "model_unavailable", "No expression model can be served yet; retry later.", 30
        )
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

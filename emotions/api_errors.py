"""How the REST API answers the emotion engine's exceptions; registered by ``EmotionsConfig.ready``."""

from __future__ import annotations

import logging
from typing import Any

from rest_framework import status

from emotions.batcher import BatcherClosed, Overloaded
from emotions.classifier import ModelUnavailable
from emotions.decoder import TOO_LARGE, TOO_MANY_PIXELS, UNDECODABLE, UNSUPPORTED_FORMAT, ImageRejected
from fer_site.api.errors import ApiError, ServiceUnavailable, api_error_register

logger = logging.getLogger(__name__)

# A decoder refusal and its status: too many pixels is "too large" in another unit, hence 413.
IMAGE_REJECTION_STATUS = {
    UNSUPPORTED_FORMAT: status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
    TOO_LARGE: status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
    TOO_MANY_PIXELS: status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
    UNDECODABLE: status.HTTP_400_BAD_REQUEST,
}


def image_rejected_error(rejected: ImageRejected, details: dict[str, Any] | None = None) -> ApiError:
    """Return the API error for an image the decoder refused, keeping its code and message."""
    return ApiError(
        status_code=IMAGE_REJECTION_STATUS.get(rejected.code, status.HTTP_400_BAD_REQUEST),
        code=rejected.code,
        message=f"The image was refused: {rejected.message}.",
        details=details,
    )


def _overloaded_error(exc: Overloaded | BatcherClosed) -> ApiError:
    return ServiceUnavailable("overloaded", "The expression model is busy; retry in a moment.")


def _model_unavailable_error(exc: ModelUnavailable) -> ApiError:
    # The reason (a file path, a load error) is for the operators' log and /healthz, not for clients.
    logger.warning("no expression model to serve: %s", exc)
    return ServiceUnavailable("model_unavailable", "No expression model can be served yet; retry later.", 30)


def api_errors_register() -> None:
    """Teach the REST API's error handler the emotion engine's exceptions."""
    api_error_register(ImageRejected, convert=image_rejected_error)
    api_error_register(Overloaded, BatcherClosed, convert=_overloaded_error)
    api_error_register(ModelUnavailable, convert=_model_unavailable_error)

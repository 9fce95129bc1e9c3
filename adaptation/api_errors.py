"""How the REST API answers the adaptation services' exceptions; registered by ``AdaptationConfig.ready``."""

from __future__ import annotations

from rest_framework import status

from adaptation.services import EventRefused
from fer_site.api.errors import ApiError, api_error_register

# The event is well formed (the schema cannot tell which decisions Attune holds): the decision or the
# item it names is gone (404), or the event contradicts the decision (409).
EVENT_REFUSAL_STATUS = {
    "decision_not_found": status.HTTP_404_NOT_FOUND,
    "item_not_found": status.HTTP_404_NOT_FOUND,
    "decision_mismatch": status.HTTP_409_CONFLICT,
    "impression_missing": status.HTTP_409_CONFLICT,
}


def _event_refused_error(exc: EventRefused) -> ApiError:
    return ApiError(status_code=EVENT_REFUSAL_STATUS[exc.code], code=exc.code, message=exc.message)


def api_errors_register() -> None:
    """Teach the REST API's error handler the adaptation services' exceptions."""
    api_error_register(EventRefused, convert=_event_refused_error)

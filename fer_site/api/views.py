"""Views of the API as a whole: the answer for addresses no endpoint has."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from fer_site.api.errors import error_body


@csrf_exempt  # it changes nothing, and must answer in the API's shape whatever the cookies
def api_not_found(request: HttpRequest, rest: str = "") -> JsonResponse:
    """Answer unknown API addresses in the API's error shape rather than with an HTML page."""
    return JsonResponse(error_body("not_found", "There is no API endpoint at this address."), status=404)

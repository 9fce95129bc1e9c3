"""The REST API's addresses: version 1 under /api/v1/, its schema and docs under /api/."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.urls import path, re_path
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from adaptation.apis import ContentDecideApi, ContentEventCreateApi, ContentGetApi
from emotions.apis import EmotionAnalyzeApi, ModelVersionActivateApi, ModelVersionListApi
from fer_site.api_errors import error_body
from training.apis import TrainingRunCancelApi, TrainingRunDetailApi, TrainingRunListCreateApi


@csrf_exempt  # it changes nothing, and must answer in the API's shape whatever the cookies
def api_not_found(request: HttpRequest, rest: str = "") -> JsonResponse:
    """Answer unknown API addresses in the API's error shape rather than with an HTML page."""
    return JsonResponse(error_body("not_found", "There is no API endpoint at this address."), status=404)


urlpatterns = [
    path("v1/emotions/analyze", EmotionAnalyzeApi.as_view(), name="api-emotions-analyze"),
    path("v1/content", ContentGetApi.as_view(), name="api-content"),
    path("v1/content/decide", ContentDecideApi.as_view(), name="api-content-decide"),
    path("v1/content/events", ContentEventCreateApi.as_view(), name="api-content-events"),
    path("v1/models", ModelVersionListApi.as_view(), name="api-models"),
    path(
        "v1/models/<int:version_id>/activate", ModelVersionActivateApi.as_view(), name="api-models-activate"
    ),
    path("v1/training-runs", TrainingRunListCreateApi.as_view(), name="api-training-runs"),
    path("v1/training-runs/<int:run_id>", TrainingRunDetailApi.as_view(), name="api-training-run"),
    path(
        "v1/training-runs/<int:run_id>/cancel", TrainingRunCancelApi.as_view(), name="api-training-run-cancel"
    ),
    re_path(r"^v1/(?P<rest>.*)$", api_not_found),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
]

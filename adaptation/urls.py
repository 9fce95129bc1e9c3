"""The adaptation app's REST endpoints, under /api/v1/."""

from django.urls import path

from adaptation.apis import ContentDecideApi, ContentEventCreateApi, ContentGetApi

urlpatterns = [
    path("content", ContentGetApi.as_view(), name="api-content"),
    path("content/decide", ContentDecideApi.as_view(), name="api-content-decide"),
    path("content/events", ContentEventCreateApi.as_view(), name="api-content-events"),
]

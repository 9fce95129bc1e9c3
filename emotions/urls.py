"""The emotions app's REST endpoints, under /api/v1/."""

from django.urls import path

from emotions.apis import EmotionAnalyzeApi, ModelVersionActivateApi, ModelVersionListApi

urlpatterns = [
    path("emotions/analyze", EmotionAnalyzeApi.as_view(), name="api-emotions-analyze"),
    path("models", ModelVersionListApi.as_view(), name="api-models"),
    path("models/<int:version_id>/activate", ModelVersionActivateApi.as_view(), name="api-models-activate"),
]

"""The training app's REST endpoints, under /api/v1/."""

from django.urls import path

from training.apis import TrainingRunCancelApi, TrainingRunDetailApi, TrainingRunListCreateApi

urlpatterns = [
    path("training-runs", TrainingRunListCreateApi.as_view(), name="api-training-runs"),
    path("training-runs/<int:run_id>", TrainingRunDetailApi.as_view(), name="api-training-run"),
    path("training-runs/<int:run_id>/cancel", TrainingRunCancelApi.as_view(), name="api-training-run-cancel"),
]

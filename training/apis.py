"""REST API for training runs: start one, watch its progress, cancel it."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from django.conf import settings
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from fer_site.api import PAGE_PARAMETERS, paginated_response, paginated_serializer
from fer_site.api_errors import ApiError, ErrorSerializer
from fer_site.models import Scope
from training.models import TrainingRun
from training.services import (
    ARCHITECTURE_CHOICES,
    LR_SCHEDULE_CHOICES,
    training_run_cancel,
    training_run_create,
)


def data_roots() -> list[Path]:
    return [Path(root).resolve() for root in settings.API_TRAINING_DATA_ROOTS]


def allowed_path(value: str) -> str:
    """Return ``value`` resolved, if it exists under one of API_TRAINING_DATA_ROOTS; raise ValidationError."""
    roots = data_roots()
    path = Path(value)
    try:
        path = (path if path.is_absolute() else roots[0] / path).resolve()
        inside = any(path.is_relative_to(root) for root in roots)
        # Whether a path exists is only told for paths inside the roots.
        exists = inside and path.exists()
    except (OSError, ValueError):
        raise serializers.ValidationError("This path cannot be read.") from None
    if not inside:
        raise serializers.ValidationError(
            f"The path must be inside {' or '.join(str(root) for root in roots)} (API_TRAINING_DATA_ROOTS)."
        )
    if not exists:
        raise serializers.ValidationError("Nothing exists at this path on the server.")
    return str(path)


class TrainConfigSerializer(serializers.Serializer):
    """The options of training.trainer.TrainConfig, typed and bounded."""

    epochs = serializers.IntegerField(min_value=1, max_value=1000, required=False)
    batch_size = serializers.IntegerField(min_value=1, max_value=4096, required=False)
    learning_rate = serializers.FloatField(min_value=1e-8, max_value=1.0, required=False)
    augment = serializers.BooleanField(required=False)
    class_weights = serializers.BooleanField(required=False)
    label_smoothing = serializers.FloatField(min_value=0.0, max_value=0.99, required=False)
    early_stopping_patience = serializers.IntegerField(min_value=0, max_value=1000, required=False)
    reduce_lr_patience = serializers.IntegerField(min_value=0, max_value=1000, required=False)
    reduce_lr_factor = serializers.FloatField(min_value=0.01, max_value=0.99, required=False)
    min_learning_rate = serializers.FloatField(min_value=0.0, max_value=1.0, required=False)
    fine_tune_epochs = serializers.IntegerField(min_value=0, max_value=1000, required=False)
    fine_tune_learning_rate = serializers.FloatField(min_value=0.0, max_value=1.0, required=False)
    weights_path = serializers.CharField(
        max_length=500,
        required=False,
        allow_null=True,
        help_text="A local ImageNet weights file for transfer models, under API_TRAINING_DATA_ROOTS.",
    )
    width = serializers.FloatField(
        min_value=0.25,
        max_value=4.0,
        required=False,
        help_text="Filter multiplier for custom_cnn and mini_xception; 1 for the pretrained models.",
    )
    lr_schedule = serializers.ChoiceField(choices=LR_SCHEDULE_CHOICES, required=False)
    init_model = serializers.CharField(
        max_length=500,
        required=False,
        allow_null=True,
        help_text="A .keras model of the same architecture to start from, under API_TRAINING_DATA_ROOTS.",
    )
    mirror_average = serializers.BooleanField(
        required=False, help_text="Serve the mean of each face and its mirror image (twice the compute)."
    )
    seed = serializers.IntegerField(min_value=0, max_value=2**31 - 1, required=False)

    class Meta:
        ref_name = "TrainConfig"

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if isinstance(data, Mapping):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: ["Unknown training option."] for name in unknown})
        return super().to_internal_value(data)

    def validate_weights_path(self, value: str | None) -> str | None:
        return allowed_path(value) if value else None

    def validate_init_model(self, value: str | None) -> str | None:
        return allowed_path(value) if value else None


class TrainingRunSerializer(serializers.ModelSerializer):
    best_val_accuracy = serializers.FloatField(allow_null=True, read_only=True)
    model_version = serializers.IntegerField(
        source="model_version_id",
        allow_null=True,
        read_only=True,
        help_text="The registered model, once done.",
    )

    class Meta:
        model = TrainingRun
        ref_name = "TrainingRun"
        fields = (
            "id",
            "name",
            "architecture",
            "dataset_path",
            "config",
            "status",
            "epoch",
            "total_epochs",
            "progress",
            "best_val_accuracy",
            "metrics",
            "error",
            "cancel_requested",
            "attempts",
            "created_at",
            "started_at",
            "finished_at",
            "model_version",
        )
        read_only_fields = fields


class TrainingRunDetailSerializer(TrainingRunSerializer):
    class Meta(TrainingRunSerializer.Meta):
        ref_name = "TrainingRunDetail"
        fields = (*TrainingRunSerializer.Meta.fields, "history", "artifacts", "log_tail")
        read_only_fields = fields


_RUN_EXAMPLE = {
    "id": 12,
    "name": "baseline",
    "architecture": "mini_xception",
    "dataset_path": "/srv/attune/var/data/fer2013",
    "config": {"epochs": 60, "batch_size": 64, "architecture": "mini_xception"},
    "status": "running",
    "epoch": 14,
    "total_epochs": 60,
    "progress": 0.241,
    "best_val_accuracy": 0.583,
    "metrics": {},
    "error": "",
    "cancel_requested": False,
    "attempts": 1,
    "created_at": "2026-11-21T08:00:00Z",
    "started_at": "2026-11-21T08:00:02Z",
    "finished_at": None,
    "model_version": None,
}


class TrainingRunListCreateApi(APIView):
    """GET lists runs, POST starts one: one address, so one class with a serializer per direction."""

    required_scope = Scope.TRAINING

    class FilterSerializer(serializers.Serializer):
        status = serializers.ChoiceField(choices=TrainingRun.Status.choices, required=False)

        class Meta:
            ref_name = "TrainingRunFilter"

    class InputSerializer(serializers.Serializer):
        architecture = serializers.ChoiceField(choices=ARCHITECTURE_CHOICES)
        dataset_path = serializers.CharField(
            max_length=500,
            help_text=(
                "A folder in the Kaggle layout or a fer2013.csv on the server, inside "
                "API_TRAINING_DATA_ROOTS (a relative path is taken from the first of them)."
            ),
        )
        name = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
        config = TrainConfigSerializer(required=False, help_text="Training options; defaults where left out.")

        class Meta:
            ref_name = "TrainingRunInput"

        def validate_dataset_path(self, value: str) -> str:
            return allowed_path(value)

    @extend_schema(
        operation_id="training_runs_list",
        summary="List training runs, newest first",
        description="Paginated with `limit` and `offset`; filter with `status`. Scope: `training`.",
        parameters=[FilterSerializer, *PAGE_PARAMETERS],
        responses={200: paginated_serializer("TrainingRunPage", TrainingRunSerializer)},
    )
    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        runs = TrainingRun.objects.all()
        if "status" in filters.validated_data:
            runs = runs.filter(status=filters.validated_data["status"])
        return paginated_response(
            queryset=runs, serializer_class=TrainingRunSerializer, request=request, view=self
        )

    @extend_schema(
        operation_id="training_runs_create",
        summary="Start a training run",
        description=(
            "Queues the run for the Celery worker (queue `training`); watch it with GET "
            "/api/v1/training-runs/{id}. When it succeeds its model is registered, not activated. "
            "Scope: `training`."
        ),
        request=InputSerializer,
        responses={201: OpenApiResponse(TrainingRunDetailSerializer, description="Queued.")},
        examples=[
            OpenApiExample(
                "Mini-Xception for 60 epochs",
                value={
                    "architecture": "mini_xception",
                    "dataset_path": "fer2013",
                    "name": "baseline",
                    "config": {"epochs": 60, "batch_size": 64},
                },
                request_only=True,
            )
        ],
    )
    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data

        try:
            run = training_run_create(
                architecture=data["architecture"],
                dataset_path=data["dataset_path"],
                config=data.get("config") or {},
                name=data["name"],
            )
        except ValueError as exc:  # TrainConfig's own checks
            raise serializers.ValidationError({"config": [str(exc)]}) from None

        return Response(TrainingRunDetailSerializer(run).data, status=status.HTTP_201_CREATED)


class TrainingRunDetailApi(APIView):
    required_scope = Scope.TRAINING

    @extend_schema(
        operation_id="training_runs_retrieve",
        summary="A training run with its progress, per-epoch history, metrics and log",
        responses={
            200: OpenApiResponse(
                TrainingRunDetailSerializer, examples=[OpenApiExample("Running", value=_RUN_EXAMPLE)]
            )
        },
    )
    def get(self, request, run_id: int):
        run = get_object_or_404(TrainingRun, pk=run_id)
        return Response(TrainingRunDetailSerializer(run).data)


class TrainingRunCancelApi(APIView):
    required_scope = Scope.TRAINING

    @extend_schema(
        operation_id="training_runs_cancel",
        summary="Cancel a training run",
        description=(
            "A queued run is cancelled at once (200); a running one stops within an epoch (202, "
            "`cancel_requested: true`). Cancelling a cancelled run changes nothing (200). A run that "
            "already succeeded or failed gives 409. Scope: `training`."
        ),
        request=None,
        responses={
            200: OpenApiResponse(TrainingRunDetailSerializer, description="Cancelled."),
            202: OpenApiResponse(TrainingRunDetailSerializer, description="It will stop within an epoch."),
            409: OpenApiResponse(ErrorSerializer, description="It already finished (`run_finished`)."),
        },
    )
    def post(self, request, run_id: int):
        run = get_object_or_404(TrainingRun, pk=run_id)
        if run.status in (TrainingRun.Status.SUCCEEDED, TrainingRun.Status.FAILED):
            raise ApiError(
                status_code=409,
                code="run_finished",
                message=f"The run already {run.status}; nothing to cancel.",
            )

        run = training_run_cancel(run=run)

        code = status.HTTP_202_ACCEPTED if run.status == TrainingRun.Status.RUNNING else status.HTTP_200_OK
        return Response(TrainingRunDetailSerializer(run).data, status=code)

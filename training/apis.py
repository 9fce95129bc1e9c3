"""REST API for training runs: start one, watch its progress, cancel it."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from django.conf import settings
from django.shortcuts import get_object_or_404
from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from fer_site.api.errors import ApiError, ErrorSerializer
from fer_site.api.fields import QuerySerializer, StrictCharField
from fer_site.api.pagination import PAGE_PARAMETERS, paginated_response, paginated_serializer
from fer_site.models import Scope
from training.config import ARCHITECTURES, OPTIONS, TRANSFER_ARCHITECTURES, Option, cross_problems
from training.forms import option_rule_validator
from training.models import TrainingRun
from training.selectors import training_datasets_available
from training.services import training_run_cancel, training_run_create


def data_roots() -> list[Path]:
    return [Path(root).resolve() for root in settings.API_TRAINING_DATA_ROOTS]


def allowed_path(value: str, *, field: str) -> str:
    """Return ``value`` resolved, if something exists there inside API_TRAINING_DATA_ROOTS; else answer 404.

    What the server holds is its state, not the request's shape (the schema cannot tell it), hence
    ``path_not_found`` rather than ``invalid``. One answer for a path outside the roots and a missing one:
    whether a path exists is only told for paths inside the roots.
    """
    roots = data_roots()
    path = Path(value)
    try:
        path = (path if path.is_absolute() else roots[0] / path).resolve()
        found = any(path.is_relative_to(root) for root in roots) and path.exists()
    except (OSError, ValueError):  # a name too long for the file system, say
        found = False
    if not found:
        raise ApiError(
            status_code=status.HTTP_404_NOT_FOUND,
            code="path_not_found",
            message=(
                "Nothing exists at this path inside "
                f"{' or '.join(str(root) for root in roots)} (API_TRAINING_DATA_ROOTS)."
            ),
            details={"field": field},
        )
    return str(path)


def dataset_names() -> list[str]:
    """Return the datasets the admin would offer that a relative ``dataset_path`` reaches, by that path."""
    roots = data_roots()
    if not roots:
        return []
    found = (dataset.path.resolve() for dataset in training_datasets_available() if dataset.usable)
    return sorted(str(path.relative_to(roots[0])) for path in found if path.is_relative_to(roots[0]))


def option_field(option: Option, *, required: bool = False) -> serializers.Field:
    """Return the serializer field of a training option, typed, bounded and worded as training.config says."""
    common = {"required": required, "help_text": option.description, "error_messages": option.messages}
    if option.type is bool:
        return serializers.BooleanField(**common)
    if option.choices:
        return serializers.ChoiceField(choices=option.choices, **common)
    if option.type is str:
        return StrictCharField(max_length=option.max_length, allow_null=option.nullable, **common)
    number = serializers.IntegerField if option.type is int else serializers.FloatField
    validators = [option_rule_validator(option)] if option.rule else []
    return number(min_value=option.min, max_value=option.max, validators=validators, **common)


# What an option's own rule (training.config) allows, in JSON Schema, for the options that have one; the
# tests check that every rule is stated and that the two agree.
OPTION_RULE_SCHEMAS: dict[str, dict[str, Any]] = {"batch_size": {"multipleOf": 2}}


def cross_rules_schema() -> list[dict[str, Any]]:
    """Return training.config's rules across options as the `anyOf` of a run's input (tests check both)."""
    # Wrapped in allOf: drf-spectacular's enum hook would give both lists one component name, and one list.
    scratch = {"allOf": [{"enum": [name for name in ARCHITECTURES if name not in TRANSFER_ARCHITECTURES]}]}
    pretrained = {"allOf": [{"enum": [name for name in ARCHITECTURES if name in TRANSFER_ARCHITECTURES]}]}
    return [
        {
            "description": "Trained from scratch: no `weights_path`.",
            "properties": {
                "architecture": scratch,
                "config": {"properties": {"weights_path": {"nullable": True, "enum": [None]}}},
            },
        },
        {
            "description": "Pretrained: `width` stays 1.",
            "properties": {
                "architecture": pretrained,
                "config": {"properties": {"width": {"enum": [1.0]}}},
            },
        },
    ]


# Paths on the server: the API only takes them under its data roots (see allowed_path, checked by
# TrainingRunListCreateApi.InputSerializer once the rest is valid).
PATH_OPTIONS = ("weights_path", "init_model", "teacher_model", "ferplus_dir")


class TrainConfigSerializer(serializers.Serializer):
    """The options of training.config.TrainConfig but the architecture, derived from its table."""

    class Meta:
        ref_name = "TrainConfig"

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = {name: option_field(option) for name, option in OPTIONS.items() if name != "architecture"}
        for name in PATH_OPTIONS:
            fields[name].help_text += " It must lie under API_TRAINING_DATA_ROOTS."
        return fields

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if isinstance(data, Mapping):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: ["Unknown training option."] for name in unknown})
        return super().to_internal_value(data)


class TrainConfigSchema(OpenApiSerializerExtension):
    """The options as TrainConfigSerializer takes them: no others, and what their own rules allow."""

    target_class = TrainConfigSerializer

    def map_serializer(self, auto_schema: AutoSchema, direction: str) -> dict[str, Any]:
        schema = auto_schema._map_serializer(self.target_class, direction, bypass_extensions=True)
        for name, rule in OPTION_RULE_SCHEMAS.items():
            schema["properties"][name] |= rule
        schema["additionalProperties"] = False  # an unknown option is refused, not ignored
        return schema


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

    class FilterSerializer(QuerySerializer):
        status = serializers.ChoiceField(choices=TrainingRun.Status.choices, required=False)

        class Meta:
            ref_name = "TrainingRunFilter"

    class InputSerializer(serializers.Serializer):
        architecture = option_field(OPTIONS["architecture"], required=True)
        dataset_path = StrictCharField(
            max_length=500,
            help_text=(
                "A folder in the Kaggle layout or a fer2013.csv on the server, inside "
                "API_TRAINING_DATA_ROOTS (a relative path is taken from the first of them); 404 "
                "`path_not_found` when nothing is there."
            ),
        )
        name = StrictCharField(max_length=100, required=False, allow_blank=True, default="")
        config = TrainConfigSerializer(required=False, help_text="Training options; defaults where left out.")

        class Meta:
            ref_name = "TrainingRunInput"

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            config = attrs.get("config") or {}
            problems = cross_problems({**config, "architecture": attrs["architecture"]})
            if problems:
                raise serializers.ValidationError({"config": problems})
            # Last, once the request is well formed: a path that names nothing is a 404, not a 400.
            attrs["dataset_path"] = allowed_path(attrs["dataset_path"], field="dataset_path")
            for name in PATH_OPTIONS:
                if config.get(name):
                    config[name] = allowed_path(config[name], field=f"config.{name}")
            return attrs

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
        # The request's example is the InputSerializer's (TrainingRunInputSchema): its dataset is one this
        # server holds when the schema is asked for, or none.
        request=InputSerializer,
        responses={
            201: OpenApiResponse(TrainingRunDetailSerializer, description="Queued."),
            404: OpenApiResponse(
                ErrorSerializer,
                description=(
                    "`dataset_path` or a path in `config` names nothing inside API_TRAINING_DATA_ROOTS "
                    "(`path_not_found`; `details.field` says which)."
                ),
            ),
        },
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


class TrainingRunInputSchema(OpenApiSerializerExtension):
    """Name the datasets this server holds when the schema is asked for: never promise one that is not."""

    target_class = TrainingRunListCreateApi.InputSerializer

    def map_serializer(self, auto_schema: AutoSchema, direction: str) -> dict[str, Any]:
        schema = auto_schema._map_serializer(self.target_class, direction, bypass_extensions=True)
        properties = schema["properties"]
        names = dataset_names()
        if names:
            properties["dataset_path"]["description"] += f" Datasets here now: {', '.join(names)}."
            properties["dataset_path"]["example"] = names[0]
        else:
            properties["dataset_path"]["description"] += " This server holds no dataset yet."
        properties["architecture"]["example"] = "mini_xception"
        properties["name"]["example"] = "baseline"
        properties["config"]["example"] = {"epochs": 60, "batch_size": 64}
        schema["anyOf"] = cross_rules_schema()
        return schema


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

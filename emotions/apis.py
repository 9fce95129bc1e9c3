"""REST API for expressions: analyse images, list the model registry, activate a model."""

from __future__ import annotations

import logging
import time
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404
from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiExample, OpenApiRequest, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from emotions.api_errors import image_rejected_error
from emotions.decoder import ImageRejected
from emotions.detector import KEYPOINTS
from emotions.labels import EMOTIONS
from emotions.models import ModelVersion
from emotions.pipeline import STAGES, FrameResult
from emotions.services import emotion_engine, model_version_activate
from fer_site.api.errors import ApiError, ErrorSerializer
from fer_site.api.pagination import PAGE_PARAMETERS, paginated_response, paginated_serializer
from fer_site.api.uploads import ImageMultiPartParser, JpegBodyParser, PngBodyParser
from fer_site.models import Scope

logger = logging.getLogger(__name__)

ProbabilitiesSerializer = type(
    "ProbabilitiesSerializer",
    (serializers.Serializer,),
    {label: serializers.FloatField(min_value=0.0, max_value=1.0) for label in EMOTIONS}
    | {"Meta": type("Meta", (), {"ref_name": "Probabilities"})},
)
TimingsSerializer = type(
    "TimingsSerializer",
    (serializers.Serializer,),
    {stage: serializers.FloatField(min_value=0.0) for stage in STAGES}
    | {"Meta": type("Meta", (), {"ref_name": "StageTimings"})},
)

KeypointsSerializer = type(
    "KeypointsSerializer",
    (serializers.Serializer,),
    {
        name: serializers.ListField(child=serializers.FloatField(), min_length=2, max_length=2)
        for name in KEYPOINTS
    }
    | {"Meta": type("Meta", (), {"ref_name": "Keypoints"})},
)


class FaceSerializer(serializers.Serializer):
    box = serializers.ListField(
        child=serializers.IntegerField(min_value=0),
        min_length=4,
        max_length=4,
        help_text="[x, y, width, height] in pixels of the image as sent, as on the live WebSocket.",
    )
    keypoints = KeypointsSerializer(
        allow_null=True,
        help_text=(
            "[x, y] in pixels of the image as sent, per point; may lie outside the box. The face's own "
            "right and left (on an unmirrored photo the right eye is on the image's left). "
            "Null when the detector gives no keypoints (EMOTIONS_DETECTOR=haar)."
        ),
    )
    probabilities = ProbabilitiesSerializer(help_text="One probability per expression; they sum to 1.")
    dominant = serializers.ChoiceField(choices=EMOTIONS, help_text="The most probable expression.")
    confidence = serializers.FloatField(help_text="The probability of the dominant expression.")

    class Meta:
        ref_name = "Face"


class ImageAnalysisSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="Position of the image in the request.")
    width = serializers.IntegerField()
    height = serializers.IntegerField()
    faces = FaceSerializer(many=True, help_text="Every face found, largest first; empty when there is none.")
    timings_ms = TimingsSerializer(
        help_text="Milliseconds per stage; classify is the batch all images shared."
    )

    class Meta:
        ref_name = "ImageAnalysis"


class TotalTimingSerializer(serializers.Serializer):
    total = serializers.FloatField(min_value=0.0)

    class Meta:
        ref_name = "TotalTiming"


_ANALYSIS_EXAMPLE = {
    "model_version": "mini_xception-run12",
    "images": [
        {
            "index": 0,
            "width": 640,
            "height": 480,
            "faces": [
                {
                    "box": [236, 118, 164, 164],
                    "keypoints": {
                        "right_eye": [281.4, 163.0],
                        "left_eye": [352.9, 166.2],
                        "nose_tip": [316.2, 199.5],
                        "mouth": [315.8, 232.1],
                        "right_ear": [241.0, 178.3],
                        "left_ear": [393.6, 184.2],
                    },
                    "probabilities": {
                        "angry": 0.012,
                        "disgust": 0.001,
                        "fear": 0.02,
                        "happy": 0.871,
                        "sad": 0.018,
                        "surprise": 0.041,
                        "neutral": 0.037,
                    },
                    "dominant": "happy",
                    "confidence": 0.871,
                }
            ],
            "timings_ms": {"decode": 1.1, "detect": 9.8, "preprocess": 0.3, "classify": 2.6, "total": 13.8},
        }
    ],
    "timings_ms": {"total": 15.2},
}


class EmotionAnalyzeApi(APIView):
    required_scope = Scope.ANALYZE
    parser_classes = [ImageMultiPartParser, JpegBodyParser, PngBodyParser]

    class InputSerializer(serializers.Serializer):
        image = serializers.FileField(
            required=False, allow_empty_file=True, help_text="One JPEG or PNG image."
        )
        images = serializers.ListField(
            child=serializers.FileField(allow_empty_file=True),
            required=False,
            allow_empty=False,
            help_text="Several JPEG or PNG images (at most API_ANALYZE_MAX_IMAGES), classified in one batch.",
        )

        class Meta:
            ref_name = "EmotionAnalyzeInput"

        def validate(self, data: dict) -> dict:
            if "image" not in data and "images" not in data:
                raise serializers.ValidationError("Send one image as `image`, or several as `images`.")
            return data

    class OutputSerializer(serializers.Serializer):
        model_version = serializers.CharField(help_text="The model that classified the faces.")
        images = ImageAnalysisSerializer(many=True, help_text="One result per image, in the order sent.")
        timings_ms = TotalTimingSerializer(help_text="Milliseconds the server spent on the request.")

        class Meta:
            ref_name = "EmotionAnalysis"

    @extend_schema(
        operation_id="emotions_analyze",
        summary="Read the expressions of the faces in one or several images",
        description=(
            "Send one image as the multipart field `image` or as a raw `image/jpeg` or `image/png` body, "
            "or several as repeated multipart fields `images`; a form may carry both, and every image is "
            "analysed in the order sent. JPEG and PNG only, each at most EMOTIONS_MAX_IMAGE_BYTES bytes and "
            "EMOTIONS_MAX_IMAGE_PIXELS pixels. An image without a face is not an error: its `faces` list is "
            "empty. A refused image fails the whole request with the decoder's code: `unsupported_format` "
            "(415), `too_large` or `too_many_pixels` (413), `undecodable` (400); `details.field` and "
            "`details.index` say which image. Images are analysed in memory and never stored. "
            "Scope: `analyze`."
        ),
        request={
            # Each part is a JPEG or PNG file: anything else is refused (415 unsupported_format).
            "multipart/form-data": OpenApiRequest(
                InputSerializer,
                encoding={name: {"contentType": "image/jpeg, image/png"} for name in ("image", "images")},
            ),
            "image/jpeg": {"type": "string", "format": "binary"},
            "image/png": {"type": "string", "format": "binary"},
        },
        responses={
            200: OpenApiResponse(
                response=OutputSerializer,
                description="The faces of every image.",
                examples=[OpenApiExample("One face", value=_ANALYSIS_EXAMPLE)],
            ),
            503: OpenApiResponse(
                ErrorSerializer,
                description="The model is loading or overloaded (`overloaded`, `model_unavailable`).",
            ),
        },
    )
    def post(self, request):
        started = time.perf_counter()
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        valid = serializer.validated_data
        parts = [("image", valid["image"])] if "image" in valid else []
        parts += [("images", upload) for upload in valid.get("images", [])]
        # `image` and `images` together: every image in the order sent, as the upload's refusals count them.
        parts.sort(key=lambda part: getattr(part[1], "position", 0))

        results = emotion_engine().pipeline.analyze_many_sync([upload.read() for _, upload in parts])

        rejected = [(index, item) for index, item in enumerate(results) if isinstance(item, ImageRejected)]
        if rejected:
            index, first = rejected[0]
            all_rejected = [{"index": i, "code": item.code, "message": item.message} for i, item in rejected]
            details = {"field": parts[index][0], "index": index, "rejected": all_rejected}
            raise image_rejected_error(first, details)
        data = {
            "model_version": results[0].model_version,
            "images": [_image_result(index, result) for index, result in enumerate(results)],
            "timings_ms": {"total": round((time.perf_counter() - started) * 1000.0, 3)},
        }
        return Response(self.OutputSerializer(data).data)


class EmotionAnalyzeInputSchema(OpenApiSerializerExtension):
    """The multipart form as the view takes it: `image`, 1 to API_ANALYZE_MAX_IMAGES `images`, or both.

    An empty `images` list sends no part at all, so it counts as no `images`.
    """

    target_class = EmotionAnalyzeApi.InputSerializer

    def map_serializer(self, auto_schema: AutoSchema, direction: str) -> dict[str, Any]:
        schema = auto_schema._map_serializer(self.target_class, direction, bypass_extensions=True)
        schema["properties"]["images"]["maxItems"] = settings.API_ANALYZE_MAX_IMAGES
        schema["anyOf"] = [
            {"description": "An image as `image`.", "required": ["image"]},
            {
                "description": "Images as `images`.",
                "required": ["images"],
                "properties": {"images": {"minItems": 1}},
            },
        ]
        return schema


def _image_result(index: int, result: FrameResult) -> dict:
    data = result.as_dict()
    return {"index": index, **{key: data[key] for key in ("width", "height", "faces", "timings_ms")}}


class ModelVersionOutputSerializer(serializers.ModelSerializer):
    accuracy = serializers.FloatField(allow_null=True, read_only=True, help_text="Validation accuracy.")

    class Meta:
        model = ModelVersion
        ref_name = "ModelVersion"
        fields = (
            "id",
            "name",
            "architecture",
            "accuracy",
            "metrics",
            "input_spec",
            "is_active",
            "created_at",
            "activated_at",
        )
        read_only_fields = fields


_MODEL_EXAMPLE = {
    "id": 3,
    "name": "mini_xception-run12",
    "architecture": "mini_xception",
    "accuracy": 0.652,
    "metrics": {"accuracy": 0.652, "macro_f1": 0.631, "n": 3589},
    "input_spec": {"shape": [48, 48, 1], "scale": "[0, 1]", "classes": list(EMOTIONS)},
    "is_active": True,
    "created_at": "2026-11-21T09:12:03Z",
    "activated_at": "2026-11-21T09:30:41Z",
}


class ModelVersionListApi(APIView):
    required_scope = Scope.MODELS
    OutputSerializer = ModelVersionOutputSerializer

    @extend_schema(
        operation_id="models_list",
        summary="List the expression models in the registry, newest first",
        description="Paginated with `limit` (at most 200) and `offset`. Scope: `models`.",
        parameters=PAGE_PARAMETERS,
        responses={
            200: OpenApiResponse(
                paginated_serializer("ModelVersionPage", ModelVersionOutputSerializer),
                examples=[
                    OpenApiExample(
                        "One model",
                        value={"count": 1, "next": None, "previous": None, "results": [_MODEL_EXAMPLE]},
                    )
                ],
            )
        },
    )
    def get(self, request):
        return paginated_response(
            queryset=ModelVersion.objects.all(),
            serializer_class=self.OutputSerializer,
            request=request,
            view=self,
        )


class ModelVersionActivateApi(APIView):
    required_scope = Scope.MODELS
    OutputSerializer = ModelVersionOutputSerializer

    @extend_schema(
        operation_id="models_activate",
        summary="Serve this model on the site",
        description=(
            "Makes the version the only active one. This server switches at once, the others within a few "
            "seconds; visitors' pages keep working meanwhile. Activating an older version is the rollback. "
            "Refused (400 `model_unservable`) when its files are missing, altered or cannot be loaded; "
            "the reason, which names files and checksums, goes to the operators' log and admin only. "
            "Scope: `models`."
        ),
        request=None,
        responses={
            200: OpenApiResponse(
                ModelVersionOutputSerializer, examples=[OpenApiExample("Activated", value=_MODEL_EXAMPLE)]
            )
        },
    )
    def post(self, request, version_id: int):
        version = get_object_or_404(ModelVersion, pk=version_id)

        try:
            version = model_version_activate(version=version)
        except ValidationError as refused:
            logger.warning("activation of %s refused: %s", version.name, " ".join(refused.messages))
            raise ApiError(
                status_code=400,
                code="model_unservable",
                message=f"{version.name} cannot be served: its files are missing, altered or cannot be "
                "loaded. Operators see why in the admin and the server log.",
            ) from None

        return Response(self.OutputSerializer(version).data, status=status.HTTP_200_OK)

"""REST API for content: what to show for a mood, and the impressions and clicks it earned."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from adaptation.models import ContentItem
from adaptation.services import (
    EVENT_KINDS,
    content_decide,
    content_event_record,
    decision_serialize,
    stats_mood,
)
from emotions.labels import MOODS
from fer_site.api.errors import ErrorSerializer
from fer_site.api.fields import QuerySerializer, StrictCharField, StrictFloatField
from fer_site.models import Scope

VISITOR_ID_HELP = (
    "Optional: your app's opaque id for the visitor (1 to 100 characters). Attune does not store it: "
    "an event counts once per decision and item, whoever reports it. Never send names, e-mail addresses "
    "or similar."
)


class ThemeSerializer(serializers.Serializer):
    name = serializers.CharField()
    css = serializers.DictField(
        child=serializers.CharField(), help_text="CSS custom properties, e.g. {'--attune-bg': '#fdf6e3'}."
    )

    class Meta:
        ref_name = "Theme"


class ItemSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=ContentItem.Kind.choices)
    title = serializers.CharField()
    body = serializers.CharField(allow_blank=True)
    media_url = serializers.CharField(allow_blank=True, help_text="Absolute address of the picture or video.")
    cta_url = serializers.CharField(allow_blank=True, help_text="Where the call to action leads.")
    cta_label = serializers.CharField(allow_blank=True)
    alt = serializers.CharField(allow_blank=True, help_text="Text alternative of the picture.")

    class Meta:
        ref_name = "ContentItem"


class DecisionSerializer(serializers.Serializer):
    decision_id = serializers.CharField(help_text="Quote it in events for this decision's items.")
    mood = serializers.ChoiceField(
        choices=MOODS, allow_null=True, help_text="The mood decided for; null: no camera."
    )
    theme = ThemeSerializer()
    items = serializers.DictField(
        child=ItemSerializer(many=True), help_text="Items per page slot (hero, sidebar, footer)."
    )
    rule = serializers.CharField(help_text="The rule that fired.")
    reason = serializers.CharField(help_text="Why it fired, in words.")
    is_default = serializers.BooleanField(
        help_text="Whether a default rule (or the site's own look) was used."
    )

    class Meta:
        ref_name = "Decision"


_DECISION_EXAMPLE = {
    "decision_id": "3f2b8c0e9d0a4c1b8e7f6a5b4c3d2e1f",
    "mood": "happy",
    "theme": {"name": "Sunny", "css": {"--attune-bg": "#fff8e1", "--attune-accent": "#f57f17"}},
    "items": {
        "hero": [
            {
                "id": 7,
                "kind": "image",
                "title": "Make the most of a good day",
                "body": "",
                "media_url": "https://attune.example.com/static/adaptation/demo/sunrise.svg",
                "cta_url": "/offers/",
                "cta_label": "See what's on",
                "alt": "A sunrise over hills",
            }
        ]
    },
    "rule": "Happy visitors",
    "reason": "mood happy at 87% ≥ 60%",
    "is_default": False,
}


def _decision_response(request: Request, decision_data: dict[str, Any]) -> Response:
    # The live page is on this site; other apps need absolute addresses for media.
    for items in decision_data["items"].values():
        for item in items:
            if item["media_url"].startswith("/"):
                item["media_url"] = request.build_absolute_uri(item["media_url"])
    return Response(DecisionSerializer(decision_data).data)


class ContentDecideApi(APIView):
    required_scope = Scope.CONTENT

    class InputSerializer(serializers.Serializer):
        mood = serializers.ChoiceField(
            choices=MOODS,
            allow_null=True,
            help_text="The visitor's mood; null when there is no camera reading.",
        )
        confidence = StrictFloatField(
            min_value=0.0, max_value=1.0, default=1.0, help_text="How sure the reading is, 0 to 1."
        )
        visitor_id = StrictCharField(min_length=1, max_length=100, required=False, help_text=VISITOR_ID_HELP)

        class Meta:
            ref_name = "ContentDecideInput"

    @extend_schema(
        operation_id="content_decide",
        summary="Decide the theme and content for a mood",
        description=(
            "Runs the operators' mood rules. Each call is a fresh decision (frequency caps and the "
            "cool-down between switches apply within one live-page session, not across API calls). "
            "The `decision_id` accepts impression and click events for ADAPTATION_DECISION_TTL_S seconds. "
            "Scope: `content`."
        ),
        request=InputSerializer,
        responses={
            200: OpenApiResponse(
                DecisionSerializer, examples=[OpenApiExample("Happy", value=_DECISION_EXAMPLE)]
            )
        },
        examples=[
            OpenApiExample("A happy visitor", value={"mood": "happy", "confidence": 0.87}, request_only=True),
            OpenApiExample("No camera", value={"mood": None}, request_only=True),
        ],
    )
    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)

        decision = content_decide(
            mood=serializer.validated_data["mood"], confidence=serializer.validated_data["confidence"]
        )

        return _decision_response(request, decision_serialize(decision))


class ContentGetApi(APIView):
    required_scope = Scope.CONTENT

    class FilterSerializer(QuerySerializer):
        mood = serializers.ChoiceField(
            choices=MOODS, required=False, help_text="The visitor's mood; leave out when there is no camera."
        )
        confidence = serializers.FloatField(min_value=0.0, max_value=1.0, default=1.0)
        visitor_id = StrictCharField(min_length=1, max_length=100, required=False, help_text=VISITOR_ID_HELP)

        class Meta:
            ref_name = "ContentFilter"

    @extend_schema(
        operation_id="content_get",
        summary="The theme and content for a mood (the same decision as POST /content/decide)",
        parameters=[FilterSerializer],
        responses={
            200: OpenApiResponse(
                DecisionSerializer, examples=[OpenApiExample("Happy", value=_DECISION_EXAMPLE)]
            )
        },
    )
    def get(self, request):
        serializer = self.FilterSerializer(data=request.query_params)
        serializer.is_valid(raise_exception=True)

        decision = content_decide(
            mood=serializer.validated_data.get("mood"), confidence=serializer.validated_data["confidence"]
        )

        return _decision_response(request, decision_serialize(decision))


class ContentEventCreateApi(APIView):
    required_scope = Scope.CONTENT

    class InputSerializer(serializers.Serializer):
        kind = serializers.ChoiceField(choices=EVENT_KINDS, help_text="A click counts after an impression.")
        decision_id = serializers.RegexField(
            r"^[0-9a-f]{32}$",
            trim_whitespace=False,
            help_text="The decision_id of the decision that showed the item.",
        )
        item_id = serializers.IntegerField(min_value=1, max_value=2**63 - 1)
        mood = serializers.ChoiceField(
            choices=MOODS,
            allow_null=True,
            help_text="The decision's mood, as it returned it (null: no camera reading).",
        )
        visitor_id = StrictCharField(min_length=1, max_length=100, required=False, help_text=VISITOR_ID_HELP)

        class Meta:
            ref_name = "ContentEventInput"

    class OutputSerializer(serializers.Serializer):
        counted = serializers.BooleanField(help_text="False when this event was already counted.")

        class Meta:
            ref_name = "ContentEventResult"

    @extend_schema(
        operation_id="content_events_create",
        summary="Report an impression or a click of an item a decision showed",
        description=(
            "Counted once per decision and item: a repeat answers 200 with `counted: false`. "
            "Statistics are daily counts per item and mood; nothing identifies the visitor. A decision "
            "without a camera reading (`mood: null`) counts under no camera, apart from `no_face` (camera "
            "on, no face in view). A decision takes events for ADAPTATION_DECISION_TTL_S seconds; an event "
            "that names one Attune did not issue, or that does not fit it, is refused with 404 or 409. "
            "Scope: `content`."
        ),
        request=InputSerializer,
        responses={
            201: OpenApiResponse(OutputSerializer, description="Counted."),
            200: OpenApiResponse(OutputSerializer, description="Already counted before."),
            404: OpenApiResponse(
                ErrorSerializer,
                description=(
                    "Attune issued no such decision, or it expired (`decision_not_found`); "
                    "or the item was deleted since (`item_not_found`)."
                ),
            ),
            409: OpenApiResponse(
                ErrorSerializer,
                description=(
                    "The event does not fit the decision: the item is not one of its items, or the mood "
                    "is not its mood (`decision_mismatch`); a click before an impression of the item "
                    "(`impression_missing`)."
                ),
            ),
        },
        examples=[
            OpenApiExample(
                "An impression",
                value={
                    "kind": "impression",
                    "decision_id": "3f2b8c0e9d0a4c1b8e7f6a5b4c3d2e1f",
                    "item_id": 7,
                    "mood": "happy",
                    "visitor_id": "session-5f1c",
                },
                request_only=True,
            )
        ],
    )
    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data

        counted = content_event_record(
            kind=data["kind"],
            item_id=data["item_id"],
            mood=stats_mood(data["mood"]),
            decision_id=data["decision_id"],
        )

        return Response(
            self.OutputSerializer({"counted": counted}).data,
            status=status.HTTP_201_CREATED if counted else status.HTTP_200_OK,
        )

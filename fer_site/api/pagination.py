"""Pieces every REST API class shares: pagination and its schema."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView


class ApiPagination(LimitOffsetPagination):
    """DRF's limit/offset pages; a bad, negative or repeated ``limit`` or ``offset`` is a 400, not ignored."""

    default_limit = 50
    max_limit = 200

    def get_limit(self, request: Request) -> int | None:
        if self._strict_int(request, self.limit_query_param, minimum=1) is None:
            return self.default_limit
        return super().get_limit(request)

    def get_offset(self, request: Request) -> int:
        return self._strict_int(request, self.offset_query_param, minimum=0) or 0

    @staticmethod
    def _strict_int(request: Request, name: str, *, minimum: int) -> int | None:
        values = request.query_params.getlist(name)
        if not values:
            return None
        if len(values) > 1:
            raise serializers.ValidationError({name: ["Give this parameter once."]})
        try:
            value = int(values[0])
        except ValueError:
            raise serializers.ValidationError({name: ["A whole number is required."]}) from None
        if value < minimum:
            raise serializers.ValidationError({name: [f"Ensure this value is at least {minimum}."]})
        return value


PAGE_PARAMETERS = [
    OpenApiParameter(
        "limit",
        {"type": "integer", "minimum": 1},
        OpenApiParameter.QUERY,
        description="Items per page (default 50, at most 200).",
    ),
    OpenApiParameter(
        "offset", {"type": "integer", "minimum": 0}, OpenApiParameter.QUERY, description="Items to skip."
    ),
]


def paginated_response(
    *, queryset: QuerySet, serializer_class: type[serializers.Serializer], request: Request, view: APIView
) -> Response:
    """Return one page of ``queryset`` as ``{"count", "next", "previous", "results"}``."""
    paginator = ApiPagination()
    page = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response(serializer_class(page, many=True).data)


def paginated_serializer(name: str, child: type[serializers.Serializer]) -> type[serializers.Serializer]:
    """Return a serializer describing a page of ``child`` items, for the schema."""
    fields: dict[str, Any] = {
        "count": serializers.IntegerField(help_text="How many items there are in all."),
        "next": serializers.URLField(allow_null=True, help_text="The next page, or null."),
        "previous": serializers.URLField(allow_null=True, help_text="The previous page, or null."),
        "results": child(many=True),
        "Meta": type("Meta", (), {"ref_name": name}),
    }
    return type(f"{name}Serializer", (serializers.Serializer,), fields)

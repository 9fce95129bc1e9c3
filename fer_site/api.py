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
    default_limit = 50
    max_limit = 200


PAGE_PARAMETERS = [
    OpenApiParameter(
        "limit", int, OpenApiParameter.QUERY, description="Items per page (default 50, at most 200)."
    ),
    OpenApiParameter("offset", int, OpenApiParameter.QUERY, description="Items to skip."),
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

"""Request bodies for the REST API: bounded before they are parsed, kept in memory, never written to disk.

Every parser refuses a body whose declared length is over its limit before
reading it, and stops reading as soon as the bytes go over it (a client may
lie about the length). Images arrive as multipart files, read by
:class:`CappedMemoryUploadHandler`, or as a raw ``image/jpeg`` or ``image/png``
body; either way they reach the decoder as bytes in memory.
"""

from __future__ import annotations

import codecs
import io
import json
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import InMemoryUploadedFile
from django.core.files.uploadhandler import FileUploadHandler
from django.http.multipartparser import MultiPartParser as DjangoMultiPartParser
from django.http.multipartparser import MultiPartParserError
from django.utils.datastructures import MultiValueDict
from rest_framework import exceptions
from rest_framework.parsers import BaseParser, DataAndFiles, JSONParser, get_encoding

from fer_site.api.errors import ApiError, RequestTooLarge

# JSON bodies are small forms; nothing in the API needs more.
MAX_JSON_BYTES = 64 * 1024


def _declared_length(parser_context: dict[str, Any] | None) -> int:
    request = (parser_context or {}).get("request")
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0) if request is not None else 0
    except (TypeError, ValueError):
        return 0


def read_bounded(stream: Any, limit: int, *, declared: int, what: str) -> bytes:
    """Return the body, refusing it with 413 if it is declared or turns out larger than ``limit``."""
    if declared > limit:
        raise RequestTooLarge(f"{what} of {declared} bytes is larger than {limit}.", {"limit_bytes": limit})
    data = stream.read(limit + 1) if stream is not None else b""
    if len(data) > limit:
        raise RequestTooLarge(f"{what} is larger than {limit} bytes.", {"limit_bytes": limit})
    return data


class BoundedJSONParser(JSONParser):
    """DRF's strict JSON parser, for bodies of at most MAX_JSON_BYTES."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict | None = None) -> Any:
        encoding = get_encoding(parser_context or {})
        limit = min(MAX_JSON_BYTES, settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
        data = read_bounded(stream, limit, declared=_declared_length(parser_context), what="A JSON body")
        try:
            text = codecs.decode(data, encoding)
            return json.loads(text, parse_constant=_refuse_constant)
        except (ValueError, RecursionError) as exc:
            # RecursionError: deeply nested arrays, which fit easily in the size limit.
            raise exceptions.ParseError(f"JSON parse error - {_short(exc)}") from None


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def _short(exc: Exception) -> str:
    return "too deeply nested" if isinstance(exc, RecursionError) else str(exc)[:200]


class ImageUpload(InMemoryUploadedFile):
    """An uploaded image with its ``position`` among the request's images, in the order sent."""

    def __init__(self, *args: Any, position: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.position = position


class CappedMemoryUploadHandler(FileUploadHandler):
    """Keep each uploaded file in memory; refuse a file over ``max_file_bytes``, or one too many.

    ``max_files`` says how many files each field takes; a file for another field is refused. The
    refusals happen while the body streams in, so an oversized upload is never read in full. There is no
    fallback handler, hence no temporary file.
    """

    def __init__(
        self,
        request: Any = None,
        *,
        max_files: Mapping[str, int],
        max_file_bytes: int,
        max_body_bytes: int,
    ) -> None:
        super().__init__(request)
        self.max_files = dict(max_files)
        self.max_file_bytes = max_file_bytes
        self.max_body_bytes = max_body_bytes
        self.files = 0
        self.files_per_field: dict[str, int] = {}
        self.buffer = io.BytesIO()

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None) -> None:  # noqa: N803
        if content_length > self.max_body_bytes:
            raise RequestTooLarge(
                f"A body of {content_length} bytes is larger than {self.max_body_bytes}.",
                {"limit_bytes": self.max_body_bytes},
            )

    def new_file(self, field_name: str, *args: Any, **kwargs: Any) -> None:
        super().new_file(field_name, *args, **kwargs)
        self.files += 1
        count = self.files_per_field[field_name] = self.files_per_field.get(field_name, 0) + 1
        if field_name not in self.max_files:
            fields = " or ".join(f"`{name}`" for name in self.max_files)
            raise ApiError(
                status_code=400,
                code="invalid",
                message="Some of the input is not valid; see details.",
                details={field_name[:100]: [f"This form takes files as {fields} only."]},
            )
        limit = self.max_files[field_name]
        if count > limit:
            images = "image" if limit == 1 else "images"
            raise ApiError(
                status_code=400,
                code="too_many_images",
                message=f"Send at most {limit} {images} as `{field_name}` in one request.",
                details={"limit": limit},
            )
        self.buffer = io.BytesIO()

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:
        if self.buffer.tell() + len(raw_data) > self.max_file_bytes:
            raise ApiError(
                status_code=413,
                code="too_large",
                message=f"The image was refused: it is larger than the limit of {self.max_file_bytes} bytes.",
                details={
                    "field": self.field_name,
                    "index": self.files - 1,
                    "limit_bytes": self.max_file_bytes,
                },
            )
        self.buffer.write(raw_data)
        return None

    def file_complete(self, file_size: int) -> ImageUpload:
        self.buffer.seek(0)
        return ImageUpload(
            position=self.files - 1,
            file=self.buffer,
            field_name=self.field_name,
            name=self.file_name,
            content_type=self.content_type,
            size=file_size,
            charset=self.charset,
            content_type_extra=self.content_type_extra,
        )


def image_limits() -> dict[str, Any]:
    # One image as `image`, several as `images`; a form may carry both.
    return {
        "max_files": {"image": 1, "images": settings.API_ANALYZE_MAX_IMAGES},
        "max_file_bytes": settings.EMOTIONS_MAX_IMAGE_BYTES,
        "max_body_bytes": settings.DATA_UPLOAD_MAX_MEMORY_SIZE,
    }


class ImageMultiPartParser(BaseParser):
    """``multipart/form-data`` whose files go to a :class:`CappedMemoryUploadHandler` only."""

    media_type = "multipart/form-data"

    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict | None = None) -> Any:
        parser_context = parser_context or {}
        request = parser_context["request"]
        meta = request.META.copy()
        meta["CONTENT_TYPE"] = media_type
        handler = CappedMemoryUploadHandler(request, **image_limits())
        try:
            data, files = DjangoMultiPartParser(meta, stream, [handler], get_encoding(parser_context)).parse()
        except MultiPartParserError as exc:
            raise exceptions.ParseError(f"Multipart form parse error - {str(exc)[:200]}") from None
        return DataAndFiles(data, files)


class ImageBodyParser(BaseParser):
    """A raw image body, which becomes the ``image`` field."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict | None = None) -> Any:
        limit = settings.EMOTIONS_MAX_IMAGE_BYTES
        try:
            data = read_bounded(stream, limit, declared=_declared_length(parser_context), what="The image")
        except RequestTooLarge:
            raise ApiError(
                status_code=413,
                code="too_large",
                message=f"The image was refused: it is larger than the limit of {limit} bytes.",
                details={"field": "image", "index": 0, "limit_bytes": limit},
            ) from None
        upload = ImageUpload(io.BytesIO(data), "image", "body", self.media_type, len(data), None, position=0)
        return DataAndFiles(MultiValueDict(), MultiValueDict({"image": [upload]}))


class JpegBodyParser(ImageBodyParser):
    media_type = "image/jpeg"


class PngBodyParser(ImageBodyParser):
    media_type = "image/png"

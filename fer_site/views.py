from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from adaptation.engine import reading_words
from adaptation.models import ContentItem
from adaptation.services import content_simulate, decision_serialize
from emotions.labels import EMOTIONS
from fer_site.health import health_report


@never_cache
@require_safe
def home(request: HttpRequest) -> HttpResponse:
    # The camera is off until the visitor turns it on, so the page opens with what a visitor without one
    # sees. Nothing is remembered for it: the live WebSocket makes the decisions that count.
    decision = decision_serialize(content_simulate(mood=None, confidence=0.0))
    live = {
        "ws_path": "/ws/live/",
        "max_fps": settings.LIVE_MAX_FPS,
        "frame_width": settings.LIVE_FRAME_WIDTH,
        "frame_height": settings.LIVE_FRAME_HEIGHT,
        "jpeg_quality": settings.LIVE_JPEG_QUALITY,
        "offline_camera_stop_s": settings.LIVE_OFFLINE_CAMERA_STOP_S,
    }
    slots = [(slot, decision["items"].get(slot, [])) for slot in ContentItem.Slot.values]
    context = {
        "decision": decision,
        "slots": slots,
        "live": live,
        "expressions": EMOTIONS,
        # The page words the reason for the reading it shows now with the engine's own words.
        "reading_words": reading_words(),
    }
    return render(request, "home.html", context)


@never_cache
@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    """Answer 200 or 503 with the status; staff also get each check's details (addresses, errors, files)."""
    report = health_report()
    body = report if request.user.is_staff else {"status": report["status"]}
    return JsonResponse(body, status=200 if report["status"] == "ok" else 503)

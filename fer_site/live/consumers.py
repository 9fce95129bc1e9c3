"""The live WebSocket ``/ws/live/``: webcam frames in, expressions and adapted content out.

This is the one place where perception (the emotion engine) meets adaptation
(the content rules): it moves messages and calls the services of each. Binary
messages are JPEG or PNG frames; text messages are small JSON controls; every
message out is JSON with a ``type``. README.md ("The live WebSocket")
documents the protocol for other clients.

Privacy: a frame lives only in memory, in this connection's one-frame slot and
the pipeline's locals, and is never logged, stored or sent through the channel
layer. A connection's state (mood tracker, face track, what it was shown) is
dropped when it closes; only per-minute mood counts and per-item counters,
which identify no one, outlive it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.core.exceptions import ValidationError

from adaptation.engine import Decision, VisitorState
from adaptation.services import (
    CONTENT_GROUP,
    content_event_record,
    content_show,
    decision_serialize,
    mood_sample_record,
    stats_mood,
)
from emotions.batcher import BatcherClosed, Overloaded
from emotions.classifier import ModelUnavailable
from emotions.decoder import TOO_LARGE, ImageRejected
from emotions.detector import FaceTrack
from emotions.mood import MoodState, MoodTracker
from emotions.services import MODEL_GROUP, emotion_engine_start, frame_analyze, mood_tracker_create
from fer_site.live.limits import RateGate, Throttle

logger = logging.getLogger(__name__)

PROTOCOL_VERSION = 1
# 4000 + HTTP-style codes: autobahn (daphne's WebSocket layer) lets applications send only 1000 and
# 3000-4999, so the RFC's 1008 "policy violation" would turn into a 1011 server error.
CLOSE_POLICY_VIOLATION = 4008
CLOSE_IDLE = 4408
# A service the connection needs (the channel layer: Redis) is down: retry later, with backoff.
CLOSE_TRY_LATER = 4503
UNAVAILABLE_RETRY_S = 5
MAX_CONTROL_BYTES = 4096
CONTROLS_PER_S = 10.0
FLOOD_WINDOW_S = 10.0
WARNING_INTERVAL_S = 1.0
# While the content on screen was chosen for another reading than the current one (or the usual page
# stands in for an expression that was not clear enough), the decision is asked again this often.
DECISION_RETRY_S = 1.0
# A held decision is asked again this long after its cool-down ends, so it has surely ended.
HOLD_MARGIN_S = 0.05
# Clicks may name a decision shown a moment ago, not only the current one.
RECENT_DECISIONS = 8

# Open sessions of this process. Weak: it never keeps a closed connection's state alive.
LIVE_SESSIONS: weakref.WeakSet[LiveSession] = weakref.WeakSet()


@dataclass(eq=False)
class LiveSession:
    """Everything Attune holds about one connection, in memory only."""

    tracker: MoodTracker
    track: FaceTrack
    frames: RateGate
    controls: RateGate
    visitor: VisitorState = field(default_factory=VisitorState)
    warnings: Throttle = field(default_factory=lambda: Throttle(WARNING_INTERVAL_S))
    paused: bool = False
    pending: bytes | None = None  # the newest frame, waiting while another is analysed
    mood: str | None = None  # None until the first frame: "no camera reading"
    confidence: float = 0.0
    shown: Decision | None = None
    decided_at: float = 0.0
    recent: OrderedDict[str, str] = field(default_factory=OrderedDict)  # decision id → its stats mood
    uncounted: list[str] = field(default_factory=list)  # moods changed to, not yet in the minute's counts
    last_message_at: float = field(default_factory=time.monotonic)
    frames_analysed: int = 0


class LiveConsumer(AsyncWebsocketConsumer):
    # Channels joins these before connect() and leaves them on disconnect, whatever went wrong.
    groups = [CONTENT_GROUP, MODEL_GROUP]
    session: LiveSession | None = None
    closing = False
    worker: asyncio.Task | None = None  # analyses the waiting frame
    watchdog: asyncio.Task | None = None  # closes the connection when it falls silent
    hold_timer: asyncio.Task | None = None  # decides again when a cool-down that holds the content ends
    follower: asyncio.Task | None = None  # counts new moods and decides what to show, beside the frames

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Channels closes stale database connections before every message, a hop to its database thread
        # and back (a tenth of the event loop's time at 30 visitors). Frames and controls reach the
        # database only through database_sync_to_async, which does the same around each call.
        if message["type"] == "websocket.receive":
            await self.websocket_receive(message)
        else:
            await super().dispatch(message)

    async def websocket_connect(self, message: dict[str, Any]) -> None:
        try:
            await super().websocket_connect(message)  # joins self.groups, then connect()
        except Exception as exc:  # e.g. Redis is down: refuse this page cleanly, without a traceback
            logger.warning("live connection refused, the channel layer is unavailable: %s", exc)
            await self.accept()
            await self.send_error(
                "unavailable",
                f"The live service is unavailable for a moment; retry in {UNAVAILABLE_RETRY_S} s.",
                retry_after_s=UNAVAILABLE_RETRY_S,
            )
            await self.close_with(CLOSE_TRY_LATER)

    async def websocket_disconnect(self, message: dict[str, Any]) -> None:
        # Channels leaves the groups, then calls disconnect(); a leave that fails (Redis down) must not
        # skip disconnect(). The layer expires a member it could not remove (its group_expiry).
        for group in self.groups:
            try:
                await self.channel_layer.group_discard(group, self.channel_name)
            except Exception as exc:
                logger.warning("could not leave %s: %s", group, exc)
        await self.disconnect(message["code"])
        raise StopConsumer()

    async def connect(self) -> None:
        self.decide_lock = asyncio.Lock()
        self.fps = settings.LIVE_MAX_FPS
        self.max_frame_bytes = settings.LIVE_MAX_FRAME_BYTES
        self.idle_timeout_s = settings.LIVE_IDLE_TIMEOUT_S
        model_version = emotion_engine_start()
        flood_drops = settings.LIVE_FLOOD_DROPS
        self.session = LiveSession(
            tracker=mood_tracker_create(),
            track=FaceTrack(),
            frames=RateGate(self.fps, burst=max(2.0, self.fps), flood_drops=flood_drops),
            controls=RateGate(CONTROLS_PER_S, burst=2 * CONTROLS_PER_S, flood_drops=flood_drops),
        )
        LIVE_SESSIONS.add(self.session)
        await self.accept()
        await self.send_message(
            "ready",
            protocol=PROTOCOL_VERSION,
            max_frame_bytes=self.max_frame_bytes,
            max_fps=self.fps,
            idle_timeout_s=self.idle_timeout_s,
            model_version=model_version,
        )
        await self.content_update()
        self.watchdog = asyncio.create_task(self.close_when_idle())

    async def disconnect(self, code: int) -> None:
        for task in (self.worker, self.watchdog, self.hold_timer, self.follower):
            if task is not None and task is not asyncio.current_task():
                task.cancel()
        session, self.session = self.session, None
        if session is not None:
            # Cancelled tasks keep a cycle (consumer, task, frame) alive until the garbage collector runs:
            # the admin's "visitors connected now" must not count it meanwhile.
            LIVE_SESSIONS.discard(session)
            logger.debug("live session closed (%s) after %d frames", code, session.frames_analysed)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        session = self.session
        if session is None or self.closing:
            return
        session.last_message_at = time.monotonic()
        if bytes_data is not None:
            await self.frame_receive(session, bytes_data)
        elif text_data is not None:
            await self.control_receive(session, text_data)

    # --- Frames ---------------------------------------------------------------

    async def frame_receive(self, session: LiveSession, data: bytes) -> None:
        if not session.frames.admit():
            message = f"More than {self.fps:g} frames per second: a frame was dropped."
            await self.dropped(session, session.frames, "rate_limited", message)
            return
        if len(data) > self.max_frame_bytes:
            await self.send_error(
                TOO_LARGE, f"{len(data)} bytes is more than the limit of {self.max_frame_bytes} per frame."
            )
            return
        if session.paused:
            await self.warn(session, "paused", 'Analysis is paused; send {"type": "resume"} to go on.')
            return
        if session.pending is not None:
            await self.warn(
                session, "frame_replaced", "A newer frame replaced one waiting for analysis (one at a time)."
            )
        session.pending = data
        if self.worker is None:
            self.worker = asyncio.create_task(self.frames_analyse())

    async def frames_analyse(self) -> None:
        """Analyse the newest waiting frame until none is left; frames that arrive meanwhile replace it."""
        try:
            while (session := self.session) is not None and session.pending is not None:
                frame, session.pending = session.pending, None
                try:
                    await self.frame_analyse(session, frame)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    # The traceback names no frame data: the decoder turns bad bytes into ImageRejected.
                    logger.exception("live frame analysis failed")
                    await self.send_error("internal_error", "This frame could not be analysed.")
                del frame
        finally:
            self.worker = None

    async def frame_analyse(self, session: LiveSession, frame: bytes) -> None:
        try:
            result = await frame_analyze(frame=frame, tracker=session.tracker, track=session.track)
        except ImageRejected as rejected:
            await self.send_error(rejected.code, rejected.message)
            return
        except (Overloaded, BatcherClosed):
            await self.send_error("overloaded", "The server is busy: this frame was skipped.")
            return
        except ModelUnavailable as exc:
            await self.send_error("model_unavailable", f"No expression model can be served now: {exc}")
            return
        session.frames_analysed += 1
        mood = result.mood
        assert mood is not None  # a tracker was given
        # mood_next: the reading the mood is changing to, while the tracker waits out its dwell (the held
        # mood's probability may have collapsed by then: pages show "changing", not that probability).
        await self.send_message("emotion", **{**result.as_dict(), "mood_next": mood.candidate})
        self.mood_follow(session, mood)

    def mood_follow(self, session: LiveSession, mood: MoodState) -> None:
        """Take the stream's new mood; count it and decide what to show in :meth:`moods_follow`.

        The next frame does not wait for that: when many visitors' moods change at once (a page opened
        by many, a funny ad), their counts and decisions queue for the one database thread, hundreds of
        milliseconds for the last of 30 on SQLite.
        """
        session.mood, session.confidence = mood.mood, mood.confidence
        if mood.changed:
            session.uncounted.append(mood.mood)
        elif not self._decision_stale(session):
            return
        if self.follower is None:
            self.follower = asyncio.create_task(self.moods_follow())

    async def moods_follow(self) -> None:
        """Count the moods changed to and decide again; again while new moods arrive (one task at a time)."""
        try:
            decide = True  # started for a stale decision, or for a new mood
            while (session := self.session) is not None and (session.uncounted or decide):
                uncounted, session.uncounted = session.uncounted, []
                for mood in uncounted:
                    try:
                        await database_sync_to_async(mood_sample_record)(mood=mood)
                    except Exception:  # the counts are lost, not the visitor's content
                        logger.exception("live mood count failed")
                await self.content_update()
                decide = False
        finally:
            self.follower = None

    def _decision_stale(self, session: LiveSession) -> bool:
        """Return whether the content shown was chosen for another reading than the mood's (e.g. before
        the first frame), or for an expression not clear enough then, and may be decided again now."""
        shown = session.shown
        return (
            shown is not None
            and self.hold_timer is None  # a held decision is asked again when its cool-down ends
            and time.monotonic() - session.decided_at >= DECISION_RETRY_S
            and (shown.mood != session.mood or shown.unclear)
        )

    async def dropped(self, session: LiveSession, gate: RateGate, code: str, message: str) -> None:
        """Warn about a message dropped by ``gate`` (once a second); close the connection on a flood."""
        if gate.flooded:
            await self.send_error("flood", "Too many messages over the limit: closing the connection.")
            await self.close_with(CLOSE_POLICY_VIOLATION)
            return
        await self.warn(session, code, message)

    # --- Content --------------------------------------------------------------

    async def content_update(self, *, forget: bool = False) -> None:
        """Decide what to show for the current mood; send it if it differs from what is shown."""
        async with self.decide_lock:
            session = self.session
            if session is None:
                return
            if forget:
                session.visitor.current_forget()
            try:
                decision = await database_sync_to_async(content_show)(
                    visitor=session.visitor,
                    mood=session.mood,
                    confidence=session.confidence,
                    shown_id=session.shown.decision_id if session.shown else None,
                )
            except Exception:
                logger.exception("live content decision failed")
                await self.warn(session, "content_unavailable", "Content could not be chosen; retrying.")
                return
            session.decided_at = time.monotonic()
            shown = session.shown
            if decision.held:
                # A cool-down keeps the content on screen; the page words the wait itself (hold_s).
                self.content_update_later(decision.hold_s + HOLD_MARGIN_S)
                return
            session.shown = decision
            if shown is not None and not forget and _same_words(shown, decision):
                return
            if shown is None or decision.decision_id != shown.decision_id:
                session.recent[decision.decision_id] = stats_mood(decision.mood)
                while len(session.recent) > RECENT_DECISIONS:
                    session.recent.popitem(last=False)
            # Sent for new content, and for the same content with the reason for a new reading.
            await self.send_message("content", **decision_serialize(decision))

    def content_update_later(self, delay_s: float) -> None:
        """Decide again after ``delay_s`` (once: a cool-down ends at one moment)."""
        if self.hold_timer is None:
            self.hold_timer = asyncio.create_task(self.content_update_after(delay_s))

    async def content_update_after(self, delay_s: float) -> None:
        try:
            await asyncio.sleep(delay_s)
        finally:
            self.hold_timer = None
        await self.content_update()

    async def content_changed(self, event: dict[str, Any]) -> None:
        """Operators changed rules, themes or items: decide again, ignoring the cool-down, and send it.

        Sent even when the same items are picked again: their text or pictures may be what changed.
        """
        await self.content_update(forget=True)

    async def model_changed(self, event: dict[str, Any]) -> None:
        """Another model is served now: tell the page."""
        await self.send_message("model", version=str(event.get("version", "")))

    # --- Controls -------------------------------------------------------------

    async def control_receive(self, session: LiveSession, text: str) -> None:
        if not session.controls.admit():
            message = f"More than {CONTROLS_PER_S:g} control messages per second: one was dropped."
            await self.dropped(session, session.controls, "controls_limited", message)
            return
        if len(text) > MAX_CONTROL_BYTES:
            await self.send_error(TOO_LARGE, f"Control messages are at most {MAX_CONTROL_BYTES} bytes.")
            return
        try:
            message = json.loads(text)
        except RecursionError:  # "[" * 1000 fits the size limit; the connection must survive it
            await self.send_error("invalid_json", "Text messages must be JSON objects, not nested this deep.")
            return
        except ValueError:
            await self.send_error("invalid_json", "Text messages must be JSON objects.")
            return
        kind = message.get("type") if isinstance(message, dict) else None
        if not isinstance(kind, str):
            await self.send_error("invalid_message", 'Each message must be a JSON object with a "type".')
            return
        if kind == "pause":
            session.paused, session.pending = True, None
            await self.send_message("paused")
        elif kind == "resume":
            session.paused = False
            await self.send_message("resumed")
        elif kind == "ping":
            await self.send_message("pong")
        elif kind == "click":
            await self.click_record(session, message)
        else:
            await self.send_error(
                "unknown_type", f"Unknown message type {kind[:40]!r}: expected pause, resume, ping or click."
            )

    async def click_record(self, session: LiveSession, message: dict[str, Any]) -> None:
        item_id, decision_id = message.get("item_id"), message.get("decision_id")
        mood = session.recent.get(decision_id) if isinstance(decision_id, str) else None
        if mood is None:
            await self.send_error("invalid_click", "The click names no decision shown on this connection.")
            return
        try:
            await database_sync_to_async(content_event_record)(
                kind="click",
                item_id=item_id,
                mood=mood,
                decision_id=decision_id,
            )
        except ValidationError as error:
            await self.send_error("invalid_click", " ".join(error.messages))

    # --- Plumbing -------------------------------------------------------------

    async def close_when_idle(self) -> None:
        while (session := self.session) is not None:
            left = session.last_message_at + self.idle_timeout_s - time.monotonic()
            if left <= 0:
                idle = f"Nothing arrived for {self.idle_timeout_s:g} s: closing."
                await self.send_error("idle_timeout", idle)
                await self.close_with(CLOSE_IDLE)
                return
            await asyncio.sleep(left)

    async def close_with(self, code: int) -> None:
        self.closing = True
        if self.session is not None:
            self.session.pending = None
        await self.close(code=code)

    async def warn(self, session: LiveSession, code: str, message: str) -> None:
        if session.warnings.ready(code):
            await self.send_message("warning", code=code, message=message)

    async def send_error(self, code: str, message: str, **details: Any) -> None:
        await self.send_message("error", code=code, message=message, **details)

    async def send_message(self, kind: str, **fields: Any) -> None:
        if self.closing:
            return
        payload = {"type": kind, **fields, "server_time_ms": int(time.time() * 1000)}
        await self.send(text_data=json.dumps(payload, separators=(",", ":")))


def _same_words(shown: Decision, decision: Decision) -> bool:
    """Return whether ``decision`` would show the page nothing new: same content, reading and reason."""
    return (decision.decision_id, decision.mood, decision.reason) == (
        shown.decision_id,
        shown.mood,
        shown.reason,
    )

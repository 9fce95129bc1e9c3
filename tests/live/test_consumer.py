"""The live WebSocket /ws/live/: real JPEG frames in, expressions and adapted content out, limits enforced."""

from __future__ import annotations

import asyncio
import gc
import json
import time
import weakref

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator

from adaptation.engine import reading_words
from adaptation.models import ContentItem, ItemDailyStat, MoodMinuteStat, Rule, RuleItem, Theme
from emotions.batcher import Overloaded
from emotions.labels import EMOTIONS
from emotions.models import ModelVersion
from emotions.services import emotion_engine, model_version_activate
from fer_site.asgi import application
from fer_site.live.consumers import (
    CLOSE_IDLE,
    CLOSE_POLICY_VIOLATION,
    CLOSE_TRY_LATER,
    LIVE_SESSIONS,
    UNAVAILABLE_RETRY_S,
)
from tests.conftest import model_archive_write
from tests.live.conftest import live_socket
from tests.live.media import face_jpeg, noise_jpeg

pytestmark = pytest.mark.django_db(transaction=True)


def make_rule(name: str, *, moods: list[str], background: str, is_default: bool = False) -> Rule:
    theme = Theme.objects.create(name=f"{name} theme", background=background)
    rule = Rule.objects.create(
        name=name, moods=moods, theme=theme, is_default=is_default, cooldown_s=0, mode="fixed"
    )
    item = ContentItem.objects.create(kind="text", title=f"{name} item", slot="hero", body="Body")
    RuleItem.objects.create(rule=rule, item=item)
    return rule


@sync_to_async
def rules_for_every_expression() -> dict[str, Rule]:
    """One rule per expression, each with its own theme and item, and a default rule."""
    rules = {
        mood: make_rule(f"For {mood}", moods=[mood], background=f"#0000{i:02x}")
        for i, mood in enumerate(EMOTIONS)
    }
    rules[None] = make_rule("Default", moods=[], background="#ffffff", is_default=True)
    return rules


async def test_it_greets_with_its_limits_and_the_content_for_no_camera(live_settings):
    await rules_for_every_expression()

    async with live_socket() as client:
        ready = await client.receive()
        content = await client.receive()

    assert ready["type"] == "ready"
    assert ready["protocol"] == 1
    assert ready["max_frame_bytes"] == live_settings.LIVE_MAX_FRAME_BYTES
    assert ready["max_fps"] == live_settings.LIVE_MAX_FPS
    assert content["type"] == "content"
    assert content["mood"] is None
    assert content["rule"] == "Default"
    assert content["is_default"] is True
    assert content["theme"]["css"]["--bg"] == "#ffffff"
    assert [item["title"] for item in content["items"]["hero"]] == ["Default item"]
    assert content["reason"] == "Expression reading is off, so you see the usual page."
    assert content["hold_s"] == 0  # the content for no camera never holds back the first reading


async def test_it_answers_real_jpeg_frames_with_emotion_messages(live_settings):
    async with live_socket() as client:
        await client.until("content")

        await client.send_frame(face_jpeg(640, 480))
        emotion, _ = await client.until("emotion")
        served = emotion_engine().pipeline.model_version

    assert len(emotion["faces"]) == 1
    face = emotion["faces"][0]
    x, y, w, h = face["box"]
    assert 0 <= x < x + w <= 640 and 0 <= y < y + h <= 480 and w > 60
    assert set(face["probabilities"]) == set(EMOTIONS)
    assert sum(face["probabilities"].values()) == pytest.approx(1.0, abs=1e-3)
    assert face["dominant"] == max(face["probabilities"], key=face["probabilities"].get)
    assert (emotion["width"], emotion["height"]) == (640, 480)
    assert emotion["mood"] in (*EMOTIONS, "uncertain")
    assert 0 <= emotion["confidence"] <= 1
    assert emotion["model_version"] == served != "none"
    assert abs(emotion["server_time_ms"] - time.time() * 1000) < 10_000


async def test_frames_do_not_wait_for_the_database_thread(live_settings, monkeypatch):
    # Channels closes stale database connections before each message on its one database thread;
    # frames touch no database, so they must not queue behind it (the mood sample and content
    # decisions do, through database_sync_to_async, which closes them itself).
    import channels.consumer

    hops = []
    original = channels.consumer.aclose_old_connections

    async def counted():
        hops.append(1)
        await original()

    monkeypatch.setattr(channels.consumer, "aclose_old_connections", counted)
    async with live_socket() as client:
        await client.until("content")
        before = len(hops)
        for _ in range(3):
            await client.send_frame(face_jpeg())
            await client.until("emotion")

        assert len(hops) == before


async def test_frames_go_on_while_the_database_counts_a_new_mood(live_settings, monkeypatch):
    # Many visitors' moods change at once when a page opens for many: their counts and decisions queue
    # for the one database thread, and a visitor's next frames must not queue with them.
    import threading

    from fer_site.live import consumers

    live_settings.EMOTIONS_MOOD_MIN_CONFIDENCE = 0.0
    counting, release = threading.Event(), threading.Event()
    counted = []

    def slow_count(*, mood):
        counting.set()
        release.wait(timeout=30)
        counted.append(mood)

    monkeypatch.setattr(consumers, "mood_sample_record", slow_count)
    async with live_socket() as client:
        await client.until("content")
        await client.send_frame(face_jpeg())
        first, _ = await client.until("emotion")
        assert first["mood_changed"] is True
        await sync_to_async(counting.wait)(timeout=30)
        for _ in range(2):  # answered while the count of the new mood still waits
            await client.send_frame(face_jpeg())
            emotion, skipped = await client.until("emotion")
            assert "content" not in [message["type"] for message in skipped]
        release.set()
        content, _ = await client.until("content")

    assert counted == [first["mood"]]
    assert content["mood"] == first["mood"]


async def test_a_failed_mood_count_still_shows_the_moods_content(live_settings, monkeypatch):
    from fer_site.live import consumers

    live_settings.EMOTIONS_MOOD_MIN_CONFIDENCE = 0.0
    await rules_for_every_expression()

    def broken(*, mood):
        raise RuntimeError("the database is down")

    monkeypatch.setattr(consumers, "mood_sample_record", broken)
    async with live_socket() as client:
        await client.until("content")
        await client.send_frame(face_jpeg())
        emotion, _ = await client.until("emotion")
        content, _ = await client.until("content")

    assert content["rule"] == f"For {emotion['mood']}"


async def test_it_reports_no_face_on_a_frame_without_one(live_settings):
    async with live_socket() as client:
        await client.until("content")

        await client.send_frame(noise_jpeg())
        emotion, _ = await client.until("emotion")

    assert emotion["faces"] == []
    assert emotion["mood"] == "no_face"
    assert emotion["confidence"] == 0


async def test_it_shows_the_content_the_rules_map_the_tracked_mood_to(live_settings):
    live_settings.EMOTIONS_MOOD_MIN_CONFIDENCE = 0.0  # the fake is never sure; take its top label
    rules = await rules_for_every_expression()

    async with live_socket() as client:
        await client.until("content")
        await client.send_frame(face_jpeg())
        emotion, _ = await client.until("emotion")
        content, _ = await client.until("content")

    mood = emotion["mood"]
    assert emotion["mood_changed"] is True
    assert mood in EMOTIONS
    assert content["mood"] == mood
    assert content["rule"] == f"For {mood}"
    assert content["is_default"] is False
    assert content["theme"]["css"]["--bg"] == (await sync_to_async(lambda: rules[mood].theme.background)())
    assert [item["title"] for item in content["items"]["hero"]] == [f"For {mood} item"]
    assert content["reason"].startswith(reading_words()[mood]["was"])  # "You looked …", in plain words
    assert emotion["mood_next"] is None  # the mood is steady: nothing it is changing to
    # What was shown is counted per item and mood, and the mood per minute; nothing names the visitor.
    impressions = await sync_to_async(list)(
        ItemDailyStat.objects.values_list("item__title", "mood", "impressions")
    )
    assert (f"For {mood} item", mood, 1) in impressions
    assert await MoodMinuteStat.objects.filter(mood=mood, count=1).aexists()


async def test_it_counts_a_click_on_shown_content(live_settings):
    await rules_for_every_expression()

    async with live_socket() as client:
        _, _ = await client.until("ready")
        content = await client.receive()
        item = content["items"]["hero"][0]
        click = {"type": "click", "item_id": item["id"], "decision_id": content["decision_id"]}
        await client.send_json(click)
        await client.send_json({"type": "click", "item_id": item["id"], "decision_id": "made-up"})
        invalid, _ = await client.until("error")
        await client.send_json({"type": "ping"})
        await client.until("pong")

    stat = await ItemDailyStat.objects.aget(item_id=item["id"])
    # Shown before any frame: a visitor without a camera, counted under no camera, not no face.
    assert (stat.impressions, stat.clicks, stat.mood) == (1, 1, "no_camera")
    assert invalid["code"] == "invalid_click"


async def test_it_counts_a_camera_without_a_face_under_no_face(live_settings, monkeypatch):
    monkeypatch.setattr("fer_site.live.consumers.DECISION_RETRY_S", 0.0)  # decide again at the next frame
    await rules_for_every_expression()
    await sync_to_async(make_rule)("Nobody there", moods=["no_face"], background="#eeeeee")

    async with live_socket() as client:
        _, _ = await client.until("ready")
        off = await client.receive()
        await client.send_frame(noise_jpeg())
        emotion, _ = await client.until("emotion")
        empty, _ = await client.until("content")
        item = empty["items"]["hero"][0]
        await client.send_json({"type": "click", "item_id": item["id"], "decision_id": empty["decision_id"]})
        await client.send_json({"type": "ping"})
        await client.until("pong")

    assert (off["mood"], off["rule"]) == (None, "Default")
    assert emotion["mood"] == "no_face"
    assert (empty["mood"], empty["rule"]) == ("no_face", "Nobody there")
    counts = await sync_to_async(set)(
        ItemDailyStat.objects.values_list("item__title", "mood", "impressions", "clicks")
    )
    assert counts == {("Default item", "no_camera", 1, 0), ("Nobody there item", "no_face", 1, 1)}


async def test_it_drops_stale_frames_while_busy(live_settings):
    sizes = [(640, 480), (480, 360), (400, 300), (320, 240)]
    frames = [face_jpeg(w, h) for w, h in sizes]

    async with live_socket() as client:
        await client.until("content")
        backend = emotion_engine().classifier.backend
        backend.delay_s = 0.5  # a slow model
        await client.send_frame(frames[0])
        for _ in range(1000):  # until the first frame is being classified
            if backend.batch_sizes:
                break
            await asyncio.sleep(0.01)
        for frame in frames[1:]:
            await client.send_frame(frame)
        first, before_first = await client.until("emotion")
        second, before_second = await client.until("emotion")
        after = await client.quiet(1.0)

    # The first frame, then only the newest of those that arrived meanwhile.
    assert (first["width"], first["height"]) == sizes[0]
    assert (second["width"], second["height"]) == sizes[-1]
    assert not [m for m in after if m["type"] == "emotion"]
    warnings = [m for m in before_first + before_second + after if m["type"] == "warning"]
    assert [w["code"] for w in warnings] == ["frame_replaced"]  # once a second, not once a frame


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (b"\xff\xd8\xff\xe0" + bytes(200 * 1024), "too_large"),
        (b"this is not an image", "unsupported_format"),
        (face_jpeg()[:3000], "undecodable"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "undecodable"),
        (b"GIF89a" + bytes(64), "unsupported_format"),
    ],
    ids=["oversized", "text", "truncated-jpeg", "malformed-png", "gif"],
)
async def test_it_answers_a_bad_frame_with_an_error_and_stays_open(live_settings, frame, code):
    async with live_socket() as client:
        await client.until("content")

        await client.send_frame(frame)
        error, _ = await client.until("error")
        await client.send_frame(face_jpeg())
        emotion, _ = await client.until("emotion")

    assert error["code"] == code
    assert error["message"]
    assert len(emotion["faces"]) == 1


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("not json", "invalid_json"),
        ("[" * 1000 + "]" * 1000, "invalid_json"),  # 2 KB that once crashed the connection
        ("[1, 2]", "invalid_message"),
        ('{"kind": "pause"}', "invalid_message"),
        ('{"type": "dance"}', "unknown_type"),
        (json.dumps({"type": "ping", "pad": "x" * 5000}), "too_large"),
    ],
)
async def test_it_answers_a_bad_control_message_with_an_error_and_stays_open(live_settings, text, code):
    async with live_socket() as client:
        await client.until("content")

        await client.send_text(text)
        error, _ = await client.until("error")
        await client.send_json({"type": "ping"})
        pong, _ = await client.until("pong")

    assert error["code"] == code
    assert pong["type"] == "pong"


async def test_it_reports_an_overloaded_engine_and_stays_open(live_settings, monkeypatch):
    async with live_socket() as client:
        await client.until("content")
        pipeline = emotion_engine().pipeline
        analyze = pipeline.analyze

        async def overloaded(*args, **kwargs):
            raise Overloaded("256 requests are already waiting")

        monkeypatch.setattr(pipeline, "analyze", overloaded)
        await client.send_frame(face_jpeg())
        error, _ = await client.until("error")
        monkeypatch.setattr(pipeline, "analyze", analyze)
        await client.send_frame(face_jpeg())
        emotion, _ = await client.until("emotion")

    assert error["code"] == "overloaded"
    assert emotion["faces"]


async def test_it_ignores_frames_while_paused(live_settings):
    async with live_socket() as client:
        await client.until("content")

        await client.send_json({"type": "pause"})
        await client.until("paused")
        await client.send_frame(face_jpeg())
        warning, _ = await client.until("warning")
        await client.send_json({"type": "resume"})
        await client.until("resumed")
        await client.send_frame(face_jpeg())
        emotion, skipped = await client.until("emotion")

    assert warning["code"] == "paused"
    assert not [m for m in skipped if m["type"] == "emotion"]
    assert emotion["faces"]


async def test_it_warns_about_a_flood_and_then_closes_it(live_settings):
    live_settings.LIVE_MAX_FPS = 2.0
    live_settings.LIVE_FLOOD_DROPS = 10
    frame = face_jpeg()

    async with live_socket() as client:
        await client.until("content")
        for _ in range(30):
            await client.send_frame(frame)
        code, messages = await client.closed()

    warnings = [m for m in messages if m["type"] == "warning"]
    errors = [m for m in messages if m["type"] == "error"]
    assert warnings[0]["code"] == "rate_limited"
    assert errors[-1]["code"] == "flood"
    assert code == CLOSE_POLICY_VIOLATION
    # Dropped frames are not analysed: at most the burst of two went through.
    assert len([m for m in messages if m["type"] == "emotion"]) <= 2


async def test_it_closes_an_idle_connection(live_settings):
    live_settings.LIVE_IDLE_TIMEOUT_S = 0.5

    async with live_socket() as client:
        code, messages = await client.closed(wait_s=5)

    assert code == CLOSE_IDLE
    assert messages[-1]["code"] == "idle_timeout"


@pytest.mark.parametrize("origin", [b"http://evil.example", b"https://localhost.evil.example", None])
async def test_it_refuses_an_origin_outside_allowed_hosts(live_settings, origin):
    headers = [(b"origin", origin)] if origin else []
    communicator = WebsocketCommunicator(application, "/ws/live/", headers=headers)

    connected, _ = await communicator.connect(timeout=10)

    assert not connected


async def test_it_drops_the_state_at_disconnect(live_settings):
    gc.collect()
    before = len(LIVE_SESSIONS)

    async with live_socket() as client:
        await client.until("content")
        await client.send_frame(face_jpeg())
        await client.until("emotion")
        [session] = [s for s in LIVE_SESSIONS if s.frames_analysed == 1]
        assert session.tracker.mood != "no_face"
        state = weakref.ref(session)
        del session
    await asyncio.sleep(0.1)
    gc.collect()

    assert state() is None
    assert len(LIVE_SESSIONS) == before


async def test_it_refreshes_content_at_once_when_operators_change_rules(live_settings):
    async with live_socket() as client:
        first, _ = await client.until("content")

        await sync_to_async(make_rule)("Autumn default", moods=[], background="#aa5500", is_default=True)
        second, _ = await client.until("content", wait_s=5)

    assert first["rule"] == ""  # no rules yet: the site's own look
    assert second["rule"] == "Autumn default"
    assert second["theme"]["css"]["--bg"] == "#aa5500"
    assert second["decision_id"] != first["decision_id"]


async def test_it_tells_pages_when_another_model_is_activated(live_settings, tmp_path):
    model_file = tmp_path / "next.keras"
    sha256 = model_archive_write(model_file)  # the fake backend needs no real model in it
    version = await ModelVersion.objects.acreate(
        name="next-model", architecture="tiny", file_path=str(model_file), sha256=sha256
    )

    async with live_socket() as client:
        await client.until("content")

        await sync_to_async(model_version_activate)(version=version)
        message, _ = await client.until("model", wait_s=5)

    assert message["version"] == "next-model"


async def test_it_tells_pages_about_a_model_registered_and_activated_in_one_step(live_settings, tmp_path):
    from training.services import model_version_register

    model_file = tmp_path / "trained.keras"
    model_archive_write(model_file)

    async with live_socket() as client:
        await client.until("content")

        await sync_to_async(model_version_register)(
            name="just-trained", architecture="tiny", path=model_file, metrics={}, activate=True
        )
        message, _ = await client.until("model", wait_s=5)

    assert message["version"] == "just-trained"


async def test_it_never_puts_a_frame_on_the_channel_layer(live_settings, monkeypatch):
    layer = get_channel_layer()
    sent: list[dict] = []
    for name in ("send", "group_send"):
        original = getattr(layer, name)

        async def spy(*args, _original=original, **kwargs):
            sent.append(args[-1])
            return await _original(*args, **kwargs)

        monkeypatch.setattr(layer, name, spy)
    await rules_for_every_expression()
    frame = face_jpeg()

    async with live_socket() as client:
        await client.until("content")
        for _ in range(3):
            await client.send_frame(frame)
            await client.until("emotion")
        await sync_to_async(make_rule)("Another", moods=["sad"], background="#123456")
        await client.until("content", wait_s=5)

    assert sent, "the layer carried the content broadcast"
    for message in sent:
        assert set(message) <= {"type", "version"}
        assert not any(isinstance(value, bytes | bytearray | memoryview) for value in message.values())


async def test_it_refuses_a_page_cleanly_with_a_retry_while_the_channel_layer_is_down(live_settings):
    live_settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": ["redis://127.0.0.1:1/0"]},  # nothing listens there
        }
    }
    communicator = WebsocketCommunicator(application, "/ws/live/", headers=[(b"origin", b"http://localhost")])

    connected, _ = await communicator.connect(timeout=10)
    message = json.loads(await communicator.receive_from(timeout=10))
    closed = await communicator.receive_output(timeout=10)

    assert connected
    assert message["type"] == "error" and message["code"] == "unavailable"
    assert message["retry_after_s"] == UNAVAILABLE_RETRY_S
    assert closed == {"type": "websocket.close", "code": CLOSE_TRY_LATER}

"""The live page end to end: headless Chromium, its fake camera playing a real face, a real daphne server.

The server runs the real engine (Haar detection, the Keras classifier behind the micro-batcher, the mood
tracker) on the model shipped in emotions/default_model/, which reads the astronaut as happy. Without that
file, a tiny Keras model that leans hard towards "happy" whatever the face stands in for it, registered
and activated by the test. Either way the test reads the tracked mood off the page and checks that the
theme and content are what the rules map that mood to.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connections

from adaptation.models import ItemDailyStat, Rule
from adaptation.services import content_simulate
from emotions.labels import EMOTIONS
from tests.live.conftest import summary_add
from tests.live.media import face_y4m
from tests.live.server import serve
from training.services import model_version_register

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

TIMEOUT_MS = 120_000  # the server imports TensorFlow and loads the model before the first frame is read


def model_to_serve(folder: Path) -> str:
    """Return which model the server will serve: the shipped default one, else a stand-in made here."""
    if Path(settings.EMOTIONS_DEFAULT_MODEL).is_file():
        return "the shipped default model"
    path = happy_model(folder / "always_happy.keras")
    model_version_register(name="always-happy", architecture="tiny", path=path, metrics={}, activate=True)
    return "a tiny model leaning to happy (no default model is shipped)"


def happy_model(path: Path) -> Path:
    """Save a real Keras model whose softmax says "happy" at about 0.9 for any face."""
    import keras
    from keras import layers

    bias = [4.0 if label == "happy" else 0.0 for label in EMOTIONS]
    inputs = keras.Input((48, 48, 1))
    pooled = layers.GlobalAveragePooling2D()(inputs)
    outputs = layers.Dense(
        len(EMOTIONS),
        activation="softmax",
        kernel_initializer="zeros",
        bias_initializer=keras.initializers.Constant(bias),
    )(pooled)
    keras.Model(inputs, outputs, name="always_happy").save(path)
    return path


INSTRUMENT = """
// Count getUserMedia calls and keep the streams: the camera starts only after consent, and is released.
window.__streams = [];
window.__getUserMediaCalls = 0;
const original = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
navigator.mediaDevices.getUserMedia = async (constraints) => {
  window.__getUserMediaCalls += 1;
  const stream = await original(constraints);
  window.__streams.push(stream);
  return stream;
};
"""


def test_a_visitor_consents_sees_their_expression_gets_content_for_their_mood_and_stops(
    chromium, tmp_path, request
):
    from playwright.sync_api import expect, sync_playwright

    started = time.monotonic()
    call_command("load_demo_content", verbosity=0)
    model = model_to_serve(tmp_path)
    video = face_y4m(tmp_path / "face.y4m")
    screenshot = Path(settings.VAR_DIR) / "screenshots" / "live-page.png"
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    rules = {rule.name: rule for rule in Rule.objects.select_related("theme").prefetch_related("rule_items")}

    with (
        serve(tmp_path / "server.log", EMOTIONS_BACKEND="emotions.classifier.KerasClassifier") as server,
        sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch(
            executable_path=chromium,
            headless=True,
            args=[
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--use-fake-device-for-media-stream",
                "--use-fake-ui-for-media-stream",
                f"--use-file-for-fake-video-capture={video}",
            ],
        )
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.add_init_script(INSTRUMENT)
            # The server's answers as seen on the wire: one "emotion" per frame it analysed. (Chromium's
            # DevTools protocol does not report the Blob frames the page sends, so count what comes back.)
            analysed = []

            def on_socket(ws) -> None:
                ws.on(
                    "framereceived", lambda text: analysed.append(1) if '"type":"emotion"' in text else None
                )

            page.on("websocket", on_socket)
            script_errors = []
            page.on("pageerror", lambda error: script_errors.append(str(error)))
            page.goto(server.url + "/")
            adapted = page.locator("#adapted")

            # Camera off by default, and the page is useful without it: the no-camera content.
            expect(page.locator("#live-badge")).to_be_hidden()
            expect(page.locator("#self-view")).to_be_hidden()
            expect(adapted).to_have_attribute("data-rule", "Attune default")
            expect(adapted.locator(".slot-hero .item")).to_have_count(1)
            background_before = css_variable(page, "--bg")

            # The consent dialog says what is analysed, that frames are never stored and how to stop,
            # and the camera is not touched before the visitor agrees.
            page.get_by_role("button", name="Turn on expression reading…").click()
            dialog = page.locator("#consent")
            expect(dialog).to_be_visible()
            expect(dialog).to_contain_text("What is analysed")
            expect(dialog).to_contain_text("Frames are never stored")
            expect(dialog).to_contain_text("How to stop")
            assert page.evaluate("window.__getUserMediaCalls") == 0
            dialog.get_by_role("button", name="Turn on the camera").click()

            # The badge, then a face box with an expression label from the server.
            badge = page.locator("#live-badge")
            expect(badge).to_be_visible()
            expect(badge).to_contain_text("analysis on")
            face = page.locator("#self-faces li").first
            expect(face).to_be_attached(timeout=TIMEOUT_MS)
            x, y, w, h = (int(v) for v in face.get_attribute("data-box").split(","))
            assert w >= 40 and h >= 40 and 0 <= x < 320 and 0 <= y < 240  # the astronaut's face, 320×240
            expression = page.locator("#self-expression").inner_text()
            assert expression in EMOTIONS
            expect(page.locator("#self-bars .bar-top")).to_have_attribute("data-label", expression)

            # The content follows the tracked mood as the rules map it: its rule, its theme, its items.
            page.wait_for_function(
                "moods => moods.includes(document.getElementById('adapted').dataset.mood)",
                arg=list(EMOTIONS),
                timeout=60_000,
            )
            mood = adapted.get_attribute("data-mood")
            confidence = float(page.locator("#self-view").get_attribute("data-confidence"))
            expected = off_the_loop(content_simulate, mood=mood, confidence=confidence)
            rule = rules[adapted.get_attribute("data-rule")]
            assert rule.name == expected.rule_name, (mood, confidence, expected.reason)
            assert mood in rule.moods and not rule.is_default
            assert page.evaluate("document.documentElement.dataset.theme") == rule.theme.name
            assert css_variable(page, "--bg") == rule.theme.background != background_before
            page.wait_for_function(  # the theme's colour transition ends
                "colour => getComputedStyle(document.body).backgroundColor === colour",
                arg=rgb(rule.theme.background),
                timeout=5_000,
            )
            shown = {
                int(i)
                for i in page.locator("#adapted [data-item-id]").evaluate_all(
                    "nodes => nodes.map(n => n.dataset.itemId)"
                )
            }
            assert shown and shown <= {rule_item.item_id for rule_item in rule.rule_items.all()}
            expect(page.locator("#adapted-rule")).to_have_text(rule.name)
            page.screenshot(path=str(screenshot), full_page=True)

            # A click on shown content is reported and counted (once per item and decision).
            clicked = adapted.locator(".slot-hero .item").first
            clicked_id = int(clicked.get_attribute("data-item-id"))
            clicked.locator(".item-title").click()

            # Stop releases the camera and the frames stop.
            sent = page.evaluate("window.attuneLive.stats().framesSent")
            assert sent > 0 and len(analysed) > 0
            page.get_by_role("button", name="Stop").click()
            expect(badge).to_be_hidden()
            assert page.evaluate(
                "window.__streams.length > 0 && window.__streams.every("
                "s => s.getTracks().every(t => t.readyState === 'ended'))"
            )
            assert page.evaluate("document.getElementById('self-video').srcObject") is None
            assert page.evaluate("window.attuneLive.stats().capturing") is False
            sent, analysed_at_stop = page.evaluate("window.attuneLive.stats().framesSent"), len(analysed)
            page.wait_for_timeout(1500)
            assert page.evaluate("window.attuneLive.stats().framesSent") == sent
            assert len(analysed) == analysed_at_stop
            # A new connection without a camera: the content for visitors without one.
            expect(adapted).to_have_attribute("data-rule", "Attune default", timeout=10_000)
            assert page.evaluate("window.__getUserMediaCalls") == 1
            assert script_errors == []
        finally:
            browser.close()

    assert ItemDailyStat.objects.filter(item_id=clicked_id, mood=mood, clicks=1).exists()
    summary_add(
        request.config,
        f"live page: {model} read the face as {mood}, rule {rule.name!r} fired; "
        f"screenshot {screenshot} ({time.monotonic() - started:.1f} s)",
    )


def off_the_loop(function, **kwargs):
    """Call ``function`` in another thread: Playwright's sync API runs an event loop in this one, where
    Django refuses database queries."""

    def call():
        try:
            return function(**kwargs)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(call).result()


def css_variable(page, name: str) -> str:
    return page.evaluate(f"getComputedStyle(document.documentElement).getPropertyValue('{name}').trim()")


def rgb(colour: str) -> str:
    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgb({r}, {g}, {b})"

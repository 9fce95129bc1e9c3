"""The operator's screens in headless Chromium: the admin home and a model activation, screenshotted.

The pictures go to the var folder's screenshots/ (docs/ holds copies made by hand for the README).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from adaptation.models import ContentItem, ItemDailyStat, MoodMinuteStat, Rule, Theme
from emotions.models import ModelVersion
from tests.conftest import model_archive_write
from tests.emotions.conftest import litert_stand_in_write
from training.models import TrainingRun

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = Path(settings.VAR_DIR) / "screenshots"


def per_class(f1: float) -> dict:
    return {
        label: {"f1": f1 + i * 0.03} for i, label in enumerate(("angry", "fear", "sad", "neutral", "happy"))
    }


def version(name: str, artifacts: Path, *, accuracy: float, macro_f1: float) -> ModelVersion:
    return ModelVersion.objects.create(
        name=name,
        architecture="mini_xception",
        file_path=f"{name}.keras",
        sha256=model_archive_write(artifacts / f"{name}.keras"),
        litert_path=f"{name}.tflite",
        litert_sha256=litert_stand_in_write(artifacts / f"{name}.tflite"),
        litert_max_abs_diff=1e-7,
        metrics={"accuracy": accuracy, "macro_f1": macro_f1, "n": 3589, "per_class": per_class(macro_f1)},
    )


def activity_seed() -> None:
    now = timezone.now()
    moods = {"happy": 9, "neutral": 14, "sad": 4, "surprise": 3, "no_face": 5}
    for minute in range(0, 60, 2):
        at = (now - timedelta(minutes=minute)).replace(second=0, microsecond=0)
        for mood, base in moods.items():
            MoodMinuteStat.objects.create(minute=at, mood=mood, count=base + (minute * 7 + base) % 5)
    today = timezone.localdate()
    for title, mood, shown, clicked in (
        ("Spring sale", "happy", 420, 61),
        ("A calm walk", "sad", 180, 22),
        ("Breathing exercise", "sad", 40, 9),
        ("Our newsletter", "neutral", 530, 37),
    ):
        item = ContentItem.objects.create(title=title, kind="text", slot="hero", body="b")
        ItemDailyStat.objects.create(item=item, mood=mood, day=today, impressions=shown, clicks=clicked)
    calm = Theme.objects.create(name="Calm evening")
    Rule.objects.create(name="Usual page", is_default=True, moods=[], theme=calm)
    Rule.objects.create(
        name="Cheer up visitors who look sad or afraid",
        moods=["sad", "fear", "angry", "disgust"],
        theme=calm,
        mode=Rule.Mode.OPTIMIZE,
        cooldown_s=30,
        frequency_cap=3,
    )
    TrainingRun.objects.create(
        name="wider-cnn",
        architecture="custom_cnn",
        dataset_path="/data/fer2013",
        status=TrainingRun.Status.RUNNING,
        epoch=12,
        total_epochs=40,
        progress=0.3,
    )


def test_an_operator_sees_the_home_and_confirms_a_model_change(chromium, live_server, settings, tmp_path):
    from playwright.sync_api import sync_playwright

    settings.TRAINING_ARTIFACTS_DIR = tmp_path
    settings.EMOTIONS_BACKEND = "emotions.fake.FakeClassifier"
    activity_seed()
    served = version("cnn-2026-11-30", tmp_path, accuracy=0.641, macro_f1=0.571)
    served.activate()
    worse = version("xception-quick", tmp_path, accuracy=0.552, macro_f1=0.488)
    from django.contrib.auth import get_user_model

    operator = get_user_model().objects.create_superuser("operator", "operator@example.com", "pw-for-tests")
    client = Client()
    client.force_login(operator)
    session = client.cookies[settings.SESSION_COOKIE_NAME].value
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 900})
            host = live_server.url.split("//", 1)[1].split(":")[0]
            context.add_cookies(
                [{"name": settings.SESSION_COOKIE_NAME, "value": session, "domain": host, "path": "/"}]
            )
            page = context.new_page()

            page.goto(f"{live_server.url}/admin/")
            assert page.locator("#site-name").inner_text() == "Attune operations"
            assert "cnn-2026-11-30" in page.locator("#dash-model").inner_text()
            assert "Spring sale" in page.locator("#dash-content").inner_text()
            page.screenshot(path=str(SCREENSHOTS / "admin-home.png"), full_page=True)

            page.goto(f"{live_server.url}/admin/emotions/modelversion/")
            page.locator(f"input[name=_selected_action][value='{worse.pk}']").check()
            page.select_option("select[name=action]", "activate")
            page.locator("button[name=index]").click()
            page.wait_for_url(f"**/admin/emotions/modelversion/{worse.pk}/activate/")
            assert "scores lower" in page.locator(".attune-warning").inner_text()
            page.screenshot(path=str(SCREENSHOTS / "admin-model-activation.png"), full_page=True)

            page.get_by_role("button", name="Serve it anyway").click()
            page.wait_for_url("**/admin/emotions/modelversion/")
            assert "xception-quick is now active" in page.locator(".messagelist").inner_text().lower()

            page.goto(f"{live_server.url}/admin/adaptation/rule/")
            assert "Cheer up visitors" in page.locator("#result_list").inner_text()
            # Neither the page nor the table's own scroll box may be wider than the screen.
            overflow = page.evaluate(
                "Math.max(...[document.documentElement, document.querySelector('#changelist .results')]"
                ".map(e => e.scrollWidth - e.clientWidth))"
            )
            assert overflow <= 0, f"the rules list is {overflow} px wider than a 1400 px screen"
        finally:
            browser.close()

    assert ModelVersion.objects.get(is_active=True) == worse
    assert (SCREENSHOTS / "admin-home.png").stat().st_size > 10_000

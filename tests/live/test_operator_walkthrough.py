"""An operator's walkthrough in headless Chromium, against a real server process and a real Celery worker.

Sign in → the dashboard shows the served model and a live visitor (a second browser whose fake camera plays
the astronaut) → start a quick run from the picker on a tiny generated dataset → watch its page until it
succeeds → activate its model through the confirmation (both models' figures, the warning) → restore the
default in one click. Nothing in these flows asks for raw JSON. Each screen is saved to the var folder's
screenshots/operator-*.png; docs/ holds copies for the README's operator section.
"""

from __future__ import annotations

import os
import re
import time
from contextlib import ExitStack
from pathlib import Path

import cv2
import numpy as np
import pytest
from django.conf import settings

from emotions.models import ModelActivation, ModelVersion
from tests.conftest import database_url
from tests.live.conftest import summary_add
from tests.live.media import face_y4m
from tests.live.server import serve
from tests.live.test_browser import consent, launch, operator_create
from tests.processes import start_celery_worker, stop_process
from training.models import TrainingRun

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = Path(settings.VAR_DIR) / "screenshots"
VIEWPORT = {"width": 1400, "height": 900}
FIRST_READING_MS = 120_000  # the server loads the detector and the model before the first frame is read
RUN_FINISHES_MS = 180_000  # the worker imports TensorFlow, trains, evaluates and compiles LiteRT
PER_CLASS = {"train": 16, "val": 8}
SAMPLE = 12  # training images per class the operator asks for (of 16)
EPOCHS = 2
PAGE_MS = 30_000  # for a page to answer on a busy machine


def noise_dataset(root: Path) -> Path:
    """Write 48×48 grayscale noise JPEGs in the Kaggle layout, alike for every class: nothing to learn, so
    the trained model scores about chance (1 in 7), below the shipped default."""
    rng = np.random.default_rng(18)
    for split, count in PER_CLASS.items():
        for name in ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                image = np.clip(rng.normal(128, 40, (48, 48)), 0, 255).astype(np.uint8)
                cv2.imwrite(str(folder / f"{i}.jpg"), image)
    return root


def shot(page, name: str, **options) -> None:
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), **options)


def shot_of(locator, name: str) -> None:
    locator.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def test_an_operator_sees_a_visitor_trains_a_model_serves_it_and_restores_the_default(
    chromium, tmp_path, request
):
    from playwright.sync_api import expect, sync_playwright

    started = time.monotonic()
    data_root = tmp_path / "data"
    dataset = noise_dataset(data_root / "tiny-faces")
    # The server and the worker agree on where datasets and run folders are; the picker lists data_root.
    env = {
        "TRAINING_DATA_DIR": str(data_root / "fer2013"),  # not there, as on a fresh install
        "API_TRAINING_DATA_ROOTS": str(data_root),
        "TRAINING_ARTIFACTS_DIR": str(tmp_path / "artifacts"),
    }
    operator_create()
    video = face_y4m(tmp_path / "face.y4m")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    worker_log = tmp_path / "worker.log"

    with ExitStack() as stack:
        log = stack.enter_context(open(worker_log, "w"))
        worker = start_celery_worker(
            {
                **os.environ,
                "DJANGO_SETTINGS_MODULE": "fer_site.settings",
                "DATABASE_URL": database_url(),
                "ATTUNE_VAR_DIR": str(settings.VAR_DIR),
                **env,
            },
            log=log,
        )
        stack.callback(stop_process, worker)
        server = stack.enter_context(serve(tmp_path / "server.log", **env))
        playwright = stack.enter_context(sync_playwright())
        browser = launch(playwright, chromium, video)
        stack.callback(browser.close)

        # A visitor turns the camera on and is read.
        visitor = browser.new_context(viewport={"width": 1200, "height": 900})
        visitor_page = visitor.new_page()
        visitor_page.goto(server.url + "/")
        consent(visitor_page)
        expect(visitor_page.locator("#self-faces li").first).to_be_attached(timeout=FIRST_READING_MS)

        # The operator signs in.
        operator = browser.new_context(viewport=VIEWPORT)
        page = operator.new_page()
        page.set_default_timeout(PAGE_MS)
        page.goto(server.url + "/admin/")
        expect(page.locator("#id_username")).to_be_visible(timeout=PAGE_MS)
        shot_of(page.locator("#container"), "operator-1-sign-in")
        page.fill("#id_username", "operator")
        page.fill("#id_password", "a long test password")
        page.locator("input[type=submit]").click()

        # The dashboard: the shipped default is served, and the visitor is connected.
        model = page.locator("#dash-model")
        expect(model).to_contain_text("the default shipped in the repository", timeout=PAGE_MS)
        expect(model).to_contain_text("Val accuracy", timeout=PAGE_MS)
        visitors = page.locator("#dash-visitors .attune-big")
        assert int(visitors.inner_text()) >= 1, page.locator("#dash-visitors").inner_text()
        expect(page.locator("#dash-health")).to_contain_text("All working", timeout=PAGE_MS)
        shot(page, "operator-2-dashboard")
        visitor.close()  # its frames would slow the training down

        # A quick run on a sample of the dataset picked in the picker.
        page.get_by_role("link", name="Start a run →").click()
        page.get_by_role("link", name="Quick check").click()
        page.wait_for_url(re.compile(r"/add/\?preset=quick$"))
        picked = page.get_by_label(re.compile(r"tiny-faces \(train 112 · val 56 images\)"))
        picked.check()
        assert page.locator("#id_architecture").input_value() == "custom_cnn"
        page.fill("#id_name", "walkthrough")
        page.fill("#id_max_per_class", str(SAMPLE))
        page.fill("#id_epochs", str(EPOCHS))
        assert page.locator("form textarea").count() == 0  # no raw JSON to type
        shot(page, "operator-3-start-run")
        page.get_by_role("button", name="Start training").click()

        # The run's page refreshes itself until the run has finished.
        page.wait_for_url(re.compile(r"/admin/training/trainingrun/\d+/change/$"))
        run_id = int(page.url.rstrip("/").split("/")[-2])
        status = page.locator(".run-status h2")
        expect(status).to_have_text(re.compile(r"^(Succeeded|Failed|Cancelled)"), timeout=RUN_FINISHES_MS)
        assert status.inner_text() == "Succeeded", (
            status.inner_text() + page.locator(".run-section pre").inner_text()[-2000:]
        )
        expect(page.locator(".run-status")).to_contain_text(f"epoch {EPOCHS} of {EPOCHS}", timeout=PAGE_MS)
        curves = page.locator(".run-section").filter(has_text="Training curves").locator("svg")
        expect(curves).to_have_count(2, timeout=PAGE_MS)  # accuracy and loss
        shot(page, "operator-4-run-finished")

        # Its model, side by side with the served one; it scores lower, and the page says so loudly.
        page.get_by_role("link", name="compare it with the served model and activate it").click()
        name = f"custom_cnn-run{run_id}"
        table = page.locator(".attune-compare")
        models = table.locator("tr", has=page.locator("th", has_text=re.compile("^Model$")))
        expect(models).to_contain_text("default", timeout=PAGE_MS)
        expect(models).to_contain_text(name, timeout=PAGE_MS)
        accuracy = table.locator("tr", has=page.locator("th", has_text=re.compile("^Val accuracy$")))
        assert len(re.findall(r"\d+\.\d%", accuracy.inner_text())) == 2, accuracy.inner_text()
        expect(accuracy).to_have_class(re.compile("worse"), timeout=PAGE_MS)
        expect(page.locator(".attune-warning")).to_contain_text(
            f"Warning: {name} scores lower", timeout=PAGE_MS
        )
        shot(page, "operator-5-confirm-activation", full_page=True)
        page.get_by_role("button", name="Serve it anyway").click()
        page.wait_for_url("**/admin/emotions/modelversion/")
        expect(page.locator(".messagelist")).to_contain_text(
            f"{name} is now active", ignore_case=True, timeout=PAGE_MS
        )

        # The dashboard names it.
        page.goto(server.url + "/admin/")
        expect(model.locator(".attune-big")).to_have_text(name, timeout=PAGE_MS)

        # Back to the shipped default: one click on the model versions page.
        model.get_by_role("link", name="Change or restore the model →").click()
        expect(page.locator(".attune-served")).to_contain_text(f"Served now: {name}", timeout=PAGE_MS)
        shot(page, "operator-6-models")
        page.get_by_role("button", name="Restore default", exact=True).click()
        # Done, with no page between: the list again, saying so.
        expect(page.locator(".messagelist")).to_contain_text("default model is served again", timeout=PAGE_MS)
        expect(page.locator(".attune-served")).to_contain_text("Served now: default", timeout=PAGE_MS)
        page.goto(server.url + "/admin/")
        expect(model.locator(".attune-big")).to_have_text("default", timeout=PAGE_MS)
        expect(model).to_contain_text("the default shipped in the repository", timeout=PAGE_MS)
        expect(visitors).to_have_text("0", timeout=PAGE_MS)  # the visitor has left meanwhile
        shot(page, "operator-7-restored")

    run = TrainingRun.objects.get(pk=run_id)
    assert run.status == TrainingRun.Status.SUCCEEDED, worker_log.read_text()[-3000:]
    assert run.dataset_path == str(dataset)
    assert (run.config["max_per_class"], run.config["epochs"]) == (SAMPLE, EPOCHS)
    assert ModelVersion.objects.active() is None
    assert [(a.from_name, a.to_name, a.user.username) for a in ModelActivation.objects.order_by("pk")] == [
        ("default", name, "operator"),
        (name, "default", "operator"),
    ]
    summary_add(
        request.config,
        f"operator walkthrough: run {name} trained {EPOCHS} epochs on {SAMPLE} images per class, served and "
        f"rolled back; screenshots operator-*.png in {SCREENSHOTS} ({time.monotonic() - started:.1f} s)",
    )

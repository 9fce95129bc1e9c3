"""Several web processes behind nginx, sharing Redis and PostgreSQL, behave as one site."""

from __future__ import annotations

import json
import shutil
import signal
import time
from contextlib import ExitStack
from pathlib import Path

import pytest
from django.conf import global_settings, settings
from django.contrib.auth import get_user_model
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from adaptation.models import ContentItem, ItemDailyStat, Rule, RuleItem
from emotions.classifier import file_sha256
from emotions.models import ModelVersion
from fer_site.api.keys import api_key_create
from tests.cluster.conftest import Browser, Cluster, json_get, json_post
from tests.live.media import face_jpeg
from tests.training.conftest import make_folder_dataset
from training.models import TrainingRun

pytestmark = [pytest.mark.cluster, pytest.mark.slow]


def shown_item(title: str = "Welcome") -> ContentItem:
    """An item the default rule shows every visitor, camera or not."""
    item = ContentItem.objects.create(title=title, kind="text", slot="hero", body="Hello")
    rule = Rule.objects.create(name="House", moods=[], is_default=True, cooldown_s=0)
    RuleItem.objects.create(rule=rule, item=item, weight=1, position=0)
    return item


def open_live(base_url: str, stack: ExitStack | None = None) -> ClientConnection:
    """Connect to the live WebSocket; with ``stack``, it is closed when the stack closes."""
    connection = connect(base_url.replace("http", "ws") + "/ws/live/", origin=base_url, open_timeout=30)
    return stack.enter_context(connection) if stack is not None else connection


def until(ws: ClientConnection, kind: str, wait_s: float = 30) -> dict:
    deadline = time.monotonic() + wait_s
    while True:
        message = json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
        if message["type"] == kind:
            return message


def item_ids(content: dict) -> list[int]:
    return [item["id"] for items in content["items"].values() for item in items]


def test_a_page_on_one_process_gets_a_change_saved_through_the_admin_on_another(cluster: Cluster, settings):
    # The server processes know the real hashers only, not the tests' fast one.
    settings.PASSWORD_HASHERS = global_settings.PASSWORD_HASHERS
    item = shown_item()
    get_user_model().objects.create_superuser("operator", password="a-long-operator-password")
    operator = Browser()
    operator.sign_in(cluster.web_url(1), "operator", "a-long-operator-password")

    with open_live(cluster.web_url(0)) as page:
        before = until(page, "content")
        status, answer = operator.post_form(
            f"{cluster.web_url(1)}/admin/adaptation/contentitem/{item.pk}/delete/", {"post": "yes"}
        )
        after = until(page, "content", wait_s=10)

    assert item_ids(before) == [item.pk]
    assert status == 200 and b"was deleted successfully" in answer  # the admin's redirect, followed
    assert item.pk not in item_ids(after)


def test_a_model_activated_through_the_api_on_one_process_is_served_by_every_process(cluster, tmp_path):
    # The shipped model under another name, with its compiled file as registration records it.
    shipped = Path(settings.EMOTIONS_DEFAULT_MODEL)
    record = json.loads(shipped.with_suffix(".litert.json").read_text())
    folder = tmp_path / "models"
    folder.mkdir()
    keras_file = shutil.copy(shipped, folder / "second.keras")
    litert_file = shutil.copy(shipped.with_name(record["model"]), folder / "second.tflite")
    version = ModelVersion.objects.create(
        name="second",
        architecture="custom_cnn",
        file_path=str(keras_file),
        sha256=file_sha256(keras_file),
        litert_path=str(litert_file),
        litert_sha256=record["sha256"],
        litert_max_abs_diff=record["max_abs_diff"],
        metrics={"accuracy": 0.6},
    )
    _, secret = api_key_create(name="ops", scopes=["models"])
    stack = ExitStack()
    pages = [open_live(cluster.web_url(i), stack) for i in range(2)]
    for page in pages:
        until(page, "ready")

    status, _ = json_post(
        f"{cluster.web_url(0)}/api/v1/models/{version.pk}/activate",
        {},
        {"Authorization": f"Api-Key {secret}"},
    )
    activated = time.monotonic()
    served_after = []
    for page in pages:
        while True:
            page.send(face_jpeg())
            if until(page, "emotion")["model_version"] == "second":
                served_after.append(time.monotonic() - activated)
                break
            assert time.monotonic() - activated < 30, "a process never served the new model"
            time.sleep(0.25)
    stack.close()

    assert status == 200
    assert max(served_after) <= 5.0, served_after


def test_an_api_keys_request_budget_is_one_budget_across_processes(cluster: Cluster):
    _, secret = api_key_create(name="partner", scopes=["content"], throttle_rate="4/min")
    headers = {"Authorization": f"Api-Key {secret}"}

    statuses = [json_get(f"{cluster.web_url(i % 2)}/api/v1/content", headers)[0] for i in range(6)]

    assert statuses == [200, 200, 200, 200, 429, 429]


def test_visitors_of_a_killed_process_reconnect_through_the_proxy_and_lose_nothing(cluster: Cluster):
    shown_item()
    frame = face_jpeg()
    stack = ExitStack()
    visitors = [open_live(cluster.url, stack) for _ in range(4)]
    received_items = 0
    for ws in visitors:
        received_items += len(item_ids(until(ws, "content")))
        ws.send(frame)
        until(ws, "emotion")

    cluster.web_process(0).send_signal(signal.SIGKILL)
    clicks = 0
    for index, ws in enumerate(visitors):
        try:
            ws.send(json.dumps({"type": "ping"}))
            until(ws, "pong", wait_s=10)
        except (ConnectionClosed, TimeoutError):
            ws.close()
            ws = visitors[index] = open_live(cluster.url, stack)  # the proxy sends it to the living process
            content = until(ws, "content")
            received_items += len(item_ids(content))
            ws.send(frame)
            until(ws, "emotion")
            ws.send(
                json.dumps(
                    {"type": "click", "item_id": item_ids(content)[0], "decision_id": content["decision_id"]}
                )
            )
            ws.send(json.dumps({"type": "ping"}))
            until(ws, "pong")  # messages are handled in order: the click is counted by now
            clicks += 1
    stack.close()

    assert clicks >= 1, "no visitor was on the killed process"
    stats = ItemDailyStat.objects.all()
    # Every impression a visitor was sent was counted, and every click it made.
    assert sum(row.impressions for row in stats) >= received_items
    assert sum(row.clicks for row in stats) == clicks


def test_a_training_run_started_through_one_process_runs_once_and_survives_that_process(cluster, tmp_path):
    # API_TRAINING_DATA_ROOTS defaults to the var folder's data/, which the cluster's processes share.
    data = make_folder_dataset(tmp_path / "var" / "data" / "tiny", per_class=2)
    _, secret = api_key_create(name="trainer", scopes=["training"])
    headers = {"Authorization": f"Api-Key {secret}", "Content-Type": "application/json"}
    body = {
        "architecture": "custom_cnn",
        "dataset_path": str(data),
        "config": {"epochs": 1, "batch_size": 8, "width": 0.25, "augment": False},
    }

    status, run = json_post(f"{cluster.web_url(1)}/api/v1/training-runs", body, headers)
    cluster.web_process(1).send_signal(signal.SIGKILL)  # the process that took the request dies
    deadline = time.monotonic() + 300
    while (current := json_get(f"{cluster.web_url(0)}/api/v1/training-runs/{run['id']}", headers)[1])[
        "status"
    ] in ("queued", "running"):
        assert time.monotonic() < deadline, current
        time.sleep(1)

    assert status == 201
    assert current["status"] == "succeeded", current
    assert TrainingRun.objects.count() == 1
    assert cluster.log.count(f"run {run['id']}: loading") == 1  # claimed and trained once

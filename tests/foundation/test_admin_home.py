from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from adaptation.models import ContentItem, ItemDailyStat, MoodMinuteStat
from emotions.models import ModelVersion
from fer_site.dashboard import wilson_interval
from training.models import TrainingRun


def test_wilson_interval_matches_the_textbook_values():
    low, high = wilson_interval(30, 100)

    assert (round(low, 3), round(high, 3)) == (0.219, 0.396)
    assert wilson_interval(0, 0) == (0.0, 1.0)
    assert wilson_interval(0, 10)[0] == 0.0


@pytest.mark.django_db
def test_it_answers_whether_attune_works_and_what_it_does(admin_client, fake_emotions):
    now = timezone.now()
    MoodMinuteStat.objects.create(minute=now - timedelta(minutes=10), mood="happy", count=30)
    MoodMinuteStat.objects.create(minute=now - timedelta(minutes=2), mood="sad", count=10)
    MoodMinuteStat.objects.create(minute=now - timedelta(hours=3), mood="angry", count=99)
    lucky = ContentItem.objects.create(title="Lucky", kind="text", slot="hero", body="b")
    steady = ContentItem.objects.create(title="Steady", kind="text", slot="hero", body="b")
    today = timezone.localdate()
    ItemDailyStat.objects.create(item=lucky, mood="happy", day=today, impressions=2, clicks=1)
    ItemDailyStat.objects.create(item=steady, mood="happy", day=today, impressions=100, clicks=30)
    TrainingRun.objects.create(
        name="night-run", architecture="mini_xception", status=TrainingRun.Status.RUNNING
    )

    response = admin_client.get("/admin/")

    content = response.content.decode()
    assert response.status_code == 200
    assert "Attune operations" in content and "Django administration" not in content
    assert 'id="dash-model"' in content and "default" in content and "custom_cnn" in content
    assert "Database" in content and "ms" in content
    assert "connected now" in content
    assert (
        "happy 75 %" in content
        and "sad 25 %" in content
        and "angry" not in content.split('id="dash-moods"')[1].split("</div>")[0]
    )
    assert "<svg" in content
    # Ranked by the lower bound of the 95 % interval: 30 of 100 beats 1 of 2.
    assert content.index("Steady") < content.index("Lucky")
    assert "21.9% – 39.6%" in content
    assert "night-run" in content
    assert "/admin/adaptation/rule/simulate/" in content and "/admin/adaptation/rule/statistics/" in content


@pytest.mark.django_db
def test_it_names_the_active_version_and_since_when(admin_client, fake_emotions):
    version = ModelVersion.objects.create(
        name="better-one",
        architecture="mini_xception",
        file_path="x.keras",
        sha256="0" * 64,
        metrics={"accuracy": 0.7123},
    )
    version.activate()

    response = admin_client.get("/admin/")

    content = response.content.decode()
    assert "better-one" in content
    assert "0.712" in content
    assert f"{timezone.localtime(version.activated_at):%Y-%m-%d %H:%M}" in content


@pytest.mark.django_db
def test_it_says_so_when_nothing_happened_yet(admin_client, fake_emotions):
    response = admin_client.get("/admin/")

    assert b"No mood reports in the last hour" in response.content
    assert b"No content was shown" in response.content
    assert b"No run is running or queued" in response.content


@pytest.mark.django_db
def test_it_shows_content_for_visitors_without_a_camera_apart_from_no_face(admin_client, fake_emotions):
    off = ContentItem.objects.create(title="Turn the camera on", kind="text", slot="hero", body="b")
    empty = ContentItem.objects.create(title="Come back", kind="text", slot="hero", body="b")
    today = timezone.localdate()
    ItemDailyStat.objects.create(item=off, mood="no_camera", day=today, impressions=40, clicks=4)
    ItemDailyStat.objects.create(item=empty, mood="no_face", day=today, impressions=10, clicks=1)
    MoodMinuteStat.objects.create(minute=timezone.now() - timedelta(minutes=3), mood="no_face", count=5)

    content = admin_client.get("/admin/").content.decode()

    performance = content.split('id="dash-content"')[1]
    assert "<td>No camera</td>" in performance and "<td>No face (camera on)</td>" in performance
    assert performance.index("No face (camera on)") < performance.index("Come back")
    assert (
        performance.index("Come back") < performance.index("No camera") < performance.index("Turn the camera")
    )
    assert "No face (camera on) 100 %" in content.split('id="dash-moods"')[1]

from __future__ import annotations

import pytest
from django.conf import settings
from django.urls import reverse

from emotions.models import ModelActivation, ModelVersion
from tests.conftest import model_archive_write
from tests.emotions.conftest import litert_stand_in_write

CHANGELIST = "admin:emotions_modelversion_changelist"
ACTIVATE = "admin:emotions_modelversion_activate"
RESTORE = "admin:emotions_modelversion_restore_default"


@pytest.fixture(autouse=True)
def artifacts(settings, tmp_path):
    settings.TRAINING_ARTIFACTS_DIR = tmp_path
    return tmp_path


def version(name: str, *, with_file: bool = True, compiled: bool = True, **fields) -> ModelVersion:
    sha256 = model_archive_write(settings.TRAINING_ARTIFACTS_DIR / f"{name}.keras") if with_file else "0" * 64
    if compiled:
        fields = {
            "litert_path": f"{name}.tflite",
            "litert_sha256": litert_stand_in_write(settings.TRAINING_ARTIFACTS_DIR / f"{name}.tflite"),
            "litert_max_abs_diff": 1e-7,
            **fields,
        }
    return ModelVersion.objects.create(
        name=name, architecture="mini_xception", file_path=f"{name}.keras", sha256=sha256, **fields
    )


@pytest.mark.django_db
def test_it_lists_versions_with_their_accuracy(admin_client):
    version("first", metrics={"accuracy": 0.6612})

    response = admin_client.get(reverse(CHANGELIST))

    assert response.status_code == 200
    assert b"first" in response.content
    assert b"66.1%" in response.content


@pytest.mark.django_db
def test_its_activate_action_makes_the_selected_version_the_only_active_one(admin_client):
    old = version("old")
    old.activate()
    new = version("new")

    response = admin_client.post(
        reverse(CHANGELIST), {"action": "activate", "_selected_action": [new.pk]}, follow=True
    )
    assert list(ModelVersion.objects.filter(is_active=True)) == [old]
    assert response.redirect_chain[-1][0] == reverse(ACTIVATE, args=[new.pk])
    response = admin_client.post(reverse(ACTIVATE, args=[new.pk]), {"confirm": "1"}, follow=True)

    assert response.status_code == 200
    assert list(ModelVersion.objects.filter(is_active=True)) == [new]
    assert "new is now active" in [str(m) for m in response.context["messages"]][0]


@pytest.mark.django_db
def test_its_activate_action_refuses_several_versions_at_once(admin_client):
    first, second = version("first"), version("second")

    response = admin_client.post(
        reverse(CHANGELIST), {"action": "activate", "_selected_action": [first.pk, second.pk]}, follow=True
    )

    assert b"exactly one" in response.content
    assert not ModelVersion.objects.filter(is_active=True).exists()


@pytest.mark.django_db
def test_its_activate_action_refuses_a_version_whose_file_is_missing(admin_client):
    lost = version("lost", with_file=False)

    response = admin_client.post(
        reverse(CHANGELIST), {"action": "activate", "_selected_action": [lost.pk]}, follow=True
    )
    assert b"cannot be served" in response.content
    response = admin_client.post(reverse(ACTIVATE, args=[lost.pk]), {"confirm": "1"}, follow=True)

    assert "missing" in [str(m) for m in response.context["messages"]][0]
    assert not ModelVersion.objects.filter(is_active=True).exists()


@pytest.mark.django_db
def test_it_shows_whether_each_version_has_a_verified_litert_file(admin_client):
    version("compiled")
    version("uncompiled", compiled=False, litert_error="the converter fell over")

    response = admin_client.get(reverse(CHANGELIST))

    assert b"yes (\xc2\xb11e-07)" in response.content
    assert b"no: the converter fell over" in response.content


@pytest.mark.django_db
def test_its_activate_action_refuses_a_version_without_a_litert_file_when_litert_serves(
    admin_client, artifacts, settings
):
    settings.EMOTIONS_BACKEND = "emotions.classifier.LiteRTClassifier"
    uncompiled = version("uncompiled", compiled=False)

    response = admin_client.post(reverse(ACTIVATE, args=[uncompiled.pk]), {"confirm": "1"}, follow=True)

    message = [str(m) for m in response.context["messages"]][0]
    assert "cannot be served by LiteRT: it was never compiled" in message
    assert "compile_model --model-version uncompiled" in message
    assert not ModelVersion.objects.filter(is_active=True).exists()


@pytest.mark.django_db
def test_its_confirmation_page_shows_both_models_and_warns_when_the_new_one_is_worse(admin_client):
    good = version(
        "good",
        metrics={"accuracy": 0.66, "macro_f1": 0.60, "per_class": {"happy": {"f1": 0.85}}},
    )
    good.activate()
    worse = version(
        "worse",
        metrics={"accuracy": 0.52, "macro_f1": 0.61, "per_class": {"happy": {"f1": 0.70}}},
    )

    response = admin_client.get(reverse(ACTIVATE, args=[worse.pk]))

    content = response.content.decode()
    assert response.status_code == 200
    assert "good" in content and "worse" in content
    assert "66.0%" in content and "52.0%" in content
    assert "-14.0 pt" in content
    assert "scores lower than the model served now" in content
    assert "val accuracy" in content.split("scores lower")[1].split("</div>")[0]
    assert "Serve it anyway" in content
    assert ModelVersion.objects.get(is_active=True) == good


@pytest.mark.django_db
def test_its_confirmation_page_compares_with_the_default_model_while_none_is_active(admin_client):
    better = version("better", metrics={"accuracy": 0.99, "macro_f1": 0.99})

    response = admin_client.get(reverse(ACTIVATE, args=[better.pk]))

    content = response.content.decode()
    assert "default" in content
    assert "custom_cnn" in content  # the shipped model's architecture, read from its model card
    assert "scores lower" not in content
    assert "Yes, serve better" in content


@pytest.mark.django_db
def test_its_confirmation_page_refuses_a_version_the_engine_cannot_load(admin_client):
    lost = version("lost", with_file=False)

    response = admin_client.get(reverse(ACTIVATE, args=[lost.pk]))

    assert b"This model cannot be served" in response.content
    assert b"missing" in response.content
    assert b'name="confirm"' not in response.content


@pytest.mark.django_db
def test_it_records_who_activated_which_version_and_shows_it(admin_client, admin_user):
    old = version("old")
    old.activate()
    new = version("new")

    admin_client.post(reverse(ACTIVATE, args=[new.pk]), {"confirm": "1"})
    response = admin_client.get(reverse(CHANGELIST))

    record = ModelActivation.objects.get()
    assert (record.from_version, record.to_version, record.user) == (old, new, admin_user)
    assert "old → new" in response.content.decode()
    assert admin_client.get(reverse("admin:emotions_modelactivation_changelist")).status_code == 200
    assert (
        "old → new"
        in admin_client.get(reverse("admin:emotions_modelversion_change", args=[new.pk])).content.decode()
    )


@pytest.mark.django_db
def test_it_restores_the_shipped_default_model_in_one_confirmation(admin_client, admin_user):
    served = version("served", metrics={"accuracy": 0.7})
    served.activate()

    listing = admin_client.get(reverse(CHANGELIST))
    page = admin_client.get(reverse(RESTORE))
    response = admin_client.post(reverse(RESTORE), {"confirm": "1"}, follow=True)

    assert reverse(RESTORE).encode() in listing.content
    assert b"Shipped default" in listing.content
    assert b"served" in page.content and b"default" in page.content
    assert not ModelVersion.objects.filter(is_active=True).exists()
    assert "default model is served again" in [str(m) for m in response.context["messages"]][0]
    record = ModelActivation.objects.get()
    assert (record.from_name, record.to_name, record.to_version, record.user) == (
        "served",
        "default",
        None,
        admin_user,
    )


@pytest.mark.django_db
def test_a_versions_page_offers_to_activate_it_through_the_confirmation(admin_client):
    waiting = version("waiting")

    response = admin_client.get(reverse("admin:emotions_modelversion_change", args=[waiting.pk]))

    assert reverse(ACTIVATE, args=[waiting.pk]).encode() in response.content


@pytest.mark.django_db
def test_its_confirmation_pages_need_a_staff_sign_in(client):
    waiting = version("waiting")

    for url in (reverse(ACTIVATE, args=[waiting.pk]), reverse(RESTORE)):
        response = client.post(url, {"confirm": "1"})

        assert response.status_code == 302 and "/login/" in response["Location"]
    assert not ModelVersion.objects.filter(is_active=True).exists()


@pytest.mark.django_db
def test_it_refuses_to_restore_a_default_model_that_is_missing(admin_client, settings, tmp_path):
    served = version("served")
    served.activate()
    settings.EMOTIONS_DEFAULT_MODEL = tmp_path / "gone.keras"

    page = admin_client.get(reverse(RESTORE))
    admin_client.post(reverse(RESTORE), {"confirm": "1"})

    assert b"This model cannot be served" in page.content and b'name="confirm"' not in page.content
    assert ModelVersion.objects.get(is_active=True) == served

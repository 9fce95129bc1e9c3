from __future__ import annotations

import pytest
from django.conf import settings
from django.urls import reverse

from emotions.models import ModelVersion
from tests.conftest import model_archive_write

CHANGELIST = "admin:emotions_modelversion_changelist"


@pytest.fixture(autouse=True)
def artifacts(settings, tmp_path):
    settings.TRAINING_ARTIFACTS_DIR = tmp_path
    return tmp_path


def version(name: str, *, with_file: bool = True, **fields) -> ModelVersion:
    sha256 = model_archive_write(settings.TRAINING_ARTIFACTS_DIR / f"{name}.keras") if with_file else "0" * 64
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

    assert "missing" in [str(m) for m in response.context["messages"]][0]
    assert not ModelVersion.objects.filter(is_active=True).exists()

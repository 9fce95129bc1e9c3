from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from fer_site.envvars import env_bool, env_choice, env_float, env_int, env_list, env_str
from tests.conftest import REPO

PRODUCTION = {
    "DJANGO_DEBUG": "false",
    "SECRET_KEY": "q8Xv2-tLr0pZ9mK4sW7yB1nE6cH3jU5aD8fG0hJ2kL4zX6vC9bN1mQ3wE5rT7yU9i",
    "ALLOWED_HOSTS": "attune.example.com",
}


def run_django(
    code: str, env: dict[str, str], tmp_path, cores: set[int] | None = None
) -> subprocess.CompletedProcess:
    """Run Python with Django set up in a clean process whose environment is exactly ``env`` (on ``cores``
    only, if given)."""
    base = {
        k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "REDIS_", "DATABASE_", "SECRET"))
    }
    base.pop("ALLOWED_HOSTS", None)
    full = {**base, "ATTUNE_VAR_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "fer_site.settings", **env}
    script = f"import django; django.setup(); from django.conf import settings; {code}"
    return subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        env=full,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=(lambda: os.sched_setaffinity(0, cores)) if cores else None,
    )


def manage(*args: str, env: dict[str, str], tmp_path) -> subprocess.CompletedProcess:
    base = {
        k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "REDIS_", "DATABASE_", "SECRET"))
    }
    full = {**base, "ATTUNE_VAR_DIR": str(tmp_path), **env}
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=REPO, env=full, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(("raw", "expected"), [("true", True), ("1", True), ("Off", False), ("no", False)])
def test_it_reads_boolean_words(raw, expected):
    assert env_bool("X", False, environ={"X": raw}) is expected


def test_it_refuses_a_boolean_it_does_not_understand():
    with pytest.raises(ImproperlyConfigured, match="X='flase' is not a boolean"):
        env_bool("X", True, environ={"X": "flase"})


def test_it_uses_defaults_for_unset_and_empty_variables():
    assert env_int("X", 7, environ={}) == 7
    assert env_int("X", 7, environ={"X": "  "}) == 7
    assert env_str("X", "d", environ={}) == "d"
    assert env_list("X", ["a"], environ={}) == ["a"]


def test_it_parses_numbers_lists_and_choices():
    assert env_int("X", 0, environ={"X": "42"}) == 42
    assert env_float("X", 0.0, environ={"X": "0.25"}) == 0.25
    assert env_list("X", [], environ={"X": "a.com, b.com,,"}) == ["a.com", "b.com"]
    assert env_choice("X", "INFO", ("INFO", "DEBUG"), environ={"X": "DEBUG"}) == "DEBUG"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: env_int("X", 0, environ={"X": "ten"}), "is not an integer"),
        (lambda: env_int("X", 0, min_value=1, environ={"X": "0"}), "below the minimum"),
        (lambda: env_float("X", 0.0, max_value=1.0, environ={"X": "2"}), "above the maximum"),
        (lambda: env_float("X", 0.0, environ={"X": "nan"}), "is not a number"),
        (lambda: env_choice("X", "A", ("A", "B"), environ={"X": "C"}), "must be one of A, B"),
    ],
)
def test_it_refuses_bad_values_with_a_message_naming_the_variable(call, message):
    with pytest.raises(ImproperlyConfigured, match=message):
        call()


def test_it_runs_on_embedded_services_by_default(tmp_path):
    result = run_django(
        "import json; print(json.dumps([settings.DATABASES['default']['ENGINE'], "
        "settings.CHANNEL_LAYERS['default']['BACKEND'], settings.CACHES['default']['BACKEND'], "
        "settings.CELERY_BROKER_URL, str(settings.DATABASES['default']['NAME'])]))",
        {},
        tmp_path,
    )

    assert result.returncode == 0, result.stderr
    engine, layer, cache, broker, name = json.loads(result.stdout.strip().splitlines()[-1])
    assert engine == "django.db.backends.sqlite3"
    assert name == str(tmp_path / "attune.sqlite3")
    assert layer == "channels.layers.InMemoryChannelLayer"
    assert cache == "django.core.cache.backends.locmem.LocMemCache"
    assert broker == "filesystem://"


def test_it_switches_to_redis_and_postgresql_from_urls(tmp_path):
    result = run_django(
        "import json; print(json.dumps([settings.DATABASES['default']['ENGINE'], "
        "settings.DATABASES['default']['NAME'], settings.CHANNEL_LAYERS['default']['BACKEND'], "
        "settings.CACHES['default']['BACKEND'], settings.CELERY_BROKER_URL]))",
        {
            "REDIS_URL": "redis://cache.internal:6379/2",
            "DATABASE_URL": "postgres://u:p@db.internal:5432/attune",
        },
        tmp_path,
    )

    assert result.returncode == 0, result.stderr
    engine, name, layer, cache, broker = json.loads(result.stdout.strip().splitlines()[-1])
    assert engine == "django.db.backends.postgresql"
    assert name == "attune"
    assert layer == "channels_redis.core.RedisChannelLayer"
    assert cache == "django.core.cache.backends.redis.RedisCache"
    assert broker == "redis://cache.internal:6379/2"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DJANGO_DEBUG": "flase"}, "DJANGO_DEBUG='flase' is not a boolean"),
        ({"DJANGO_DEBUG": "false", "ALLOWED_HOSTS": "a.com"}, "SECRET_KEY must be set"),
        ({"DJANGO_DEBUG": "false", "SECRET_KEY": PRODUCTION["SECRET_KEY"]}, "ALLOWED_HOSTS must be set"),
        ({**PRODUCTION, "ALLOWED_HOSTS": "*"}, "not '\\*'"),
        ({**PRODUCTION, "SECRET_KEY": "short"}, "at least 50 characters"),
        ({"REDIS_URL": "localhost:6379"}, "must start with redis://"),
        ({"DATABASE_URL": "nosuchdb://x"}, "DATABASE_URL is not a valid database URL"),
        ({"WEBSOCKET_MAX_MESSAGE_SIZE": "12"}, "below the minimum"),
        ({"LIVE_MAX_FRAME_BYTES": "262144"}, "must be below WEBSOCKET_MAX_MESSAGE_SIZE"),
        ({"LIVE_MAX_FPS": "0"}, "LIVE_MAX_FPS=0.0 is below the minimum"),
    ],
)
def test_it_refuses_to_start_with_a_bad_configuration(env, message, tmp_path):
    result = manage("check", env=env, tmp_path=tmp_path)

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert re.search(message, result.stderr), result.stderr[-2000:]


def test_check_deploy_is_clean_with_the_documented_production_variables(tmp_path):
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION, tmp_path=tmp_path)

    assert result.returncode == 0, result.stderr + result.stdout
    assert "no issues" in result.stdout


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs CPU affinities (Linux)")
def test_its_thread_counts_follow_the_cores_the_process_may_use_not_all_the_machine_has(tmp_path):
    code = (
        "import json; print(json.dumps([settings.USABLE_CORES, settings.EMOTIONS_PERCEPTION_THREADS, "
        "settings.EMOTIONS_BATCH_WORKERS]))"
    )
    backend = {"EMOTIONS_BACKEND": "emotions.classifier.LiteRTClassifier"}

    pinned = run_django(code, backend, tmp_path, cores={min(os.sched_getaffinity(0))})
    free = run_django(code, backend, tmp_path)

    assert pinned.returncode == 0 and free.returncode == 0, pinned.stderr + free.stderr
    # On one core, no perception thread: the event loop prepares frames itself.
    assert json.loads(pinned.stdout.strip().splitlines()[-1]) == [1, 0, 1]
    cores = len(os.sched_getaffinity(0))
    assert json.loads(free.stdout.strip().splitlines()[-1]) == [cores, cores, cores]

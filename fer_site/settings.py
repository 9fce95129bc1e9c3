"""Attune settings, read from the environment.

Every variable is documented in README.md and .env.example. Without any of
them Attune runs in development mode on embedded services: SQLite under
``var/``, an in-memory channel layer, a local-memory cache and a Celery broker
on the filesystem. ``REDIS_URL`` and ``DATABASE_URL`` switch to Redis and
PostgreSQL; ``DJANGO_DEBUG=false`` is production mode, which refuses to start
without ``SECRET_KEY`` and ``ALLOWED_HOSTS``.
"""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from fer_site.api.rates import parse_rate
from fer_site.envvars import env_bool, env_choice, env_float, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
# TensorFlow's C++ start-up chatter hides real log lines; errors still show.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
VAR_DIR = Path(env_str("ATTUNE_VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DJANGO_DEBUG", True)


def _development_secret_key() -> str:
    # A random key kept under var/ so sessions survive restarts; never used in production.
    path = VAR_DIR / "development_secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = env_str("SECRET_KEY")
if SECRET_KEY is None:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DJANGO_DEBUG is false.")
    SECRET_KEY = _development_secret_key()
elif not DEBUG and (len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5):
    raise ImproperlyConfigured("SECRET_KEY must be at least 50 characters of random text in production.")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
if not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS must be set when DJANGO_DEBUG is false.")
if not DEBUG and "*" in ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS must name the site's hosts in production, not '*'.")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "daphne",
    # Django's admin with Attune's operations home (fer_site/admin_site.py).
    "fer_site.apps.AttuneAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "channels",
    "rest_framework",
    "rest_framework_api_key",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "emotions",
    "adaptation",
    "training",
    # Last, so that its admin can replace the API key admin of rest_framework_api_key.
    "fer_site",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_permissions_policy.PermissionsPolicyMiddleware",
    # Last: it turns a locked-out login into its 429 answer.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "fer_site.urls"
WSGI_APPLICATION = "fer_site.wsgi.application"
ASGI_APPLICATION = "fer_site.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database: SQLite under var/ unless DATABASE_URL names another. ---
_env = environ.Env()
DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL and not DATABASE_URL.startswith(("postgres://", "postgresql://", "sqlite://")):
    raise ImproperlyConfigured(
        "DATABASE_URL is not a valid database URL: use postgres://... or sqlite:///..."
    )
try:
    DATABASES = {
        "default": _env.db_url_config(DATABASE_URL)
        if DATABASE_URL
        else {"ENGINE": "django.db.backends.sqlite3", "NAME": VAR_DIR / "attune.sqlite3"}
    }
except Exception as exc:  # django-environ raises several types for a bad URL
    raise ImproperlyConfigured(f"DATABASE_URL is not a valid database URL: {exc}") from None
DATABASES["default"]["CONN_MAX_AGE"] = env_int("DATABASE_CONN_MAX_AGE", 0, min_value=0)
DATABASES["default"].setdefault("TEST", {})
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # A file, not memory, so that worker processes started by tests can share the test database.
    DATABASES["default"]["TEST"].setdefault("NAME", str(VAR_DIR / "test_attune.sqlite3"))
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Writers from the web process and the worker wait for each other instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: channel layer, cache and Celery broker, or embedded stand-ins. ---
REDIS_URL = env_str("REDIS_URL")
if REDIS_URL and not REDIS_URL.startswith(("redis://", "rediss://", "unix://")):
    raise ImproperlyConfigured(f"REDIS_URL={REDIS_URL!r} must start with redis://, rediss:// or unix://.")

if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                # channels_redis blocks 5 s in BZPOPMIN; redis-py 8 also times reads out after 5 s by
                # default, so a busy server's receive would fail and drop the visitor's socket (1011).
                "hosts": [{"address": REDIS_URL, "socket_timeout": 15, "socket_connect_timeout": 5}],
                "prefix": "attune:channels:",
            },
        }
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "attune",
        }
    }
    CELERY_BROKER_URL = REDIS_URL
    CELERY_RESULT_BACKEND = REDIS_URL
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CELERY_BROKER_DIR = VAR_DIR / "celery" / "broker"
    CELERY_RESULTS_DIR = VAR_DIR / "celery" / "results"
    for _folder in (
        CELERY_BROKER_DIR,
        CELERY_BROKER_DIR / "processed",
        CELERY_BROKER_DIR / "control",
        CELERY_RESULTS_DIR,
    ):
        _folder.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_BROKER_DIR),
        "data_folder_out": str(CELERY_BROKER_DIR),
        "processed_folder": str(CELERY_BROKER_DIR / "processed"),
        # kombu's default is "control" relative to the working directory: keep it under var/ too.
        "control_folder": str(CELERY_BROKER_DIR / "control"),
        "store_processed": False,
    }
    CELERY_RESULT_BACKEND = f"file://{CELERY_RESULTS_DIR}"

# --- Celery: long training tasks, one at a time, never lost with a worker. ---
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {
    "training.tasks.training_runs_recover_task": {"queue": "default"},
    "training.tasks.*": {"queue": "training"},
}
CELERY_BEAT_SCHEDULE = {
    "recover-training-runs": {"task": "training.tasks.training_runs_recover_task", "schedule": 60.0},
}
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_RESULT_EXPIRES = 3600
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# --- Static and media files ---
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(VAR_DIR / "staticfiles")))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- Request limits: uploads stay in memory and are capped before decoding. ---
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 10 * 1024 * 1024, min_value=1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = DATA_UPLOAD_MAX_MEMORY_SIZE
FILE_UPLOAD_HANDLERS = ["django.core.files.uploadhandler.MemoryFileUploadHandler"]

# --- WebSocket ---
# Passed to daphne as --websocket-max-message-size by `manage.py serve`.
WEBSOCKET_MAX_MESSAGE_SIZE = env_int("WEBSOCKET_MAX_MESSAGE_SIZE", 256 * 1024, min_value=1024)
# Passed as --ping-interval / --ping-timeout: daphne pings every connection this often (see
# fer_site.request_limits) and drops it when no pong comes back in time, so a client that never reads
# its socket cannot pin the server's buffers, however steadily it sends.
WEBSOCKET_PING_INTERVAL_S = env_int("WEBSOCKET_PING_INTERVAL_S", 20, min_value=1)
WEBSOCKET_PING_TIMEOUT_S = env_int("WEBSOCKET_PING_TIMEOUT_S", 30, min_value=1)

# --- Production hardening; `manage.py check --deploy` is clean with these defaults. ---
if not DEBUG:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000, min_value=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    if env_bool("SECURE_PROXY_SSL_HEADER", False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# --- Browser policies (django-csp, django-permissions-policy) ---
# Scripts only from this site's own files (the pages hand data to them with json_script); styles may be
# inline (theme custom properties, admin pages); pictures and videos of content items may be anywhere on
# https; the live WebSocket is same-origin ('self' covers ws: and wss:).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:", "https:"],
        "media-src": ["'self'", "blob:", "https:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}
# The camera is for this site's own page only; nothing else a page could ask for is allowed.
PERMISSIONS_POLICY = {
    "camera": ["self"],
    "microphone": [],
    "geolocation": [],
    "payment": [],
    "usb": [],
    "display-capture": [],
}

# --- Admin sign-in throttling (django-axes): after LOGIN_FAILURE_LIMIT wrong passwords for one user name
# from one address, that pair is locked out (429) for LOGIN_LOCKOUT_MINUTES; a success resets the count.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5, min_value=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_LOCKOUT_MINUTES", 15, min_value=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False

LOG_LEVEL = env_choice("LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR"))
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False}},
}

# --- Attune: emotion engine ---
# Dotted path of the inference backend: LiteRT with XNNPACK (each model's compiled .tflite file; no
# TensorFlow in the web process), emotions.classifier.KerasClassifier (the .keras file through
# TensorFlow: GPUs, models that do not compile), or emotions.fake.FakeClassifier for tests.
EMOTIONS_BACKEND = env_str("EMOTIONS_BACKEND", "emotions.classifier.LiteRTClassifier")
EMOTIONS_DEFAULT_MODEL = BASE_DIR / "emotions" / "default_model" / "attune_default.keras"
EMOTIONS_MAX_IMAGE_BYTES = env_int("EMOTIONS_MAX_IMAGE_BYTES", 4 * 1024 * 1024, min_value=1024)
EMOTIONS_MAX_IMAGE_PIXELS = env_int("EMOTIONS_MAX_IMAGE_PIXELS", 4096 * 4096, min_value=64 * 64)
# The face detector: "blazeface" (MediaPipe's models under LiteRT: tilted and small faces, keypoints,
# alignment) or "haar" (OpenCV's cascade: upright frontal faces only). EMOTIONS_DETECT_* tune Haar.
EMOTIONS_DETECTOR = env_choice("EMOTIONS_DETECTOR", "blazeface", ("blazeface", "haar"))
EMOTIONS_DETECTOR_MIN_SCORE = env_float("EMOTIONS_DETECTOR_MIN_SCORE", 0.5, min_value=0.05, max_value=0.99)
EMOTIONS_DETECTOR_THREADS = env_int("EMOTIONS_DETECTOR_THREADS", 1, min_value=1, max_value=16)
EMOTIONS_DETECT_HEIGHT = env_int("EMOTIONS_DETECT_HEIGHT", 240, min_value=48, max_value=2160)
EMOTIONS_DETECT_SCALE_FACTOR = env_float("EMOTIONS_DETECT_SCALE_FACTOR", 1.2, min_value=1.01, max_value=2.0)
EMOTIONS_DETECT_MIN_NEIGHBORS = env_int("EMOTIONS_DETECT_MIN_NEIGHBORS", 5, min_value=1, max_value=20)
EMOTIONS_DETECT_MIN_FACE_FRACTION = env_float(
    "EMOTIONS_DETECT_MIN_FACE_FRACTION", 0.12, min_value=0.01, max_value=1.0
)
EMOTIONS_BATCH_MAX_SIZE = env_int("EMOTIONS_BATCH_MAX_SIZE", 32, min_value=1, max_value=1024)
# A lone face never waits; faces already queued together may wait this long for more to join them.
# 0: batches are only what queued up meanwhile (on CPUs batching barely pays; a GPU wants a few ms).
EMOTIONS_BATCH_MAX_WAIT_MS = env_float("EMOTIONS_BATCH_MAX_WAIT_MS", 0.0, min_value=0.0, max_value=1000.0)
EMOTIONS_BATCH_QUEUE_SIZE = env_int("EMOTIONS_BATCH_QUEUE_SIZE", 256, min_value=1)
# Threads of each LiteRT interpreter. Two classify a lone face in half the time on an idle machine, but
# gain nothing on a busy one, whose other cores are taken: one thread per interpreter, one per core.
EMOTIONS_LITERT_THREADS = env_int("EMOTIONS_LITERT_THREADS", 1, min_value=1, max_value=64)
# Which of a model's LiteRT files to serve where it has float32 and int8 ones: auto times both here
# when the model loads and serves int8 only where it is clearly faster (emotions.classifier).
EMOTIONS_LITERT_WEIGHTS = env_choice("EMOTIONS_LITERT_WEIGHTS", "auto", ("auto", "float32", "int8"))
# Threads running batches side by side (with LiteRT, each with its own interpreter): enough to keep
# every core busy, i.e. cores / EMOTIONS_LITERT_THREADS with LiteRT, one per core with Keras.
# Threads that decode frames, find faces and cut them out for the live page (each holds its own face
# detector interpreters, so this also bounds the memory they take): one per core. On a single core, none:
# the event loop's thread does it, for less CPU per frame than handing each frame to a thread and back.
# "Cores" are those this process may run on (taskset, a container's cpuset), not all the machine has.
USABLE_CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
EMOTIONS_PERCEPTION_THREADS = env_int(
    "EMOTIONS_PERCEPTION_THREADS", USABLE_CORES if USABLE_CORES > 1 else 0, min_value=0, max_value=64
)
EMOTIONS_BATCH_WORKERS = env_int(
    "EMOTIONS_BATCH_WORKERS",
    max(1, USABLE_CORES // EMOTIONS_LITERT_THREADS)
    if EMOTIONS_BACKEND.endswith(".LiteRTClassifier")
    else USABLE_CORES,
    min_value=1,
    max_value=64,
)
# A model that averages each face with its mirror image (the shipped default does) sees a live stream's
# faces from one side per frame, alternately, at half the cost, where its one-view file is served
# (LiteRT): the mood averages the two. Off: every frame costs both views.
EMOTIONS_ALTERNATE_VIEWS = env_bool("EMOTIONS_ALTERNATE_VIEWS", True)
EMOTIONS_MOOD_ALPHA = env_float("EMOTIONS_MOOD_ALPHA", 0.3, min_value=0.01, max_value=1.0)
EMOTIONS_MOOD_MARGIN = env_float("EMOTIONS_MOOD_MARGIN", 0.1, min_value=0.0, max_value=1.0)
EMOTIONS_MOOD_DWELL_S = env_float("EMOTIONS_MOOD_DWELL_S", 1.0, min_value=0.0)
EMOTIONS_MOOD_MIN_CONFIDENCE = env_float("EMOTIONS_MOOD_MIN_CONFIDENCE", 0.4, min_value=0.0, max_value=1.0)
EMOTIONS_MOOD_NO_FACE_S = env_float("EMOTIONS_MOOD_NO_FACE_S", 2.0, min_value=0.0)

# --- Attune: the live page and its WebSocket /ws/live/ ---
# Larger frames get an error and the connection stays; daphne closes (1009) above
# WEBSOCKET_MAX_MESSAGE_SIZE, so this must stay below it for that error to be reachable.
LIVE_MAX_FRAME_BYTES = env_int("LIVE_MAX_FRAME_BYTES", 128 * 1024, min_value=1024)
if LIVE_MAX_FRAME_BYTES >= WEBSOCKET_MAX_MESSAGE_SIZE:
    raise ImproperlyConfigured(
        f"LIVE_MAX_FRAME_BYTES={LIVE_MAX_FRAME_BYTES} must be below "
        f"WEBSOCKET_MAX_MESSAGE_SIZE={WEBSOCKET_MAX_MESSAGE_SIZE}."
    )
# Frames per second the server analyses per connection; the page sends at most this many.
LIVE_MAX_FPS = env_float("LIVE_MAX_FPS", 5.0, min_value=0.5, max_value=60.0)
# Messages over the cap dropped within 10 s before the connection is closed (1008, policy violation).
LIVE_FLOOD_DROPS = env_int("LIVE_FLOOD_DROPS", 25, min_value=1)
# A connection that sends nothing (no frame, no ping) for this long is closed (4408).
LIVE_IDLE_TIMEOUT_S = env_float("LIVE_IDLE_TIMEOUT_S", 120.0, min_value=5.0)
# What the page draws each frame at and how it compresses it.
# Per client address (proxy-aware with `serve --proxy-headers`) and process: WebSockets open at once, and
# new ones per minute; a refused handshake gets 403. Visitors behind one NAT share an address.
LIVE_MAX_CONNECTIONS_PER_CLIENT = env_int("LIVE_MAX_CONNECTIONS_PER_CLIENT", 20, min_value=1)
LIVE_CONNECTS_PER_MINUTE_PER_CLIENT = env_float("LIVE_CONNECTS_PER_MINUTE_PER_CLIENT", 120.0, min_value=1.0)
LIVE_FRAME_WIDTH = env_int("LIVE_FRAME_WIDTH", 320, min_value=64, max_value=1920)
LIVE_FRAME_HEIGHT = env_int("LIVE_FRAME_HEIGHT", 240, min_value=48, max_value=1080)
LIVE_JPEG_QUALITY = env_float("LIVE_JPEG_QUALITY", 0.7, min_value=0.1, max_value=1.0)
# Seconds a page keeps its camera on without a connection to the server; then it turns it off, and on again
# when the connection is back (only if the visitor agreed in that page view).
LIVE_OFFLINE_CAMERA_STOP_S = env_float("LIVE_OFFLINE_CAMERA_STOP_S", 20.0, min_value=1.0, max_value=600.0)

# --- Attune: training ---
TRAINING_ARTIFACTS_DIR = Path(env_str("TRAINING_ARTIFACTS_DIR", str(VAR_DIR / "training")))
# A running run whose worker has not reported for this long is resumed or failed.
TRAINING_STALE_AFTER_S = env_int("TRAINING_STALE_AFTER_S", 120, min_value=10)
TRAINING_DATA_DIR = Path(env_str("TRAINING_DATA_DIR", str(VAR_DIR / "data" / "fer2013")))

# --- Attune: adaptation ---
# Keeps items of kind "ad" out of rules for angry, disgust, fear and sad, and from visitors in those moods.
ADAPTATION_AD_GUARDRAIL = env_bool("ADAPTATION_AD_GUARDRAIL", True)
# Least share of random picks in optimize mode, so the bandit keeps learning.
ADAPTATION_OPTIMIZE_EXPLORATION = env_float(
    "ADAPTATION_OPTIMIZE_EXPLORATION", 0.1, min_value=0.0, max_value=1.0
)
# How long a decision accepts impression and click events (and duplicates are recognised).
ADAPTATION_DECISION_TTL_S = env_int("ADAPTATION_DECISION_TTL_S", 3600, min_value=60)
# Aggregate statistics older than this are deleted by `manage.py prune_adaptation_stats`.
ADAPTATION_STATS_RETENTION_DAYS = env_int("ADAPTATION_STATS_RETENTION_DAYS", 365, min_value=1)

# --- REST API (/api/v1/) ---
# Requests per period for each API key (a key's own rate overrides it) and each staff session.
API_THROTTLE_RATE = env_str("API_THROTTLE_RATE", "120/min")
try:
    parse_rate(API_THROTTLE_RATE)
except ValueError as exc:
    raise ImproperlyConfigured(f"API_THROTTLE_RATE={API_THROTTLE_RATE!r}: {exc}") from None
# Most images in one POST /api/v1/emotions/analyze; their faces share one model batch.
API_ANALYZE_MAX_IMAGES = env_int("API_ANALYZE_MAX_IMAGES", 8, min_value=1, max_value=64)
# Folders under which POST /api/v1/training-runs accepts dataset and weights paths.
API_TRAINING_DATA_ROOTS = env_list("API_TRAINING_DATA_ROOTS", [str(TRAINING_DATA_DIR.parent)])

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "fer_site.api.auth.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["fer_site.api.auth.HasApiScope"],
    "DEFAULT_THROTTLE_CLASSES": ["fer_site.api.auth.ApiKeyThrottle"],
    "DEFAULT_PARSER_CLASSES": ["fer_site.api.uploads.BoundedJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "fer_site.api.errors.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Attune API",
    "DESCRIPTION": (
        "Read facial expressions from images, decide what to show for a mood, count impressions and clicks, "
        "manage expression models and training runs. Authenticate with `Authorization: Api-Key <key>` "
        '(`manage.py create_api_key`). Every error is `{"error": {"code", "message", "details"}}`. '
        "Attune reads expressions, not feelings."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "MoodEnum": "emotions.labels.MOODS",
        "ExpressionEnum": "emotions.labels.EMOTIONS",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "fer_site.api.schema.add_error_responses",
        "fer_site.api.schema.state_request_rules",
    ],
    # Served from the drf-spectacular-sidecar package: the docs work without the internet.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

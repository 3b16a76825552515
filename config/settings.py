"""Settings, read from the environment (see `.env.example` for every variable).

One module serves development, tests and production: `APP_ENVIRONMENT=production` turns on the
strict checks (a real `SECRET_KEY`, `DEBUG` off, secure cookies). With nothing configured the
backend runs embedded: SQLite, local files, an in-process cache and a Celery broker on SQLite.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from config.instance import embedded_broker_url, instance_dir

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

APP_NAME = env.str("APP_NAME", default="Multimodal AI Assistant")
APP_VERSION = "1.0.0"
APP_ENVIRONMENT = env.str("APP_ENVIRONMENT", default="development")
IS_PRODUCTION = APP_ENVIRONMENT == "production"

DEBUG = env.bool("DEBUG", default=not IS_PRODUCTION)
_DEV_SECRET = "dev-insecure-secret-key-only-for-local-development-0123456789"  # noqa: S105  (development only; production refuses it)
SECRET_KEY = env.str("SECRET_KEY", default="" if IS_PRODUCTION else _DEV_SECRET)
if IS_PRODUCTION:
    if not SECRET_KEY or SECRET_KEY == _DEV_SECRET:
        raise ImproperlyConfigured("SECRET_KEY must be set in production.")
    if DEBUG:
        raise ImproperlyConfigured("DEBUG must be off in production.")

ALLOWED_HOSTS = env.list(
    "ALLOWED_HOSTS", default=[] if IS_PRODUCTION else ["127.0.0.1", "localhost", "[::1]", "testserver"]
)
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.sites",
    "corsheaders",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.google",
    "core",
    "accounts",
    "quotas",
    "ai_services",
    "video",
    "embeddings",
    "analytics",
]

MIDDLEWARE = [
    # Outermost: request id, one log line and metrics for every request, then health and metrics
    # probes answered before host checks and HTTPS redirects (see config/observability/probes.py).
    "config.observability.requestlog.RequestLogMiddleware",
    "config.observability.probes.ProbeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    # Oversized or chunked bodies under /api/ are refused from their headers, before they are read.
    "core.api.body_limits.RequestBodyLimitMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "core.api.middleware.ApiErrorMiddleware",
    "quotas.middleware.UsageHeadersMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"
SITE_ID = 1

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

# --- Database --------------------------------------------------------------------------------
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web process read while the worker writes; the timeout rides out short locks.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"}
    )
    # Keep connections: opening one (and running the PRAGMAs) per request costs more than the request.
    DATABASES["default"]["CONN_MAX_AGE"] = None
    # A file, not memory, so a Celery worker process started by the tests sees the test data.
    DATABASES["default"]["TEST"] = {"NAME": env.str("TEST_SQLITE_NAME", default=str(VAR_DIR / "test-db.sqlite3"))}
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# Embedded broker, beat schedule, worker heartbeat files and vector caches of this database only
# (see config/instance.py): instances serving different databases never share them.
INSTANCE_DIR = Path(env.str("INSTANCE_DIR", default="") or instance_dir(VAR_DIR, DATABASES["default"]))

# --- Cache (rate-limit counters, Google keys, token grace windows) ----------------------------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="mma"),
            "OPTIONS": {"CLIENT_CLASS": "django_redis.client.DefaultClient"},
        }
    }
else:
    # Process-local: rate-limit counters are per process, so the embedded default is meant for
    # one web process (which is what `make run` starts).
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Client address (core/client_address.py) --------------------------------------------------
# Behind proxies the client is in X-Forwarded-For, believed only from these: how many proxies
# stand in front of the app, and/or their addresses or networks. Unset: the socket peer.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
TRUSTED_PROXY_NETWORKS = [entry.strip() for entry in env.list("TRUSTED_PROXY_NETWORKS", default=[]) if entry.strip()]
try:
    [ipaddress.ip_network(entry, strict=False) for entry in TRUSTED_PROXY_NETWORKS]
except ValueError as _exc:
    raise ImproperlyConfigured(f"TRUSTED_PROXY_NETWORKS: {_exc}") from None

# --- Auth ------------------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
# Email uniqueness is a case-insensitive constraint (Lower("email")), which this check cannot see.
SILENCED_SYSTEM_CHECKS = ["auth.W004"]
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

JWT_ACCESS_MINUTES = env.int("JWT_ACCESS_MINUTES", default=15)
JWT_REFRESH_DAYS = env.int("JWT_REFRESH_DAYS", default=30)
# A mobile app that lost the response to a refresh retries with the same token: within this
# window it gets the pair already issued instead of being treated as a thief.
JWT_REFRESH_GRACE_SECONDS = env.int("JWT_REFRESH_GRACE_SECONDS", default=10)
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=JWT_ACCESS_MINUTES),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=JWT_REFRESH_DAYS),
    "ALGORITHM": "HS256",
    "SIGNING_KEY": env.str("JWT_SECRET_KEY", default=SECRET_KEY),
    "AUTH_HEADER_TYPES": ("Bearer",),
    "USER_ID_FIELD": "id",
    "USER_ID_CLAIM": "user_id",
    "UPDATE_LAST_LOGIN": False,
}
# Access tokens of a session are checked against the session row; `last_used_at` is written at
# most this often so that authenticated reads stay read-only.
SESSION_TOUCH_SECONDS = env.int("SESSION_TOUCH_SECONDS", default=60)

GOOGLE_CLIENT_IDS = env.list("GOOGLE_CLIENT_IDS", default=[])
GOOGLE_CERTS_URL = env.str("GOOGLE_CERTS_URL", default="https://www.googleapis.com/oauth2/v1/certs")
GOOGLE_CERTS_CACHE_SECONDS = env.int("GOOGLE_CERTS_CACHE_SECONDS", default=3600)
SOCIALACCOUNT_PROVIDERS = {"google": {"CERTS_URL": GOOGLE_CERTS_URL}}
SOCIALACCOUNT_ADAPTER = "accounts.google.CachingSocialAccountAdapter"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
HEADLESS_ONLY = True
HEADLESS_FRONTEND_URLS: dict[str, str] = {}

# --- REST framework --------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["accounts.authentication.SessionJWTAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["core.api.renderers.CamelCaseJSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "core.api.parsers.CamelCaseJSONParser",
        "core.api.parsers.CamelCaseMultiPartParser",
        "core.api.parsers.CamelCaseFormParser",
    ],
    "DEFAULT_THROTTLE_CLASSES": ["core.ratelimit.CategoryThrottle"],
    "DEFAULT_PAGINATION_CLASS": "core.api.pagination.PagePagination",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "core.api.handlers.api_exception_handler",
    "DEFAULT_METADATA_CLASS": "core.api.metadata.EnvelopeMetadata",
    "UNAUTHENTICATED_USER": None,
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
if DEBUG:
    REST_FRAMEWORK["DEFAULT_RENDERER_CLASSES"].append("rest_framework.renderers.BrowsableAPIRenderer")

SPECTACULAR_SETTINGS = {
    "TITLE": f"{APP_NAME} API",
    "DESCRIPTION": "REST API for mobile multimodal AI apps: accounts, AI services, video, embeddings.",
    "VERSION": APP_VERSION,
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_SETTINGS": {"persistAuthorization": True, "displayOperationId": False},
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "core.api.schema.camelize_schema",
    ],
}

# Rate limits (core/ratelimit.py, accounts/signin_protection.py), each from the environment as
# `N/period` (period: 10s, 1m, 15m, 1h, 1d; empty turns a burst window off). The defaults are the
# seed's table; the categories below it are what the table's "5 attempts per 15 minutes" became:
# a budget of failed credential checks, and generous request caps of sign-up, sign-in and refresh.
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([smhd])\s*$")
_PERIOD_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _rate(name: str, default: str) -> tuple[int, int] | None:
    value = env.str(name, default=default)
    if not value.strip():
        return None
    match = _RATE.match(value)
    if not match or int(match[1]) < 1:
        raise ImproperlyConfigured(f"{name} must look like 5/15m (requests/period), not {value!r}.")
    return int(match[1]), int(match[2] or 1) * _PERIOD_SECONDS[match[3]]


def _category(name: str, rate: str, burst: str = "") -> dict[str, tuple[int, int] | None]:
    return {"rate": _rate(f"RATE_LIMIT_{name}", rate), "burst": _rate(f"RATE_LIMIT_{name}_BURST", burst)}


RATE_LIMITS = {
    # The seed's table: every request counts, per user when signed in, else per client address.
    "general": _category("GENERAL", "60/1m", "20/10s"),
    "ai": _category("AI", "10/1m", "5/10s"),
    "upload": _category("UPLOAD", "3/1m", "1/5s"),
    "download": _category("DOWNLOAD", "100/1m", "50/10s"),
    # Password confirmations of a signed-in user (change password, deactivate, delete), per user.
    "auth": _category("AUTH", "5/15m", "2/10s"),
    # Requests per client address: sign-ups (a hosted auth service's default), sign-ins, refreshes.
    "signup": _category("SIGNUP", "30/5m"),
    "signin": _category("SIGNIN", "60/1m"),
    "refresh": _category("REFRESH", "120/1m"),
    # Failed credential checks (wrong password or unknown email; never successes or invalid input):
    # per email from one address (the seed's 5 per 15 minutes), per address across emails (a
    # spray), and per email from addresses the account has never signed in from (many addresses).
    "auth_failures": _category("AUTH_FAILURES", "5/15m"),
    "auth_address_failures": _category("AUTH_ADDRESS_FAILURES", "20/15m"),
    "auth_email_failures": _category("AUTH_EMAIL_FAILURES", "10/15m"),
}
for _name, _policy in RATE_LIMITS.items():
    if _policy["rate"] is None:
        raise ImproperlyConfigured(f"RATE_LIMIT_{_name.upper()} must be set (RATE_LIMITS_ENABLED turns limits off).")
RATE_LIMITS_ENABLED = env.bool("RATE_LIMITS_ENABLED", default=True)

CORS_ALLOWED_ORIGINS = env.list("CORS_ALLOWED_ORIGINS", default=[])
CORS_EXPOSE_HEADERS = [
    "Retry-After",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-Quota-Limit",
    "X-Quota-Used",
    "X-Quota-Reset",
    "X-Request-ID",
]

# --- Files -----------------------------------------------------------------------------------
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(VAR_DIR / "media")))
MEDIA_URL = "/media/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
STATIC_URL = "/static/"
STORAGES = {
    "default": {"BACKEND": env.str("FILE_STORAGE_BACKEND", default="django.core.files.storage.FileSystemStorage")},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if IS_PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
# Uploads larger than this go to a temporary file while they stream in.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_TEMP_DIR = env.str("FILE_UPLOAD_TEMP_DIR", default=None)
# Virus scanning of every upload by clamd (core/scanning.py). Empty: off. `host:port`,
# `tcp://host:port`, or a unix socket (`/run/clamav/clamd.ctl` or `unix:///...`). While clamd does
# not answer, `refuse` answers 503 scanner_unavailable and `accept` keeps the upload with a
# logged warning; production refuses by default, development accepts.
CLAMAV_ADDRESS = env.str("CLAMAV_ADDRESS", default="").strip()
if CLAMAV_ADDRESS and not re.fullmatch(r"unix://.+|/.+|(tcp://)?(\[[0-9a-fA-F:.]+\]|[^:/\s]+):\d{1,5}", CLAMAV_ADDRESS):
    raise ImproperlyConfigured("CLAMAV_ADDRESS must be host:port, tcp://host:port, a socket path or unix:///path.")
CLAMAV_TIMEOUT_SECONDS = env.float("CLAMAV_TIMEOUT_SECONDS", default=30.0)
CLAMAV_WHEN_UNAVAILABLE = env.str("CLAMAV_WHEN_UNAVAILABLE", default="refuse" if IS_PRODUCTION else "accept")
if CLAMAV_WHEN_UNAVAILABLE not in ("refuse", "accept"):
    raise ImproperlyConfigured("CLAMAV_WHEN_UNAVAILABLE must be 'refuse' or 'accept'.")

# --- Celery ----------------------------------------------------------------------------------
# Without Redis the embedded broker is kombu's SQLAlchemy transport on a SQLite file, so a real
# worker process takes the jobs and requests never block on video or AI work.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or embedded_broker_url(INSTANCE_DIR))
if CELERY_BROKER_URL.startswith("sqla+sqlite:"):
    INSTANCE_DIR.mkdir(parents=True, exist_ok=True)  # SQLite creates the file, not its folder
# Beat (embedded in the `make run` worker, or its own process) keeps its schedule here.
CELERY_BEAT_SCHEDULE_FILENAME = str(INSTANCE_DIR / "celerybeat-schedule")
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Redis re-delivers an unacknowledged task (a worker killed mid-job) after this many seconds.
CELERY_BROKER_TRANSPORT_OPTIONS = (
    {"visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600)}
    if CELERY_BROKER_URL.startswith(("redis://", "rediss://"))
    else {}
)
# Worker children are not recycled by task count: the Whisper model and ffmpeg work would be
# reloaded for nothing. A child whose memory passed this cap (MB; 0 = none) is replaced after
# its current task instead, which bounds growth of the AI libraries where it happens.
_worker_max_memory_mb = env.int("WORKER_MAX_MEMORY_MB", default=2048)
CELERY_WORKER_MAX_MEMORY_PER_CHILD = _worker_max_memory_mb * 1024 if _worker_max_memory_mb > 0 else None
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE: dict[str, dict] = {}

# --- AI services -----------------------------------------------------------------------------
# Provider per modality: "openai" (the official SDK, against OpenAI or any OpenAI-compatible
# server at OPENAI_BASE_URL) or "local" (offline engines shipped in packages). The default is
# openai when OPENAI_API_KEY is set, else local; each modality can be overridden on its own.
OPENAI_API_KEY = env.str("OPENAI_API_KEY", default="")
OPENAI_BASE_URL = env.str("OPENAI_BASE_URL", default="")
OPENAI_ORGANIZATION = env.str("OPENAI_ORGANIZATION", default="")
OPENAI_TIMEOUT_SECONDS = env.float("OPENAI_TIMEOUT_SECONDS", default=60.0)
OPENAI_CONNECT_TIMEOUT_SECONDS = env.float("OPENAI_CONNECT_TIMEOUT_SECONDS", default=5.0)
# Retries (with exponential backoff, honouring Retry-After) on 408/409/429/5xx and connection errors.
OPENAI_MAX_RETRIES = env.int("OPENAI_MAX_RETRIES", default=2)
AI_PROVIDER = env.str("AI_PROVIDER", default="openai" if OPENAI_API_KEY else "local")
AI_PROVIDERS = {
    modality: env.str(f"AI_{modality.upper()}_PROVIDER", default=AI_PROVIDER)
    for modality in ("chat", "transcribe", "speak", "vision", "embed")
}
# Models a client may ask for, per modality (first = default), for the openai provider. Point
# these at the names your OpenAI-compatible server knows (e.g. AI_CHAT_MODELS=llama3.2 for Ollama).
AI_MODELS = {
    "chat": env.list("AI_CHAT_MODELS", default=["gpt-4o-mini", "gpt-4o", "gpt-4.1-mini", "gpt-4.1", "gpt-4"]),
    "transcribe": env.list("AI_TRANSCRIBE_MODELS", default=["whisper-1", "gpt-4o-mini-transcribe"]),
    "speak": env.list("AI_SPEAK_MODELS", default=["tts-1", "tts-1-hd", "gpt-4o-mini-tts"]),
    "vision": env.list("AI_VISION_MODELS", default=["gpt-4o-mini", "gpt-4o"]),
    "embed": env.list("AI_EMBED_MODELS", default=["text-embedding-3-small", "text-embedding-3-large"]),
}
# Conversation memory: the history sent with a new message is trimmed, newest first, to this
# many tokens (the system prompt and the new message always go).
AI_CHAT_HISTORY_TOKENS = env.int("AI_CHAT_HISTORY_TOKENS", default=3000)
AI_CHAT_DEFAULT_SYSTEM_PROMPT = env.str("AI_CHAT_DEFAULT_SYSTEM_PROMPT", default="You are a helpful assistant.")
AI_CHAT_MAX_MESSAGE_CHARS = env.int("AI_CHAT_MAX_MESSAGE_CHARS", default=32000)
AI_CHAT_DEFAULT_MAX_TOKENS = env.int("AI_CHAT_DEFAULT_MAX_TOKENS", default=1024)
AI_CHAT_MAX_TOKENS_LIMIT = env.int("AI_CHAT_MAX_TOKENS_LIMIT", default=4096)
# Uploads (the seed's file table).
AI_AUDIO_MAX_BYTES = env.int("AI_AUDIO_MAX_BYTES", default=25 * 1024 * 1024)
AI_AUDIO_MAX_SECONDS = env.int("AI_AUDIO_MAX_SECONDS", default=10 * 60)
AI_IMAGE_MAX_BYTES = env.int("AI_IMAGE_MAX_BYTES", default=5 * 1024 * 1024)
AI_IMAGE_MAX_SIDE = env.int("AI_IMAGE_MAX_SIDE", default=2048)
# Checked from the header before any pixel is decoded, far below Pillow's own 89 MP bomb threshold:
# 40 MP admits any phone photo (48 MP sensors save 12 MP pictures by default) while a full decode
# of the largest accepted PNG stays around 160 MB (RGBA). JPEGs are decoded at reduced scale anyway.
AI_IMAGE_MAX_PIXELS = env.int("AI_IMAGE_MAX_PIXELS", default=40_000_000)
# Text-to-speech input cap: 4,000 characters is 4 whole units at the seed's price (1 unit per
# started 1,000 characters), under OpenAI's 4,096, and bounds how long one call holds a web thread.
AI_TTS_MAX_CHARS = env.int("AI_TTS_MAX_CHARS", default=4000)
# AI calls one user may have running in the web processes at once (0 = no bound); more get a 429
# `ai_concurrency_limited`, so one user cannot occupy every web thread (ai_services/concurrency.py).
AI_USER_CONCURRENCY = env.int("AI_USER_CONCURRENCY", default=2)
# A job still "processing" after this long lost whatever ran it (a worker or a web process killed
# mid-stream). A queued transcription is claimed again or re-queued, at most AI_JOB_MAX_ATTEMPTS
# times; anything else is failed and refunded by the reaper, which runs on beat.
AI_JOB_STALE_SECONDS = env.int("AI_JOB_STALE_SECONDS", default=30 * 60)
AI_JOB_MAX_ATTEMPTS = env.int("AI_JOB_MAX_ATTEMPTS", default=3)
# A queued transcription beats while it runs; one silent this long lost its worker (killed) and
# is re-queued without waiting for AI_JOB_STALE_SECONDS.
AI_JOB_HEARTBEAT_STALE_SECONDS = env.float("AI_JOB_HEARTBEAT_STALE_SECONDS", default=120.0)
AI_REAPER_INTERVAL_SECONDS = env.int("AI_REAPER_INTERVAL_SECONDS", default=300)
CELERY_BEAT_SCHEDULE["ai-reap-stale-jobs"] = {
    "task": "ai_services.reap_stale_jobs",
    "schedule": AI_REAPER_INTERVAL_SECONDS,
}
# Where the local Whisper model is assembled from its two packages (verified by SHA-256).
MODEL_CACHE_DIR = env.str("MODEL_CACHE_DIR", default=str(VAR_DIR / "models"))

# --- Embeddings ------------------------------------------------------------------------------
EMBEDDINGS_TEXT_MAX_CHARS = env.int("EMBEDDINGS_TEXT_MAX_CHARS", default=100_000)
EMBEDDINGS_QUERY_MAX_CHARS = env.int("EMBEDDINGS_QUERY_MAX_CHARS", default=10_000)
EMBEDDINGS_METADATA_MAX_BYTES = env.int("EMBEDDINGS_METADATA_MAX_BYTES", default=8192)
# Chunk sizes in tokens of the model's tokenizer. A chunk must also fit the model's input window:
# all-MiniLM-L6-v2 reads 256 word pieces (254 of text), so larger sizes are refused for it.
EMBEDDINGS_CHUNK_SIZE_MIN = env.int("EMBEDDINGS_CHUNK_SIZE_MIN", default=32)
EMBEDDINGS_CHUNK_SIZE_MAX = env.int("EMBEDDINGS_CHUNK_SIZE_MAX", default=512)
EMBEDDINGS_CHUNK_SIZE_DEFAULT = env.int("EMBEDDINGS_CHUNK_SIZE_DEFAULT", default=200)
EMBEDDINGS_CHUNK_OVERLAP_DEFAULT = env.int("EMBEDDINGS_CHUNK_OVERLAP_DEFAULT", default=40)
# Memory-mappable .npy copies of each user's vectors, rebuilt from the database when stale.
EMBEDDINGS_CACHE_DIR = env.str("EMBEDDINGS_CACHE_DIR", default="") or str(INSTANCE_DIR / "vector-cache")
# Memory for the matrices of recently searched users in each process (least recently used go first).
EMBEDDINGS_CACHE_MAX_BYTES = env.int("EMBEDDINGS_CACHE_MAX_BYTES", default=2 * 1024**3)
# Embeddings of recent search queries each process keeps (by provider, model and text), so a
# repeated query is not embedded again; 0 turns it off (ai_services/query_embeddings.py).
EMBEDDINGS_QUERY_CACHE_SIZE = env.int("EMBEDDINGS_QUERY_CACHE_SIZE", default=1024)
# Per user and model: above this many vectors an HNSW index (approximate) serves searches; 0 = never.
EMBEDDINGS_HNSW_THRESHOLD = env.int("EMBEDDINGS_HNSW_THRESHOLD", default=200_000)
# Search backend (embeddings/pgvector.py): auto = pgvector when the PostgreSQL database has it (the
# `vector` extension and the table made by migration 0002 or embeddings_pgvector_backfill), else the
# numpy index; pgvector = required; numpy = never pgvector. EXACT orders by distance without the
# HNSW index; EF_SEARCH is hnsw.ef_search (candidates per query; iterative scans add more).
EMBEDDINGS_VECTOR_BACKEND = env.str("EMBEDDINGS_VECTOR_BACKEND", default="auto")
if EMBEDDINGS_VECTOR_BACKEND not in ("auto", "pgvector", "numpy"):
    raise ImproperlyConfigured("EMBEDDINGS_VECTOR_BACKEND must be auto, pgvector or numpy.")
EMBEDDINGS_PGVECTOR_EXACT = env.bool("EMBEDDINGS_PGVECTOR_EXACT", default=False)
EMBEDDINGS_PGVECTOR_EF_SEARCH = env.int("EMBEDDINGS_PGVECTOR_EF_SEARCH", default=100)

# --- Quotas and user management -------------------------------------------------------------
# The hourly run resets accounts nobody touches; an account is also reset lazily when it is used.
CELERY_BEAT_SCHEDULE["quotas-reset-due"] = {
    "task": "quotas.reset_due",
    "schedule": env.int("QUOTA_RESET_INTERVAL_SECONDS", default=3600),
}
# Avatars (the seed's upload table: 5 MB, JPEG/PNG/GIF/WebP, cropped to 200x200). The pixel cap
# refuses decompression bombs before Pillow decodes them; 40 MP (as AI_IMAGE_MAX_PIXELS) admits any
# phone camera photo.
AVATAR_MAX_BYTES = 5 * 1024 * 1024
AVATAR_SIZE = 200
AVATAR_MAX_PIXELS = env.int("AVATAR_MAX_PIXELS", default=40_000_000)
AVATAR_CACHE_SECONDS = env.int("AVATAR_CACHE_SECONDS", default=86400)
# Dotted paths of callables run as `cleanup(user=user)` inside the transaction that deletes an
# account, before the user row (and by cascade every row it owns) is deleted. Each removes the
# files of its app's rows, with `transaction.on_commit` so a failed deletion keeps them.
ACCOUNT_DELETION_CLEANUPS: list[str] = [
    "accounts.avatars.avatar_files_delete_for_user",
    "video.services.video_files_delete_for_user",
    "ai_services.services.ai_files_delete_for_user",
    "embeddings.services.embeddings_cache_delete_for_user",
]

# --- Video -----------------------------------------------------------------------------------
# The seed's upload table: 100 MB, 5 minutes, MP4/MOV/AVI/WMV/WebM (checked by probing the content).
VIDEO_MAX_UPLOAD_BYTES = env.int("VIDEO_MAX_UPLOAD_BYTES", default=100 * 1024 * 1024)
VIDEO_MAX_DURATION_SECONDS = env.float("VIDEO_MAX_DURATION_SECONDS", default=300.0)
# A processing job whose heartbeat is older than this is presumed lost with its worker: it is
# claimed again by a re-delivered task or re-queued by the reaper, at most VIDEO_MAX_ATTEMPTS times.
VIDEO_HEARTBEAT_STALE_SECONDS = env.int("VIDEO_HEARTBEAT_STALE_SECONDS", default=120)
VIDEO_MAX_ATTEMPTS = env.int("VIDEO_MAX_ATTEMPTS", default=3)
VIDEO_REAPER_INTERVAL_SECONDS = env.int("VIDEO_REAPER_INTERVAL_SECONDS", default=60)
# Progress is written at most this often (and the heartbeat with it).
VIDEO_PROGRESS_WRITE_SECONDS = env.float("VIDEO_PROGRESS_WRITE_SECONDS", default=0.5)
# Thumbnails made on demand for other timestamps/widths are cached, up to this many per job.
VIDEO_THUMBNAIL_CACHE_MAX = env.int("VIDEO_THUMBNAIL_CACHE_MAX", default=32)
# Files younger than this are never treated as orphans (an upload may not have committed its row yet).
VIDEO_CLEANUP_GRACE_SECONDS = env.int("VIDEO_CLEANUP_GRACE_SECONDS", default=3600)
CELERY_BEAT_SCHEDULE["video-reap-stale-jobs"] = {
    "task": "video.reap_stale_jobs",
    "schedule": VIDEO_REAPER_INTERVAL_SECONDS,
}
_video_cleanup_hours = env.int("VIDEO_CLEANUP_INTERVAL_HOURS", default=24)
if _video_cleanup_hours > 0:
    CELERY_BEAT_SCHEDULE["video-cleanup-files"] = {
        "task": "video.cleanup_files",
        "schedule": _video_cleanup_hours * 3600,
    }

# --- Operations: logs, metrics, worker health ----------------------------------------------
# json: one JSON object per line (for log shippers); plain: readable lines for a terminal.
LOG_FORMAT = env.str("LOG_FORMAT", default="") or ("json" if IS_PRODUCTION else "plain")
if LOG_FORMAT not in {"json", "plain"}:
    raise ImproperlyConfigured("LOG_FORMAT must be json or plain.")
# /metrics answers a matching bearer token or a client address in the list (addresses or CIDR
# networks, e.g. the Docker network Prometheus scrapes from); everything else gets 403. Production
# trusts no address unless the list is set: a reverse proxy on the same host connects from
# loopback, so a loopback default would publish the metrics through it.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
METRICS_ALLOWED_IPS = env.list("METRICS_ALLOWED_IPS", default=[] if IS_PRODUCTION else ["127.0.0.1", "::1"])
# Queues whose depth /metrics reports besides the configured ones (routes to undeclared queues).
METRICS_EXTRA_QUEUES = env.list("METRICS_EXTRA_QUEUES", default=[])
# Workers serve /metrics and /health on this port (0 = off); Prometheus scrapes it.
WORKER_METRICS_PORT = env.int("WORKER_METRICS_PORT", default=0)
WORKER_METRICS_ADDRESS = env.str("WORKER_METRICS_ADDRESS", default="0.0.0.0")  # noqa: S104  (inside a container)
# Heartbeats go where web and workers both see them: the cache when it is Redis, else files.
WORKER_HEARTBEAT_STORE = env.str("WORKER_HEARTBEAT_STORE", default="") or ("cache" if REDIS_URL else "file")
if WORKER_HEARTBEAT_STORE not in {"cache", "file"}:
    raise ImproperlyConfigured("WORKER_HEARTBEAT_STORE must be cache or file.")
WORKER_HEARTBEAT_DIR = Path(env.str("WORKER_HEARTBEAT_DIR", default="") or INSTANCE_DIR / "worker-heartbeats")
WORKER_HEARTBEAT_INTERVAL = env.float("WORKER_HEARTBEAT_INTERVAL", default=10.0)
WORKER_HEARTBEAT_STALE_SECONDS = env.int("WORKER_HEARTBEAT_STALE_SECONDS", default=60)
# Every worker runs these reapers itself in a thread, this often (0 = only beat runs them), so a
# job whose worker was killed ends completed or failed within minutes even with no beat running.
WORKER_REAPER_INTERVAL_SECONDS = env.float("WORKER_REAPER_INTERVAL_SECONDS", default=60.0)
WORKER_REAPER_TASKS = ["video.reap_stale_jobs", "ai_services.reap_stale_jobs"]
# Celery keeps Django's logging (same format, request ids) instead of installing its own.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# --- Internationalization --------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Security --------------------------------------------------------------------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
if IS_PRODUCTION:
    # Behind a TLS-terminating proxy that sets X-Forwarded-Proto (and strips it from clients).
    if not ALLOWED_HOSTS:
        raise ImproperlyConfigured("ALLOWED_HOSTS must be set in production (the public host names).")
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    USE_X_FORWARDED_HOST = env.bool("USE_X_FORWARDED_HOST", default=False)
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    # Probes are answered before this redirect anyway (ProbeMiddleware); kept for other setups.
    SECURE_REDIRECT_EXEMPT = [r"^health", r"^metrics$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SESSION_COOKIE_HTTPONLY = True
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
    # Preloading is hard to undo (browsers ship the list): an explicit decision per domain.
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
    SECURE_REFERRER_POLICY = "same-origin"
    SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
    # The admin's forms post from the public origin(s): https on every allowed host by default.
    if not CSRF_TRUSTED_ORIGINS:
        CSRF_TRUSTED_ORIGINS = [
            f"https://{'*' + host if host.startswith('.') else host}" for host in ALLOWED_HOSTS if host != "*"
        ]

# --- Logging ---------------------------------------------------------------------------------
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "config.observability.context.RequestIdFilter"}},
    "formatters": {
        "json": {"()": "config.observability.logs.JsonFormatter"},
        "plain": {"()": "config.observability.logs.PlainFormatter"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["request_id"]},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # The request log (config/observability/requestlog.py) has one line per request already:
        # Django's 4xx warnings would repeat it; its 5xx errors carry the traceback, so they stay.
        # Replaces Django's default console handler (DEBUG only, unformatted) with ours.
        "django": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
        "django.request": {"level": "ERROR"},
        "django.server": {"level": "WARNING"},
        "gunicorn.error": {"level": LOG_LEVEL},
    },
}

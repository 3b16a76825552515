"""The environment reader, paths, the app's identity and environment, the production key checks,
installed apps, middleware, URLs, templates and locale."""

from __future__ import annotations

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

# config/settings/base.py: three levels below the project root.
BASE_DIR = Path(__file__).resolve().parent.parent.parent
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

# --- Internationalization --------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

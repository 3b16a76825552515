"""Who the client is: trusted proxies for the client address, users, passwords, JWTs, Google sign-in."""

from __future__ import annotations

import ipaddress
from datetime import timedelta

from django.core.exceptions import ImproperlyConfigured

from config.settings.base import SECRET_KEY, env

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

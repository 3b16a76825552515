"""HTTP security headers, and in production: HTTPS behind a proxy, secure cookies, HSTS, CSRF origins."""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

from config.settings.base import ALLOWED_HOSTS, CSRF_TRUSTED_ORIGINS, IS_PRODUCTION, env

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

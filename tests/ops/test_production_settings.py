"""Production settings, imported for real in a fresh interpreter (settings are read once per process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Variables the checks below depend on: removed from the inherited environment, then set per case.
_CONTROLLED = (
    "APP_ENVIRONMENT", "DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "CSRF_TRUSTED_ORIGINS", "LOG_FORMAT",
    "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS", "SECURE_HSTS_PRELOAD", "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "USE_X_FORWARDED_HOST", "DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "PROMETHEUS_MULTIPROC_DIR",
    "CLAMAV_ADDRESS", "CLAMAV_WHEN_UNAVAILABLE",
)  # fmt: skip
GOOD = {
    "APP_ENVIRONMENT": "production",
    "SECRET_KEY": "a-real-production-secret-key-0123456789-abcdefghijklmnop",
    "ALLOWED_HOSTS": "api.example.com,.example.org",
}


def run(script: str, **env_vars: str) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key not in _CONTROLLED}
    if env_vars.get("APP_ENVIRONMENT") == "production":
        # Empty values keep a developer's .env file (read with overwrite=False) out of these cases.
        env.update(dict.fromkeys(("SECRET_KEY", "ALLOWED_HOSTS"), ""))
    env.update(env_vars, DJANGO_SETTINGS_MODULE="config.settings", PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


IMPORT = "import django; django.setup()"


def test_production_without_secret_key_refuses_to_start():
    result = run(IMPORT, APP_ENVIRONMENT="production", ALLOWED_HOSTS="api.example.com")
    assert result.returncode != 0
    assert "ImproperlyConfigured: SECRET_KEY must be set in production." in result.stderr


def test_production_refuses_the_development_key():
    dev_key = "dev-insecure-secret-key-only-for-local-development-0123456789"
    result = run(IMPORT, APP_ENVIRONMENT="production", SECRET_KEY=dev_key, ALLOWED_HOSTS="api.example.com")
    assert result.returncode != 0
    assert "SECRET_KEY must be set in production." in result.stderr


def test_production_with_debug_refuses_to_start():
    result = run(IMPORT, **GOOD, DEBUG="true")
    assert result.returncode != 0
    assert "ImproperlyConfigured: DEBUG must be off in production." in result.stderr


def test_production_without_allowed_hosts_refuses_to_start():
    result = run(IMPORT, APP_ENVIRONMENT="production", SECRET_KEY=GOOD["SECRET_KEY"])
    assert result.returncode != 0
    assert "ALLOWED_HOSTS must be set in production" in result.stderr


def test_unknown_log_format_is_refused():
    result = run(IMPORT, LOG_FORMAT="xml")
    assert result.returncode != 0
    assert "LOG_FORMAT must be json or plain." in result.stderr


_DUMP = """
import json, django
django.setup()
from django.conf import settings as s
print(json.dumps({
    "DEBUG": s.DEBUG,
    "SESSION_COOKIE_SECURE": s.SESSION_COOKIE_SECURE,
    "CSRF_COOKIE_SECURE": s.CSRF_COOKIE_SECURE,
    "SESSION_COOKIE_HTTPONLY": s.SESSION_COOKIE_HTTPONLY,
    "SECURE_PROXY_SSL_HEADER": list(s.SECURE_PROXY_SSL_HEADER or []),
    "SECURE_SSL_REDIRECT": s.SECURE_SSL_REDIRECT,
    "SECURE_HSTS_SECONDS": s.SECURE_HSTS_SECONDS,
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": s.SECURE_HSTS_INCLUDE_SUBDOMAINS,
    "SECURE_HSTS_PRELOAD": s.SECURE_HSTS_PRELOAD,
    "SECURE_CONTENT_TYPE_NOSNIFF": s.SECURE_CONTENT_TYPE_NOSNIFF,
    "ALLOWED_HOSTS": s.ALLOWED_HOSTS,
    "CSRF_TRUSTED_ORIGINS": s.CSRF_TRUSTED_ORIGINS,
    "STATICFILES": s.STORAGES["staticfiles"]["BACKEND"],
    "WHITENOISE": "whitenoise.middleware.WhiteNoiseMiddleware" in s.MIDDLEWARE,
    "LOG_FORMAT": s.LOG_FORMAT,
    "FORMATTER": s.LOGGING["handlers"]["console"]["formatter"],
    "BROWSABLE_API": any("Browsable" in r for r in s.REST_FRAMEWORK["DEFAULT_RENDERER_CLASSES"]),
}))
"""


def test_production_turns_the_secure_flags_on():
    result = run(_DUMP, **GOOD)
    assert result.returncode == 0, result.stderr
    flags = json.loads(result.stdout.strip().splitlines()[-1])
    assert flags == {
        "DEBUG": False,
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "SESSION_COOKIE_HTTPONLY": True,
        "SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_PROTO", "https"],
        "SECURE_SSL_REDIRECT": True,
        "SECURE_HSTS_SECONDS": 31536000,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
        "SECURE_HSTS_PRELOAD": False,
        "SECURE_CONTENT_TYPE_NOSNIFF": True,
        "ALLOWED_HOSTS": ["api.example.com", ".example.org"],
        "CSRF_TRUSTED_ORIGINS": ["https://api.example.com", "https://*.example.org"],
        "STATICFILES": "whitenoise.storage.CompressedManifestStaticFilesStorage",
        "WHITENOISE": True,
        "LOG_FORMAT": "json",
        "FORMATTER": "json",
        "BROWSABLE_API": False,
    }


def test_explicit_origins_and_plain_logs_win():
    result = run(_DUMP, **GOOD, CSRF_TRUSTED_ORIGINS="https://admin.example.com", LOG_FORMAT="plain")
    assert result.returncode == 0, result.stderr
    flags = json.loads(result.stdout.strip().splitlines()[-1])
    assert flags["CSRF_TRUSTED_ORIGINS"] == ["https://admin.example.com"]
    assert flags["FORMATTER"] == "plain"


def test_development_defaults_are_relaxed():
    result = run(_DUMP)
    assert result.returncode == 0, result.stderr
    flags = json.loads(result.stdout.strip().splitlines()[-1])
    assert flags["DEBUG"] is True
    assert flags["SESSION_COOKIE_SECURE"] is False
    assert flags["SECURE_PROXY_SSL_HEADER"] == []
    assert flags["LOG_FORMAT"] == "plain"
    assert flags["STATICFILES"] == "django.contrib.staticfiles.storage.StaticFilesStorage"


_BEHIND_PROXY = """
import json, django
django.setup()
from django.test import Client
c = Client()
out = {}
r = c.get("/api/auth/me", HTTP_HOST="api.example.com")
out["plain_http"] = [r.status_code, r.get("Location")]
r = c.get("/api/auth/me", HTTP_HOST="api.example.com", HTTP_X_FORWARDED_PROTO="https")
out["via_tls_proxy"] = [r.status_code, r.get("Strict-Transport-Security"), r.get("X-Content-Type-Options")]
r = c.get("/api/auth/me", HTTP_HOST="evil.example.net", HTTP_X_FORWARDED_PROTO="https")
out["unknown_host"] = r.status_code
r = c.get("/health", HTTP_HOST="172.18.0.5:8000")
out["probe"] = [r.status_code, r.json()["environment"]]
print(json.dumps(out))
"""


def test_behind_a_tls_proxy():
    result = run(_BEHIND_PROXY, **GOOD)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["plain_http"] == [301, "https://api.example.com/api/auth/me"]
    assert out["via_tls_proxy"] == [401, "max-age=31536000; includeSubDomains", "nosniff"]
    assert out["unknown_host"] == 400
    # Container health checks call by address over plain HTTP: answered, no redirect, no host check.
    assert out["probe"] == [200, "production"]
    # And the request lines are JSON on stderr.
    request_lines = [json.loads(line) for line in result.stderr.splitlines() if '"event": "http_request"' in line]
    assert [line["status"] for line in request_lines] == [301, 401, 400]
    assert all(len(line["request_id"]) == 32 for line in request_lines)


def test_empty_values_from_a_copied_env_file_mean_the_defaults():
    result = run(_DUMP, LOG_FORMAT="", WORKER_HEARTBEAT_STORE="", WORKER_HEARTBEAT_DIR="")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1])["LOG_FORMAT"] == "plain"


def test_upload_scanning_settings():
    show = IMPORT + "; from django.conf import settings; print(settings.CLAMAV_WHEN_UNAVAILABLE)"
    assert run(show, **GOOD, CLAMAV_ADDRESS="clamav:3310").stdout.strip() == "refuse"
    assert run(show, CLAMAV_ADDRESS="/run/clamav/clamd.ctl").stdout.strip() == "accept"
    for bad in ("clamav", "http://clamav:3310"):
        result = run(IMPORT, **GOOD, CLAMAV_ADDRESS=bad)
        assert result.returncode != 0
        assert "CLAMAV_ADDRESS must be host:port" in result.stderr
    result = run(IMPORT, CLAMAV_WHEN_UNAVAILABLE="maybe")
    assert "CLAMAV_WHEN_UNAVAILABLE must be 'refuse' or 'accept'." in result.stderr


_METRICS_PROBE = """
import json, django
django.setup()
from django.test import Client
from core.metrics import metrics_access_allowed
from django.conf import settings as s
client = Client(REMOTE_ADDR="127.0.0.1", HTTP_HOST="api.example.com")
print(json.dumps({
    "allowed_ips": s.METRICS_ALLOWED_IPS,
    "loopback_status": client.get("/metrics").status_code,
    "loopback_allowed": metrics_access_allowed(remote_addr="127.0.0.1", authorization=None),
    "token_allowed": metrics_access_allowed(remote_addr="127.0.0.1", authorization="Bearer t0ken-for-prometheus"),
}))
"""


def _metrics_probe(**env_vars: str) -> dict:
    env = {key: value for key, value in os.environ.items() if key.startswith("METRICS_")}
    for key in env:
        os.environ.pop(key)
    try:
        result = run(_METRICS_PROBE, **env_vars)
    finally:
        os.environ.update(env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_production_metrics_need_the_token_even_from_loopback():
    # A reverse proxy on the same host connects from 127.0.0.1: loopback alone must not be enough.
    found = _metrics_probe(**GOOD, METRICS_TOKEN="t0ken-for-prometheus")
    assert found["allowed_ips"] == []
    assert found["loopback_status"] == 403
    assert found["loopback_allowed"] is False
    assert found["token_allowed"] is True


def test_production_metrics_allow_list_only_when_set_explicitly():
    found = _metrics_probe(**GOOD, METRICS_ALLOWED_IPS="127.0.0.1")
    assert found["allowed_ips"] == ["127.0.0.1"]
    assert found["loopback_allowed"] is True


def test_development_metrics_default_to_loopback():
    found = _metrics_probe()
    assert found["allowed_ips"] == ["127.0.0.1", "::1"]
    assert found["loopback_allowed"] is True

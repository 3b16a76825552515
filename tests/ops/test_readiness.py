"""`/health/ready` with each dependency really down: nothing here replaces a check function."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from django.db import OperationalError, connections
from django.test import override_settings

from config import health
from config.observability.heartbeat import heartbeat_clear, heartbeat_latest, heartbeat_write
from tests.net import closed_port

pytestmark = pytest.mark.django_db


def ready(api) -> tuple[int, dict]:
    response = api.get("/health/ready")
    return response.status_code, response.json()


@pytest.fixture
def worker_alive() -> None:
    heartbeat_write(hostname="celery@ops-test")


def test_all_up_reports_the_worker_that_beat(api, worker_alive):
    status, body = ready(api)
    assert status == 200, body
    assert body["status"] == "OK"
    assert "failing" not in body
    assert {name: check["status"] for name, check in body["checks"].items()} == dict.fromkeys(
        ("database", "cache", "broker", "worker", "ffmpeg"), "up"
    )
    assert body["checks"]["worker"]["hostname"] == "celery@ops-test"
    assert 0 <= body["checks"]["worker"]["age"] < 60


def test_no_heartbeat_means_the_worker_is_down_until_one_beats(api):
    status, body = ready(api)
    assert status == 503
    assert body["status"] == "UNAVAILABLE"
    assert body["failing"] == ["worker"]
    assert body["checks"]["worker"] == {"status": "down", "error": "CheckFailed", "detail": "no worker heartbeat"}

    heartbeat_write(hostname="celery@late-starter")
    status, body = ready(api)
    assert status == 200, body


def test_a_stale_heartbeat_is_down(api, settings):
    settings.WORKER_HEARTBEAT_STALE_SECONDS = 60
    heartbeat_write(hostname="celery@frozen", at=time.time() - 61)
    status, body = ready(api)
    assert status == 503
    assert body["failing"] == ["worker"]
    assert "stale after 60s" in body["checks"]["worker"]["detail"]

    heartbeat_write(hostname="celery@fresh")
    assert ready(api)[0] == 200


def test_the_newest_of_several_workers_counts(settings):
    now = time.time()
    heartbeat_write(hostname="celery@a", at=now - 30)
    heartbeat_write(hostname="celery@b", at=now - 5)
    assert heartbeat_latest().hostname == "celery@b"
    heartbeat_clear(hostname="celery@b")
    if settings.WORKER_HEARTBEAT_STORE == "file":
        # Files are per worker: the other one is still there.
        assert heartbeat_latest().hostname == "celery@a"
    else:
        # The cache keeps only the latest beat; the next beat of `a` (every few seconds) restores it.
        assert heartbeat_latest() is None


def test_heartbeat_store_follows_the_cache_kind(settings):
    expected = "cache" if settings.REDIS_URL else "file"
    assert expected == settings.WORKER_HEARTBEAT_STORE
    beat = heartbeat_write(hostname="celery@x/../y")  # odd host names stay inside the folder
    assert heartbeat_latest() == beat
    if expected == "file":
        files = list(settings.WORKER_HEARTBEAT_DIR.glob("*.json"))
        assert [path.parent for path in files] == [settings.WORKER_HEARTBEAT_DIR]


def test_cache_down(api, settings, worker_alive):
    dead_redis = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{closed_port()}/0",
            "OPTIONS": {"CLIENT_CLASS": "django_redis.client.DefaultClient", "SOCKET_CONNECT_TIMEOUT": 1},
        }
    }
    # Scoped to the request: the suite's own fixtures clear the real cache afterwards.
    with override_settings(CACHES=dead_redis):
        status, body = ready(api)
    assert status == 503
    assert "cache" in body["failing"]
    assert body["checks"]["cache"]["status"] == "down"
    assert body["checks"]["database"]["status"] == "up"
    assert body["checks"]["broker"]["status"] == "up"
    # With Redis as the heartbeat store, a dead cache also hides the worker's beat.
    expected = ["cache", "worker"] if settings.WORKER_HEARTBEAT_STORE == "cache" else ["cache"]
    assert body["failing"] == expected


def test_broker_down(api, settings, worker_alive):
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{closed_port()}/0"
    status, body = ready(api)
    assert status == 503
    assert body["failing"] == ["broker"]
    assert body["checks"]["broker"]["status"] == "down"
    # A driver's error text may name hosts: only its type is shown.
    assert set(body["checks"]["broker"]) == {"status", "error"}


@pytest.fixture
def database_unreachable(transactional_db, tmp_path) -> Iterator[None]:
    """The default database really unreachable: PostgreSQL on a port nothing listens on, or a SQLite
    file in a folder that does not exist. No wrapping transaction (transactional_db), so the
    connection can be closed and reopened against the dead target, then restored."""
    connection = connections["default"]
    connection.close()
    saved = dict(connection.settings_dict)
    if connection.vendor == "sqlite":
        connection.settings_dict["NAME"] = str(tmp_path / "no-such-folder" / "db.sqlite3")
    else:
        connection.settings_dict.update(HOST="127.0.0.1", PORT=str(closed_port()))
        connection.settings_dict["OPTIONS"] = {**saved.get("OPTIONS", {}), "connect_timeout": 2}
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(saved)


def test_database_check_fails_on_a_dead_server(database_unreachable):
    with pytest.raises(OperationalError):
        health.check_database("default")


def test_database_down(api, database_unreachable, worker_alive):
    status, body = ready(api)
    assert status == 503
    assert body["failing"] == ["database"]
    assert body["checks"]["database"] == {"status": "down", "error": "OperationalError"}


def test_several_failures_are_all_named(api, settings, database_unreachable):
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{closed_port()}/0"
    status, body = ready(api)
    assert status == 503
    assert body["failing"] == ["database", "broker", "worker"]


def test_the_database_comes_back(api, worker_alive):
    health.check_database("default")
    assert ready(api)[0] == 200


def test_ready_skips_host_validation(api, settings, worker_alive):
    settings.ALLOWED_HOSTS = ["api.example.com"]
    assert api.get("/health/ready", HTTP_HOST="10.1.2.3:8000").status_code == 200


def test_only_get(api):
    assert api.post("/health/ready").status_code == 405
    assert api.post("/health").status_code == 405

"""`/metrics`: what it exposes after real traffic, the scrape-time gauges, and who may read it."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from core import metrics
from tests.net import closed_port

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.django_db


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    out: dict[tuple[str, frozenset], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def value(text: str, name: str, **labels: str) -> float | None:
    return samples(text).get((name, frozenset(labels.items())))


def scrape(api, **extra) -> str:
    response = api.get("/metrics", **extra)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    return response.content.decode()


# --- Content ------------------------------------------------------------------------------------


def test_requests_are_counted_by_route_not_by_path(api, client_a):
    before = scrape(api)
    session_ids = [uuid.uuid4(), uuid.uuid4()]
    for session_id in session_ids:
        assert client_a.delete(f"/api/auth/sessions/{session_id}").status_code == 404
    assert client_a.get("/api/auth/me").status_code == 200
    assert api.get("/api/nothing-here").status_code == 404
    after = scrape(api)

    route = "api/auth/sessions/<uuid:session_id>"
    counted = value(after, "mma_http_requests_total", method="DELETE", route=route, status="404")
    assert counted == (value(before, "mma_http_requests_total", method="DELETE", route=route, status="404") or 0) + 2
    assert value(after, "mma_http_requests_total", method="GET", route="api/auth/me", status="200") >= 1
    assert value(after, "mma_http_requests_total", method="GET", route="<unmatched>", status="404") >= 1
    assert not any(str(session_id) in after for session_id in session_ids)
    assert value(after, "mma_http_request_duration_seconds_count", method="GET", route="api/auth/me", status="200") >= 1
    me = {"method": "GET", "route": "api/auth/me", "status": "200"}
    assert value(after, "mma_http_request_duration_seconds_bucket", le="+Inf", **me) >= 1


def test_helper_metrics_show_up(api):
    tag = uuid.uuid4().hex[:8]
    metrics.record_ai_call(kind="chat", provider=f"p{tag}", status="ok", tokens=42)
    metrics.record_ai_call(kind="chat", provider=f"p{tag}", status="error")
    metrics.record_units_charged(service=f"s{tag}", units=5)
    metrics.record_units_charged(service=f"s{tag}", units=-2)
    metrics.record_units_charged(service=f"s{tag}", units=0)
    metrics.record_video_job(status=f"completed{tag}", seconds=12.5)
    metrics.record_video_job(status=f"queued{tag}")
    text = scrape(api)

    assert value(text, "mma_ai_calls_total", kind="chat", provider=f"p{tag}", status="ok") == 1
    assert value(text, "mma_ai_calls_total", kind="chat", provider=f"p{tag}", status="error") == 1
    assert value(text, "mma_ai_tokens_total", kind="chat", provider=f"p{tag}") == 42
    assert value(text, "mma_quota_units_charged_total", service=f"s{tag}") == 5
    assert value(text, "mma_quota_units_returned_total", service=f"s{tag}") == 2
    assert value(text, "mma_video_jobs_total", status=f"completed{tag}") == 1
    assert value(text, "mma_video_jobs_total", status=f"queued{tag}") == 1
    assert value(text, "mma_video_processing_seconds_sum", status=f"completed{tag}") == 12.5
    assert value(text, "mma_video_processing_seconds_count", status=f"queued{tag}") is None


def test_label_values_are_bounded():
    from quotas.modalities import Service

    metrics.record_units_charged(service=Service.CHAT, units=1)
    metrics.record_ai_call(kind="k" * 500, provider="", status="ok")
    text = metrics.render_metrics(scrape_time_gauges=False).decode()
    assert value(text, "mma_quota_units_charged_total", service="chat") >= 1
    assert value(text, "mma_ai_calls_total", kind="k" * 64, provider="unknown", status="ok") >= 1


def test_quota_usage_distribution_is_read_from_the_database(api, make_user):
    from quotas.models import QuotaAccount
    from quotas.services import quota_account_create

    for used in (0, 10, 49, 50, 79, 80, 99, 100, 130):
        account = quota_account_create(user=make_user())
        QuotaAccount.objects.filter(pk=account.pk).update(used=used, limit=100)
    total_used = sum(QuotaAccount.objects.values_list("used", flat=True))
    text = scrape(api)

    assert value(text, "mma_quota_accounts", usage="under_50") == 3
    assert value(text, "mma_quota_accounts", usage="from_50_to_80") == 2
    assert value(text, "mma_quota_accounts", usage="from_80_to_100") == 2
    assert value(text, "mma_quota_accounts", usage="exhausted") == 2
    assert value(text, "mma_quota_units", kind="used") == total_used
    assert value(text, "mma_quota_units", kind="limit") == 900
    assert value(text, "mma_scrape_source_up", source="database") == 1


def _publish(broker_url: str, count: int) -> None:
    from config.celery import app

    with app.connection_for_write(url=broker_url) as conn:
        app.amqp.queues[app.conf.task_default_queue](conn.default_channel).declare()
        for _ in range(count):
            app.send_task("ops_test.never_consumed", kwargs={"job_id": "q"}, connection=conn)


def _purge(broker_url: str) -> None:
    from config.celery import app

    with app.connection_for_write(url=broker_url) as conn:
        conn.default_channel.queue_purge(app.conf.task_default_queue)


@pytest.fixture
def broker_url(settings, tmp_path) -> str:
    """The suite's Redis (its own database number) or a SQLite broker file of this test's own."""
    url = settings.CELERY_BROKER_URL if settings.CELERY_BROKER_URL.startswith("redis") else None
    url = url or f"sqla+sqlite:///{tmp_path / 'broker.sqlite3'}"
    settings.CELERY_BROKER_URL = url
    _purge(url)
    yield url
    _purge(url)


def test_queue_depth_is_read_from_the_broker(api, broker_url):
    from config.celery import app

    queue = app.conf.task_default_queue
    assert value(scrape(api), "mma_celery_queue_depth", queue=queue) == 0
    _publish(broker_url, 3)
    text = scrape(api)
    assert value(text, "mma_celery_queue_depth", queue=queue) == 3
    assert value(text, "mma_scrape_source_up", source="broker") == 1


def test_extra_queues_are_reported(api, broker_url, settings):
    settings.METRICS_EXTRA_QUEUES = ["video-heavy"]
    assert value(scrape(api), "mma_celery_queue_depth", queue="video-heavy") == 0


def test_a_broker_that_is_down_does_not_break_the_scrape(api, settings):
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{closed_port()}/0"
    text = scrape(api)
    assert value(text, "mma_scrape_source_up", source="broker") == 0
    assert not [key for key in samples(text) if key[0] == "mma_celery_queue_depth"]
    assert value(text, "mma_scrape_source_up", source="database") == 1


def test_an_unknown_broker_scheme_is_reported_as_down(api, settings):
    settings.CELERY_BROKER_URL = "memory://"
    assert value(scrape(api), "mma_scrape_source_up", source="broker") == 0


# --- Protection ---------------------------------------------------------------------------------


def test_loopback_is_allowed_by_default(api):
    assert api.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 200
    assert api.get("/metrics", REMOTE_ADDR="::1").status_code == 200
    assert api.get("/metrics", REMOTE_ADDR="::ffff:127.0.0.1").status_code == 200


def test_other_addresses_are_refused(api):
    response = api.get("/metrics", REMOTE_ADDR="203.0.113.9")
    assert response.status_code == 403
    assert b"mma_" not in response.content
    # A forwarded header is whatever the client wrote: it does not count.
    assert api.get("/metrics", REMOTE_ADDR="203.0.113.9", HTTP_X_FORWARDED_FOR="127.0.0.1").status_code == 403


def test_allowed_networks(api, settings):
    settings.METRICS_ALLOWED_IPS = ["10.0.0.0/8", "2001:db8::/32"]
    assert api.get("/metrics", REMOTE_ADDR="10.20.30.40").status_code == 200
    assert api.get("/metrics", REMOTE_ADDR="2001:db8::5").status_code == 200
    assert api.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 403
    assert api.get("/metrics", REMOTE_ADDR="not-an-ip").status_code == 403


def test_bearer_token(api, settings):
    settings.METRICS_TOKEN = "s3cret-metrics-token"
    settings.METRICS_ALLOWED_IPS = []
    outside = {"REMOTE_ADDR": "198.51.100.7"}
    assert api.get("/metrics", **outside).status_code == 403
    assert api.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 403  # empty list: token only
    assert api.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong-token", **outside).status_code == 403
    assert api.get("/metrics", HTTP_AUTHORIZATION="Basic s3cret-metrics-token", **outside).status_code == 403
    assert api.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-metrics-token", **outside).status_code == 200


def test_no_token_configured_means_no_token_accepted(api, settings):
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_IPS = []
    assert api.get("/metrics", HTTP_AUTHORIZATION="Bearer ", REMOTE_ADDR="127.0.0.1").status_code == 403


def test_only_get(api):
    assert api.post("/metrics").status_code == 405


def test_metrics_skip_host_validation_and_https_redirect(api, settings):
    # Prometheus scrapes by container address over plain HTTP.
    settings.ALLOWED_HOSTS = ["api.example.com"]
    settings.SECURE_SSL_REDIRECT = True
    assert api.get("/metrics", HTTP_HOST="172.18.0.5:8000").status_code == 200
    assert api.get("/health", HTTP_HOST="172.18.0.5:8000").status_code == 200
    assert api.get("/api/auth/me", HTTP_HOST="172.18.0.5:8000").status_code == 400  # everything else: checked


# --- Several processes --------------------------------------------------------------------------

_RECORD = """
from core import metrics
metrics.record_ai_call(kind="vision", provider="multi", status="ok", tokens=7)
metrics.record_video_job(status="completed", seconds=3.0)
"""
_RENDER = """
import sys
from core import metrics
sys.stdout.write(metrics.render_metrics(scrape_time_gauges=False).decode())
"""


def test_multiprocess_mode_adds_up_every_process(tmp_path):
    """gunicorn workers and Celery pool processes each write their counts; any of them can serve the sum."""
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for _ in range(3):
        subprocess.run([sys.executable, "-c", _RECORD], cwd=ROOT, env=env, check=True, timeout=60)
    assert len(list(tmp_path.glob("*.db"))) >= 3
    text = subprocess.run(
        [sys.executable, "-c", _RENDER], cwd=ROOT, env=env, check=True, timeout=60, capture_output=True, text=True
    ).stdout
    assert value(text, "mma_ai_calls_total", kind="vision", provider="multi", status="ok") == 3
    assert value(text, "mma_ai_tokens_total", kind="vision", provider="multi") == 21
    assert value(text, "mma_video_processing_seconds_count", status="completed") == 3

    reset = "from core import metrics; metrics.multiprocess_dir_reset()"
    subprocess.run([sys.executable, "-c", reset], cwd=ROOT, env=env, check=True, timeout=60)
    assert not list(tmp_path.glob("*.db"))


def test_quota_ledger_moves_are_counted(user):
    """quotas.services reports every ledger movement: charges, raises at settle, returns and refunds."""
    from prometheus_client import REGISTRY

    from quotas.modalities import Service
    from quotas.services import quota_reserve, reservation_refund, reservation_settle

    def counts() -> tuple[float, float]:
        labels = {"service": Service.VISION.value}
        charged = REGISTRY.get_sample_value("mma_quota_units_charged_total", labels) or 0
        returned = REGISTRY.get_sample_value("mma_quota_units_returned_total", labels) or 0
        return charged, returned

    start_charged, start_returned = counts()
    first = quota_reserve(user=user, service=Service.VISION, units=6)
    reservation_settle(reservation=first, units=4)  # 2 back
    second = quota_reserve(user=user, service=Service.VISION, units=3)
    reservation_settle(reservation=second, units=5)  # 2 more
    third = quota_reserve(user=user, service=Service.VISION, units=3)
    reservation_refund(reservation=third)  # all 3 back
    charged, returned = counts()
    assert charged - start_charged == 6 + 3 + 2 + 3
    assert returned - start_returned == 2 + 3

"""A real Celery worker process: its heartbeat reaches /health/ready, its tasks write start/finish/
failure lines with the job id and the request id of the request that queued them, and its own
metrics/health endpoint answers. Then it stops and its heartbeat goes away."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from config.observability.context import request_id_reset, request_id_set
from config.observability.heartbeat import heartbeat_latest
from tests.net import free_port

ROOT = Path(__file__).resolve().parents[2]
WAIT_SECONDS = 60  # an upper bound for a loaded machine, not a timing assertion

pytestmark = pytest.mark.django_db


def wait_for(what: str, probe: Callable[[], object], proc: subprocess.Popen, log: Path) -> object:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        result = probe()
        if result:
            return result
        if proc.poll() is not None:
            pytest.fail(f"worker exited ({proc.returncode}) before {what}:\n{log.read_text()[-4000:]}")
        time.sleep(0.2)
    pytest.fail(f"no {what} within {WAIT_SECONDS}s:\n{log.read_text()[-4000:]}")


def http_get(url: str, **headers: str) -> tuple[int, str]:
    request = urllib.request.Request(url, headers=headers)  # noqa: S310  (a local URL built here)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@dataclass
class Worker:
    proc: subprocess.Popen
    log: Path
    broker_url: str
    hostname: str
    metrics_port: int

    def lines(self) -> list[dict]:
        out = []
        for raw in self.log.read_text().splitlines():
            if raw.startswith("{"):
                try:
                    out.append(json.loads(raw))
                except ValueError:
                    continue
        return out

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # warm shutdown, as Docker and systemd stop it
            try:
                self.proc.wait(timeout=WAIT_SECONDS)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        return self.proc.returncode


@pytest.fixture
def worker(request, settings, tmp_path) -> Iterator[Worker]:
    # Redis suite: the suite's own Redis database. Embedded suite: a broker file of this test's own.
    broker_url = settings.CELERY_BROKER_URL if settings.REDIS_URL else f"sqla+sqlite:///{tmp_path / 'broker.sqlite3'}"
    settings.CELERY_BROKER_URL = broker_url
    queue = f"ops-test-{uuid.uuid4().hex[:8]}"
    hostname = f"{queue}@localhost"
    port = free_port()
    log = tmp_path / "worker.log"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "CELERY_BROKER_URL": broker_url,
        "WORKER_HEARTBEAT_DIR": str(settings.WORKER_HEARTBEAT_DIR),
        "INSTANCE_DIR": str(settings.INSTANCE_DIR),
        "WORKER_HEARTBEAT_INTERVAL": "0.5",
        "WORKER_METRICS_PORT": str(port),
        "WORKER_METRICS_ADDRESS": "127.0.0.1",
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "INFO",
        **getattr(request, "param", {}),  # per-test settings (indirect parametrization)
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    command = [
        sys.executable, "-m", "celery", "-A", "config", "worker",
        "--pool=solo", "--without-mingle", "--without-gossip", "--without-heartbeat",
        "-n", hostname, "-Q", queue, "-I", "tests.ops.worker_tasks", "--loglevel=INFO",
    ]  # fmt: skip
    with log.open("w") as handle:
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT)
    handle = Worker(proc=proc, log=log, broker_url=broker_url, hostname=hostname, metrics_port=port)
    handle.queue = queue
    try:
        yield handle
    finally:
        handle.stop()


def send(worker: Worker, name: str, job_id: str) -> None:
    from config.celery import app

    with app.connection_for_write(url=worker.broker_url) as conn:
        app.send_task(name, kwargs={"job_id": job_id}, queue=worker.queue, connection=conn)


def test_worker_heartbeat_tasks_logs_and_shutdown(worker, api):
    beat = wait_for("heartbeat", heartbeat_latest, worker.proc, worker.log)
    assert beat.hostname == worker.hostname

    response = api.get("/health/ready")
    assert response.status_code == 200, response.content
    assert response.json()["checks"]["worker"]["hostname"] == worker.hostname

    # The worker's own endpoint, as the compose health check and Prometheus use it.
    base = f"http://127.0.0.1:{worker.metrics_port}"
    assert wait_for("worker health endpoint", lambda: http_get(f"{base}/health")[0] == 200, worker.proc, worker.log)
    assert http_get(f"{base}/nothing")[0] == 404

    # Tasks queued "during a request" carry its id to the worker's log lines.
    token = request_id_set("req-from-web-0001")
    try:
        send(worker, "ops_test.echo", "job-42")
        send(worker, "ops_test.fail", "job-43")
    finally:
        request_id_reset(token)

    def finished() -> list[dict]:
        return [
            line for line in worker.lines() if line.get("event") == "task_finished" and line.get("job_id") == "job-43"
        ]

    wait_for("task lines", finished, worker.proc, worker.log)
    by_event = {(line["event"], line.get("job_id")): line for line in worker.lines() if line.get("event")}

    started = by_event[("task_started", "job-42")]
    assert started["task"] == "ops_test.echo"
    assert started["request_id"] == "req-from-web-0001"
    assert started["logger"] == "celery.tasks"
    done = by_event[("task_finished", "job-42")]
    assert done["state"] == "SUCCESS"
    assert done["task_id"] == started["task_id"]
    assert done["duration_ms"] >= 0
    assert done["request_id"] == "req-from-web-0001"

    failed = by_event[("task_failed", "job-43")]
    assert failed["level"] == "ERROR"
    assert failed["task"] == "ops_test.fail"
    assert failed["error"] == "ValueError: job job-43 cannot be processed"
    assert failed["request_id"] == "req-from-web-0001"
    assert by_event[("task_finished", "job-43")]["state"] == "FAILURE"

    status, text = http_get(f"{base}/metrics")
    assert status == 200
    assert 'mma_celery_tasks_total{state="succeeded",task="ops_test.echo"} 1.0' in text
    assert 'mma_celery_tasks_total{state="failed",task="ops_test.fail"} 1.0' in text
    assert "mma_celery_task_duration_seconds_count" in text

    assert worker.stop() == 0
    assert heartbeat_latest() is None, "a worker that stopped cleanly removes its heartbeat"
    response = api.get("/health/ready")
    assert response.status_code == 503
    assert response.json()["failing"] == ["worker"]


@pytest.mark.parametrize("worker", [{"METRICS_TOKEN": "worker-scrape-token", "METRICS_ALLOWED_IPS": ""}], indirect=True)
def test_worker_metrics_endpoint_requires_the_token(worker):
    wait_for("heartbeat", heartbeat_latest, worker.proc, worker.log)
    base = f"http://127.0.0.1:{worker.metrics_port}"
    # The endpoint is bound before the first beat, so a refused connection here fails the test.
    # /health stays open for the container's own health check.
    assert wait_for("worker health endpoint", lambda: http_get(f"{base}/health")[0] == 200, worker.proc, worker.log)
    assert http_get(f"{base}/metrics")[0] == 403

    status, text = http_get(f"{base}/metrics", Authorization="Bearer worker-scrape-token")
    assert status == 200
    assert "# TYPE mma_celery_tasks_total counter" in text
    # Queue depth and quota gauges come from the web only (no double counting across workers).
    assert "mma_celery_queue_depth" not in text

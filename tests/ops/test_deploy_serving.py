"""The image's command served for real: health, metrics and JSON logs from gunicorn started as the
image starts it, and the HEALTHCHECK command against a live server."""

from __future__ import annotations

import http.client
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.net import closed_port
from tests.ops.deploy_files import (
    ROOT,
    WAIT_SECONDS,
    Dockerfile,
    parse_dockerfile,
    runtime_env,
)


@pytest.fixture(scope="module")
def dockerfile() -> Dockerfile:
    return parse_dockerfile(ROOT / "Dockerfile")


def _wait_healthy(env: dict[str, str], proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        # The image's HEALTHCHECK command, as Docker runs it.
        check = subprocess.run([sys.executable, "-m", "config.healthcheck"], env=env, capture_output=True, timeout=30)
        if check.returncode == 0:
            return
        if proc.poll() is not None:
            pytest.fail(f"gunicorn exited ({proc.returncode}):\n{log.read_text()[-4000:]}")
        time.sleep(0.3)
    pytest.fail(f"gunicorn not healthy within {WAIT_SECONDS}s:\n{log.read_text()[-4000:]}")


def _get(port: int, path: str, **headers: str) -> tuple[int, str]:
    """One request, redirects not followed (the HTTPS redirect is what some cases check)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


def test_the_image_command_serves_health_metrics_and_json_logs(dockerfile, tmp_path):
    """gunicorn as the image starts it (CMD, config/gunicorn.py, production settings, two workers,
    multiprocess metrics): the HEALTHCHECK command passes, counts add up across workers, logs are JSON."""
    port = closed_port()
    token = "metrics-token-for-the-image-test"
    env = runtime_env(dockerfile, tmp_path, PORT=str(port), WEB_CONCURRENCY="2", METRICS_TOKEN=token)
    env.pop("METRICS_ALLOWED_IPS", None)
    multiproc = Path(env["PROMETHEUS_MULTIPROC_DIR"])
    multiproc.mkdir()
    (multiproc / "counter_999999.db").write_bytes(b"left over from a previous run")
    cmd = json.loads(next(item.args for item in dockerfile.stage("runtime") if item.keyword == "CMD"))
    log = tmp_path / "gunicorn.log"
    with log.open("w") as handle:
        proc = subprocess.Popen(
            [sys.executable, "-m", *cmd], cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT
        )
    try:
        _wait_healthy(env, proc, log)
        assert not (multiproc / "counter_999999.db").exists(), "stale counter files are removed at start"
        for _ in range(6):
            assert _get(port, "/health")[0] == 200
        proxied = {"Host": "api.example.com", "X-Forwarded-Proto": "https", "X-Request-ID": "gunicorn-test-0001"}
        assert _get(port, "/api/auth/me", **proxied)[0] == 401
        assert _get(port, "/api/auth/me", Host="api.example.com")[0] == 301  # plain HTTP: to https

        # Production trusts no address by default, loopback included (a proxy on the host is loopback).
        assert _get(port, "/metrics")[0] == 403
        status, text = _get(port, "/metrics", Authorization=f"Bearer {token}")
        assert status == 200
        counted = {
            (sample.labels.get("route"), sample.labels.get("status")): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "mma_http_requests_total"
        }
        # Health checks hit both workers; the sum comes back whichever worker answers the scrape.
        assert counted[("health", "200")] >= 6
        assert counted[("api/auth/me", "401")] == 1
        # The redirect happens before URL resolution: counted, under the bounded "unmatched" route.
        assert counted[("<unmatched>", "301")] == 1

        # The HEALTHCHECK command fails when nothing answers.
        dead = subprocess.run(
            [sys.executable, "-m", "config.healthcheck"], env={**env, "PORT": str(closed_port())}, timeout=30
        )
        assert dead.returncode == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=WAIT_SECONDS)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    assert any(line["logger"] == "gunicorn.error" and "Listening at" in line["message"] for line in lines)
    request = next(line for line in lines if line.get("request_id") == "gunicorn-test-0001")
    assert request["event"] == "http_request"
    assert request["status"] == 401
    assert request["path"] == "/api/auth/me"


def test_healthcheck_command_against_a_live_server(live_server):
    run = [sys.executable, "-m", "config.healthcheck"]
    assert subprocess.run([*run, f"{live_server.url}/health"], timeout=30).returncode == 0
    # No worker heartbeat here: readiness answers 503 and the check fails.
    assert subprocess.run([*run, f"{live_server.url}/health/ready"], timeout=30, capture_output=True).returncode == 1
    assert subprocess.run([*run, "file:///etc/passwd"], timeout=30, capture_output=True).returncode == 2

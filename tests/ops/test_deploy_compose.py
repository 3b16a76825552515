"""docker-compose.yml checked without a Docker engine: services and pinned versions, secrets, health
checks, volumes, the app's environment and commands, ports, and Django's deployment checks."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from django.conf import settings

from tests.ops.deploy_files import (
    APP_SERVICES,
    COMPOSE,
    DEPLOY,
    MONITORING,
    ROOT,
    SAMPLE_ENV,
    Dockerfile,
    environment,
    has_healthcheck,
    interpolate,
    load_yaml,
    parse_dockerfile,
    stack,
)


@pytest.fixture(scope="module")
def dockerfile() -> Dockerfile:
    return parse_dockerfile(ROOT / "Dockerfile")


def test_compose_has_the_services_with_pinned_major_versions():
    services = stack(COMPOSE)["services"]
    assert set(services) == APP_SERVICES | {"postgres", "redis", "clamav"}
    assert services["postgres"]["image"].startswith("postgres:16")
    assert services["redis"]["image"].startswith("redis:7")
    for name in APP_SERVICES:
        assert services[name]["build"] == {"context": ".", "dockerfile": "Dockerfile"}
        assert (ROOT / services[name]["build"]["context"] / services[name]["build"]["dockerfile"]).is_file()
        assert services[name]["env_file"] == [{"path": ".env", "required": False}]


def test_compose_needs_a_secret_key_but_nothing_else():
    raw = load_yaml(COMPOSE)
    with pytest.raises(KeyError, match="SECRET_KEY"):
        interpolate(raw, {})
    interpolate(raw, {"SECRET_KEY": "x"})


def test_clamav_service_is_opt_in_and_takes_the_largest_upload():
    services = stack(COMPOSE)["services"]
    clamav = services["clamav"]
    assert clamav["image"].startswith("clamav/clamav:1.")
    assert clamav["profiles"] == ["clamav"]
    assert has_healthcheck(clamav)
    for name in APP_SERVICES:
        env = environment(services[name])
        assert env["CLAMAV_ADDRESS"] == ""  # off until the operator sets it
        assert env["CLAMAV_WHEN_UNAVAILABLE"] == "refuse"
    mounted = next(v for v in clamav["volumes"] if v.endswith(":/etc/clamav/clamd.conf:ro"))
    config = dict(
        line.split(None, 1)
        for line in (ROOT / mounted.split(":", 1)[0]).read_text().splitlines()
        if line.strip() and not line.startswith("#")
    )
    assert config["TCPSocket"] == "3310"
    stream_max = int(config["StreamMaxLength"].rstrip("M")) * 1024 * 1024
    assert stream_max > settings.VIDEO_MAX_UPLOAD_BYTES


@pytest.mark.parametrize("files", [(COMPOSE,), (COMPOSE, MONITORING)], ids=["base", "with-monitoring"])
def test_depends_on_conditions_point_at_services_that_can_meet_them(files):
    services = stack(*files)["services"]
    for name, service in services.items():
        for target, rule in (service.get("depends_on") or {}).items():
            assert target in services, f"{name} depends on unknown {target}"
            condition = rule["condition"]
            if condition == "service_healthy":
                assert has_healthcheck(services[target]), f"{name} waits for {target}, which has no health check"
            elif condition == "service_completed_successfully":
                assert services[target].get("restart") == "no", f"{target} must run once"
                assert services[target].get("command")
            else:
                assert condition == "service_started"


def test_every_long_running_service_has_a_health_check_or_a_reason():
    services = stack(COMPOSE, MONITORING)["services"]
    # beat serves nothing to probe; migrate exits; node-exporter's image has no shell tools.
    unchecked = {name for name, service in services.items() if not has_healthcheck(service)}
    assert unchecked == {"beat", "migrate", "node-exporter"}
    for name in ("beat", "migrate"):
        # The image's HEALTHCHECK probes the web port: these must switch it off, not inherit it.
        assert services[name]["healthcheck"] == {"disable": True}


@pytest.mark.parametrize("files", [(COMPOSE,), (COMPOSE, MONITORING)], ids=["base", "with-monitoring"])
def test_volumes_are_declared_used_and_bind_mounts_exist(files):
    config = stack(*files)
    declared = set(config.get("volumes") or {})
    used: set[str] = set()
    for name, service in config["services"].items():
        for volume in service.get("volumes") or []:
            source = volume.split(":", 1)[0]
            if source.startswith(("./", "/")):
                if source.startswith("./"):
                    assert (ROOT / source).exists(), f"{name} mounts missing {source}"
                continue
            assert source in declared, f"{name} uses undeclared volume {source}"
            used.add(source)
    assert used == declared


def test_database_and_media_live_on_named_volumes():
    services = stack(COMPOSE)["services"]
    assert "pgdata:/var/lib/postgresql/data" in services["postgres"]["volumes"]
    for name in ("web", "worker"):
        media_root = environment(services[name])["MEDIA_ROOT"]
        assert f"media:{media_root}" in services[name]["volumes"]


def test_app_environment_points_at_the_compose_services():
    services = stack(COMPOSE)["services"]
    postgres = environment(services["postgres"])
    for name in APP_SERVICES:
        env = environment(services[name])
        assert env["APP_ENVIRONMENT"] == "production"
        assert env["DEBUG"] == "false"
        assert env["SECRET_KEY"] == SAMPLE_ENV["SECRET_KEY"]
        expected_db = f"postgres://{postgres['POSTGRES_USER']}:{postgres['POSTGRES_PASSWORD']}@postgres:5432/{postgres['POSTGRES_DB']}"
        assert env["DATABASE_URL"] == expected_db
        assert env["REDIS_URL"].startswith("redis://redis:6379/")
        assert env["LOG_FORMAT"] == "json"


def test_commands_are_the_images_processes(dockerfile):
    services = stack(COMPOSE)["services"]
    cmd = json.loads(next(item.args for item in dockerfile.stage("runtime") if item.keyword == "CMD"))
    assert services["web"]["command"] == cmd
    assert services["worker"]["command"][:5] == ["celery", "-A", "config", "worker", "--loglevel=INFO"]
    assert services["beat"]["command"][:4] == ["celery", "-A", "config", "beat"]
    schedule = services["beat"]["command"][services["beat"]["command"].index("--schedule") + 1]
    assert schedule.startswith("/app/var/"), "beat writes its schedule where the app user may write"
    assert services["migrate"]["command"] == ["python", "manage.py", "migrate", "--noinput"]


def test_ports_agree_between_compose_image_and_prometheus(dockerfile):
    services = stack(COMPOSE)["services"]
    port = dockerfile.env("runtime")["PORT"]
    assert any(str(item).endswith(f":{port}") for item in services["web"]["ports"])
    assert services["web"]["healthcheck"]["test"] == ["CMD", "python", "-m", "config.healthcheck"]
    worker_port = environment(services["worker"])["WORKER_METRICS_PORT"]
    assert services["worker"]["healthcheck"]["test"][-1] == f"http://127.0.0.1:{worker_port}/health"

    jobs = {job["job_name"]: job for job in load_yaml(DEPLOY / "prometheus/prometheus.yml")["scrape_configs"]}
    assert jobs["web"]["dns_sd_configs"][0]["names"] == ["web"]
    assert str(jobs["web"]["dns_sd_configs"][0]["port"]) == port
    assert jobs["worker"]["dns_sd_configs"][0]["names"] == ["worker"]
    assert str(jobs["worker"]["dns_sd_configs"][0]["port"]) == worker_port


_CHECK_DEPLOY = [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"]


def test_compose_environment_passes_djangos_deployment_checks(tmp_path):
    env_web = environment(stack(COMPOSE)["services"]["web"])
    env = {key: value for key, value in os.environ.items() if key not in env_web}
    env.update(env_web, PYTHONPATH=str(ROOT), PROMETHEUS_MULTIPROC_DIR=str(tmp_path))
    env.pop("DEBUG", None)
    # Preloading HSTS is an explicit per-domain decision (off by default): Django warns about that only.
    result = subprocess.run(_CHECK_DEPLOY, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert "security.W021" in result.stderr
    assert result.stderr.count("(security.") == 1, result.stderr
    opted_in = subprocess.run(
        _CHECK_DEPLOY, cwd=ROOT, env={**env, "SECURE_HSTS_PRELOAD": "true"}, capture_output=True, text=True, timeout=120
    )
    assert opted_in.returncode == 0, opted_in.stderr

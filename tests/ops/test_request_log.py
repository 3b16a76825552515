"""Request ids and the one structured log line per request."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator

import pytest

from config.observability.context import RequestIdFilter
from config.observability.logs import JsonFormatter, PlainFormatter

HEX32 = re.compile(r"^[0-9a-f]{32}$")
pytestmark = pytest.mark.django_db


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    """The root logger's output, through the same formatter and filter the settings install."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    previous_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield stream
    root.removeHandler(handler)
    root.setLevel(previous_level)


def json_lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def request_lines(stream: io.StringIO) -> list[dict]:
    return [entry for entry in json_lines(stream) if entry.get("event") == "http_request"]


def test_a_valid_request_id_is_echoed(api):
    response = api.get("/health", HTTP_X_REQUEST_ID="edge-7f3a.41:b_c")
    assert response.status_code == 200
    assert response["X-Request-ID"] == "edge-7f3a.41:b_c"


@pytest.mark.parametrize(
    "incoming",
    [
        "short",  # under 8 characters
        "x" * 129,  # over 128
        "has space inside",
        'quote"inside-1234',
        "new\nline-12345678",
        "ünïcode-12345678",
    ],
)
def test_an_invalid_request_id_is_replaced(api, incoming):
    response = api.get("/health", HTTP_X_REQUEST_ID=incoming)
    assert response.status_code == 200
    assert response["X-Request-ID"] != incoming
    assert HEX32.match(response["X-Request-ID"])


def test_a_missing_request_id_is_generated_per_request(api):
    first = api.get("/health")["X-Request-ID"]
    second = api.get("/api/auth/me")["X-Request-ID"]
    assert HEX32.match(first)
    assert HEX32.match(second)
    assert first != second


def test_request_id_is_also_set_on_error_envelopes(api):
    response = api.get("/api/no-such-endpoint", HTTP_X_REQUEST_ID="client-req-0001")
    assert response.status_code == 404
    assert response.json()["success"] is False
    assert response["X-Request-ID"] == "client-req-0001"


def test_one_json_line_per_request_with_the_contract_fields(client_a, user, log_stream):
    response = client_a.get("/api/auth/me", HTTP_X_REQUEST_ID="mobile-abc-123456")
    assert response.status_code == 200

    lines = request_lines(log_stream)
    assert len(lines) == 1
    line = lines[0]
    assert line["method"] == "GET"
    assert line["path"] == "/api/auth/me"
    assert line["route"] == "api/auth/me"
    assert line["status"] == 200
    assert isinstance(line["duration_ms"], int | float)
    assert line["duration_ms"] >= 0
    assert line["user_id"] == user.pk
    assert line["request_id"] == "mobile-abc-123456"
    assert line["level"] == "INFO"
    assert line["logger"] == "http.request"
    assert line["client_ip"] == "127.0.0.1"
    assert line["message"] == f"GET /api/auth/me 200 {line['duration_ms']}ms user={user.pk} ip=127.0.0.1"
    assert line["ts"].endswith("Z")


def test_anonymous_and_failed_requests_are_logged_without_a_user(api, log_stream):
    api.post("/api/auth/login", {"email": "nobody@example.com", "password": "wrong-password-1"}, format="json")
    line = request_lines(log_stream)[-1]
    assert line["path"] == "/api/auth/login"
    assert line["method"] == "POST"
    assert line["status"] == 401
    assert line["user_id"] is None
    assert HEX32.match(line["request_id"])


def test_the_query_string_stays_out_of_the_log(api, log_stream):
    api.get("/api/auth/me?token=secret-value")
    line = request_lines(log_stream)[-1]
    assert line["path"] == "/api/auth/me"
    assert "secret-value" not in json.dumps(json_lines(log_stream))


def test_every_record_of_a_request_carries_its_id(api, log_stream):
    # No worker heartbeat: the readiness view logs a warning of its own while handling the request.
    response = api.get("/health/ready", HTTP_X_REQUEST_ID="probe-0000-1111")
    assert response.status_code == 503
    own = [entry for entry in json_lines(log_stream) if entry["logger"] == "config.health"]
    assert own, "the readiness check logged nothing"
    assert {entry["request_id"] for entry in own} == {"probe-0000-1111"}
    # Outside a request there is no id.
    logging.getLogger("tests.ops").warning("after the request")
    assert json_lines(log_stream)[-1]["request_id"] is None


def test_probe_requests_are_quiet_but_errors_are_loud(api, log_stream):
    api.get("/health")
    api.get("/health/ready")  # 503 without a worker
    levels = {entry["path"]: entry["level"] for entry in request_lines(log_stream)}
    assert levels == {"/health": "DEBUG", "/health/ready": "ERROR"}


def test_json_formatter_keeps_extra_fields_and_exceptions():
    record = logging.LogRecord("svc", logging.ERROR, __file__, 1, "failed %s", ("x",), None)
    record.job_id = "j-1"
    record.request = object()  # Django attaches the request object: not serialized
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        import sys

        record.exc_info = sys.exc_info()
    RequestIdFilter().filter(record)
    entry = json.loads(JsonFormatter().format(record))
    assert entry["message"] == "failed x"
    assert entry["job_id"] == "j-1"
    assert "request" not in entry
    assert entry["request_id"] is None
    assert "RuntimeError: boom" in entry["exc_info"]


def test_plain_format_is_readable():
    event = logging.LogRecord("http.request", logging.INFO, __file__, 1, "GET /x 200 1.0ms user=-", None, None)
    event.event, event.request_id, event.status = "http_request", "abc12345", 200
    other = logging.LogRecord("svc", logging.WARNING, __file__, 1, "slow", None, None)
    other.request_id, other.job_id = None, "j-9"
    formatter = PlainFormatter()
    assert formatter.format(event).endswith("INFO http.request [abc12345]: GET /x 200 1.0ms user=-")
    assert formatter.format(other).endswith("WARNING svc: slow job_id=j-9")


def test_settings_pick_the_format(settings):
    from django.conf import settings as live

    assert live.LOG_FORMAT == "plain"  # development default; production is covered in test_production_settings
    assert live.LOGGING["handlers"]["console"]["formatter"] == "plain"
    assert live.LOGGING["handlers"]["console"]["filters"] == ["request_id"]

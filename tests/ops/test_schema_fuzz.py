"""The API fuzzed from its own OpenAPI schema with schemathesis (PyPI), in-process over WSGI.

Every operation gets schema-valid and schema-invalid requests, derandomised (a fixed seed, the
same requests on every run), as a fresh signed-in user. The bar:

- no 5xx other than the documented 503s of a provider that is not configured (chat has no local
  engine);
- every response conforms to the schema: a documented status, content type and body;
- every `/api/` answer is in the envelope.

`logout-all` runs last so it cannot sign the user out under the other operations. `make fuzz`
runs the same test with many more examples (`FUZZ_EXAMPLES`).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from rest_framework.test import APIClient
from schemathesis.core.failures import FailureGroup
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import login

pytestmark = pytest.mark.django_db

# Per operation and mode; `make fuzz` raises it.
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "15"))
# The 5xx an unconfigured deployment gives on purpose: no chat engine, no Google client id.
ALLOWED_5XX_CODES = {"provider_not_configured", "google_not_configured"}
# Operations that end the session (a random password never matches, so only logout-all can
# succeed), in this order after every other operation.
LAST = ("/api/auth/logout", "/api/user/deactivate", "/api/user/account", "/api/auth/logout-all")
# The body of a tus PATCH (resumable video uploads) is raw bytes, like application/octet-stream.
schemathesis.serializer.alias("application/offset+octet-stream", "application/octet-stream")


@contextmanager
def same_connection() -> Iterator[None]:
    """Keep the test's database connection (and its transaction) across the WSGI requests, as
    Django's own test client does (which is why no test client may run inside this block: it
    reconnects the signals when it is done)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def _order(operation) -> tuple[int, str]:
    path = operation.path
    return (LAST.index(path) + 1 if path in LAST else 0, f"{path} {operation.method}")


def _envelope_problem(response) -> str | None:
    content_type = {key.lower(): value for key, value in response.headers.items()}.get("content-type") or ""
    if isinstance(content_type, list):
        content_type = content_type[0] if content_type else ""
    if not content_type.startswith("application/json"):
        if response.status_code >= 400:
            return f"error {response.status_code} outside the envelope: {response.content[:300]!r}"
        return None  # binary answers (speech, frames, thumbnails) are checked by the schema
    try:
        body = json.loads(response.content)
    except ValueError:
        return "not JSON"
    if not isinstance(body, dict) or not isinstance(body.get("success"), bool):
        return "no success flag"
    if body["success"]:
        missing = {"message", "data", "meta"} - body.keys()
    else:
        missing = {"message", "code", "errors"} - body.keys()
    if missing:
        return f"missing {sorted(missing)}"
    if response.status_code >= 500 and body.get("code") not in ALLOWED_5XX_CODES:
        return f"server error {response.status_code} {body.get('code')}"
    return None


def _fuzz(operation, mode: GenerationMode, *, headers: dict[str, str], failures: list[str], statuses: Counter) -> None:
    label = f"{operation.method.upper()} {operation.path} [{mode.value}]"

    @hypothesis_settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case) -> None:
        response = case.call(headers=headers)
        statuses[response.status_code] += 1
        problem = _envelope_problem(response)
        if problem:
            failures.append(f"{label}: {problem}: {case.as_curl_command()}")
            return
        try:
            case.validate_response(
                response,
                checks=[
                    status_code_conformance,
                    content_type_conformance,
                    response_schema_conformance,
                ],
            )
        except (FailureGroup, AssertionError) as exc:
            failures.append(f"{label}: {str(exc)[:1500]}")

    run()


def test_every_operation_survives_fuzzing(make_user):
    user = make_user()
    token = login(APIClient(), user.email)["accessToken"]
    headers = {"Authorization": f"Bearer {token}"}
    failures: list[str] = []
    statuses: Counter = Counter()
    with same_connection():
        _fuzz_all(headers=headers, failures=failures, statuses=statuses)
    # One report per operation and mode (the first example that failed), not one per example.
    first: dict[str, str] = {}
    for failure in failures:
        first.setdefault(failure.split(":", 1)[0], failure)
    assert not failures, f"{len(failures)} failures in {len(first)} operations:\n\n" + "\n\n".join(first.values())


def _fuzz_all(*, headers: dict[str, str], failures: list[str], statuses: Counter) -> None:
    schema = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())
    operations = sorted((result.ok() for result in schema.get_all_operations()), key=_order)
    assert len(operations) > 40

    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            _fuzz(operation, mode, headers=headers, failures=failures, statuses=statuses)
    total = sum(statuses.values())
    print(f"fuzzed {len(operations)} operations: {total} requests, statuses {dict(sorted(statuses.items()))}")

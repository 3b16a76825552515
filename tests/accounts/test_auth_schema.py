"""The OpenAPI schema lists every status each auth endpoint answers, and the error codes it
documents are the ones the endpoint really sends."""

from __future__ import annotations

import pytest

from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

# Every operation with a body also answers 413 (a body over its limit, refused from its length) and
# 415 (a content type it does not parse).
BODY = {"413", "415"}
STATUSES = {
    ("post", "/api/auth/register"): {"201", "400", "409", "429", *BODY},
    ("post", "/api/auth/login"): {"200", "400", "401", "429", *BODY},
    ("post", "/api/auth/google"): {"200", "400", "401", "429", "503", *BODY},
    ("post", "/api/auth/refresh"): {"200", "400", "401", "429", *BODY},
    ("post", "/api/auth/logout"): {"200", "400", "401", "429", *BODY},
    ("get", "/api/auth/me"): {"200", "401", "429"},
    ("post", "/api/auth/logout-all"): {"200", "401", "429"},
    ("delete", "/api/auth/sessions/{session_id}"): {"200", "401", "404", "429"},
    ("post", "/api/auth/change-password"): {"200", "400", "401", "429", *BODY},
}


def documented_codes(schema: dict, method: str, path: str, status: int) -> set[str]:
    examples = schema["paths"][path][method]["responses"][str(status)]["content"]["application/json"]["examples"]
    return {example["value"]["code"] for example in examples.values()}


@pytest.mark.parametrize(("method", "path"), list(STATUSES))
def test_each_auth_endpoint_documents_exactly_its_statuses(schema, method, path):
    operation = schema["paths"][path][method]
    assert set(operation["responses"]) == STATUSES[(method, path)]
    assert "x-responses-complete" not in operation


def test_documented_error_codes_are_the_real_ones(schema, api, user, settings, real_rate_limits):
    def code_of(response, status: int) -> str:
        assert response.status_code == status, response.content
        return response.json()["code"]

    taken = api.post("/api/auth/register", {"email": user.email, "password": PASSWORD, "name": "A"}, format="json")
    assert code_of(taken, 409) in documented_codes(schema, "post", "/api/auth/register", 409)

    settings.GOOGLE_CLIENT_IDS = []
    google = api.post("/api/auth/google", {"idToken": "x.y.z"}, format="json")
    assert code_of(google, 503) in documented_codes(schema, "post", "/api/auth/google", 503)

    for _ in range(5):
        wrong = api.post("/api/auth/login", {"email": user.email, "password": "nope-nope-1"}, format="json")
        assert code_of(wrong, 401) in documented_codes(schema, "post", "/api/auth/login", 401)
    locked = api.post("/api/auth/login", {"email": user.email, "password": "nope-nope-1"}, format="json")
    assert code_of(locked, 429) in documented_codes(schema, "post", "/api/auth/login", 429)

    refresh = api.post("/api/auth/refresh", {"refreshToken": "not-a-token"}, format="json")
    assert code_of(refresh, 401) in documented_codes(schema, "post", "/api/auth/refresh", 401)
    assert code_of(api.get("/api/auth/me"), 401) in documented_codes(schema, "get", "/api/auth/me", 401)

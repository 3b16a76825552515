"""Google sign-in, verified against a local stand-in for Google's certificate endpoint."""

from __future__ import annotations

import time

import pytest

from accounts.models import User
from tests.accounts.google_stub import id_token, key_and_certificate

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("google_settings")]


def test_google_sign_in_creates_user_and_answers_like_login(api, google):
    response = api.post("/api/auth/google", {"idToken": id_token(google)}, format="json")
    assert response.status_code == 200, response.content
    data = response.json()["data"]
    assert set(data) >= {"user", "accessToken", "refreshToken"}
    assert data["user"]["email"] == "gina@example.com"
    assert data["user"]["provider"] == "google"
    assert data["user"]["name"] == "Gina Google"
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {data['accessToken']}")
    assert api.get("/api/auth/me").json()["data"]["email"] == "gina@example.com"


def test_google_sign_in_links_existing_account_by_verified_email(api, google, make_user):
    existing = make_user(email="gina@example.com")
    response = api.post("/api/auth/google", {"idToken": id_token(google)}, format="json")
    assert response.status_code == 200
    assert response.json()["data"]["user"]["id"] == existing.id
    assert User.objects.filter(email__iexact="gina@example.com").count() == 1
    # Same Google account again: linked by its subject, not a new user
    again = api.post("/api/auth/google", {"idToken": id_token(google, email="gina.new@example.com")}, format="json")
    assert again.json()["data"]["user"]["id"] == existing.id


def test_google_keys_are_cached_between_sign_ins(api, google):
    for _ in range(3):
        assert api.post("/api/auth/google", {"idToken": id_token(google)}, format="json").status_code == 200
    assert google["hits"] == 1


@pytest.mark.parametrize(
    "overrides",
    [
        {"aud": "someone-else.apps.googleusercontent.com"},
        {"iss": "https://evil.example.com"},
        {"exp": int(time.time()) - 60},
    ],
)
def test_google_rejects_invalid_tokens(api, google, overrides):
    response = api.post("/api/auth/google", {"idToken": id_token(google, **overrides)}, format="json")
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_google_token"
    assert not User.objects.exists()


def test_google_rejects_token_signed_by_another_key(api, google):
    other_key, _ = key_and_certificate()
    response = api.post("/api/auth/google", {"idToken": id_token(google, _key=other_key)}, format="json")
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_google_token"


def test_google_rejects_unverified_email(api, google):
    response = api.post("/api/auth/google", {"idToken": id_token(google, email_verified=False)}, format="json")
    assert response.status_code == 401
    assert response.json()["code"] == "email_not_verified"


def test_google_down_is_503(api, google):
    google["down"] = True
    response = api.post("/api/auth/google", {"idToken": id_token(google)}, format="json")
    assert response.status_code == 503
    assert response.json()["code"] == "google_unavailable"


def test_google_missing_token_is_400(api):
    response = api.post("/api/auth/google", {}, format="json")
    assert response.status_code == 400
    assert "idToken" in response.json()["errors"]


def test_google_not_configured_is_503(api, google, settings):
    settings.GOOGLE_CLIENT_IDS = []
    response = api.post("/api/auth/google", {"idToken": id_token(google)}, format="json")
    assert response.status_code == 503
    assert response.json()["code"] == "google_not_configured"

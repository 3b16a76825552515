"""An account that signs in with Google has no password: it confirms deactivation and deletion
with a fresh Google ID token of the linked Google account instead."""

from __future__ import annotations

import time

import pytest
from rest_framework.test import APIClient

from accounts.models import DeviceSession, User
from tests.accounts.google_stub import id_token
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("google_settings")]
DEACTIVATE = "/api/user/deactivate"
ACCOUNT = "/api/user/account"


@pytest.fixture
def gina(api, google) -> APIClient:
    """Signed in through Google: an account with no password."""
    data = api.post("/api/auth/google", {"idToken": id_token(google)}, format="json").json()["data"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {data['accessToken']}")
    return client


def test_deactivate_with_a_fresh_google_token(gina, google):
    response = gina.post(DEACTIVATE, {"googleIdToken": id_token(google)}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["data"]["revokedSessions"] == 1
    assert User.objects.get(email="gina@example.com").is_active is False
    assert gina.get("/api/auth/me").status_code == 401


def test_delete_with_a_fresh_google_token(gina, google):
    response = gina.delete(ACCOUNT, {"googleIdToken": id_token(google)}, format="json")

    assert response.status_code == 200, response.content
    assert not User.objects.exists()
    assert not DeviceSession.objects.exists()


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"sub": "someone-else"}, "google_account_mismatch"),  # a valid token of another Google account
        ({"iat": int(time.time()) - 20 * 60}, "google_token_not_recent"),  # copied from an old sign-in
    ],
)
def test_a_token_of_another_account_or_an_old_sign_in_changes_nothing(gina, google, overrides, code):
    for method, url in (("post", DEACTIVATE), ("delete", ACCOUNT)):
        response = getattr(gina, method)(url, {"googleIdToken": id_token(google, **overrides)}, format="json")
        assert response.status_code == 400
        body = response.json()
        assert body["code"] == code
        assert "googleIdToken" in body["errors"]
    assert User.objects.get(email="gina@example.com").is_active is True
    assert gina.get("/api/auth/me").status_code == 200


def test_a_forged_token_is_refused(gina, google):
    from tests.accounts.google_stub import key_and_certificate

    forged = id_token(google, _key=key_and_certificate()[0])
    response = gina.delete(ACCOUNT, {"googleIdToken": forged}, format="json")
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_google_token"
    assert User.objects.exists()


def test_a_password_is_not_an_option_without_one(gina):
    response = gina.post(DEACTIVATE, {"password": "anything"}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "password_not_set"
    assert "googleIdToken" in body["message"]


@pytest.mark.parametrize("body", [{}, {"password": PASSWORD, "googleIdToken": "x.y.z"}, {"googleIdToken": ""}])
def test_exactly_one_confirmation_is_needed(client_a, body):
    response = client_a.post(DEACTIVATE, body, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"


def test_a_password_account_linked_to_google_may_use_either(api, google, make_user, auth_client):
    owner = make_user(email="gina@example.com")
    api.post("/api/auth/google", {"idToken": id_token(google)}, format="json")  # links by verified email
    client = auth_client(owner)
    response = client.post(DEACTIVATE, {"googleIdToken": id_token(google)}, format="json")
    assert response.status_code == 200, response.content

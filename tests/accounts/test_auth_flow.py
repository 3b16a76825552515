"""Register, login, refresh rotation, logout and device sessions through the HTTP stack."""

from __future__ import annotations

import time
from datetime import timedelta

import jwt
import pytest
from django.db.models import F
from rest_framework.test import APIClient

from accounts.models import DeviceSession, User
from tests.conftest import PASSWORD, login

pytestmark = pytest.mark.django_db


def register(client: APIClient, email="new@example.com", password=PASSWORD, name="New Person", **extra):
    return client.post(
        "/api/auth/register", {"email": email, "password": password, "name": name}, format="json", **extra
    )


def test_register_returns_user_and_tokens_in_envelope(api):
    response = register(api, email="New@Example.com", HTTP_X_DEVICE_NAME="Pixel 8")
    assert response.status_code == 201
    body = response.json()
    assert body["success"] is True
    assert body["message"] == "Registration successful"
    data = body["data"]
    assert set(data) >= {"user", "accessToken", "refreshToken", "sessionId"}
    assert data["user"]["email"] == "new@example.com"
    assert data["user"]["name"] == "New Person"
    assert data["user"]["provider"] == "local"
    assert data["user"]["isActive"] is True
    assert data["user"]["quota"]["limit"] == 100
    assert "resetDate" in data["user"]["quota"]
    session = DeviceSession.objects.get(id=data["sessionId"])
    assert session.device_name == "Pixel 8"
    assert User.objects.get(email="new@example.com").password.startswith("argon2")


def test_register_duplicate_email_is_409_case_insensitive(api, user):
    response = register(api, email="ALICE@example.com")
    assert response.status_code == 409
    body = response.json()
    assert body == {
        "success": False,
        "message": "An account with this email already exists.",
        "code": "email_taken",
        "errors": {"email": ["Already registered."]},
    }


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"password": PASSWORD, "name": "X"}, "email"),
        ({"email": "a@example.com", "name": "X"}, "password"),
        ({"email": "a@example.com", "password": PASSWORD}, "name"),
        ({"email": "not-an-email", "password": PASSWORD, "name": "X"}, "email"),
        ({"email": ["a@example.com"], "password": PASSWORD, "name": "X"}, "email"),
    ],
)
def test_register_validation_errors_name_the_field(api, payload, field):
    response = api.post("/api/auth/register", payload, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["success"] is False
    assert body["code"] == "validation_error"
    assert field in body["errors"]
    assert body["message"].startswith(f"{field}:")


@pytest.mark.parametrize("password", ["short", "password123", "12345678901"])
def test_register_weak_password_is_400_on_password(api, password):
    response = register(api, password=password)
    assert response.status_code == 400
    assert "password" in response.json()["errors"]
    assert not User.objects.filter(email="new@example.com").exists()


def test_malformed_json_is_400_in_envelope(api):
    response = api.generic("POST", "/api/auth/login", '{"email": "x"', content_type="application/json")
    assert response.status_code == 400
    body = response.json()
    assert body["success"] is False
    assert body["code"] == "malformed_request"


def test_login_and_me(api, user):
    data = login(api, "ALICE@example.com")
    assert data["user"]["email"] == "alice@example.com"
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {data['accessToken']}")
    me = api.get("/api/auth/me")
    assert me.status_code == 200
    assert me.json()["data"]["email"] == "alice@example.com"
    assert me.json()["data"]["lastLogin"] is not None
    assert me["X-Quota-Limit"] == "100"
    assert me["X-Quota-Used"] == "0"
    assert me["X-Quota-Reset"].endswith("Z")
    assert int(me["X-RateLimit-Remaining"]) < int(me["X-RateLimit-Limit"])


def test_login_wrong_password_and_unknown_email_look_the_same(api, user):
    wrong = api.post("/api/auth/login", {"email": user.email, "password": "nope-nope-nope"}, format="json")
    unknown = api.post("/api/auth/login", {"email": "ghost@example.com", "password": "nope-nope-nope"}, format="json")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["code"] == unknown.json()["code"] == "invalid_credentials"
    assert wrong.json()["message"] == unknown.json()["message"]


def test_me_requires_token(api):
    response = api.get("/api/auth/me")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert response["WWW-Authenticate"].startswith("Bearer")


def _access_claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def test_expired_access_token_is_401_token_expired(api, user, settings):
    data = login(api, user.email)
    claims = _access_claims(data["accessToken"])
    claims["exp"] = int(time.time()) - 10
    expired = jwt.encode(claims, settings.SIMPLE_JWT["SIGNING_KEY"], algorithm="HS256")
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {expired}")
    response = api.get("/api/auth/me")
    assert response.status_code == 401
    assert response.json()["code"] == "token_expired"


def test_tampered_and_alg_none_tokens_are_rejected(api, user):
    data = login(api, user.email)
    claims = _access_claims(data["accessToken"])
    header, payload, signature = data["accessToken"].split(".")
    tampered_claims = dict(claims, user_id=claims["user_id"] + 1)
    tampered = jwt.encode(tampered_claims, "wrong-key-wrong-key-wrong-key-wrong-key", algorithm="HS256")
    unsigned = jwt.encode(claims, None, algorithm="none")
    swapped = ".".join([header, payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB"), signature])
    for token in (tampered, unsigned, swapped, "garbage"):
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        response = api.get("/api/auth/me")
        assert response.status_code == 401, token
        assert response.json()["code"] == "token_invalid"


def test_refresh_token_cannot_be_used_as_access_token(api, user):
    data = login(api, user.email)
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {data['refreshToken']}")
    assert api.get("/api/auth/me").status_code == 401


def test_refresh_rotates_and_old_token_is_single_use_after_grace(api, user, settings):
    data = login(api, user.email)
    first = api.post("/api/auth/refresh", {"refreshToken": data["refreshToken"]}, format="json")
    assert first.status_code == 200
    rotated = first.json()["data"]
    assert set(rotated) >= {"accessToken", "refreshToken"}
    assert rotated["refreshToken"] != data["refreshToken"]
    # The grace window is over: the rotation happened longer ago than it lasts.
    grace = timedelta(seconds=settings.JWT_REFRESH_GRACE_SECONDS + 1)
    DeviceSession.objects.filter(user=user).update(rotated_at=F("rotated_at") - grace)
    replay = api.post("/api/auth/refresh", {"refreshToken": data["refreshToken"]}, format="json")
    assert replay.status_code == 401
    assert replay.json()["code"] == "refresh_token_reused"
    # The whole session is gone: the new pair stops working too, at once.
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {rotated['accessToken']}")
    assert api.get("/api/auth/me").json()["code"] == "session_revoked"
    again = api.post("/api/auth/refresh", {"refreshToken": rotated["refreshToken"]}, format="json")
    assert again.status_code == 401
    assert again.json()["code"] == "session_revoked"


def test_refresh_replay_inside_grace_window_returns_same_pair(api, user):
    data = login(api, user.email)
    first = api.post("/api/auth/refresh", {"refreshToken": data["refreshToken"]}, format="json").json()["data"]
    retry = api.post("/api/auth/refresh", {"refreshToken": data["refreshToken"]}, format="json")
    assert retry.status_code == 200
    assert retry.json()["data"]["refreshToken"] == first["refreshToken"]
    assert retry.json()["data"]["accessToken"] == first["accessToken"]
    # and the new refresh token still rotates normally
    assert api.post("/api/auth/refresh", {"refreshToken": first["refreshToken"]}, format="json").status_code == 200


@pytest.mark.parametrize("token", ["", "not-a-jwt", None])
def test_refresh_rejects_missing_or_garbage_tokens(api, token):
    payload = {} if token is None else {"refreshToken": token}
    response = api.post("/api/auth/refresh", payload, format="json")
    assert response.status_code in (400, 401)
    assert response.json()["success"] is False


def test_refresh_with_access_token_is_rejected(api, user):
    data = login(api, user.email)
    response = api.post("/api/auth/refresh", {"refreshToken": data["accessToken"]}, format="json")
    assert response.status_code == 401
    assert response.json()["code"] == "token_invalid"


def test_logout_revokes_session_and_its_access_token(api, user):
    data = login(api, user.email)
    response = api.post("/api/auth/logout", {"refreshToken": data["refreshToken"]}, format="json")
    assert response.status_code == 200
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {data['accessToken']}")
    me = api.get("/api/auth/me")
    assert me.status_code == 401
    assert me.json()["code"] == "session_revoked"
    refresh = api.post("/api/auth/refresh", {"refreshToken": data["refreshToken"]}, format="json")
    assert refresh.status_code == 401


def test_sessions_list_marks_current_and_delete_revokes_one(user):
    phone, tablet = APIClient(), APIClient()
    phone_tokens = login(phone, user.email, HTTP_X_DEVICE_NAME="Phone")
    tablet_tokens = login(tablet, user.email, HTTP_USER_AGENT="Mozilla/5.0 (iPad; CPU OS 17_2 like Mac OS X)")
    phone.credentials(HTTP_AUTHORIZATION=f"Bearer {phone_tokens['accessToken']}")
    tablet.credentials(HTTP_AUTHORIZATION=f"Bearer {tablet_tokens['accessToken']}")

    listed = phone.get("/api/auth/sessions")
    assert listed.status_code == 200
    body = listed.json()
    assert body["meta"]["pagination"] == {"page": 1, "limit": 20, "total": 2, "pages": 1}
    by_id = {s["id"]: s for s in body["data"]}
    assert by_id[phone_tokens["sessionId"]]["current"] is True
    assert by_id[phone_tokens["sessionId"]]["deviceName"] == "Phone"
    assert by_id[tablet_tokens["sessionId"]]["current"] is False
    assert by_id[tablet_tokens["sessionId"]]["deviceName"].startswith("iPad")

    revoked = phone.delete(f"/api/auth/sessions/{tablet_tokens['sessionId']}")
    assert revoked.status_code == 200
    assert tablet.get("/api/auth/me").status_code == 401
    assert phone.get("/api/auth/me").status_code == 200


def test_another_users_session_is_404(make_user, user):
    other = make_user()
    mine, theirs = APIClient(), APIClient()
    my_tokens = login(mine, user.email)
    their_tokens = login(theirs, other.email)
    mine.credentials(HTTP_AUTHORIZATION=f"Bearer {my_tokens['accessToken']}")
    response = mine.delete(f"/api/auth/sessions/{their_tokens['sessionId']}")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert DeviceSession.objects.get(id=their_tokens["sessionId"]).revoked_at is None


def test_logout_all_revokes_every_session(user):
    a, b = APIClient(), APIClient()
    ta, tb = login(a, user.email), login(b, user.email)
    a.credentials(HTTP_AUTHORIZATION=f"Bearer {ta['accessToken']}")
    b.credentials(HTTP_AUTHORIZATION=f"Bearer {tb['accessToken']}")
    response = a.post("/api/auth/logout-all")
    assert response.status_code == 200
    assert response.json()["data"]["revoked"] == 2
    assert a.get("/api/auth/me").status_code == 401
    assert b.get("/api/auth/me").status_code == 401


def test_change_password_revokes_other_sessions(user):
    a, b = APIClient(), APIClient()
    ta, tb = login(a, user.email), login(b, user.email)
    a.credentials(HTTP_AUTHORIZATION=f"Bearer {ta['accessToken']}")
    b.credentials(HTTP_AUTHORIZATION=f"Bearer {tb['accessToken']}")
    wrong = a.post(
        "/api/auth/change-password",
        {"currentPassword": "wrong-one-1", "newPassword": "Another-Strong-77"},
        format="json",
    )
    assert wrong.status_code == 400
    assert "currentPassword" in wrong.json()["errors"]
    weak = a.post("/api/auth/change-password", {"currentPassword": PASSWORD, "newPassword": "123"}, format="json")
    assert weak.status_code == 400
    assert "newPassword" in weak.json()["errors"]
    done = a.post(
        "/api/auth/change-password", {"currentPassword": PASSWORD, "newPassword": "Another-Strong-77"}, format="json"
    )
    assert done.status_code == 200
    assert a.get("/api/auth/me").status_code == 200
    assert b.get("/api/auth/me").status_code == 401
    user.refresh_from_db()
    assert user.check_password("Another-Strong-77")


def test_deactivated_user_cannot_login_refresh_or_use_tokens(api, user):
    data = login(api, user.email)
    User.objects.filter(pk=user.pk).update(is_active=False)
    response = api.post("/api/auth/login", {"email": user.email, "password": PASSWORD}, format="json")
    assert response.status_code == 401
    assert response.json()["code"] == "account_inactive"
    refresh = api.post("/api/auth/refresh", {"refreshToken": data["refreshToken"]}, format="json")
    assert refresh.status_code == 401
    assert refresh.json()["code"] == "account_inactive"
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {data['accessToken']}")
    assert api.get("/api/auth/me").json()["code"] == "account_inactive"


def test_expired_refresh_token_is_rejected(api, user, settings):
    data = login(api, user.email)
    claims = _access_claims(data["refreshToken"])
    claims["exp"] = int(time.time()) - 10
    expired = jwt.encode(claims, settings.SIMPLE_JWT["SIGNING_KEY"], algorithm="HS256")
    response = api.post("/api/auth/refresh", {"refreshToken": expired}, format="json")
    assert response.status_code == 401
    assert response.json()["code"] == "token_expired"

"""`/me` on its fast path: the prepared session lookup and the direct user representation give
what the ORM queryset and the declared fields would, and revocation still takes effect at once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework import serializers
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from accounts.models import DeviceSession
from accounts.selectors import device_session_get_active
from accounts.serializers import UserSerializer
from quotas.models import QuotaAccount
from tests.conftest import login

pytestmark = pytest.mark.django_db


def test_user_representation_matches_the_declared_fields(make_user, settings):
    settings.TIME_ZONE = "Europe/Paris"  # DateTimeField renders in the current zone: keep that
    user = make_user(email="fields@example.com", bio="Bio", locale="fr", timezone="Europe/Paris")
    user.last_login = datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)
    direct = UserSerializer(user).data
    by_fields = serializers.Serializer.to_representation(UserSerializer(user), user)
    assert dict(direct) == dict(by_fields)
    assert direct["last_login"] == "2026-03-01T13:30:15.123456+01:00"

    user.last_login = None
    assert UserSerializer(user).data["last_login"] is None
    assert serializers.Serializer.to_representation(UserSerializer(user), user)["last_login"] is None


def test_session_lookup_returns_what_the_queryset_does(user, api):
    login(api, user.email)
    session = DeviceSession.objects.get(user=user)
    expected = DeviceSession.objects.select_related("user", "user__quota_account").get(pk=session.pk)

    found = device_session_get_active(session_id=session.id, user_id=user.pk)
    assert found is not None
    for field in DeviceSession._meta.concrete_fields:
        assert getattr(found, field.attname) == getattr(expected, field.attname), field.name
    for field in type(user)._meta.concrete_fields:
        assert getattr(found.user, field.attname) == getattr(expected.user, field.attname), field.name
    assert found.user.quota_account.pk == expected.user.quota_account.pk
    assert found.user.quota_account.reset_date == expected.user.quota_account.reset_date

    assert device_session_get_active(session_id=session.id, user_id=user.pk + 1) is None
    DeviceSession.objects.filter(pk=session.pk).update(revoked_at=datetime.now(UTC))
    assert device_session_get_active(session_id=session.id, user_id=user.pk) is None


def test_me_is_one_query_and_sends_the_quota_headers(user, api):
    tokens = login(api, user.email)
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['accessToken']}")
    api.get("/api/auth/me")  # the session's last_used_at is fresh after this
    with CaptureQueriesContext(connection) as queries:
        me = api.get("/api/auth/me")
    assert me.status_code == 200
    assert len(queries) == 1
    assert me["X-Quota-Limit"] == "100"
    assert me["X-Quota-Used"] == "0"
    assert me.json()["data"]["email"] == user.email


def test_me_without_a_quota_account_creates_it(user, api):
    tokens = login(api, user.email)
    QuotaAccount.objects.filter(user=user).delete()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['accessToken']}")
    me = api.get("/api/auth/me")
    assert me.status_code == 200, me.content
    assert me["X-Quota-Limit"] == "100"
    assert QuotaAccount.objects.filter(user=user).exists()


def test_a_session_revoked_from_another_device_is_refused_at_once(user):
    phone, tablet = APIClient(), APIClient()
    phone_tokens = login(phone, user.email, HTTP_X_DEVICE_NAME="Phone")
    tablet_tokens = login(tablet, user.email, HTTP_X_DEVICE_NAME="Tablet")
    phone.credentials(HTTP_AUTHORIZATION=f"Bearer {phone_tokens['accessToken']}")
    tablet.credentials(HTTP_AUTHORIZATION=f"Bearer {tablet_tokens['accessToken']}")
    assert phone.get("/api/auth/me").status_code == 200  # the lookup is prepared and in use

    phone_session = DeviceSession.objects.get(user=user, device_name="Phone")
    assert tablet.delete(f"/api/auth/sessions/{phone_session.id}").status_code == 200

    refused = phone.get("/api/auth/me")
    assert refused.status_code == 401
    assert refused.json()["code"] == "session_revoked"
    assert tablet.get("/api/auth/me").status_code == 200


@pytest.mark.parametrize("claims", [{"sid": "not-a-uuid"}, {"sid": None}, {"user_id": "x"}])
def test_a_signed_token_with_malformed_claims_is_invalid(user, api, claims):
    login(api, user.email)
    session = DeviceSession.objects.get(user=user)
    token = AccessToken()
    token["user_id"] = user.pk
    token["sid"] = str(session.id)
    for name, value in claims.items():
        token[name] = value
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    response = api.get("/api/auth/me")
    assert response.status_code == 401
    assert response.json()["code"] == "token_invalid"


def test_a_token_verified_once_is_still_refused_once_it_expires(user, api, monkeypatch):
    import jwt

    from accounts import authentication

    tokens = login(api, user.email)
    expires = datetime.fromtimestamp(jwt.decode(tokens["accessToken"], options={"verify_signature": False})["exp"], UTC)
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['accessToken']}")
    assert api.get("/api/auth/me").status_code == 200  # verified, and remembered as verified

    # The clock the expiry check reads, pinned one second past `exp` (no waiting for it to pass).
    monkeypatch.setattr(authentication, "aware_utcnow", lambda: expires + timedelta(seconds=1))
    response = api.get("/api/auth/me")
    assert response.status_code == 401
    assert response.json()["code"] == "token_expired"

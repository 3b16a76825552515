"""POST /api/user/deactivate and DELETE /api/user/account."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from allauth.socialaccount.models import SocialAccount
from django.apps import apps
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image
from rest_framework.test import APIClient
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken

from accounts import services
from accounts.models import DeviceSession, User
from accounts.services.profile import account_delete
from quotas.modalities import Service
from quotas.models import QuotaAccount, Reservation, UsageEntry
from quotas.services import quota_reserve, reservation_settle
from tests.conftest import PASSWORD, login

pytestmark = pytest.mark.django_db
cleanup_calls: list[tuple[int, bool]] = []


def recording_cleanup(*, user) -> None:
    """A clean-up registered in ACCOUNT_DELETION_CLEANUPS by a test: it must run while the user
    and their rows still exist."""
    cleanup_calls.append((user.pk, User.objects.filter(pk=user.pk).exists()))


def failing_cleanup(*, user) -> None:
    raise RuntimeError("storage unavailable")


def give_avatar(client: APIClient) -> None:
    out = io.BytesIO()
    Image.new("RGB", (64, 64), (10, 200, 10)).save(out, format="PNG")
    upload = SimpleUploadedFile("a.png", out.getvalue(), content_type="image/png")
    assert client.post("/api/user/avatar", {"avatar": upload}, format="multipart").status_code == 200


def avatar_files(settings, user_id: int) -> list[Path]:
    folder = Path(settings.MEDIA_ROOT) / "avatars" / str(user_id)
    return sorted(folder.iterdir()) if folder.exists() else []


def rows_referencing(user_id: int) -> dict[str, int]:
    """Every row of every installed model that points at the user through a foreign key."""
    found = {}
    for model in apps.get_models():
        for field in model._meta.get_fields():
            if field.concrete and (field.many_to_one or field.one_to_one) and field.related_model is User:
                count = model._default_manager.filter(**{field.attname: user_id}).count()
                if count:
                    found[f"{model._meta.label}.{field.name}"] = count
    return found


# --- deactivate ------------------------------------------------------------------------------


def test_deactivate_signs_out_everywhere_and_keeps_the_data(client_a, user, settings):
    give_avatar(client_a)
    quota_reserve(user=user, service=Service.CHAT, units=2)
    other_device = APIClient()
    other_tokens = login(other_device, user.email)
    other_device.credentials(HTTP_AUTHORIZATION=f"Bearer {other_tokens['accessToken']}")

    response = client_a.post("/api/user/deactivate", {"password": PASSWORD}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["data"] == {"revokedSessions": 2}

    user.refresh_from_db()
    assert user.is_active is False
    assert user.deactivated_at is not None
    for client in (client_a, other_device):
        assert client.get("/api/user/profile").status_code == 401
    refreshed = APIClient().post("/api/auth/refresh", {"refreshToken": other_tokens["refreshToken"]}, format="json")
    assert refreshed.status_code == 401
    relogin = APIClient().post("/api/auth/login", {"email": user.email, "password": PASSWORD}, format="json")
    assert relogin.status_code == 401
    assert relogin.json()["code"] == "account_inactive"
    # the data is kept
    assert QuotaAccount.objects.filter(user=user).exists()
    assert UsageEntry.objects.filter(user=user).count() == 1
    assert len(avatar_files(settings, user.pk)) == 1


def test_deactivate_with_wrong_password_changes_nothing(client_a, user):
    response = client_a.post("/api/user/deactivate", {"password": "not-my-password"}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid_password"
    assert "password" in body["errors"]
    user.refresh_from_db()
    assert user.is_active is True
    assert client_a.get("/api/user/profile").status_code == 200


@pytest.mark.parametrize("body", [{}, {"password": ""}, {"password": ["x"]}])
def test_deactivate_needs_a_password(client_a, body):
    response = client_a.post("/api/user/deactivate", body, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"


def test_deactivate_needs_a_token(api):
    assert api.post("/api/user/deactivate", {"password": PASSWORD}, format="json").status_code == 401


def test_account_without_password_cannot_confirm(make_user):
    google_user = make_user(password=None, provider=User.Provider.GOOGLE)
    signed_in = services.session_start(
        user=google_user, device=services.DeviceInfo(name="Pixel", user_agent="", ip_address=None)
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {signed_in.tokens['access_token']}")
    response = client.post("/api/user/deactivate", {"password": "anything"}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "password_not_set"


def test_deactivate_is_rate_limited_like_sign_in(client_a, real_rate_limits, settings):
    settings.RATE_LIMITS = {**real_rate_limits, "auth": {"rate": (5, 900), "burst": (100, 10)}}
    statuses = [
        client_a.post("/api/user/deactivate", {"password": f"guess-{n}"}, format="json").status_code for n in range(6)
    ]
    assert statuses == [400] * 5 + [429]


def test_staff_reactivates_in_the_admin(client_a, user, make_user, client):
    client_a.post("/api/user/deactivate", {"password": PASSWORD}, format="json")
    client.force_login(make_user(is_staff=True, is_superuser=True))
    response = client.post(
        "/admin/accounts/user/", {"action": "reactivate_accounts", "_selected_action": [user.pk]}, follow=True
    )
    assert response.status_code == 200
    assert "Reactivated 1 account(s)." in response.content.decode()
    user.refresh_from_db()
    assert (user.is_active, user.deactivated_at) == (True, None)
    assert APIClient().post("/api/auth/login", {"email": user.email, "password": PASSWORD}).status_code == 200


# --- delete ----------------------------------------------------------------------------------


def test_delete_account_removes_every_row_and_file(
    client_a, user, make_user, auth_client, settings, django_capture_on_commit_callbacks
):
    settings.ACCOUNT_DELETION_CLEANUPS = [*settings.ACCOUNT_DELETION_CLEANUPS, f"{__name__}.recording_cleanup"]
    cleanup_calls.clear()
    give_avatar(client_a)
    login(APIClient(), user.email)  # a second device
    reservation = quota_reserve(user=user, service=Service.SPEECH_TO_TEXT, units=4)
    reservation_settle(reservation=reservation, units=2, usage={"audio_seconds": 90})
    SocialAccount.objects.create(user=user, provider="google", uid="g-123")
    (Path(settings.MEDIA_ROOT) / "avatars" / str(user.pk) / "leftover.jpg").write_bytes(b"old")
    jtis = list(OutstandingToken.objects.filter(user=user).values_list("jti", flat=True))
    assert len(jtis) == 2
    # someone else's data must survive
    bystander = make_user()
    give_avatar(auth_client(bystander))
    quota_reserve(user=bystander, service=Service.CHAT, units=2)
    user_id = user.pk
    assert rows_referencing(user_id)  # the check below can see rows

    with django_capture_on_commit_callbacks(execute=True):
        response = client_a.delete("/api/user/account", {"password": PASSWORD}, format="json")

    assert response.status_code == 200, response.content
    assert response.json() == {"success": True, "message": "Account and all its data deleted", "data": None, "meta": {}}
    assert "X-Quota-Limit" not in response
    assert cleanup_calls == [(user_id, True)]
    assert not User.objects.filter(pk=user_id).exists()
    assert rows_referencing(user_id) == {}
    assert not OutstandingToken.objects.filter(jti__in=jtis).exists()
    assert not Reservation.objects.filter(user_id=user_id).exists()
    assert avatar_files(settings, user_id) == []
    assert len(avatar_files(settings, bystander.pk)) == 1
    assert QuotaAccount.objects.filter(user=bystander).get().used == 2
    assert DeviceSession.objects.filter(user=bystander).count() == 1
    assert client_a.get("/api/user/profile").status_code == 401


def test_delete_with_wrong_password_deletes_nothing(client_a, user, settings):
    give_avatar(client_a)
    response = client_a.delete("/api/user/account", {"password": "nope"}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_password"
    assert User.objects.filter(pk=user.pk).exists()
    assert len(avatar_files(settings, user.pk)) == 1
    assert client_a.get("/api/user/profile").status_code == 200


def test_delete_needs_password_and_token(api, client_a):
    assert client_a.delete("/api/user/account", {}, format="json").status_code == 400
    assert client_a.delete("/api/user/account").status_code == 400
    assert api.delete("/api/user/account", {"password": PASSWORD}, format="json").status_code == 401


def test_a_failing_cleanup_leaves_everything_in_place(client_a, user, settings, django_capture_on_commit_callbacks):
    give_avatar(client_a)
    settings.ACCOUNT_DELETION_CLEANUPS = [*settings.ACCOUNT_DELETION_CLEANUPS, f"{__name__}.failing_cleanup"]
    user = User.objects.get(pk=user.pk)
    with django_capture_on_commit_callbacks(execute=True) as callbacks, pytest.raises(RuntimeError):
        account_delete(user=user, password=PASSWORD)
    assert callbacks == []  # the avatar's file deletion was never scheduled to run
    assert User.objects.filter(pk=user.pk).exists()
    assert len(avatar_files(settings, user.pk)) == 1


def test_deletion_cleanups_setting_names_importable_callables(settings):
    from django.utils.module_loading import import_string

    assert "accounts.avatars.avatar_files_delete_for_user" in settings.ACCOUNT_DELETION_CLEANUPS
    for dotted in settings.ACCOUNT_DELETION_CLEANUPS:
        assert callable(import_string(dotted))

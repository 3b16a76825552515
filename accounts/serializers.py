from __future__ import annotations

from django.urls import reverse
from rest_framework import serializers

from accounts.models import DeviceSession, User
from quotas.selectors import quota_account_summary
from quotas.services import quota_account_ensure

# Unbound and stateless: formats like any DateTimeField of a serializer (ISO 8601, current zone).
_DATETIME = serializers.DateTimeField()


class UserSerializer(serializers.Serializer):
    """The user as the mobile app stores it (the seed's User collection).

    A plain Serializer rather than a ModelSerializer: it is rendered on every `/me` and login,
    and building ModelSerializer fields from model introspection costs more than the request.
    The declared fields describe the body (the OpenAPI schema reads them); `to_representation`
    writes it directly, since deep-copying 13 fields per response was a fifth of `/me`'s time.
    tests/accounts/test_me_fast_path.py holds it equal to the field-by-field representation."""

    id = serializers.IntegerField(read_only=True)
    email = serializers.EmailField(read_only=True)
    name = serializers.CharField(read_only=True)
    bio = serializers.CharField(read_only=True)
    locale = serializers.CharField(read_only=True)
    timezone = serializers.CharField(read_only=True)
    provider = serializers.CharField(read_only=True)
    avatar = serializers.SerializerMethodField()
    quota = serializers.SerializerMethodField()
    is_active = serializers.BooleanField(read_only=True)
    is_staff = serializers.BooleanField(read_only=True)
    created_at = serializers.DateTimeField(source="date_joined", read_only=True)
    last_login = serializers.DateTimeField(read_only=True)

    def to_representation(self, user: User) -> dict:
        return {
            "id": user.id,
            "email": user.email,
            "name": user.name,
            "bio": user.bio,
            "locale": user.locale,
            "timezone": user.timezone,
            "provider": user.provider,
            "avatar": self.get_avatar(user),
            "quota": self.get_quota(user),
            "is_active": user.is_active,
            "is_staff": user.is_staff,
            "created_at": _DATETIME.to_representation(user.date_joined),
            "last_login": _DATETIME.to_representation(user.last_login) if user.last_login else None,
        }

    def get_avatar(self, user: User) -> str | None:
        if not user.avatar:
            return None
        url = f"{reverse('user-avatar')}?v={int(user.updated_at.timestamp())}"
        request = self.context.get("request")
        return request.build_absolute_uri(url) if request else url

    def get_quota(self, user: User) -> dict:
        # Ensured, not only read: a user serialized outside an authenticated request (sign-up,
        # the admin's tools) may have no account yet.
        summary = quota_account_summary(quota_account_ensure(user=user))
        return {"limit": summary["limit"], "used": summary["used"], "reset_date": summary["reset_date"]}


class RegisterSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(max_length=128, trim_whitespace=False, style={"input_type": "password"})
    name = serializers.CharField(max_length=150)


class LoginSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(max_length=128, trim_whitespace=False, style={"input_type": "password"})


class RefreshSerializer(serializers.Serializer):
    refresh_token = serializers.CharField(max_length=4096)


class GoogleSignInSerializer(serializers.Serializer):
    id_token = serializers.CharField(max_length=8192)


class ChangePasswordSerializer(serializers.Serializer):
    current_password = serializers.CharField(max_length=128, trim_whitespace=False)
    new_password = serializers.CharField(max_length=128, trim_whitespace=False)


class TokenPairSerializer(serializers.Serializer):
    access_token = serializers.CharField()
    refresh_token = serializers.CharField()
    expires_in = serializers.IntegerField(help_text="Seconds until the access token expires.")


class AuthResultSerializer(TokenPairSerializer):
    user = UserSerializer()
    session_id = serializers.UUIDField()


class DeviceSessionSerializer(serializers.ModelSerializer):
    current = serializers.SerializerMethodField()

    class Meta:
        model = DeviceSession
        fields = ["id", "device_name", "ip_address", "provider", "created_at", "last_used_at", "expires_at", "current"]
        read_only_fields = fields

    def get_current(self, session: DeviceSession) -> bool:
        return str(session.id) == str(self.context.get("current_session_id"))


class RevokedSerializer(serializers.Serializer):
    """The answer of `/api/auth/logout-all` (schema only)."""

    revoked = serializers.IntegerField(help_text="How many sessions were signed out.")


class RevokedSessionsSerializer(serializers.Serializer):
    """The answer of a password change or a deactivation (schema only)."""

    revoked_sessions = serializers.IntegerField(help_text="How many sessions were signed out.")

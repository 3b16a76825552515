"""Input and output shapes of `/api/auth/...`: sign-up, sign-in, tokens and device sessions."""

from __future__ import annotations

from rest_framework import serializers

from accounts.models import DeviceSession
from accounts.serializers.user import UserSerializer


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

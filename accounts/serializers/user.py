"""The user as every answer that carries one renders it (`/me`, sign-in, profile, avatar)."""

from __future__ import annotations

from django.urls import reverse
from rest_framework import serializers

from accounts.models import User
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

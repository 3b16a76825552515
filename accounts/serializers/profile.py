"""Input shapes of `/api/user/...` (the output is `accounts.serializers.user.UserSerializer`)."""

from __future__ import annotations

import re
import zoneinfo
from functools import lru_cache

from rest_framework import serializers

_LOCALE = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*$")


@lru_cache(maxsize=1)
def _time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


class ProfileUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=150, required=False)
    bio = serializers.CharField(max_length=500, required=False, allow_blank=True)
    locale = serializers.CharField(max_length=16, required=False, allow_blank=True)
    timezone = serializers.CharField(max_length=64, required=False, allow_blank=True)
    # Accepted only to tell a client that tries to change it that it can't (400 email_not_editable).
    email = serializers.CharField(max_length=254, required=False, allow_blank=True)

    def validate_locale(self, value: str) -> str:
        if value and not _LOCALE.match(value):
            raise serializers.ValidationError("Use a language tag such as en, en-US or pt_BR.")
        return value.replace("_", "-")

    def validate_timezone(self, value: str) -> str:
        if value and value not in _time_zones():
            raise serializers.ValidationError("Use an IANA time zone such as Europe/Paris or America/New_York.")
        return value


class IdentityConfirmSerializer(serializers.Serializer):
    """Exactly one of the two: the password, or (for an account that signs in with Google) an ID
    token from a Google sign-in made in the last few minutes."""

    password = serializers.CharField(
        required=False, max_length=128, trim_whitespace=False, style={"input_type": "password"}
    )
    google_id_token = serializers.CharField(required=False, max_length=4096)

    def validate(self, attrs: dict) -> dict:
        if ("password" in attrs) == ("google_id_token" in attrs):
            raise serializers.ValidationError("Send either password or googleIdToken.")
        return attrs


class AvatarUploadSerializer(serializers.Serializer):
    avatar = serializers.FileField(help_text="JPEG, PNG, GIF or WebP, at most 5 MB.")

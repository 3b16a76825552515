"""Serializers of the accounts API, by concern: `user` (the user as answers render it), `auth`
(sign-up, sign-in, tokens, device sessions) and `profile` (profile, avatar, identity checks)."""

from accounts.serializers.auth import (
    AuthResultSerializer,
    ChangePasswordSerializer,
    DeviceSessionSerializer,
    GoogleSignInSerializer,
    LoginSerializer,
    RefreshSerializer,
    RegisterSerializer,
    RevokedSerializer,
    RevokedSessionsSerializer,
    TokenPairSerializer,
)
from accounts.serializers.profile import AvatarUploadSerializer, IdentityConfirmSerializer, ProfileUpdateSerializer
from accounts.serializers.user import UserSerializer

__all__ = [
    "AuthResultSerializer",
    "AvatarUploadSerializer",
    "ChangePasswordSerializer",
    "DeviceSessionSerializer",
    "GoogleSignInSerializer",
    "IdentityConfirmSerializer",
    "LoginSerializer",
    "ProfileUpdateSerializer",
    "RefreshSerializer",
    "RegisterSerializer",
    "RevokedSerializer",
    "RevokedSessionsSerializer",
    "TokenPairSerializer",
    "UserSerializer",
]

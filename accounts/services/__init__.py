"""Accounts business logic, by concern: `auth` (registration, sign-in, device sessions, token
rotation) and `profile` (profile, avatar, deactivation, deletion). Both are re-exported here."""

from accounts.services.auth import (
    DeviceInfo,
    SignIn,
    google_sign_in,
    password_change,
    session_logout,
    session_revoke,
    session_start,
    sessions_revoke_all,
    token_refresh,
    user_authenticate,
    user_register,
)
from accounts.services.profile import (
    GOOGLE_CONFIRM_MAX_AGE_SECONDS,
    PROFILE_FIELDS,
    account_deactivate,
    account_delete,
    account_reactivate,
    avatar_remove,
    avatar_update,
    identity_confirm,
    profile_update,
)

__all__ = [
    "GOOGLE_CONFIRM_MAX_AGE_SECONDS",
    "PROFILE_FIELDS",
    "DeviceInfo",
    "SignIn",
    "account_deactivate",
    "account_delete",
    "account_reactivate",
    "avatar_remove",
    "avatar_update",
    "google_sign_in",
    "identity_confirm",
    "password_change",
    "profile_update",
    "session_logout",
    "session_revoke",
    "session_start",
    "sessions_revoke_all",
    "token_refresh",
    "user_authenticate",
    "user_register",
]

"""OpenAPI examples of `/api/auth/...` and `/api/user/...` (the seed's values where it shows them).

Success examples hold the `data` part only; the schema hook wraps them in the envelope. See
`core.api.examples`.
"""

from __future__ import annotations

from core.api.examples import (
    MULTIPART,
    error_example,
    error_response,
    null_response,
    request_example,
    success_example,
)

SESSION_ID = "6f1c2a4e-2b1d-4c6e-9a55-3f0e8d7b1c20"
# Placeholders shown in the docs, not credentials of anything.
ACCESS_TOKEN = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ0b2tlbl90eXBlIjoiYWNjZXNzIi..."  # noqa: S105
REFRESH_TOKEN = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ0b2tlbl90eXBlIjoicmVmcmVzaCIi..."  # noqa: S105
PASSWORD = "securePassword123"  # noqa: S105 - the seed's example password

# The seed's user, as `UserSerializer` renders it: register, login, me, profile and avatar answers.
USER = {
    "id": 1,
    "email": "user@example.com",
    "name": "John Doe",
    "bio": "",
    "locale": "",
    "timezone": "",
    "provider": "local",
    "avatar": None,
    "quota": {"limit": 100, "used": 25, "resetDate": "2026-12-01T00:00:00Z"},
    "isActive": True,
    "isStaff": False,
    "createdAt": "2026-11-01T09:30:00Z",
    "lastLogin": "2026-11-25T08:00:00Z",
}
TOKENS = {"accessToken": ACCESS_TOKEN, "refreshToken": REFRESH_TOKEN, "expiresIn": 900}
AUTH_RESULT = {"user": USER, **TOKENS, "sessionId": SESSION_ID}

# --- /api/auth ----------------------------------------------------------------------------------

REGISTER_REQUEST = request_example("Register", {"email": "user@example.com", "password": PASSWORD, "name": "John Doe"})
REGISTERED = success_example("Registered", AUTH_RESULT, message="Registration successful", status=201)

LOGIN_REQUEST = request_example("Login", {"email": "user@example.com", "password": PASSWORD})
SIGNED_IN = success_example("Signed in", AUTH_RESULT, message="Login successful")

GOOGLE_REQUEST = request_example("Google ID token", {"idToken": "eyJhbGciOiJSUzI1NiIsImtpZCI6IjFlOWdkazcifQ..."})

REFRESH_REQUEST = request_example("Refresh token", {"refreshToken": REFRESH_TOKEN})
REFRESHED = success_example("New token pair", TOKENS, message="Token refreshed")

LOGGED_OUT = null_response("Logged out")

ME = success_example("Current user", USER)

LOGGED_OUT_EVERYWHERE = success_example("Sessions revoked", {"revoked": 3}, message="Logged out from all devices")

SESSIONS = success_example(
    "Active sessions",
    {
        "id": SESSION_ID,
        "deviceName": "Pixel 8 (Android 14)",
        "ipAddress": "203.0.113.7",
        "provider": "local",
        "createdAt": "2026-11-20T18:12:04Z",
        "lastUsedAt": "2026-11-25T08:00:00Z",
        "expiresAt": "2026-12-25T08:00:00Z",
        "current": True,
    },
)
SESSION_REVOKED = null_response("Session revoked")

CHANGE_PASSWORD_REQUEST = request_example(
    "Change password", {"currentPassword": PASSWORD, "newPassword": "evenMoreSecure456!"}
)
PASSWORD_CHANGED = success_example(
    "Password changed", {"revokedSessions": 2}, message="Password changed; other devices were signed out"
)

# --- /api/user ----------------------------------------------------------------------------------

PROFILE = success_example("Profile", USER)
PROFILE_UPDATE = {"name": "Jane Doe", "bio": "Amateur astronomer.", "locale": "en-GB", "timezone": "Europe/London"}
PROFILE_UPDATE_REQUEST = request_example("Update profile", PROFILE_UPDATE)
PROFILE_UPDATED = success_example("Profile updated", {**USER, **PROFILE_UPDATE}, message="Profile updated")

AVATAR_REQUEST = request_example(
    "Avatar", {"avatar": "(binary) a JPEG, PNG, GIF or WebP image, at most 5 MB"}, media_type=MULTIPART
)
AVATAR_UPDATED = success_example(
    "Avatar updated",
    {**USER, "avatar": "https://api.example.com/api/user/avatar?v=1764057600"},
    message="Avatar updated",
)
AVATAR_REMOVED = success_example("Avatar removed", USER, message="Avatar removed")
AVATAR_TOO_LARGE = error_response(
    "Over 5 MB, or too many pixels.",
    error_example(
        "File too large",
        message="The avatar is 7.4 MB; the limit is 5 MB.",
        code="file_too_large",
        errors={"avatar": ["File too large."]},
    ),
)
AVATAR_UNSUPPORTED = error_response(
    "Not a JPEG, PNG, GIF or WebP image (by content).",
    error_example(
        "Not an image",
        message="The avatar must be a JPEG, PNG, GIF or WebP image.",
        code="unsupported_media_type",
        errors={"avatar": ["Not a JPEG, PNG, GIF or WebP image."]},
    ),
)

PASSWORD_CONFIRM_REQUEST = request_example("Confirm with the password", {"password": PASSWORD})
GOOGLE_CONFIRM_REQUEST = request_example(
    "Confirm with a fresh Google sign-in", {"googleIdToken": "eyJhbGciOiJSUzI1NiIsImtpZCI6..."}
)
DEACTIVATED = success_example(
    "Deactivated", {"revokedSessions": 2}, message="Account deactivated; every device was signed out"
)
ACCOUNT_DELETED = null_response("Account and all its data deleted")

# --- Errors of /api/auth (each status an endpoint really answers, with its codes) --------------

INVALID_INPUT = error_response(
    "Invalid input: `errors` names each field.",
    error_example(
        "Invalid field",
        message="Enter a valid email address.",
        code="validation_error",
        errors={"email": ["Enter a valid email address."]},
    ),
)
WEAK_PASSWORD = error_example(
    "Password refused by the password rules",
    message="This password is too short. It must contain at least 8 characters.",
    code="validation_error",
    errors={"password": ["This password is too short. It must contain at least 8 characters."]},
)
REGISTER_INVALID = error_response(
    "Invalid input, or a password the password rules refuse.",
    error_example(
        "Invalid field",
        message="Enter a valid email address.",
        code="validation_error",
        errors={"email": ["Enter a valid email address."]},
    ),
    WEAK_PASSWORD,
)
EMAIL_TAKEN = error_response(
    "An account with this email already exists.",
    error_example(
        "Email taken",
        message="An account with this email already exists.",
        code="email_taken",
        errors={"email": ["Already registered."]},
    ),
)
INVALID_CREDENTIALS = error_response(
    "Wrong email or password (`X-RateLimit-Remaining`: failed attempts left for this email from this "
    "address), or a deactivated account.",
    error_example("Invalid credentials", message="Invalid email or password.", code="invalid_credentials"),
    error_example("Deactivated", message="This account is deactivated.", code="account_inactive"),
)
SIGNIN_RATE_LIMITED = error_response(
    "Too many failed sign-ins (for this email from this address, from this address, or for this email "
    "from addresses it never signed in from), or too many sign-in requests; see `Retry-After`.",
    error_example(
        "Too many failed sign-ins",
        message="Too many failed sign-in attempts. Try again in 14 minutes.",
        code="rate_limited",
    ),
    error_example("Too many requests", message="Too many requests. Try again in 7 seconds.", code="rate_limited"),
)
RATE_LIMITED = error_response(
    "Too many requests from this address; see `Retry-After`.",
    error_example("Too many requests", message="Too many requests. Try again in 7 seconds.", code="rate_limited"),
)
GOOGLE_REFUSED = error_response(
    "The ID token is invalid or its email unverified, or the account is deactivated.",
    error_example("Invalid token", message="The Google ID token is invalid.", code="invalid_google_token"),
    error_example(
        "Unverified email", message="The Google account has no verified email address.", code="email_not_verified"
    ),
    error_example("Deactivated", message="This account is deactivated.", code="account_inactive"),
)
GOOGLE_UNAVAILABLE = error_response(
    "Google sign-in is not configured here, or Google's keys could not be fetched.",
    error_example(
        "Not configured", message="Google sign-in is not configured on this server.", code="google_not_configured"
    ),
    error_example(
        "Google unreachable", message="Google could not be reached to verify the sign-in.", code="google_unavailable"
    ),
)
REFRESH_REFUSED = error_response(
    "The refresh token is invalid or expired, its session was signed out, or it was used twice.",
    error_example("Invalid", message="The refresh token is invalid.", code="token_invalid"),
    error_example("Expired", message="The refresh token has expired.", code="token_expired"),
    error_example("Signed out", message="This session has been signed out.", code="session_revoked"),
    error_example(
        "Reused",
        message="This refresh token was already used. The session has been signed out for safety.",
        code="refresh_token_reused",
    ),
)
LOGOUT_REFUSED = error_response(
    "The refresh token is invalid or expired.",
    error_example("Invalid", message="The refresh token is invalid.", code="token_invalid"),
    error_example("Expired", message="The refresh token has expired.", code="token_expired"),
)
NOT_SIGNED_IN = error_response(
    "The access token is missing, invalid or expired, or its session was signed out.",
    error_example("No token", message="Authentication credentials were not provided.", code="not_authenticated"),
    error_example("Expired", message="The access token has expired.", code="token_expired"),
    error_example("Signed out", message="This session has been signed out.", code="session_revoked"),
)
SESSION_NOT_FOUND = error_response(
    "No active session with this id among yours.",
    error_example("Not found", message="Session not found.", code="not_found"),
)
WRONG_CURRENT_PASSWORD = error_response(
    "Invalid input, a wrong current password, or a new password the password rules refuse.",
    error_example(
        "Wrong current password",
        message="The current password is wrong.",
        code="invalid_password",
        errors={"currentPassword": ["Wrong password."]},
    ),
)
RATE_LIMITED_PER_USER = error_response(
    "Too many requests from this user; see `Retry-After`.",
    error_example("Too many requests", message="Too many requests. Try again in 7 seconds.", code="rate_limited"),
)
GOOGLE_NOT_CONFIGURED = error_response(
    "Google sign-in is not configured on this server (no `GOOGLE_CLIENT_IDS`).",
    error_example(
        "Google not configured",
        message="Google sign-in is not configured on this server.",
        code="google_not_configured",
    ),
)

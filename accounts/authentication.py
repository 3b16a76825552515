"""Bearer-token authentication bound to device sessions."""

from __future__ import annotations

import uuid
from datetime import timedelta
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import ExpiredTokenError, TokenError
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import AccessToken, Token
from rest_framework_simplejwt.utils import aware_utcnow

from accounts.models import DeviceSession, User
from accounts.selectors import device_session_get_active
from quotas.services import quota_account_ensure


@lru_cache(maxsize=4096)
def _access_token_verified(raw_token: bytes) -> AccessToken:
    """The decoded access token, its signature and claims verified once per process.

    A token's bytes always verify the same way (same key), and a client sends the same token
    for its whole lifetime: decoding and checking the HMAC again was ~15% of `/me`. Failures
    raise and are not cached. What can change (the session's revocation) is still read per
    request."""
    # simplejwt annotates the raw token as a `Token`; it takes (and is given) the encoded bytes.
    return AccessToken(raw_token)  # type: ignore[arg-type]


class SessionJWTAuthentication(JWTAuthentication):
    """Validates the access token, then the device session it names, in one query.

    Checking the session on every request is what makes revocation (logout, logout-all,
    password change, a reused refresh token) take effect at once instead of at token expiry.
    """

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'

    # simplejwt annotates these with a TypeVar bound to neither the class nor an argument, which
    # no concrete override can match; this backend always returns our `User`.
    def authenticate(self, request: Request) -> tuple[User, Token] | None:  # type: ignore[override]
        result = super().authenticate(request)
        if result is None:
            return None
        user = result[0]
        assert isinstance(user, User)  # get_user below returns nothing else
        # Exposed on the Django request for middleware that runs after the view (an attribute
        # HttpRequest's type does not declare, hence the untyped handle).
        django_request: Any = request._request
        django_request.api_user = user
        return user, result[1]

    def get_validated_token(self, raw_token: bytes) -> AccessToken:
        try:
            token = _access_token_verified(raw_token)
        except ExpiredTokenError:
            raise exceptions.AuthenticationFailed("The access token has expired.", code="token_expired") from None
        except TokenError:
            raise exceptions.AuthenticationFailed("The access token is invalid.", code="token_invalid") from None
        try:
            # The cached verification is timeless; expiry is checked on every use.
            token.check_exp(current_time=aware_utcnow())
        except TokenError:
            raise exceptions.AuthenticationFailed("The access token has expired.", code="token_expired") from None
        return token

    def get_user(self, validated_token: Token) -> User:  # type: ignore[override]
        try:
            session_id = uuid.UUID(validated_token["sid"])
            user_id = int(validated_token[api_settings.USER_ID_CLAIM])
        except (KeyError, TypeError, ValueError):
            raise exceptions.AuthenticationFailed("The access token is invalid.", code="token_invalid") from None
        session = device_session_get_active(session_id=session_id, user_id=user_id)
        if session is None:
            raise exceptions.AuthenticationFailed("This session has been signed out.", code="session_revoked")
        user = session.user
        if not user.is_active:
            raise exceptions.AuthenticationFailed("This account is deactivated.", code="account_inactive")

        now = timezone.now()
        if now - session.last_used_at > timedelta(seconds=settings.SESSION_TOUCH_SECONDS):
            DeviceSession.objects.filter(pk=session.pk).update(last_used_at=now)
            session.last_used_at = now
        user.device_session = session
        # Every authenticated response reports the quota (X-Quota-*): open the account or start
        # its new period now. With the account loaded by the lookup above this costs no query.
        quota_account_ensure(user=user)
        return user


def request_user(request: Request | HttpRequest) -> User:
    """The signed-in user of an authenticated request.

    Views behind `IsAuthenticated` always have a `User` here; this narrows the
    `User | AnonymousUser` the type stubs give `request.user`, and fails loudly if a view
    forgot its permission class rather than passing an anonymous user to a service."""
    user = request.user
    if not isinstance(user, User):
        raise exceptions.NotAuthenticated()
    return user

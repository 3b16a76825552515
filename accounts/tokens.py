"""Issuing and reading the JWT pair of a device session (simplejwt does the signing)."""

from __future__ import annotations

from typing import Any, TypedDict

from rest_framework_simplejwt.exceptions import TokenBackendError, TokenBackendExpiredToken
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.state import token_backend
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken
from rest_framework_simplejwt.utils import datetime_from_epoch

from accounts.models import DeviceSession
from core.exceptions import AuthenticationFailed


class TokenPair(TypedDict):
    access_token: str
    refresh_token: str
    expires_in: int


def token_pair_issue(*, session: DeviceSession) -> tuple[TokenPair, str]:
    """A new refresh/access pair carrying the session id; returns it with the refresh jti.

    The refresh token is recorded as outstanding in simplejwt's blacklist app, so operators can
    see and flush tokens with its admin and `flushexpiredtokens` command.
    """
    refresh = RefreshToken()
    refresh[api_settings.USER_ID_CLAIM] = session.user_id
    refresh["sid"] = str(session.id)
    jti = refresh[api_settings.JTI_CLAIM]
    encoded = str(refresh)
    OutstandingToken.objects.create(
        user_id=session.user_id,
        jti=jti,
        token=encoded,
        created_at=refresh.current_time,
        expires_at=datetime_from_epoch(refresh["exp"]),
    )
    access = refresh.access_token
    pair: TokenPair = {
        "access_token": str(access),
        "refresh_token": encoded,
        "expires_in": int(api_settings.ACCESS_TOKEN_LIFETIME.total_seconds()),
    }
    return pair, jti


def refresh_token_decode(raw: str) -> dict[str, Any]:
    """Verify signature, expiry and type of a refresh token; its session is checked by the caller."""
    try:
        # simplejwt annotates the encoded token as a `Token`; it decodes (and is given) the string.
        payload = token_backend.decode(raw, verify=True)  # type: ignore[arg-type]
    except TokenBackendExpiredToken:
        raise AuthenticationFailed("The refresh token has expired.", code="token_expired") from None
    except TokenBackendError:
        raise AuthenticationFailed("The refresh token is invalid.", code="token_invalid") from None
    if payload.get(api_settings.TOKEN_TYPE_CLAIM) != "refresh" or not payload.get("sid"):
        raise AuthenticationFailed("The refresh token is invalid.", code="token_invalid")
    return payload


def refresh_jtis_blacklist(jtis: list[str]) -> None:
    for outstanding in OutstandingToken.objects.filter(jti__in=[j for j in jtis if j]):
        BlacklistedToken.objects.get_or_create(token=outstanding)

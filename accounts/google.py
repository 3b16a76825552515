"""Google sign-in: ID-token verification through django-allauth's Google provider.

This is the only module that talks to Google. allauth downloads Google's signing certificates on
every verification; the adapter below caches that response in the shared cache for as long as
Google's `Cache-Control: max-age` allows (or `GOOGLE_CERTS_CACHE_SECONDS`).
"""

from __future__ import annotations

import logging
import re
from typing import Any

import requests
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from allauth.socialaccount.internal import jwtkit
from allauth.socialaccount.providers.google import views as google_views
from allauth.socialaccount.providers.oauth2.client import OAuth2Error
from django.conf import settings
from django.core.cache import cache

from core.api.outages import CACHE_ERRORS
from core.exceptions import AuthenticationFailed, ProviderUnavailable

logger = logging.getLogger(__name__)

_CACHE_KEY = "google:certs:v1"
_MAX_AGE = re.compile(r"max-age=(\d+)")


class _CachedResponse:
    def __init__(self, payload: Any) -> None:
        self._payload = payload

    def raise_for_status(self) -> None:
        return None

    def json(self) -> Any:
        return self._payload


class _CertsCachingSession(requests.Session):
    def __init__(self, timeout: float) -> None:
        super().__init__()
        self._timeout = timeout

    # Any: the cached answer is a `_CachedResponse` standing in for a Response (json() only).
    def get(self, url: str | bytes, **kwargs: Any) -> Any:
        if url != settings.GOOGLE_CERTS_URL:
            return super().get(url, timeout=self._timeout, **kwargs)
        try:
            cached = cache.get(_CACHE_KEY)
        except CACHE_ERRORS as exc:  # Google's endpoint still answers: sign-in does not need the cache
            logger.warning("Google certs cache unreachable (%s): fetching the keys", exc)
            cached = None
        if cached is not None:
            return _CachedResponse(cached)
        response = super().get(url, timeout=self._timeout, **kwargs)
        response.raise_for_status()
        payload = response.json()
        match = _MAX_AGE.search(response.headers.get("Cache-Control", ""))
        ttl = int(match.group(1)) if match else settings.GOOGLE_CERTS_CACHE_SECONDS
        try:
            cache.set(_CACHE_KEY, payload, timeout=max(60, min(ttl, 24 * 3600)))
        except CACHE_ERRORS as exc:
            logger.warning("Google certs cache unreachable (%s): keys not kept", exc)
        return _CachedResponse(payload)


class CachingSocialAccountAdapter(DefaultSocialAccountAdapter):
    def get_requests_session(self) -> requests.Session:
        return _CertsCachingSession(timeout=5)


def google_id_token_verify(id_token: str) -> dict[str, Any]:
    """Verify a Google ID token (signature, issuer, expiry, audience) and return its claims."""
    client_ids = settings.GOOGLE_CLIENT_IDS
    if not client_ids:
        raise ProviderUnavailable("Google sign-in is not configured on this server.", code="google_not_configured")
    try:
        claims = jwtkit.verify_and_decode(
            credential=id_token,
            keys_url=settings.GOOGLE_CERTS_URL,
            issuer=google_views.ID_TOKEN_ISSUER,
            audience=client_ids,
            lookup_kid=jwtkit.lookup_kid_pem_x509_certificate,
        )
    except requests.RequestException:
        raise ProviderUnavailable(
            "Google could not be reached to verify the sign-in.", code="google_unavailable"
        ) from None
    except (OAuth2Error, KeyError, ValueError):
        raise AuthenticationFailed("The Google ID token is invalid.", code="invalid_google_token") from None
    if not claims.get("sub"):
        raise AuthenticationFailed("The Google ID token is invalid.", code="invalid_google_token")
    return claims

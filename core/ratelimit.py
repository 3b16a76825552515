"""The rate-limit policy: the seed's table applied to every endpoint by category.

Each view names its category (`rate_category`, default "general"; a view whose methods belong to
different categories, like an avatar that is uploaded and downloaded, maps methods to categories
in `rate_categories`, e.g. `{"POST": UPLOAD}`, falling back to `rate_category`). A request is counted in a
long window and, where the category has one, a short burst window, keyed by user when
authenticated and by client address otherwise (`core.client_address`: behind trusted proxies,
the forwarded address; an IPv6 client by its /64). Every limit comes from the environment
(`RATE_LIMIT_<CATEGORY>` and `..._BURST`, see config/settings/api.py).

Sign-up, sign-in and refresh have request caps of their own, per address. Guessing passwords is
stopped by budgets of *failed* credential checks (`count_failure`, `failure_budget`), which
`accounts.signin_protection` spends and checks: a successful sign-in or a request refused for
invalid input spends nothing.

Counters are django-ratelimit's, in the default cache: Redis (shared by every process) when
`REDIS_URL` is set; the embedded default (no Redis) keeps them in the process, which is correct
for the single web process `make run` starts only. The windows are fixed (with a per-key offset
so they don't all roll over at once): a client can spend a window's allowance at its end and the
next one at the start of the next window; the burst window bounds that.

When the cache does not answer (Redis down), limits fail open: the request goes through, a
warning is logged (at most once a minute per process) and `mma_rate_limit_fail_open_total`
counts it. Refusing every request because the counter store is down would turn a cache outage
into a full outage; the budgets are a brake on abuse, not the authentication itself.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest
from django_ratelimit import ALL
from django_ratelimit.core import get_usage
from django_redis.exceptions import ConnectionInterrupted
from redis.exceptions import RedisError
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from core import metrics
from core.client_address import client_key

if TYPE_CHECKING:  # at run time DRF's views import the throttle and pagination classes from here
    from rest_framework.views import APIView

logger = logging.getLogger(__name__)

GENERAL = "general"
AUTH = "auth"
AI = "ai"
UPLOAD = "upload"
DOWNLOAD = "download"
SIGNUP = "signup"
SIGNIN = "signin"
REFRESH = "refresh"
# Budgets of failed credential checks (not request categories of views).
AUTH_FAILURES = "auth_failures"
AUTH_ADDRESS_FAILURES = "auth_address_failures"
AUTH_EMAIL_FAILURES = "auth_email_failures"

# What a cache that cannot reach Redis raises (django-redis wraps most, not all, of redis-py's).
_CACHE_ERRORS = (ConnectionInterrupted, RedisError, OSError)
_WARN_EVERY_SECONDS = 60.0
_last_warning = 0.0


@dataclass(frozen=True)
class Usage:
    """`limit` and `remaining` describe the long window (what X-RateLimit-* report); a request
    refused by the burst window can still have `remaining` > 0, and says when to retry."""

    limit: int
    remaining: int
    limited: bool
    retry_after: int

    def headers(self) -> dict[str, str]:
        headers = {"X-RateLimit-Limit": str(self.limit), "X-RateLimit-Remaining": str(self.remaining)}
        if self.limited:
            headers["Retry-After"] = str(self.retry_after)
        return headers


def _fail_open(category: str, exc: Exception) -> None:
    global _last_warning
    metrics.record_rate_limit_fail_open(category=category)
    now = time.monotonic()
    if now - _last_warning >= _WARN_EVERY_SECONDS:
        _last_warning = now
        logger.warning("Rate-limit counters unavailable (%s: %s): letting requests through", type(exc).__name__, exc)


def _limit(category: str) -> int:
    """Requests allowed per main window: every category has a `rate` (settings.RATE_LIMITS)."""
    policy = settings.RATE_LIMITS[category]["rate"]
    if policy is None:
        raise ImproperlyConfigured(f"RATE_LIMITS[{category!r}] has no rate")
    return int(policy[0])


def _window(category: str, window_name: str, identity: str, *, increment: bool) -> dict[str, Any] | None:
    """django-ratelimit's usage of one window of one identity; None when the category has no
    such window or the cache is down (fail open)."""
    policy = settings.RATE_LIMITS[category].get(window_name)
    if policy is None:
        return None
    count, seconds = policy
    try:
        return get_usage(
            None,
            group=f"rl:{category}:{window_name}",
            key=lambda _group, _request: identity,
            rate=f"{count}/{seconds}s",
            method=ALL,
            increment=increment,
        )
    except _CACHE_ERRORS as exc:
        _fail_open(category, exc)
        return None


def count_request(category: str, identities: list[str]) -> Usage:
    """Count one request against each identity in the category's windows."""
    limit = _limit(category)
    remaining = limit
    limited = False
    retry_after = 0
    for window_name in ("rate", "burst"):
        for identity in identities:
            usage = _window(category, window_name, identity, increment=True)
            if usage is None:
                continue
            if window_name == "rate":
                remaining = min(remaining, max(usage["limit"] - usage["count"], 0))
            if usage["should_limit"]:
                limited = True
                retry_after = max(retry_after, int(usage["time_left"]), 1)
    return Usage(limit=limit, remaining=remaining, limited=limited, retry_after=retry_after)


def failure_budget(category: str, identity: str) -> Usage:
    """How much of a failure budget is left, without spending any. Exhausted (`limited`) when
    the failures in the window have reached the limit: the next attempt must not be checked."""
    limit = _limit(category)
    usage = _window(category, "rate", identity, increment=False)
    if usage is None:
        return Usage(limit=limit, remaining=limit, limited=False, retry_after=0)
    remaining = max(limit - usage["count"], 0)
    return Usage(limit=limit, remaining=remaining, limited=remaining == 0, retry_after=max(int(usage["time_left"]), 1))


def count_failure(category: str, identity: str) -> Usage:
    """Spend one unit of a failure budget; returns what is left."""
    limit = _limit(category)
    usage = _window(category, "rate", identity, increment=True)
    if usage is None:
        return Usage(limit=limit, remaining=limit, limited=False, retry_after=0)
    remaining = max(limit - usage["count"], 0)
    return Usage(limit=limit, remaining=remaining, limited=remaining == 0, retry_after=max(int(usage["time_left"]), 1))


def request_identities(request: HttpRequest | Request) -> list[str]:
    user = getattr(request, "user", None)
    if user is not None and getattr(user, "is_authenticated", False):
        return [f"user:{user.pk}"]
    return [f"ip:{client_key(request)}"]


def rate_check(request: HttpRequest | Request, category: str) -> Usage:
    """Count this request in its category's windows and say whether it must be refused."""
    return count_request(category, request_identities(request))


def category_for(request: HttpRequest | Request, view: APIView) -> str | None:
    """The view's category for this request's method (None: not rate limited)."""
    per_method = getattr(view, "rate_categories", None) or {}
    if request.method in per_method:
        return per_method[request.method]
    return getattr(view, "rate_category", GENERAL)


class CategoryThrottle(BaseThrottle):
    """DRF throttle that applies `rate_check` and leaves the numbers for the response headers."""

    def allow_request(self, request: Request, view: APIView) -> bool:
        if not settings.RATE_LIMITS_ENABLED:
            return True
        category = category_for(request, view)
        if category is None:
            return True
        usage = rate_check(request, category)
        # Stored on the Django request so the headers middleware sees it after the view (an
        # attribute HttpRequest's type does not declare, hence the untyped handle).
        django_request: Any = request._request
        django_request.rate_limit_usage = usage
        self._wait = usage.retry_after
        return not usage.limited

    def wait(self) -> float | None:
        return self._wait

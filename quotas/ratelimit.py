"""The rate-limit policy: the seed's table applied to every endpoint by category.

Each view names its category (`rate_category`, default "general"; a view whose methods belong to
different categories, like an avatar that is uploaded and downloaded, maps methods to categories
in `rate_categories`, e.g. `{"POST": UPLOAD}`, falling back to `rate_category`). A request is counted in a
long window and a short burst window, keyed by user when authenticated and by client IP
otherwise; authentication endpoints are also keyed by the email being tried, so one address
cannot be brute-forced from many IPs. Counters are django-ratelimit's, in the default cache:
Redis (shared by every process) when `REDIS_URL` is set; the embedded default (no Redis) keeps
them in the process, which is correct for the single web process `make run` starts only.

The windows are fixed (django-ratelimit's, with a per-key offset so they don't all roll over
at once): a client can spend a window's allowance at its end and the next one at the start of
the next window. The burst window bounds that: it caps how much of the long window can be spent
within a few seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django_ratelimit import ALL
from django_ratelimit.core import get_usage
from rest_framework.throttling import BaseThrottle

from accounts.devices import client_ip

GENERAL = "general"
AUTH = "auth"
AI = "ai"
UPLOAD = "upload"
DOWNLOAD = "download"


@dataclass(frozen=True)
class Usage:
    """`limit` and `remaining` describe the long window (what X-RateLimit-* report); a request
    refused by the burst window can still have `remaining` > 0, and says when to retry."""

    limit: int
    remaining: int
    limited: bool
    retry_after: int


def _identities(request, category: str) -> list[str]:
    user = getattr(request, "user", None)
    if user is not None and getattr(user, "is_authenticated", False):
        keys = [f"user:{user.pk}"]
    else:
        keys = [f"ip:{client_ip(request) or 'unknown'}"]
    if category == AUTH:
        email = _email_of(request)
        if email:
            keys.append(f"email:{email}")
    return keys


def _email_of(request) -> str:
    # A malformed body raises here, which is the right answer (400) for the request anyway.
    data = request.data
    email = data.get("email") if hasattr(data, "get") else None
    return email.strip().lower()[:254] if isinstance(email, str) else ""


def rate_check(request, category: str) -> Usage:
    """Count this request in its category's windows and say whether it must be refused."""
    policy = settings.RATE_LIMITS[category]
    limit = policy["rate"][0]
    remaining = limit
    limited = False
    retry_after = 0
    for window_name in ("rate", "burst"):
        count, seconds = policy[window_name]
        for identity in _identities(request, category):
            usage = get_usage(
                request,
                group=f"rl:{category}:{window_name}",
                key=lambda _group, _request, identity=identity: identity,
                rate=f"{count}/{seconds}s",
                method=ALL,
                increment=True,
            )
            if usage is None:
                continue
            if window_name == "rate":
                remaining = min(remaining, max(count - usage["count"], 0))
            if usage["should_limit"]:
                limited = True
                retry_after = max(retry_after, int(usage["time_left"]), 1)
    return Usage(limit=limit, remaining=remaining, limited=limited, retry_after=retry_after)


def category_for(request, view) -> str | None:
    """The view's category for this request's method (None: not rate limited)."""
    per_method = getattr(view, "rate_categories", None) or {}
    if request.method in per_method:
        return per_method[request.method]
    return getattr(view, "rate_category", GENERAL)


class CategoryThrottle(BaseThrottle):
    """DRF throttle that applies `rate_check` and leaves the numbers for the response headers."""

    def allow_request(self, request, view) -> bool:
        if not settings.RATE_LIMITS_ENABLED:
            return True
        category = category_for(request, view)
        if category is None:
            return True
        usage = rate_check(request, category)
        # Stored on the Django request so the headers middleware sees it after the view.
        request._request.rate_limit_usage = usage
        self._wait = usage.retry_after
        return not usage.limited

    def wait(self) -> float | None:
        return self._wait

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from core.timestamps import iso_z
from quotas.services import quota_account_ensure
from quotas.tracking import (
    quota_account_forget,
    quota_account_was_changed,
    quota_changes_track,
    quota_changes_untrack,
)


class UsageHeadersMiddleware:
    """Adds `X-RateLimit-*` (from the throttle) and `X-Quota-*` (for authenticated API calls)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = quota_changes_track()
        try:
            response = self.get_response(request)
            usage = getattr(request, "rate_limit_usage", None)
            # A sign-in refused or failed reports its failure budget itself (already set).
            if usage is not None and "X-RateLimit-Limit" not in response:
                response["X-RateLimit-Limit"] = str(usage.limit)
                response["X-RateLimit-Remaining"] = str(usage.remaining)
            user = getattr(request, "api_user", None)
            # A user deleted by this request (DELETE /api/user/account) has no pk left.
            if user is not None and user.pk is not None and request.path.startswith("/api/"):
                if quota_account_was_changed(user_id=user.pk):
                    # Settled or refunded through another object than request.user: re-read.
                    quota_account_forget(user=user)
                # Ensured, not only read: the request may have reached the period's end.
                account = quota_account_ensure(user=user)
                response["X-Quota-Limit"] = str(account.limit)
                response["X-Quota-Used"] = str(account.used)
                response["X-Quota-Reset"] = iso_z(account.reset_date)
            return response
        finally:
            quota_changes_untrack(token)

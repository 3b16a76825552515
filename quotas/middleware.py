from __future__ import annotations

from django.http import HttpRequest, HttpResponse


class UsageHeadersMiddleware:
    """Adds `X-RateLimit-*` (from the throttle) and `X-Quota-*` (for authenticated API calls)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        usage = getattr(request, "rate_limit_usage", None)
        if usage is not None:
            response["X-RateLimit-Limit"] = str(usage.limit)
            response["X-RateLimit-Remaining"] = str(usage.remaining)
        user = getattr(request, "api_user", None)
        if user is not None and request.path.startswith("/api/"):
            from quotas.selectors import quota_account_get

            account = quota_account_get(user=user)
            response["X-Quota-Limit"] = str(account.limit)
            response["X-Quota-Used"] = str(account.used)
            response["X-Quota-Reset"] = account.reset_date.isoformat().replace("+00:00", "Z")
        return response

from __future__ import annotations

from typing import Any

from django.utils import timezone

from quotas.models import QuotaAccount
from quotas.pricing import WARNING_RATIO

_CACHE_ATTR = "_quota_account_cache"


def quota_account_get(*, user) -> QuotaAccount:
    """The user's quota account, created on first use and reset lazily when its period is over
    (so a missed beat run never leaves a user locked out). Memoized on the user object for the
    request; services that change `used` refresh it."""
    account = getattr(user, _CACHE_ATTR, None)
    if account is None and "quota_account" in user._state.fields_cache:
        # Loaded with the user by select_related (see accounts.authentication); None if missing.
        account = user._state.fields_cache["quota_account"]
    if account is None:
        account = QuotaAccount.objects.filter(user_id=user.pk).first()
        if account is None:
            from quotas.services import quota_account_create

            account = quota_account_create(user=user)
        setattr(user, _CACHE_ATTR, account)
    if account.reset_date <= timezone.now():
        from quotas.services import quota_reset

        account = quota_reset(account=account, only_if_due=True)
        setattr(user, _CACHE_ATTR, account)
    return account


def quota_account_forget(*, user) -> None:
    """Drop the memoized account after `used` changed, so headers show the new numbers."""
    if hasattr(user, _CACHE_ATTR):
        delattr(user, _CACHE_ATTR)
    user._state.fields_cache.pop("quota_account", None)


def quota_summary(*, user) -> dict[str, Any]:
    account = quota_account_get(user=user)
    remaining = max(account.limit - account.used, 0)
    percent = round(100 * account.used / account.limit, 1) if account.limit else 100.0
    return {
        "limit": account.limit,
        "used": account.used,
        "remaining": remaining,
        "percent_used": percent,
        "warning": account.limit == 0 or account.used >= WARNING_RATIO * account.limit,
        "exhausted": remaining == 0,
        "period_start": account.period_start,
        "reset_date": account.reset_date,
    }

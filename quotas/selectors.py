from __future__ import annotations

import math
from contextvars import ContextVar
from datetime import datetime, time, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import Avg, Count, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from quotas.models import QuotaAccount, Reservation, UsageEntry
from quotas.pricing import WARNING_RATIO, Service

_CACHE_ATTR = "_quota_account_cache"

# Ids of users whose account changed during the current request. The headers middleware starts
# a fresh set per request and re-reads those accounts, so X-Quota-* shows the numbers after a
# settle or refund made on a different user object than `request.user`.
_changed_users: ContextVar[set[int] | None] = ContextVar("quota_changed_users", default=None)


def quota_changes_track() -> object:
    """Start recording account changes for one request; returns the token for `..._untrack`."""
    return _changed_users.set(set())


def quota_changes_untrack(token: object) -> None:
    _changed_users.reset(token)  # type: ignore[arg-type]


def quota_account_changed(*, user_id: int) -> None:
    changed = _changed_users.get()
    if changed is not None:
        changed.add(user_id)


def quota_account_was_changed(*, user_id: int) -> bool:
    return user_id in (_changed_users.get() or ())


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


def quota_account_summary(account: QuotaAccount) -> dict[str, Any]:
    remaining = max(account.limit - account.used, 0)
    percent = round(100 * account.used / account.limit, 1) if account.limit else 100.0
    return {
        "limit": account.limit,
        "used": account.used,
        "remaining": remaining,
        "percent_used": percent,
        # The seed's "Quota Warning": alert at 80% usage.
        "warning": account.limit == 0 or account.used >= WARNING_RATIO * account.limit,
        "exhausted": remaining == 0,
        "period_start": account.period_start,
        "reset_date": account.reset_date,
    }


def quota_summary(*, user) -> dict[str, Any]:
    return quota_account_summary(quota_account_get(user=user))


def _user_zone(user) -> tzinfo:
    try:
        return ZoneInfo(user.timezone) if user.timezone else timezone.get_current_timezone()
    except (ValueError, KeyError):  # a zone name that is not (or no longer) in the database
        return timezone.get_current_timezone()


def _period_position(account: QuotaAccount, now: datetime) -> dict[str, Any]:
    length = (account.reset_date - account.period_start).total_seconds()
    elapsed = min(max((now - account.period_start).total_seconds(), 0), length)
    return {
        "days_in_period": math.ceil(length / 86400),
        "days_elapsed": int(elapsed // 86400),
        "days_remaining": math.ceil((length - elapsed) / 86400),
        "elapsed_percent": round(100 * elapsed / length, 1) if length else 100.0,
    }


def usage_stats(*, user, days: int = 30, now: datetime | None = None) -> dict[str, Any]:
    """Usage per service for the current quota period, a daily series for the last `days` days
    (in the user's time zone) and the period's position.

    A fixed number of aggregate queries, whatever the number of jobs: requests and consumption
    come from reservations (one per charged request), units from the ledger (net of refunds)."""
    now = now or timezone.now()
    account = quota_account_get(user=user)
    zone = _user_zone(user)
    refunded = Q(status=Reservation.Status.REFUNDED)

    per_service = {
        row["service"]: row
        for row in Reservation.objects.filter(user_id=user.pk, period_start=account.period_start)
        .values("service")
        .annotate(
            requests=Count("pk", filter=~refunded),
            refunded=Count("pk", filter=refunded),
            tokens=Sum("tokens"),
            audio_seconds=Sum("audio_seconds"),
            characters=Sum("characters"),
            average_processing_ms=Avg("processing_ms"),
        )
        .order_by()
    }
    units = dict(
        UsageEntry.objects.filter(user_id=user.pk, period_start=account.period_start)
        .values("service")
        .annotate(units=Sum("units"))
        .order_by()
        .values_list("service", "units")
    )

    services: dict[str, dict[str, Any]] = {}
    for service in Service:
        row = per_service.get(service.value, {})
        average = row.get("average_processing_ms")
        services[service.value] = {
            "label": service.label,
            "requests": row.get("requests", 0),
            "refunded": row.get("refunded", 0),
            "units": units.get(service.value) or 0,
            "tokens": row.get("tokens") or 0,
            "audio_seconds": round(row.get("audio_seconds") or 0, 1),
            "characters": row.get("characters") or 0,
            "average_processing_ms": round(average) if average is not None else None,
        }
    totals = {
        key: sum(entry[key] for entry in services.values())
        for key in ("requests", "refunded", "units", "tokens", "audio_seconds", "characters")
    }
    totals["audio_seconds"] = round(totals["audio_seconds"], 1)

    today = now.astimezone(zone).date()
    first_day = today - timedelta(days=days - 1)
    since = datetime.combine(first_day, time.min, tzinfo=zone)
    day = TruncDate("created_at", tzinfo=zone)
    daily_units = dict(
        UsageEntry.objects.filter(user_id=user.pk, created_at__gte=since)
        .annotate(day=day)
        .values("day")
        .annotate(units=Sum("units"))
        .order_by()
        .values_list("day", "units")
    )
    daily_requests = dict(
        Reservation.objects.filter(user_id=user.pk, created_at__gte=since)
        .exclude(refunded)
        .annotate(day=day)
        .values("day")
        .annotate(requests=Count("pk"))
        .order_by()
        .values_list("day", "requests")
    )
    daily = [
        {
            "date": (date := first_day + timedelta(days=offset)).isoformat(),
            "requests": daily_requests.get(date, 0),
            "units": daily_units.get(date) or 0,
        }
        for offset in range(days)
    ]
    return {
        "period": {**quota_account_summary(account), **_period_position(account, now)},
        "services": services,
        "totals": totals,
        "daily": daily,
        "timezone": str(zone),
    }

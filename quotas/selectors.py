"""Reads of quota accounts and usage: the summary behind X-Quota-* and `/api/user/quota`, and
usage statistics. Nothing here writes; `quotas.services.quota_account_ensure` opens and resets
accounts, and is called wherever an account must exist before it is read."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime, time, timedelta, tzinfo
from typing import Any, TypedDict
from zoneinfo import ZoneInfo

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Avg, Count, F, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from core.compiled_queries import CompiledQuery, PerConnection, query_compile
from quotas.modalities import Service
from quotas.models import QuotaAccount, Reservation, UsageEntry
from quotas.pricing import WARNING_RATIO
from quotas.tracking import quota_account_forget, quota_account_memoized, quota_account_remember

__all__ = [
    "QuotaSummary",
    "UsageStats",
    "quota_account_forget",
    "quota_account_get",
    "quota_account_summary",
    "quota_summary",
    "quota_usage_buckets",
    "usage_stats",
]


class QuotaSummary(TypedDict):
    limit: int
    used: int
    remaining: int
    percent_used: float
    warning: bool
    exhausted: bool
    period_start: datetime
    reset_date: datetime


class PeriodPosition(TypedDict):
    days_in_period: int
    days_elapsed: int
    days_remaining: int
    elapsed_percent: float


class PeriodSummary(QuotaSummary, PeriodPosition):
    pass


class ServiceUsage(TypedDict):
    label: str
    requests: int
    refunded: int
    units: int
    tokens: int
    audio_seconds: float
    characters: int
    average_processing_ms: int | None


class UsageTotals(TypedDict):
    requests: int
    refunded: int
    units: int
    tokens: int
    audio_seconds: float
    characters: int


class DayUsage(TypedDict):
    date: str
    requests: int
    units: int


class UsageStats(TypedDict):
    period: PeriodSummary
    services: dict[str, ServiceUsage]
    totals: UsageTotals
    daily: list[DayUsage]
    timezone: str


def quota_account_get(*, user: AbstractBaseUser) -> QuotaAccount:
    """The user's stored account as it is, memoized on the user object for the request (loaded
    with the user by accounts.authentication). Raises `QuotaAccount.DoesNotExist` for a user
    who has none yet: call `quotas.services.quota_account_ensure` where one must exist."""
    account = quota_account_memoized(user=user)
    if account is None:
        account = _account_read(user_id=user.pk)
        quota_account_remember(user=user, account=account)
    return account


# The user id the read is compiled with (core.compiled_queries): no real user has it.
_USER_SENTINEL = -7_355_608_115
_account_reads: PerConnection[tuple[CompiledQuery, list[str]]] = PerConnection()


def _account_read(*, user_id: int, using: str = DEFAULT_DB_ALIAS) -> QuotaAccount:
    """`QuotaAccount.objects.get(user_id=user_id)`, compiled once per connection: the X-Quota-*
    headers read the account again after every request that charged it."""
    connection = connections[using]

    def build() -> tuple[CompiledQuery, list[str]]:
        query = QuotaAccount.objects.using(using).filter(user_id=_USER_SENTINEL).order_by().query
        compiled = query_compile(query, connection, [_USER_SENTINEL])
        return compiled, [column[0].target.attname for column in compiled.compiler.select]

    compiled, names = _account_reads.get(connection, "account", build)
    rows = compiled.rows(connection, [user_id])
    if not rows:
        raise QuotaAccount.DoesNotExist(f"user {user_id} has no quota account")
    return QuotaAccount.from_db(using, names, rows[0])


def quota_account_summary(account: QuotaAccount) -> QuotaSummary:
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


def quota_summary(*, user: AbstractBaseUser) -> QuotaSummary:
    return quota_account_summary(quota_account_get(user=user))


def quota_usage_buckets() -> dict[str, int]:
    """Quota accounts by share of their limit used this period (one aggregate query); the
    metrics endpoint reports them (registered with core.metrics in quotas.apps)."""
    # Integer arithmetic only (used/limit < 0.8 as 4*limit > 5*used), so every database agrees.
    row = QuotaAccount.objects.annotate(limit_x4=F("limit") * 4).aggregate(
        under_50=Count("pk", filter=Q(limit__gt=F("used") * 2)),
        from_50_to_80=Count("pk", filter=Q(limit__lte=F("used") * 2, limit_x4__gt=F("used") * 5)),
        from_80_to_100=Count("pk", filter=Q(limit_x4__lte=F("used") * 5, used__lt=F("limit"))),
        exhausted=Count("pk", filter=Q(used__gte=F("limit"))),
        used=Sum("used"),
        limit=Sum("limit"),
    )
    return {key: int(value or 0) for key, value in row.items()}


def _user_zone(user: AbstractBaseUser) -> tzinfo:
    # The user model's `timezone` field (accounts.models.User); quotas does not import accounts.
    name = getattr(user, "timezone", "")
    try:
        return ZoneInfo(name) if name else timezone.get_current_timezone()
    except (ValueError, KeyError):  # a zone name that is not (or no longer) in the database
        return timezone.get_current_timezone()


def _period_position(account: QuotaAccount, now: datetime) -> PeriodPosition:
    length = (account.reset_date - account.period_start).total_seconds()
    elapsed = min(max((now - account.period_start).total_seconds(), 0), length)
    return {
        "days_in_period": math.ceil(length / 86400),
        "days_elapsed": int(elapsed // 86400),
        "days_remaining": math.ceil((length - elapsed) / 86400),
        "elapsed_percent": round(100 * elapsed / length, 1) if length else 100.0,
    }


def usage_stats(*, user: AbstractBaseUser, days: int = 30, now: datetime | None = None) -> UsageStats:
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

    services: dict[str, ServiceUsage] = {}
    for service in Service:
        row: Mapping[str, Any] = per_service.get(service.value) or {}
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
    rows = services.values()
    totals: UsageTotals = {
        "requests": sum(entry["requests"] for entry in rows),
        "refunded": sum(entry["refunded"] for entry in rows),
        "units": sum(entry["units"] for entry in rows),
        "tokens": sum(entry["tokens"] for entry in rows),
        "audio_seconds": round(sum(entry["audio_seconds"] for entry in rows), 1),
        "characters": sum(entry["characters"] for entry in rows),
    }

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
    daily: list[DayUsage] = [
        {
            "date": (day_date := first_day + timedelta(days=offset)).isoformat(),
            "requests": daily_requests.get(day_date, 0),
            "units": daily_units.get(day_date) or 0,
        }
        for offset in range(days)
    ]
    period: PeriodSummary = {**quota_account_summary(account), **_period_position(account, now)}
    return {
        "period": period,
        "services": services,
        "totals": totals,
        "daily": daily,
        "timezone": str(zone),
    }

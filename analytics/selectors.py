"""Reads behind the staff dashboard: aggregates over every app's rows (AI calls, video jobs, the
usage ledger, quota accounts, users). Each is one aggregate query over the window, whatever the
number of rows; nothing here writes."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any, TypedDict

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Aggregate, Count, F, FloatField, Q, Sum
from django.db.models.functions import TruncDate

from ai_services.models import AIJob
from quotas.models import QuotaAccount, UsageEntry
from video.models import VideoJob

# Values per day and per key (modality, service or status): what the stacked charts draw.
DayTable = dict[date, dict[str, float]]

USAGE_BUCKETS = [(0, 25), (25, 50), (50, 80), (80, 100), (100, None)]


class UserCounts(TypedDict):
    total: int
    active: int


class AICallsPerDay(TypedDict):
    calls: DayTable
    failed: DayTable


class FailureCount(TypedDict):
    error_code: str
    n: int


class Latency(TypedDict):
    p50: float
    p95: float


class QuotaBucket(TypedDict):
    label: str
    count: int


class TopUser(TypedDict):
    user_id: int
    user__email: str
    units: int


class Percentile(Aggregate):
    """PostgreSQL's ordered-set aggregate `percentile_cont(f) WITHIN GROUP (ORDER BY x)`."""

    function = "PERCENTILE_CONT"
    name = "Percentile"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression: str, *, fraction: float) -> None:
        super().__init__(expression, fraction=float(fraction))


def _per_day(rows: Iterable[Mapping[str, Any]], key: str, value: str) -> DayTable:
    table: DayTable = defaultdict(dict)
    for row in rows:
        table[row["day"]][row[key]] = row[value]
    return table


def users_count(*, active_since: datetime) -> UserCounts:
    row = get_user_model().objects.aggregate(
        total=Count("pk"), active=Count("pk", filter=Q(last_login__gte=active_since))
    )
    return {"total": row["total"], "active": row["active"]}


def ai_calls_per_day(*, since: datetime) -> AICallsPerDay:
    rows = (
        AIJob.objects.filter(created_at__gte=since)
        .annotate(day=TruncDate("created_at"))
        .values("day", "type")
        .annotate(calls=Count("id"), failed=Count("id", filter=Q(status=AIJob.Status.FAILED)))
        .order_by()
    )
    calls: DayTable = defaultdict(dict)
    failed: DayTable = defaultdict(dict)
    for row in rows:
        calls[row["day"]][row["type"]] = row["calls"]
        failed[row["day"]][row["type"]] = row["failed"]
    return {"calls": calls, "failed": failed}


def ai_failure_codes(*, since: datetime) -> list[FailureCount]:
    rows = (
        AIJob.objects.filter(created_at__gte=since, status=AIJob.Status.FAILED)
        .values("error_code")
        .annotate(n=Count("id"))
        .order_by("-n", "error_code")
    )
    return [{"error_code": row["error_code"], "n": row["n"]} for row in rows]


def percentile(values: list[int], fraction: float) -> float:
    """Linear interpolation between closest ranks: the same as PostgreSQL's percentile_cont."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def ai_latency(*, since: datetime) -> dict[str, Latency]:
    """p50/p95 of processing time (ms) of completed calls per modality: in SQL on PostgreSQL; on
    the embedded SQLite, which has no percentile aggregate, from one query's durations."""
    jobs = AIJob.objects.filter(
        created_at__gte=since, status=AIJob.Status.COMPLETED, processing_time_ms__isnull=False
    ).order_by()
    if connection.vendor == "postgresql":
        rows = jobs.values("type").annotate(
            p50=Percentile("processing_time_ms", fraction=0.5), p95=Percentile("processing_time_ms", fraction=0.95)
        )
        return {row["type"]: {"p50": round(row["p50"], 1), "p95": round(row["p95"], 1)} for row in rows}
    durations: dict[str, list[int]] = defaultdict(list)
    for kind, ms in jobs.values_list("type", "processing_time_ms"):
        if ms is not None:
            durations[kind].append(ms)
    return {
        kind: {"p50": round(percentile(ms, 0.5), 1), "p95": round(percentile(ms, 0.95), 1)}
        for kind, ms in durations.items()
    }


def units_per_day(*, since: datetime) -> DayTable:
    """Net units of the ledger per day and service."""
    rows = (
        UsageEntry.objects.filter(created_at__gte=since)
        .annotate(day=TruncDate("created_at"))
        .values("day", "service")
        .annotate(units=Sum("units"))
        .order_by()
    )
    return _per_day(rows, "service", "units")


def video_jobs_per_day(*, since: datetime) -> DayTable:
    rows = (
        VideoJob.objects.filter(created_at__gte=since)
        .annotate(day=TruncDate("created_at"))
        .values("day", "status")
        .annotate(n=Count("id"))
        .order_by()
    )
    return _per_day(rows, "status", "n")


def quota_distribution() -> list[QuotaBucket]:
    """Accounts by share of their limit used (accounts without allowance left out)."""
    percent = F("used") * 100 / F("limit")
    accounts = QuotaAccount.objects.filter(limit__gt=0).annotate(percent=percent)
    counts = {}
    for low, high in USAGE_BUCKETS:
        condition = Q(percent__gte=low) if high is None else Q(percent__gte=low, percent__lt=high)
        counts[f"b{low}"] = Count("pk", filter=condition)
    row = accounts.aggregate(**counts)
    buckets: list[QuotaBucket] = []
    for low, high in USAGE_BUCKETS:
        label = f"{low}%+" if high is None else f"{low}-{high}%"
        buckets.append({"label": label, "count": row[f"b{low}"] or 0})
    return buckets


def top_users(*, since: datetime, limit: int) -> list[TopUser]:
    """The users who spent the most units since `since`, heaviest first."""
    rows = (
        UsageEntry.objects.filter(created_at__gte=since)
        .values("user_id", "user__email")
        .annotate(units=Sum("units"))
        .filter(units__gt=0)
        .order_by("-units", "user__email")[:limit]
    )
    return [{"user_id": row["user_id"], "user__email": row["user__email"], "units": row["units"]} for row in rows]

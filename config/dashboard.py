"""The staff dashboard at /admin/dashboard/: numbers and server-rendered SVG charts, no scripts.

Every figure is one aggregate query over the chosen window (7, 30 or 90 days), so the page costs
the same number of queries however many jobs there are; the queue depth is read from the broker.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Aggregate, Count, F, FloatField, Q, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone

from ai_services.models import AIJob
from core.charts import Series, grouped_bars, series_for, stacked_columns
from core.metrics import celery_queue_names, queue_depths
from quotas.models import QuotaAccount, UsageEntry
from quotas.pricing import Service
from video.models import VideoJob

DAY_CHOICES = (7, 30, 90)
DEFAULT_DAYS = 30
USAGE_BUCKETS = [(0, 25), (25, 50), (50, 80), (80, 100), (100, None)]
TOP_USERS = 10
MODALITY_COLORS = {
    "chat": "#417690",
    "whisper": "#e6a23c",
    "tts": "#5aa469",
    "vision": "#8e6bb8",
    "embedding": "#79aec8",
    "video": "#c0a062",
}
VIDEO_STATUS_COLORS = {
    "uploaded": "#c0c0c0",
    "queued": "#79aec8",
    "processing": "#e6a23c",
    "completed": "#5aa469",
    "failed": "#ba2121",
    "cancelled": "#666666",
}
CALLS = Series("calls", "Calls", "#417690")
FAILED = Series("failed", "Failed", "#ba2121")
P50 = Series("p50", "p50", "#79aec8")
P95 = Series("p95", "p95", "#417690")


class Percentile(Aggregate):
    """PostgreSQL's ordered-set aggregate `percentile_cont(f) WITHIN GROUP (ORDER BY x)`."""

    function = "PERCENTILE_CONT"
    name = "Percentile"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression: str, *, fraction: float) -> None:
        super().__init__(expression, fraction=float(fraction))


def _window(days: int) -> tuple[list[date], datetime]:
    today = timezone.localdate()
    start = today - timedelta(days=days - 1)
    return [start + timedelta(days=i) for i in range(days)], timezone.make_aware(datetime.combine(start, time.min))


def _per_day(rows: QuerySet, key: str, value: str) -> dict[date, dict[str, float]]:
    table: dict[date, dict[str, float]] = defaultdict(dict)
    for row in rows:
        table[row["day"]][row[key]] = row[value]
    return table


def _ai_per_day(since: datetime) -> dict[str, dict[date, dict[str, float]]]:
    rows = (
        AIJob.objects.filter(created_at__gte=since)
        .annotate(day=TruncDate("created_at"))
        .values("day", "type")
        .annotate(calls=Count("id"), failed=Count("id", filter=Q(status=AIJob.Status.FAILED)))
        .order_by()
    )
    calls: dict[date, dict[str, float]] = defaultdict(dict)
    failed: dict[date, dict[str, float]] = defaultdict(dict)
    for row in rows:
        calls[row["day"]][row["type"]] = row["calls"]
        failed[row["day"]][row["type"]] = row["failed"]
    return {"calls": calls, "failed": failed}


def _percentile(values: list[int], fraction: float) -> float:
    """Linear interpolation between closest ranks: the same as PostgreSQL's percentile_cont."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _latency(since: datetime) -> dict[str, dict[str, float]]:
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
        durations[kind].append(ms)
    return {
        kind: {"p50": round(_percentile(ms, 0.5), 1), "p95": round(_percentile(ms, 0.95), 1)}
        for kind, ms in durations.items()
    }


def _quota_distribution() -> list[dict[str, Any]]:
    percent = F("used") * 100 / F("limit")
    accounts = QuotaAccount.objects.filter(limit__gt=0).annotate(percent=percent)
    counts = {}
    for low, high in USAGE_BUCKETS:
        condition = Q(percent__gte=low) if high is None else Q(percent__gte=low, percent__lt=high)
        counts[f"b{low}"] = Count("pk", filter=condition)
    row = accounts.aggregate(**counts)
    buckets = []
    for low, high in USAGE_BUCKETS:
        label = f"{low}%+" if high is None else f"{low}-{high}%"
        buckets.append({"label": label, "count": row[f"b{low}"] or 0})
    return buckets


def _queue_depth() -> dict[str, int] | None:
    try:
        return queue_depths(settings.CELERY_BROKER_URL, celery_queue_names())
    except Exception:  # the page must render while the broker is down; the card says so
        return None


def _days(request: HttpRequest) -> int:
    try:
        days = int(request.GET.get("days", DEFAULT_DAYS))
    except ValueError:
        return DEFAULT_DAYS
    return days if days in DAY_CHOICES else DEFAULT_DAYS


@staff_member_required
def dashboard(request: HttpRequest) -> HttpResponse:
    days = _days(request)
    day_list, since = _window(days)
    user_model = get_user_model()
    users = user_model.objects.aggregate(
        total=Count("pk"), active=Count("pk", filter=Q(last_login__gte=timezone.now() - timedelta(days=7)))
    )

    modalities = series_for(AIJob.Type.choices, MODALITY_COLORS)
    ai = _ai_per_day(since)
    calls_by_kind = {m.key: sum(day.get(m.key, 0) for day in ai["calls"].values()) for m in modalities}
    failed_by_kind = {m.key: sum(day.get(m.key, 0) for day in ai["failed"].values()) for m in modalities}

    failure_codes = (
        AIJob.objects.filter(created_at__gte=since, status=AIJob.Status.FAILED)
        .values("error_code")
        .annotate(n=Count("id"))
        .order_by("-n", "error_code")
    )
    latency = _latency(since)

    units = _per_day(
        UsageEntry.objects.filter(created_at__gte=since)
        .annotate(day=TruncDate("created_at"))
        .values("day", "service")
        .annotate(units=Sum("units"))
        .order_by(),
        "service",
        "units",
    )
    services = series_for(Service.choices, MODALITY_COLORS)

    video = _per_day(
        VideoJob.objects.filter(created_at__gte=since)
        .annotate(day=TruncDate("created_at"))
        .values("day", "status")
        .annotate(n=Count("id"))
        .order_by(),
        "status",
        "n",
    )
    video_states = series_for(VideoJob.Status.choices, VIDEO_STATUS_COLORS)
    video_totals = {s.key: sum(day.get(s.key, 0) for day in video.values()) for s in video_states}

    top_users = [
        {**row, "admin_url": reverse("admin:accounts_user_change", args=[row["user_id"]])}
        for row in UsageEntry.objects.filter(created_at__gte=since)
        .values("user_id", "user__email")
        .annotate(units=Sum("units"))
        .filter(units__gt=0)
        .order_by("-units", "user__email")[:TOP_USERS]
    ]

    context = {
        **admin.site.each_context(request),
        "title": "Dashboard",
        "days": days,
        "day_choices": DAY_CHOICES,
        "first_day": day_list[0],
        "last_day": day_list[-1],
        "users_total": users["total"],
        "users_active_week": users["active"],
        "ai_total": sum(calls_by_kind.values()),
        "ai_failed": sum(failed_by_kind.values()),
        "ai_calls_chart": stacked_columns(day_list, ai["calls"], modalities, unit="calls"),
        "ai_failures_chart": stacked_columns(day_list, ai["failed"], modalities, unit="failed calls"),
        "modality_chart": grouped_bars(
            [
                (m.label, {"calls": calls_by_kind[m.key], "failed": failed_by_kind[m.key]})
                for m in modalities
                if calls_by_kind[m.key]
            ],
            [CALLS, FAILED],
            unit="calls",
        ),
        "error_chart": grouped_bars(
            [(row["error_code"] or "(no code)", {"failed": row["n"]}) for row in failure_codes],
            [FAILED],
            unit="failed calls",
        ),
        "latency_chart": grouped_bars(
            [(m.label, latency[m.key]) for m in modalities if m.key in latency], [P50, P95], unit="ms"
        ),
        "units_chart": stacked_columns(day_list, units, services, unit="units"),
        "video_chart": stacked_columns(day_list, video, video_states, unit="video jobs"),
        "video_totals": [(s.label, video_totals[s.key]) for s in video_states],
        "queue_depth": _queue_depth(),
        "quota_buckets": _quota_distribution(),
        "top_users": top_users,
    }
    return TemplateResponse(request, "admin/dashboard.html", context)

"""The staff dashboard at /admin/dashboard/: numbers and server-rendered SVG charts, no scripts.

Every figure comes from one aggregate query over the chosen window (7, 30 or 90 days, see
`analytics.selectors`), so the page costs the same number of queries however many jobs there
are; the queue depth is read from the broker.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone

from ai_services.models import AIJob
from analytics import selectors
from core.charts import Series, grouped_bars, series_for, stacked_columns
from core.metrics import celery_queue_names, queue_depths
from quotas.modalities import Service
from video.models import VideoJob

DAY_CHOICES = (7, 30, 90)
DEFAULT_DAYS = 30
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


def _window(days: int) -> tuple[list[date], datetime]:
    today = timezone.localdate()
    start = today - timedelta(days=days - 1)
    return [start + timedelta(days=i) for i in range(days)], timezone.make_aware(datetime.combine(start, time.min))


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
    users = selectors.users_count(active_since=timezone.now() - timedelta(days=7))

    modalities = series_for(AIJob.Type.choices, MODALITY_COLORS)
    ai = selectors.ai_calls_per_day(since=since)
    calls_by_kind = {m.key: sum(day.get(m.key, 0) for day in ai["calls"].values()) for m in modalities}
    failed_by_kind = {m.key: sum(day.get(m.key, 0) for day in ai["failed"].values()) for m in modalities}
    failure_codes = selectors.ai_failure_codes(since=since)
    latency = selectors.ai_latency(since=since)

    units = selectors.units_per_day(since=since)
    services = series_for(Service.choices, MODALITY_COLORS)

    video = selectors.video_jobs_per_day(since=since)
    video_states = series_for(VideoJob.Status.choices, VIDEO_STATUS_COLORS)
    video_totals = {s.key: sum(day.get(s.key, 0) for day in video.values()) for s in video_states}

    top_users = [
        {**row, "admin_url": reverse("admin:accounts_user_change", args=[row["user_id"]])}
        for row in selectors.top_users(since=since, limit=TOP_USERS)
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
            [
                (m.label, {"p50": latency[m.key]["p50"], "p95": latency[m.key]["p95"]})
                for m in modalities
                if m.key in latency
            ],
            [P50, P95],
            unit="ms",
        ),
        "units_chart": stacked_columns(day_list, units, services, unit="units"),
        "video_chart": stacked_columns(day_list, video, video_states, unit="video jobs"),
        "video_totals": [(s.label, video_totals[s.key]) for s in video_states],
        "queue_depth": _queue_depth(),
        "quota_buckets": selectors.quota_distribution(),
        "top_users": top_users,
    }
    return TemplateResponse(request, "admin/dashboard.html", context)

"""The staff dashboard at /admin/dashboard/: numbers and server-rendered SVG charts, no scripts."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth import get_user_model
from django.db.models import Count, F, Q, Sum
from django.db.models.functions import TruncDate
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone

from ai_services.models import AIJob
from quotas.models import QuotaAccount, UsageEntry
from video.models import VideoJob

CHART_WIDTH = 720
CHART_HEIGHT = 180
USAGE_BUCKETS = [(0, 25), (25, 50), (50, 80), (80, 100), (100, None)]


def _daily_ai_calls(days: int = 30) -> list[dict[str, Any]]:
    today = timezone.now().date()
    start = today - timedelta(days=days - 1)
    rows = (
        AIJob.objects.filter(created_at__date__gte=start)
        .annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(total=Count("id"), failed=Count("id", filter=Q(status=AIJob.Status.FAILED)))
    )
    by_day = {row["day"]: row for row in rows}
    series = []
    for offset in range(days):
        day = start + timedelta(days=offset)
        row = by_day.get(day, {})
        series.append({"day": day, "total": row.get("total", 0), "failed": row.get("failed", 0)})
    return series


def _bars(series: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Bar geometry for the SVG: calls in full height, failures overlaid from the bottom."""
    peak = max((point["total"] for point in series), default=0) or 1
    slot = CHART_WIDTH / max(len(series), 1)
    bars = []
    for i, point in enumerate(series):
        height = CHART_HEIGHT * point["total"] / peak
        failed_height = CHART_HEIGHT * point["failed"] / peak
        bars.append(
            {
                **point,
                "x": round(i * slot + 1, 1),
                "width": round(slot - 2, 1),
                "y": round(CHART_HEIGHT - height, 1),
                "height": round(height, 1),
                "failed_y": round(CHART_HEIGHT - failed_height, 1),
                "failed_height": round(failed_height, 1),
            }
        )
    return bars


def _quota_distribution() -> list[dict[str, Any]]:
    percent = F("used") * 100 / F("limit")
    accounts = QuotaAccount.objects.filter(limit__gt=0).annotate(percent=percent)
    buckets = []
    for low, high in USAGE_BUCKETS:
        rows = accounts.filter(percent__gte=low)
        if high is not None:
            rows = rows.filter(percent__lt=high)
        label = f"{low}%+" if high is None else f"{low}-{high}%"
        buckets.append({"label": label, "count": rows.count()})
    peak = max((b["count"] for b in buckets), default=0) or 1
    for bucket in buckets:
        bucket["width"] = round(100 * bucket["count"] / peak, 1)
    return buckets


@staff_member_required
def dashboard(request: HttpRequest) -> HttpResponse:
    user_model = get_user_model()
    week_ago = timezone.now() - timedelta(days=7)
    series = _daily_ai_calls()
    video_status = dict(VideoJob.objects.values_list("status").annotate(n=Count("id")).order_by())
    top_users = (
        UsageEntry.objects.filter(created_at__gte=timezone.now() - timedelta(days=30))
        .values("user__email")
        .annotate(units=Sum("units"))
        .filter(units__gt=0)
        .order_by("-units")[:10]
    )
    context = {
        **admin.site.each_context(request),
        "title": "Dashboard",
        "users_total": user_model.objects.count(),
        "users_active_week": user_model.objects.filter(last_login__gte=week_ago).count(),
        "quota_buckets": _quota_distribution(),
        "ai_bars": _bars(series),
        "ai_total": sum(p["total"] for p in series),
        "ai_failed": sum(p["failed"] for p in series),
        "chart_width": CHART_WIDTH,
        "chart_height": CHART_HEIGHT,
        "video_status": [(label, video_status.get(value, 0)) for value, label in VideoJob.Status.choices],
        "top_users": list(top_users),
    }
    return TemplateResponse(request, "admin/dashboard.html", context)

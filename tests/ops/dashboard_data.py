"""Dashboard data spread over several days, for tests/ops/test_dashboard.py and the browser test."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from django.utils import timezone

from ai_services.models import AIJob
from quotas.modalities import Service
from quotas.models import UsageEntry
from video.models import VideoJob


def days_ago(n: int) -> date:
    return timezone.localdate() - timedelta(days=n)


def at_noon(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time(12, 0)))


def ai_job(user, *, kind: str = "chat", day: int = 0, failed: bool = False, code: str = "", ms: int | None = None):
    job = AIJob.objects.create(
        user=user,
        type=kind,
        status=AIJob.Status.FAILED if failed else AIJob.Status.COMPLETED,
        error_code=code,
        processing_time_ms=ms,
    )
    AIJob.objects.filter(pk=job.pk).update(created_at=at_noon(days_ago(day)))
    return job


def video_job(user, *, status: str, day: int = 0):
    job = VideoJob.objects.create(user=user, status=status, filename="clip.mp4")
    VideoJob.objects.filter(pk=job.pk).update(created_at=at_noon(days_ago(day)))
    return job


def usage(user, *, service: str, units: int, day: int = 0):
    entry = UsageEntry.objects.create(
        user=user, service=service, kind=UsageEntry.Kind.CHARGE, units=units, period_start=timezone.now()
    )
    UsageEntry.objects.filter(pk=entry.pk).update(created_at=at_noon(days_ago(day)))


def make_history(make_user) -> tuple:
    """Calls, failures, charges and video jobs spread over several days; returns (heavy, light)."""
    heavy = make_user(email="heavy@example.com")
    light = make_user(email="light@example.com")
    for ms in (100, 200, 300, 400):
        ai_job(heavy, kind="chat", day=1, ms=ms)
    ai_job(heavy, kind="chat", day=1, failed=True, code="provider_timeout")
    ai_job(heavy, kind="vision", day=3, ms=1000)
    ai_job(heavy, kind="vision", day=3, failed=True, code="provider_error")
    ai_job(light, kind="whisper", day=3, failed=True, code="provider_error")
    ai_job(light, kind="embedding", day=20, ms=50)  # only in the 30- and 90-day windows
    usage(heavy, service=Service.CHAT, units=8, day=1)
    usage(heavy, service=Service.VISION, units=6, day=3)
    usage(light, service=Service.EMBEDDING, units=2, day=20)
    video_job(heavy, status=VideoJob.Status.COMPLETED, day=2)
    video_job(heavy, status=VideoJob.Status.COMPLETED, day=2)
    video_job(light, status=VideoJob.Status.FAILED, day=2)
    video_job(light, status=VideoJob.Status.QUEUED, day=0)
    return heavy, light

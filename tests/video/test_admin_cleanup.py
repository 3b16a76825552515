"""Operator views: the video jobs admin (list, filters, thumbnail preview, actions) and the
`cleanup_video_files` command."""

from __future__ import annotations

import io
import os
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from quotas.models import QuotaAccount
from tests.video.conftest import media_files, upload
from video import services
from video.models import VideoJob

pytestmark = pytest.mark.django_db


@pytest.fixture
def done(process, clips) -> VideoJob:
    job = process(clips["short"])
    assert job.status == "completed", job.error
    return job


# --- Admin ---------------------------------------------------------------------------------------------


def test_changelist_shows_status_progress_duration_and_user(staff, done, user):
    response = staff.get(reverse("admin:video_videojob_changelist"))

    assert response.status_code == 200
    page = response.content.decode()
    assert "short.mp4" in page
    assert user.email in page
    assert "100%" in page
    assert "0:01.0" in page  # the 1 s clip
    assert "completed" in page.lower()


def test_changelist_filters_by_status_and_date(staff, done, client_a, clips):
    upload(client_a, clips["short"])
    url = reverse("admin:video_videojob_changelist")
    # Both jobs dated mid-month, so no month boundary can fall between their creations.
    mid_month = timezone.now().replace(day=15, hour=12, minute=0, second=0, microsecond=0)
    VideoJob.objects.update(created_at=mid_month)

    completed = staff.get(url, {"status__exact": "completed"})
    uploaded = staff.get(url, {"status__exact": "uploaded"})
    dated = staff.get(url, {"created_at__year": mid_month.year, "created_at__month": mid_month.month})
    other_year = staff.get(url, {"created_at__year": mid_month.year - 1})

    assert completed.context["cl"].result_count == 1
    assert uploaded.context["cl"].result_count == 1
    assert dated.context["cl"].result_count == 2
    assert other_year.context["cl"].result_count == 0


def test_change_page_previews_the_thumbnail(staff, done, settings):
    response = staff.get(reverse("admin:video_videojob_change", args=[done.pk]))

    assert response.status_code == 200
    thumbnail_url = reverse("admin:video_videojob_thumbnail", args=[done.pk])
    assert f'src="{thumbnail_url}"' in response.content.decode()
    image = staff.get(thumbnail_url)
    assert image.status_code == 200
    assert image["Content-Type"] == "image/jpeg"
    assert b"".join(image.streaming_content) == (Path(settings.MEDIA_ROOT) / done.thumbnail_path).read_bytes()


def test_the_admin_thumbnail_is_for_staff_only(done, client):
    response = client.get(reverse("admin:video_videojob_thumbnail", args=[done.pk]))

    assert response.status_code == 302  # to the admin login


def test_change_page_of_a_job_without_thumbnail(staff, client_a, clips):
    job_id = upload(client_a, clips["short"]).json()["data"]["id"]

    response = staff.get(reverse("admin:video_videojob_change", args=[job_id]))

    assert response.status_code == 200
    assert "video-thumbnail-preview" not in response.content.decode()
    assert staff.get(reverse("admin:video_videojob_thumbnail", args=[job_id])).status_code == 404


def test_requeue_action_processes_the_job_again(staff, done, django_capture_on_commit_callbacks):
    first_frames = set(done.frames.values_list("path", flat=True))

    with django_capture_on_commit_callbacks(execute=True):
        response = staff.post(
            reverse("admin:video_videojob_changelist"),
            {"action": "requeue", "_selected_action": [str(done.pk)]},
            follow=True,
        )

    assert "Re-queued 1 job(s)." in response.content.decode()
    done.refresh_from_db()
    assert done.status == "completed"
    assert done.frames.count() == 1
    assert not first_frames & set(done.frames.values_list("path", flat=True))


def test_requeue_action_skips_a_job_being_processed(staff, client_a, clips):
    job_id = upload(client_a, clips["short"]).json()["data"]["id"]
    services.video_job_claim(job_id=job_id)

    response = staff.post(
        reverse("admin:video_videojob_changelist"),
        {"action": "requeue", "_selected_action": [job_id]},
        follow=True,
    )

    assert "Skipped 1 job(s) being processed right now." in response.content.decode()
    assert VideoJob.objects.get(id=job_id).status == "processing"


def test_cancel_action_stops_active_jobs_refunds_them_and_skips_finished_ones(staff, done, client_a, clips, user):
    job_id = upload(client_a, clips["short"]).json()["data"]["id"]
    used = QuotaAccount.objects.get(user=user).used

    response = staff.post(
        reverse("admin:video_videojob_changelist"),
        {"action": "cancel", "_selected_action": [job_id, str(done.pk)]},
        follow=True,
    )

    assert "Cancelled 1 job(s)." in response.content.decode()
    assert VideoJob.objects.get(id=job_id).status == "cancelled"
    assert VideoJob.objects.get(id=done.pk).status == "completed"
    assert QuotaAccount.objects.get(user=user).used == used - 5


def test_delete_with_files_action(staff, done, settings, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = staff.post(
            reverse("admin:video_videojob_changelist"),
            {"action": "delete_with_files", "_selected_action": [str(done.pk)]},
            follow=True,
        )

    assert "Deleted 1 job(s) and their files." in response.content.decode()
    assert not VideoJob.objects.exists()
    assert media_files(settings.MEDIA_ROOT) == []


def test_the_admins_own_delete_removes_files_too(staff, done, settings, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = staff.post(reverse("admin:video_videojob_delete", args=[done.pk]), {"post": "yes"})

    assert response.status_code == 302
    assert not VideoJob.objects.exists()
    assert media_files(settings.MEDIA_ROOT) == []


# --- cleanup_video_files -------------------------------------------------------------------------------


def _age(path: Path, seconds: float = 7200) -> None:
    old = time.time() - seconds
    os.utime(path, (old, old))


def _run(*args: str) -> str:
    out = io.StringIO()
    call_command("cleanup_video_files", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def mess(done, settings, user):
    """Orphans of every kind next to a healthy job, all older than the grace period."""
    root = Path(settings.MEDIA_ROOT)
    orphans = {
        f"videos/{user.pk}/00000000-0000-0000-0000-000000000000/gone.mp4": b"video of a deleted job",
        f"frames/{user.pk}/{done.id}/oldrun/frame_00000.jpg": b"frame of an interrupted run",
        f"thumbnails/{user.pk}/11111111-1111-1111-1111-111111111111/thumbnail-x.jpg": b"thumbnail of no job",
    }
    for name, content in orphans.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    for path in root.rglob("*"):
        if path.is_file():
            _age(path)
    return sorted(orphans)


def test_cleanup_dry_run_lists_and_changes_nothing(mess, settings):
    before = media_files(settings.MEDIA_ROOT)

    output = _run("--dry-run", "--verbosity", "2")

    for name in mess:
        assert f"would remove orphan file {name}" in output
    assert "Dry run: 3 orphan file(s) and 0 job(s) with a missing video would be removed" in output
    assert media_files(settings.MEDIA_ROOT) == before


def test_cleanup_removes_orphans_and_keeps_referenced_files(mess, done, settings):
    kept = sorted([done.video_path, done.thumbnail_path, *done.frames.values_list("path", flat=True)])

    output = _run()

    assert "Removed 3 orphan file(s) and 0 job(s) with a missing video." in output
    assert media_files(settings.MEDIA_ROOT) == kept
    # Emptied folders go too.
    assert not (Path(settings.MEDIA_ROOT) / f"frames/{done.user_id}/{done.id}/oldrun").exists()


def test_cleanup_verbosity_zero_is_silent(mess):
    assert _run("--verbosity", "0") == ""


def test_cleanup_keeps_recent_files(done, settings, user):
    fresh = Path(settings.MEDIA_ROOT) / f"videos/{user.pk}/22222222-2222-2222-2222-222222222222/new.mp4"
    fresh.parent.mkdir(parents=True)
    fresh.write_bytes(b"an upload whose row has not committed yet")

    _run()

    assert fresh.exists()
    _run("--grace-seconds", "0")
    assert not fresh.exists()


def test_cleanup_removes_jobs_whose_video_vanished(done, settings, user, django_capture_on_commit_callbacks):
    VideoJob.objects.filter(pk=done.pk).update(created_at=timezone.now() - timedelta(hours=2))
    (Path(settings.MEDIA_ROOT) / done.video_path).unlink()

    with django_capture_on_commit_callbacks(execute=True):
        output = _run("--verbosity", "2")

    assert f"removed job {done.id} (its video file is missing)" in output
    assert not VideoJob.objects.exists()
    assert media_files(settings.MEDIA_ROOT) == []
    assert QuotaAccount.objects.get(user=user).used == 5  # it was processed: the charge stays


def test_cleanup_leaves_a_job_being_processed_alone(client_a, clips, settings):
    job_id = upload(client_a, clips["short"]).json()["data"]["id"]
    services.video_job_claim(job_id=job_id)
    job = VideoJob.objects.get(id=job_id)
    partial = Path(settings.MEDIA_ROOT) / f"frames/{job.user_id}/{job.id}/run/frame_00000.jpg"
    partial.parent.mkdir(parents=True)
    partial.write_bytes(b"being written")
    _age(partial)

    _run("--grace-seconds", "0")

    assert partial.exists()
    assert VideoJob.objects.filter(id=job_id).exists()


def test_the_cleanup_beat_task_runs_the_same_service(mess, settings):
    from video.tasks import cleanup_video_files

    assert cleanup_video_files() == {"orphanFiles": 3, "vanishedJobs": 0}
    assert "video-cleanup-files" in settings.CELERY_BEAT_SCHEDULE
    assert settings.CELERY_BEAT_SCHEDULE["video-reap-stale-jobs"]["task"] == "video.reap_stale_jobs"

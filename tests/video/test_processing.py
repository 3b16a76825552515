"""The processing pipeline run eagerly (CELERY_TASK_ALWAYS_EAGER): frames, thumbnail, metadata,
failures and refunds, re-runs, claims, cancellation, the progress heartbeat and the reaper."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from PIL import Image

from core.jobs.progress import ProgressReporter
from quotas.models import QuotaAccount, Reservation
from tests.video.conftest import CLIP_SPECS, media_files, upload
from tests.video.media_fixtures import frame_index_of, write_garbage
from video import services
from video.jobs import VIDEO_JOBS
from video.models import VideoFrame, VideoJob
from video.tasks import process_video_job, reap_stale_video_jobs

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("each_ffmpeg")]


def used_units(user) -> int:
    return QuotaAccount.objects.get(user=user).used


def stored_path(settings, name: str) -> Path:
    return Path(settings.MEDIA_ROOT) / name


def test_six_second_clip_at_one_second_gives_six_exact_frames(process, clips, settings, user):
    job = process(clips["index"], frameInterval="1.0")

    assert job.status == "completed", job.error
    assert job.progress == 100
    assert job.error == ""
    frames = list(job.frames.order_by("index"))
    assert [f.index for f in frames] == [0, 1, 2, 3, 4, 5]
    assert [f.timestamp for f in frames] == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    for frame in frames:
        path = stored_path(settings, frame.path)
        assert frame.path.startswith(f"frames/{user.pk}/{job.id}/")
        assert path.stat().st_size == frame.size_bytes
        with Image.open(path) as image:
            assert image.format == "JPEG"
            assert image.size == (frame.width, frame.height) == (320, 240)
            # The clip paints its frame number: the frame at t s of a 25 fps clip is number 25 t.
            assert frame_index_of(image) == round(frame.timestamp * 25)
    assert job.metadata == {
        "duration": pytest.approx(6.0, abs=0.05),
        "width": 320,
        "height": 240,
        "fps": 25.0,
        "codec": "h264",
        "bitrate": job.metadata["bitrate"],
        "rotation": 0,
        "has_audio": False,
        "size": clips["index"].stat().st_size,
        "container": "mp4",
    }
    assert job.metadata["bitrate"] > 0
    assert job.attempts == 1
    assert job.started_at
    assert job.completed_at
    assert job.heartbeat_at


def test_thumbnail_is_a_jpeg_at_the_requested_time_with_longest_side_320(process, clips, settings, user):
    job = process(clips["index"], thumbnailTimestamp="2.0")

    assert job.thumbnail_path == f"thumbnails/{user.pk}/{job.id}/thumbnail-{job.claim_token[:12]}.jpg"
    with Image.open(stored_path(settings, job.thumbnail_path)) as image:
        assert image.format == "JPEG"
        assert image.size == (320, 240)
        assert frame_index_of(image) == 50


def test_a_larger_video_gets_a_scaled_thumbnail_and_full_size_frames(process, clips, settings):
    job = process(clips["wide"])

    with Image.open(stored_path(settings, job.thumbnail_path)) as image:
        assert image.size == (320, 180)
    assert {(f.width, f.height) for f in job.frames.all()} == {(640, 360)}


def test_max_frames_caps_the_frames(process, clips):
    job = process(clips["index"], frameInterval="0.5", maxFrames="4")

    assert [f.timestamp for f in job.frames.order_by("index")] == [0.0, 0.5, 1.0, 1.5]


def test_an_interval_that_does_not_divide_the_duration(process, clips):
    job = process(clips["index"], frameInterval="2.5")

    assert [f.timestamp for f in job.frames.order_by("index")] == [0.0, 2.5, 5.0]


def test_without_frame_extraction_only_the_thumbnail_is_made(process, clips, settings, user):
    job = process(clips["index"], extractFrames=False, thumbnailTimestamp="3")

    assert job.status == "completed", job.error
    assert job.frames.count() == 0
    assert media_files(Path(settings.MEDIA_ROOT) / "frames") == []
    with Image.open(stored_path(settings, job.thumbnail_path)) as image:
        assert frame_index_of(image) == 75


def test_rotated_video_gives_upright_frames_and_thumbnail(process, clips, settings):
    job = process(clips["rotated"])

    assert job.status == "completed", job.error
    assert job.metadata["rotation"] == 90
    assert {(f.width, f.height) for f in job.frames.all()} == {(240, 320)}
    with Image.open(stored_path(settings, job.thumbnail_path)) as image:
        assert image.size == (240, 320)


@pytest.mark.parametrize("clip", ["mov", "avi", "wmv", "webm", "no_audio", "hevc"])
def test_every_accepted_format_is_processed(process, clips, clip):
    job = process(clips[clip])

    assert job.status == "completed", job.error
    # One frame per second of video. AVI, ASF and WebM report a container duration a little past
    # the last video frame (audio padding), so a frame at the next whole second may or may not exist.
    frames = list(job.frames.order_by("index"))
    seconds = int(CLIP_SPECS[clip]["seconds"])
    assert len(frames) in (seconds, seconds + 1)
    assert [(f.index, f.timestamp) for f in frames] == [(i, float(i)) for i in range(len(frames))]


def test_completed_job_settles_its_reservation(process, clips, user):
    job = process(clips["short"])

    reservation = Reservation.objects.get(pk=job.reservation_id)
    assert reservation.status == "settled"
    assert reservation.units == 5
    assert reservation.processing_ms is not None
    assert used_units(user) == 5


def _stored_job(client_a, clip) -> VideoJob:
    """An uploaded job whose task has not run (no on-commit hooks in a `db` test)."""
    response = upload(client_a, clip)
    assert response.status_code == 202, response.content
    return VideoJob.objects.get(id=response.json()["data"]["id"])


def test_a_video_that_vanished_from_storage_fails_and_is_refunded(client_a, clips, settings, user, eager):
    job = _stored_job(client_a, clips["short"])
    stored_path(settings, job.video_path).unlink()

    assert process_video_job.delay(str(job.id)).get() == "failed"

    job.refresh_from_db()
    assert job.status == "failed"
    assert job.error == "The uploaded video is no longer in storage."
    assert job.frames.count() == 0
    assert used_units(user) == 0
    assert Reservation.objects.get(pk=job.reservation_id).status == "refunded"
    assert media_files(settings.MEDIA_ROOT) == []


def test_a_video_corrupted_in_storage_fails_with_the_media_error(client_a, clips, settings, user, eager):
    job = _stored_job(client_a, clips["short"])
    write_garbage(stored_path(settings, job.video_path), size=50_000)

    assert process_video_job.delay(str(job.id)).get() == "failed"

    job.refresh_from_db()
    assert job.status == "failed"
    assert "not a readable video" in job.error
    assert used_units(user) == 0
    # Nothing of the failed run is left: only the uploaded file remains.
    assert media_files(settings.MEDIA_ROOT) == [job.video_path]


def test_rerunning_a_job_replaces_its_frames(process, clips, settings, user, django_capture_on_commit_callbacks):
    job = process(clips["index"], frameInterval="1")
    first_paths = set(job.frames.values_list("path", flat=True))
    first_thumbnail = job.thumbnail_path
    VideoJob.objects.filter(pk=job.pk).update(max_frames=3)

    with django_capture_on_commit_callbacks(execute=True):
        assert services.video_job_requeue(job=job)

    job.refresh_from_db()
    assert job.status == "completed", job.error
    frames = list(job.frames.order_by("index"))
    assert [f.index for f in frames] == [0, 1, 2]
    assert VideoFrame.objects.filter(job=job).count() == 3
    assert not first_paths & {f.path for f in frames}
    # The first run's files are gone; only this run's frames, its thumbnail and the video remain.
    assert media_files(settings.MEDIA_ROOT) == sorted([job.video_path, job.thumbnail_path, *(f.path for f in frames)])
    assert job.thumbnail_path != first_thumbnail


def test_a_job_processing_with_a_fresh_heartbeat_is_not_claimed_twice(client_a, clips):
    job = _stored_job(client_a, clips["short"])
    first = services.video_job_claim(job_id=job.id)
    assert first.job is not None

    second = services.video_job_claim(job_id=job.id)

    assert second.job is None
    assert second.retry_in is not None
    assert second.retry_in > 0
    job.refresh_from_db()
    assert (job.status, job.attempts, job.claim_token) == ("processing", 1, first.token)


def test_a_job_whose_worker_went_silent_is_claimed_again(client_a, clips, settings):
    job = _stored_job(client_a, clips["short"])
    first = services.video_job_claim(job_id=job.id)
    VideoJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=3600))

    second = services.video_job_claim(job_id=job.id)

    assert second.job is not None
    assert second.token != first.token
    job.refresh_from_db()
    assert job.attempts == 2


def test_attempts_are_bounded(client_a, clips, settings, user):
    job = _stored_job(client_a, clips["short"])
    VideoJob.objects.filter(pk=job.pk).update(attempts=settings.VIDEO_MAX_ATTEMPTS, status="queued")

    claim = services.video_job_claim(job_id=job.id)

    assert claim.job is None
    job.refresh_from_db()
    assert job.status == "failed"
    assert job.error.endswith("after being started 3 times; giving up.")
    assert used_units(user) == 0


def test_finished_and_deleted_jobs_are_not_claimed(client_a, clips):
    job = _stored_job(client_a, clips["short"])
    VideoJob.objects.filter(pk=job.pk).update(status="completed")

    assert services.video_job_claim(job_id=job.id).reason == "completed"
    assert services.video_job_claim(job_id=uuid.uuid4()).reason == "deleted"


def test_a_stale_run_stops_at_its_first_checkpoint_once_another_run_owns_the_job(client_a, clips, settings):
    job = _stored_job(client_a, clips["short"])
    stale = services.video_job_claim(job_id=job.id)
    VideoJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=3600))
    current = services.video_job_claim(job_id=job.id)

    with pytest.raises(services.JobCancelled):
        services.video_job_process(job=stale.job, token=stale.token)

    services.video_job_process(job=current.job, token=current.token)
    job.refresh_from_db()
    assert job.status == "completed"
    assert job.frames.count() == 1


def test_a_cancelled_job_stops_and_leaves_no_files(client_a, clips, settings, user):
    job = _stored_job(client_a, clips["short"])
    claim = services.video_job_claim(job_id=job.id)
    assert services.video_job_cancel(job=claim.job)

    with pytest.raises(services.JobCancelled):
        services.video_job_process(job=claim.job, token=claim.token)

    job.refresh_from_db()
    assert job.status == "cancelled"
    assert media_files(settings.MEDIA_ROOT) == [job.video_path]
    assert used_units(user) == 0


def test_the_task_reports_a_cancelled_job_without_failing_it(client_a, clips, eager):
    job = _stored_job(client_a, clips["short"])
    services.video_job_delete(job=job)

    assert process_video_job.delay(str(job.id)).get() == "deleted"


def test_progress_writes_are_throttled_and_forced_writes_go_through(client_a, clips, settings):
    job = _stored_job(client_a, clips["short"])
    claim = services.video_job_claim(job_id=job.id)
    settings.VIDEO_PROGRESS_WRITE_SECONDS = 3600
    settings.VIDEO_HEARTBEAT_STALE_SECONDS = 3600 * 8
    reporter = ProgressReporter(kind=VIDEO_JOBS, job_id=job.id, token=claim.token)

    reporter(10)  # first write
    reporter(20)  # within the interval: not written
    reporter(30)

    job.refresh_from_db()
    assert job.progress == 10
    reporter(40, force=True)
    job.refresh_from_db()
    assert job.progress == 40
    reporter(35, force=True)  # progress never goes back
    job.refresh_from_db()
    assert job.progress == 40


def test_reaper_requeues_a_job_whose_worker_died(
    client_a, clips, settings, eager, user, django_capture_on_commit_callbacks
):
    job = _stored_job(client_a, clips["short"])
    services.video_job_claim(job_id=job.id)
    VideoJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=3600))

    with django_capture_on_commit_callbacks(execute=True):
        result = reap_stale_video_jobs.delay().get()

    assert result["requeued"] == [str(job.id)]
    job.refresh_from_db()
    assert job.status == "completed", job.error
    assert job.attempts == 2
    assert job.frames.count() == 1
    assert used_units(user) == 5


def test_reaper_fails_a_job_out_of_attempts_and_refunds(client_a, clips, settings, user):
    job = _stored_job(client_a, clips["short"])
    services.video_job_claim(job_id=job.id)
    VideoJob.objects.filter(pk=job.pk).update(
        attempts=settings.VIDEO_MAX_ATTEMPTS, heartbeat_at=timezone.now() - timedelta(seconds=3600)
    )

    report = services.video_jobs_reap()

    assert report.failed == [str(job.id)]
    job.refresh_from_db()
    assert job.status == "failed"
    assert job.error == "Processing was interrupted (the worker stopped) after being started 3 times; giving up."
    assert used_units(user) == 0


def test_reaper_leaves_healthy_jobs_alone(client_a, clips):
    job = _stored_job(client_a, clips["short"])
    services.video_job_claim(job_id=job.id)

    report = services.video_jobs_reap()

    assert report.requeued == report.failed == report.resent == []
    job.refresh_from_db()
    assert job.status == "processing"


def test_reaper_resends_a_job_whose_task_was_lost(
    client_a, clips, eager, user, settings, django_capture_on_commit_callbacks
):
    job = _stored_job(client_a, clips["short"])  # never queued: its on-commit hook did not run
    VideoJob.objects.filter(pk=job.pk).update(updated_at=timezone.now() - timedelta(seconds=3600))

    report = services.video_jobs_reap()

    assert report.resent == [str(job.id)]
    job.refresh_from_db()
    assert job.status == "completed", job.error


def test_reaper_gives_a_queued_job_longer_before_resending_it(client_a, clips, settings, eager):
    job = _stored_job(client_a, clips["short"])
    waited = timezone.now() - timedelta(seconds=2 * settings.VIDEO_HEARTBEAT_STALE_SECONDS)
    VideoJob.objects.filter(pk=job.pk).update(status="queued", updated_at=waited)

    assert services.video_jobs_reap().resent == []

    VideoJob.objects.filter(pk=job.pk).update(updated_at=waited - timedelta(seconds=10 * 3600))
    assert services.video_jobs_reap().resent == [str(job.id)]


def test_a_task_for_a_job_this_worker_cannot_find_is_logged_loudly(eager, caplog, settings):
    """A worker that shares a broker with an instance of another database receives jobs it can't
    find: it says so at ERROR, naming its instance, instead of dropping them silently (the sending
    instance's reaper sends them again: test_reaper_gives_a_queued_job_longer_before_resending_it)."""
    missing = uuid.uuid4()
    with caplog.at_level(logging.ERROR, logger="video.services"):
        assert process_video_job.delay(str(missing)).get() == "deleted"
    [record] = [r for r in caplog.records if str(missing) in r.getMessage()]
    assert record.levelno == logging.ERROR
    assert "not in this worker's database" in record.getMessage()
    assert Path(settings.INSTANCE_DIR).name in record.getMessage()

"""The pipeline through a real Celery worker process (Redis broker when the suite has REDIS_URL,
else the embedded SQLAlchemy broker): success, failure with refund, cancellation while
processing, and a worker killed mid-job (SIGKILL) whose job still ends cleanly.

"Mid-job" is held, not hoped for: the slow job takes about two seconds here, so the tests stop the
job's frame-extraction ffmpeg (SIGSTOP) once the worker is well into it. The worker then waits on
ffmpeg's output and can neither finish nor fail the job until the test lets ffmpeg go on (SIGCONT),
however fast or slow the machine runs."""

from __future__ import annotations

import time
from pathlib import Path

from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from PIL import Image

from quotas.models import QuotaAccount, Reservation
from tests.celery_worker import STALE_SECONDS, dead_beat, wait_for
from tests.video.conftest import held_mid_job, media_files, upload, wait_terminal
from tests.video.media_fixtures import frame_index_of, write_garbage
from video import media, services
from video.models import VideoFrame, VideoJob

# The longest job of the suite: 40 s of 720p, a frame every 0.1 s (300 frames).
SLOW = {"frameInterval": "0.1", "maxFrames": "300"}


def used_units(user) -> int:
    return QuotaAccount.objects.get(user=user).used


def job_files(media_root: Path, job: VideoJob) -> list[str]:
    return [name for name in media_files(media_root) if str(job.id) in name]


def test_upload_is_processed_by_the_worker(worker, client_a, clips, user):
    response = upload(client_a, clips["index"], frameInterval="1")
    assert response.status_code == 202, response.content
    assert response.json()["data"]["status"] == "uploaded"

    job = wait_terminal(response.json()["data"]["id"])

    assert job.status == "completed", f"{job.error}\n{worker.log()}"
    assert job.progress == 100
    assert job.task_id  # the delivery that claimed it
    frames = list(job.frames.order_by("index"))
    assert [(f.index, f.timestamp) for f in frames] == [(i, float(i)) for i in range(6)]
    for frame in frames:
        with Image.open(worker.media_root / frame.path) as image:
            assert frame_index_of(image) == frame.index * 25
    with Image.open(worker.media_root / job.thumbnail_path) as image:
        assert image.size == (320, 240)
    assert Reservation.objects.get(pk=job.reservation_id).status == "settled"
    assert used_units(user) == 5
    details = client_a.get(f"/api/video/jobs/{job.id}").json()["data"]
    assert details["frameCount"] == 6
    assert client_a.get(f"/api/video/jobs/{job.id}/frames/5").status_code == 200


def test_a_job_that_cannot_be_processed_fails_in_the_worker_and_is_refunded(worker, clips, user):
    # The job is stored and queued in one transaction; the file is broken before it commits, so
    # the worker (which only sees committed data) meets a video that passed the upload probe but
    # is garbage by the time it is processed.
    info = media.probe(clips["short"])
    with transaction.atomic():
        job, _ = services.video_job_create(
            user=user,
            upload=SimpleUploadedFile("clip.mp4", clips["short"].read_bytes()),
            info=info,
            options=services.UploadOptions(),
        )
        write_garbage(worker.media_root / job.video_path, size=20_000)

    job = wait_terminal(job.id)

    assert job.status == "failed", worker.log()
    assert "not a readable video" in job.error
    assert job.frames.count() == 0
    assert used_units(user) == 0
    assert Reservation.objects.get(pk=job.reservation_id).status == "refunded"
    assert job_files(worker.media_root, job) == [job.video_path]


def test_deleting_a_job_while_the_worker_processes_it(worker, client_a, clips, user):
    response = upload(client_a, clips["slow"], **SLOW)
    assert response.status_code == 202, response.content
    job_id = response.json()["data"]["id"]
    assert response.json()["data"]["progress"] == 0
    with held_mid_job(worker, job_id) as seen:
        # Progress moved on from the upload's 0 while the worker ran (throttled writes, never back).
        assert seen == sorted(seen)
        assert seen[-1] >= 10

        deleted = client_a.delete(f"/api/video/jobs/{job_id}")

        assert deleted.status_code == 200
        assert not VideoJob.objects.filter(id=job_id).exists()
    # Let go, the worker stops at its next checkpoint and removes what it had written.
    wait_for(lambda: "stopped: cancelled" in worker.log(), timeout=60, what="the worker to stop the job")
    wait_for(
        lambda: not [name for name in media_files(worker.media_root) if job_id in name],
        timeout=30,
        what="the job's files to be gone",
    )
    assert VideoFrame.objects.filter(job_id=job_id).count() == 0
    assert used_units(user) == 0


def only_this_run_left(worker, job: VideoJob, expected: list[str]) -> None:
    """The dead run's files go right after the finishing run's results are committed, so they are
    waited for rather than checked the moment the job reads completed."""
    try:
        wait_for(lambda: job_files(worker.media_root, job) == expected, timeout=30, what="the dead run's files to go")
    except AssertionError:
        assert job_files(worker.media_root, job) == expected  # pytest shows which files are left
        raise


def _kill_mid_job(worker, client_a, clips) -> str:
    response = upload(client_a, clips["slow"], **SLOW)
    assert response.status_code == 202, response.content
    job_id = response.json()["data"]["id"]
    with held_mid_job(worker, job_id):
        worker.kill()  # its ffmpeg too: the whole process group
    job = VideoJob.objects.get(id=job_id)
    assert (job.status, job.attempts) == ("processing", 1)
    dead_beat(VideoJob, job_id)
    return job_id


def test_a_job_whose_worker_is_killed_is_finished_by_the_next_worker(worker, client_a, clips, user):
    job_id = _kill_mid_job(worker, client_a, clips)
    time.sleep(1.5)  # older than the next worker's visibility timeout, so Redis gives it back

    # The dead run's beat is stale for the next worker: Redis re-delivers the unacknowledged
    # task, and the reaper (beat, every second) re-queues the job in any case.
    worker.start(
        WITH_BEAT="1",
        VIDEO_HEARTBEAT_STALE_SECONDS=STALE_SECONDS,
        VIDEO_REAPER_INTERVAL_SECONDS="1",
        CELERY_VISIBILITY_TIMEOUT="1",
    )
    try:
        job = wait_terminal(job_id, timeout=120)

        assert job.status == "completed", f"{job.error}\n{worker.log()}"
        assert job.attempts == 2
        frames = list(job.frames.order_by("index"))
        assert [f.index for f in frames] == list(range(300))
        assert len({f.path for f in frames}) == 300
        # Only the finishing run's files remain: one frames folder, one thumbnail, the video.
        runs = {Path(f.path).parent for f in frames}
        assert len(runs) == 1
        expected = sorted([job.video_path, job.thumbnail_path, *(f.path for f in frames)])
        only_this_run_left(worker, job, expected)
        assert used_units(user) == 5
    finally:
        worker.stop()  # the next test gets a worker with the default settings


def test_a_job_whose_worker_is_killed_fails_cleanly_when_out_of_attempts(worker, client_a, clips, user):
    job_id = _kill_mid_job(worker, client_a, clips)

    worker.start(
        WITH_BEAT="1",
        VIDEO_HEARTBEAT_STALE_SECONDS=STALE_SECONDS,
        VIDEO_REAPER_INTERVAL_SECONDS="1",
        CELERY_VISIBILITY_TIMEOUT="1",
        VIDEO_MAX_ATTEMPTS="1",
    )
    try:
        job = wait_terminal(job_id, timeout=60)

        assert job.status == "failed", worker.log()
        assert job.error == "Processing was interrupted (the worker stopped) after being started once; giving up."
        assert used_units(user) == 0
        assert Reservation.objects.get(pk=job.reservation_id).status == "refunded"
        assert job.frames.count() == 0
    finally:
        worker.stop()


def test_a_killed_workers_job_is_finished_by_the_next_worker_with_no_beat(worker, client_a, clips, user):
    """No beat and no redelivery (the broker keeps the unacknowledged message for its hour-long
    visibility timeout): the next worker's own reaper thread notices the stale heartbeat."""
    from quotas.models import UsageEntry

    job_id = _kill_mid_job(worker, client_a, clips)

    worker.start(VIDEO_HEARTBEAT_STALE_SECONDS=STALE_SECONDS, WORKER_REAPER_INTERVAL_SECONDS="1")
    try:
        job = wait_terminal(job_id, timeout=120)

        assert job.status == "completed", f"{job.error}\n{worker.log()}"
        assert job.attempts == 2
        frames = list(job.frames.order_by("index"))
        assert [f.index for f in frames] == list(range(300))
        assert len({Path(f.path).parent for f in frames}) == 1
        expected = sorted([job.video_path, job.thumbnail_path, *(f.path for f in frames)])
        only_this_run_left(worker, job, expected)
        charges = UsageEntry.objects.filter(job_id=str(job.id), kind="charge")
        assert [entry.units for entry in charges] == [5]
        assert used_units(user) == 5
    finally:
        worker.stop()

"""The billable-job lifecycle (`core.jobs.lifecycle`) against the real database, on VideoJob rows:
claims, stale tokens, heartbeats, completion with settlement, failure and cancel with refunds,
and the reaper's requeue-or-fail with bounded attempts."""

from __future__ import annotations

import dataclasses
import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from core.jobs import lifecycle
from core.jobs.progress import JobLost, ProgressReporter
from quotas.models import Reservation
from video.models import VideoJob

pytestmark = pytest.mark.django_db

LONG_AGO = timedelta(hours=1)


def _status(job: VideoJob) -> str:
    job.refresh_from_db()
    return job.status


def test_a_claim_takes_a_waiting_job_once(kind, make_job):
    job = make_job()

    first = lifecycle.job_claim(kind=kind, job_id=job.id, task_id="task-1")
    second = lifecycle.job_claim(kind=kind, job_id=job.id)

    assert first.job is not None
    assert first.token
    assert second.job is None
    assert second.reason == "busy"
    assert second.retry_in
    assert second.retry_in > 0
    job.refresh_from_db()
    assert (job.status, job.claim_token, job.attempts, job.task_id) == ("processing", first.token, 1, "task-1")
    assert job.started_at
    assert job.heartbeat_at


@pytest.mark.django_db(transaction=True)
def test_concurrent_claims_have_one_winner(kind, make_job):
    if connection.vendor == "sqlite":
        pytest.skip("SQLite serialises writers; the race needs a server database")
    job = make_job()
    claims: list[lifecycle.Claim[VideoJob]] = []
    start = threading.Barrier(4)

    def claim() -> None:
        start.wait()
        try:
            claims.append(lifecycle.job_claim(kind=kind, job_id=job.id))
        finally:
            connection.close()

    threads = [threading.Thread(target=claim) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    winners = [c for c in claims if c.job is not None]
    assert len(claims) == 4
    assert len(winners) == 1
    job.refresh_from_db()
    assert (job.claim_token, job.attempts) == (winners[0].token, 1)


def test_a_stale_token_can_neither_beat_nor_complete_nor_fail(kind, make_job, used):
    job = make_job()
    stale = lifecycle.job_claim(kind=kind, job_id=job.id)
    VideoJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - LONG_AGO)
    current = lifecycle.job_claim(kind=kind, job_id=job.id)
    assert current.job is not None
    assert current.token != stale.token

    assert not lifecycle.job_heartbeat(kind=kind, job_id=job.id, token=stale.token, progress=50)
    assert not lifecycle.job_is_owned(kind=kind, job_id=job.id, token=stale.token)
    assert not lifecycle.job_complete(kind=kind, job_id=job.id, token=stale.token)
    assert not lifecycle.job_fail(kind=kind, job_id=job.id, token=stale.token, error="stale run")
    assert not lifecycle.job_release(kind=kind, job_id=job.id, token=stale.token)
    job.refresh_from_db()
    assert (job.status, job.claim_token, job.attempts, job.progress) == ("processing", current.token, 2, 0)
    assert used() == 5


def test_complete_settles_in_the_same_transaction(kind, make_job, django_capture_on_commit_callbacks):
    job = make_job()
    claim = lifecycle.job_claim(kind=kind, job_id=job.id)

    # No commit hook runs: the settlement is part of the completing transaction itself.
    with django_capture_on_commit_callbacks(execute=False) as hooks:
        assert lifecycle.job_complete(
            kind=kind, job_id=job.id, token=claim.token, fields={"duration": 2.5}, usage={"processing_ms": 1200}
        )

    assert hooks == []
    job.refresh_from_db()
    assert (job.status, job.progress, job.duration) == ("completed", 100, 2.5)
    assert job.completed_at
    reservation = Reservation.objects.get(pk=job.reservation_id)
    assert (reservation.status, reservation.units, reservation.processing_ms) == ("settled", 5, 1200)


def test_a_completed_job_never_has_an_open_reservation(kind, make_job, used):
    """Completion and settlement commit together or not at all: no reader (a client polling the
    job, a test) can see the job completed while its reservation is still reserved."""
    job = make_job()
    claim = lifecycle.job_claim(kind=kind, job_id=job.id)

    class Interrupted(Exception):
        pass

    def complete_then_roll_back() -> None:
        with transaction.atomic():
            assert lifecycle.job_complete(kind=kind, job_id=job.id, token=claim.token, units=7)
            assert _status(job) == "completed"
            assert Reservation.objects.get(pk=job.reservation_id).status == "settled"
            raise Interrupted

    # A completion whose transaction does not commit leaves both as they were.
    with pytest.raises(Interrupted):
        complete_then_roll_back()
    assert _status(job) == "processing"
    assert Reservation.objects.get(pk=job.reservation_id).status == "reserved"
    assert used() == 5

    assert lifecycle.job_complete(kind=kind, job_id=job.id, token=claim.token, units=7)
    completed_but_open = VideoJob.objects.filter(status="completed", reservation__status="reserved")
    assert not completed_but_open.exists()
    assert Reservation.objects.get(pk=job.reservation_id).status == "settled"
    assert used() == 7


def test_fail_refunds_and_records_the_code(kind, make_job, used):
    job = make_job()
    claim = lifecycle.job_claim(kind=kind, job_id=job.id)

    assert lifecycle.job_fail(kind=kind, job_id=job.id, token=claim.token, error="bad input", code="media_error")
    assert not lifecycle.job_fail(kind=kind, job_id=job.id, error="again")  # failed once, refunded once

    job.refresh_from_db()
    assert (job.status, job.error, job.error_code, job.claim_token) == ("failed", "bad input", "media_error", "")
    assert Reservation.objects.get(pk=job.reservation_id).status == "refunded"
    assert used() == 0


def test_cancel_refunds_and_stops_the_running_worker(kind, make_job, used):
    job = make_job()
    claim = lifecycle.job_claim(kind=kind, job_id=job.id)
    reporter = ProgressReporter(kind=kind, job_id=job.id, token=claim.token)
    reporter(10)

    assert lifecycle.job_cancel(kind=kind, job_id=job.id)
    assert not lifecycle.job_cancel(kind=kind, job_id=job.id)  # only active jobs are cancelled

    with pytest.raises(JobLost):
        reporter(50, force=True)
    assert not lifecycle.job_complete(kind=kind, job_id=job.id, token=claim.token)
    assert _status(job) == "cancelled"
    assert used() == 0


def test_release_puts_the_job_back_for_another_claim(kind, make_job):
    job = make_job()
    claim = lifecycle.job_claim(kind=kind, job_id=job.id)

    assert lifecycle.job_release(kind=kind, job_id=job.id, token=claim.token)

    again = lifecycle.job_claim(kind=kind, job_id=job.id)
    assert again.job is not None
    job.refresh_from_db()
    assert job.attempts == 2


def test_reap_requeues_a_stale_job_with_attempts_left_and_sends_it(
    kind, make_job, sent, used, django_capture_on_commit_callbacks
):
    job = make_job()
    lifecycle.job_claim(kind=kind, job_id=job.id)
    VideoJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - LONG_AGO)

    with django_capture_on_commit_callbacks(execute=True):
        report = lifecycle.jobs_reap(kind=kind)

    assert (report.requeued, report.failed, report.resent) == ([str(job.id)], [], [])
    assert sent.ids == [job.id]
    job.refresh_from_db()
    assert (job.status, job.claim_token, job.attempts) == ("queued", "", 1)
    assert used() == 5


def test_reap_fails_and_refunds_a_stale_job_out_of_attempts(kind, make_job, settings, used):
    job = make_job()
    lifecycle.job_claim(kind=kind, job_id=job.id)
    VideoJob.objects.filter(pk=job.pk).update(
        attempts=settings.VIDEO_MAX_ATTEMPTS, heartbeat_at=timezone.now() - LONG_AGO
    )

    report = lifecycle.jobs_reap(kind=kind)

    assert (report.requeued, report.failed) == ([], [str(job.id)])
    job.refresh_from_db()
    assert (job.status, job.error_code) == ("failed", "interrupted")
    assert job.error == "Processing was interrupted (the worker stopped) after being started 3 times; giving up."
    assert used() == 0


def test_reap_leaves_a_job_whose_worker_beat_after_the_reaper_looked(kind, make_job):
    job = make_job()
    claim = lifecycle.job_claim(kind=kind, job_id=job.id)
    VideoJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - LONG_AGO)
    # Two reapers: the first requeues; the second saw the same stale row and must not act on it.
    assert lifecycle.jobs_reap(kind=kind).requeued == [str(job.id)]
    assert not lifecycle.jobs_reap(kind=kind)
    assert not lifecycle.job_is_owned(kind=kind, job_id=job.id, token=claim.token)


def test_attempts_are_bounded_across_claims(kind, make_job, settings, used):
    settings.VIDEO_MAX_ATTEMPTS = 2
    job = make_job()
    for _ in range(2):
        assert lifecycle.job_claim(kind=kind, job_id=job.id).job is not None
        VideoJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - LONG_AGO)

    final = lifecycle.job_claim(kind=kind, job_id=job.id)

    assert final.job is None
    job.refresh_from_db()
    assert (job.status, job.attempts) == ("processing", 2)  # out of attempts: left for the reaper
    assert lifecycle.jobs_reap(kind=kind).failed == [str(job.id)]
    assert used() == 0


def test_a_waiting_job_out_of_attempts_fails_on_claim(kind, make_job, settings, used):
    job = make_job(attempts=settings.VIDEO_MAX_ATTEMPTS)

    claim = lifecycle.job_claim(kind=kind, job_id=job.id)

    assert (claim.job, claim.reason) == (None, "attempts exhausted")
    assert _status(job) == "failed"
    assert used() == 0


def test_reap_resends_a_job_waiting_too_long(kind, make_job, sent, settings):
    old = timezone.now() - timedelta(seconds=10 * settings.VIDEO_HEARTBEAT_STALE_SECONDS)
    queued = make_job()
    uploaded = make_job(status=VideoJob.Status.UPLOADED)
    fresh = make_job()
    VideoJob.objects.filter(pk__in=[queued.pk, uploaded.pk]).update(updated_at=old)

    report = lifecycle.jobs_reap(kind=kind)

    assert sorted(report.resent) == sorted([str(queued.id), str(uploaded.id)])
    assert str(fresh.id) not in report.resent
    assert sorted(sent.ids) == sorted([queued.id, uploaded.id])
    assert not lifecycle.jobs_reap(kind=kind).resent  # touched: not resent again at once


def test_requeue_starts_a_finished_job_afresh_but_not_a_running_one(
    kind, make_job, sent, django_capture_on_commit_callbacks
):
    job = make_job()
    claim = lifecycle.job_claim(kind=kind, job_id=job.id)
    assert not lifecycle.job_requeue(kind=kind, job_id=job.id)
    lifecycle.job_fail(kind=kind, job_id=job.id, token=claim.token, error="boom")

    with django_capture_on_commit_callbacks(execute=True):
        assert lifecycle.job_requeue(kind=kind, job_id=job.id)

    job.refresh_from_db()
    assert (job.status, job.attempts, job.error, job.error_code) == ("queued", 0, "", "")
    assert sent.ids == [job.id]


def test_a_kind_without_waiting_states_resends_nothing(kind, make_job, sent, settings):
    job = make_job()
    VideoJob.objects.filter(pk=job.pk).update(updated_at=timezone.now() - timedelta(days=1))

    report = lifecycle.jobs_reap(kind=dataclasses.replace(kind, waiting={}))

    assert not report
    assert sent.ids == []

"""Queued transcriptions through a real Celery worker process, on the offline engines: the normal
path, and a job whose worker died, brought back by the reaper (the beat task, also run by the worker).

The worker inherits the test environment without an OpenAI key, so it runs the local provider."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from ai_services.models import AIJob
from ai_services.tasks import reap_stale_ai_jobs
from quotas.models import Reservation
from tests.celery_worker import STALE_SECONDS, dead_beat, wait_for
from tests.text_metrics import normalize_words, wer

STT = "/api/ai/speech-to-text"
SENTENCE = "The quick brown fox jumps over the lazy dog."
# Whisper may mishear a word of the nine ("quit" for "quick" was seen); two would be a real regression.
MAX_WER = 0.12


@pytest.fixture(scope="module")
def spoken() -> bytes:
    from ai_services.providers.local import piper_tts

    samples, rate = piper_tts.synthesize(SENTENCE)
    return piper_tts.encode_audio(samples, rate, "wav")


def queue(client, audio: bytes) -> AIJob:
    upload = SimpleUploadedFile("fox.wav", audio, content_type="audio/wav")
    response = client.post(STT, {"audio": upload, "async": "true"}, format="multipart")
    assert response.status_code == 202, response.content
    return AIJob.objects.get(id=response.json()["data"]["jobId"])


def finished(job_id) -> AIJob:
    """The job once its worker is done with it: the outcome recorded, then its upload removed (a
    moment later, so a wait on the status alone would race the removal)."""
    return wait_for(
        lambda: AIJob.objects.filter(id=job_id, status__in=["completed", "failed"], input_file="").first(),
        timeout=120,
        what=f"AI job {job_id} to finish and remove its upload",
    )


def test_a_queued_transcription_is_run_by_the_worker(worker, local_settings, client_a, spoken):
    job = queue(client_a, spoken)
    stored = job.input_file.name

    done = finished(job.id)

    assert done.status == "completed", f"{done.error}\n{worker.log()[-3000:]}"
    assert wer(SENTENCE, done.output["text"]) <= MAX_WER, done.output["text"]
    assert done.attempts == 1
    assert Reservation.objects.get(pk=done.reservation_id).status == "settled"
    assert not default_storage.exists(stored)
    polled = client_a.get(f"/api/ai/jobs/{job.id}").json()["data"]
    assert polled["status"] == "completed"
    assert polled["error"] is None


def test_a_job_whose_worker_died_is_requeued_by_the_beat_reaper(worker, local_settings, client_a, spoken):
    from config.celery import app

    # The worker is gone when the job is queued, and its message with it (as when a worker is
    # SIGKILLed under a broker that does not redeliver); the row says a worker started it long ago.
    worker.stop()
    job = queue(client_a, spoken)
    app.control.purge()
    long_ago = timezone.now() - timedelta(hours=1)
    AIJob.objects.filter(pk=job.pk).update(
        status="processing", attempts=1, started_at=long_ago, heartbeat_at=long_ago, claim_token="dead"
    )
    worker.start()

    reap_stale_ai_jobs.delay()  # what beat sends every AI_REAPER_INTERVAL_SECONDS

    done = finished(job.id)
    assert done.status == "completed", f"{done.error}\n{worker.log()[-3000:]}"
    assert done.attempts == 2
    assert wer(SENTENCE, done.output["text"]) <= MAX_WER, done.output["text"]


def test_a_transcription_whose_worker_is_killed_is_finished_by_the_next_worker_with_no_beat(
    worker, local_settings, client_a, spoken
):
    """SIGKILL mid-transcription, no beat: the next worker's reaper thread sees the heartbeat
    stop, re-queues the job, and it is transcribed and charged once."""
    from ai_services.providers.local import piper_tts
    from quotas.models import UsageEntry

    # A dozen sentences: long enough for the worker to be killed mid-run.
    samples, rate = piper_tts.synthesize(" ".join([SENTENCE] * 12))
    long_speech = piper_tts.encode_audio(samples, rate, "wav")
    job = queue(client_a, long_speech)
    wait_for(
        lambda: AIJob.objects.filter(id=job.id, status="processing").exists(),
        timeout=60,
        what="the worker to claim the transcription",
    )
    worker.kill()
    assert AIJob.objects.get(id=job.id).status == "processing"
    dead_beat(AIJob, job.id)

    worker.start(AI_JOB_HEARTBEAT_STALE_SECONDS=STALE_SECONDS, WORKER_REAPER_INTERVAL_SECONDS="1")
    try:
        done = finished(job.id)

        assert done.status == "completed", f"{done.error}\n{worker.log()[-3000:]}"
        assert done.attempts == 2
        # Twelve identical sentences can send Whisper into a repetition loop (seen: 24 copies), so
        # the transcript is judged on its opening sentence, not on how often it repeats.
        opening = " ".join(normalize_words(done.output["text"])[: len(normalize_words(SENTENCE))])
        assert wer(SENTENCE, opening) <= MAX_WER, done.output["text"]
        assert Reservation.objects.get(pk=done.reservation_id).status == "settled"
        charges = UsageEntry.objects.filter(job_id=str(done.id), kind="charge")
        assert charges.count() == 1
    finally:
        worker.stop()

"""Jobs nothing will finish (the reaper and the staff "stop" action), and the AI admin pages.

Stuck jobs are made the way they happen: a queued transcription whose task message never reaches
a worker (the commit hook that sends it is not run), or a job whose worker claimed it and died
(its row left `processing`, moved back in time past the stale window)."""

from __future__ import annotations

import json
import logging
import threading
import uuid
from datetime import timedelta

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from ai_services import services
from ai_services.models import AIJob, Conversation, Message
from ai_services.tasks import reap_stale_ai_jobs
from core.jobs.lifecycle import ReapReport
from quotas.models import Reservation
from quotas.selectors import quota_account_forget, quota_account_get
from tests.ai_services.conftest import wait_for, wav_bytes

STT = "/api/ai/speech-to-text"


def used_units(user) -> int:
    quota_account_forget(user=user)
    return quota_account_get(user=user).used


def queued_transcription(client_a, django_capture_on_commit_callbacks) -> AIJob:
    """A queued transcription whose task was never delivered."""
    audio = SimpleUploadedFile("a.wav", wav_bytes(1.0), content_type="audio/wav")
    with django_capture_on_commit_callbacks(execute=False):
        response = client_a.post(STT, {"audio": audio, "async": True}, format="multipart")
    assert response.status_code == 202, response.content
    return AIJob.objects.get(id=response.json()["data"]["jobId"])


def died_while_processing(job: AIJob, *, attempts: int = 1) -> None:
    """What a worker killed after claiming the job leaves behind, an hour ago: its claim, and its
    last heartbeat."""
    long_ago = timezone.now() - timedelta(hours=1)
    AIJob.objects.filter(pk=job.pk).update(
        status="processing", started_at=long_ago, heartbeat_at=long_ago, claim_token="dead", attempts=attempts
    )


# --- The reaper ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_transcription_whose_worker_died_is_requeued_and_finished(
    openai_settings, fake_openai, client_a, user, celery_eager, django_capture_on_commit_callbacks
):
    job = queued_transcription(client_a, django_capture_on_commit_callbacks)
    died_while_processing(job)

    # The beat task; eager, so the re-sent task runs too, once the re-queue commits.
    with django_capture_on_commit_callbacks(execute=True):
        report = reap_stale_ai_jobs.delay().get()

    assert report == {"failed": [], "requeued": [str(job.id)], "resent": []}
    job.refresh_from_db()
    assert job.status == "completed"
    assert job.output["text"] == fake_openai.state.transcript
    assert job.attempts == 2
    assert not job.input_file
    assert used_units(user) == 1


@pytest.mark.django_db
def test_a_transcription_out_of_attempts_is_failed_and_refunded(
    openai_settings, fake_openai, client_a, user, settings, django_capture_on_commit_callbacks
):
    job = queued_transcription(client_a, django_capture_on_commit_callbacks)
    stored = job.input_file.name
    died_while_processing(job, attempts=settings.AI_JOB_MAX_ATTEMPTS)
    assert used_units(user) == 1

    report = services.ai_jobs_reap()

    assert report.failed == [str(job.id)]
    job.refresh_from_db()
    assert (job.status, job.error_code, job.units_charged) == ("failed", "abandoned", 0)
    assert "not charged" in job.error
    assert Reservation.objects.get(pk=job.reservation_id).status == "refunded"
    assert used_units(user) == 0
    assert not job.input_file
    assert not default_storage.exists(stored)
    # A late redelivery of its task finds nothing to claim.
    assert services.transcription_job_process(job_id=str(job.id)) is None
    assert fake_openai.requests_to("/audio/transcriptions") == []


@pytest.mark.django_db
def test_a_lost_task_message_is_sent_again_only_after_the_stale_window(
    openai_settings, fake_openai, client_a, user, celery_eager, django_capture_on_commit_callbacks
):
    job = queued_transcription(client_a, django_capture_on_commit_callbacks)

    assert services.ai_jobs_reap().resent == []  # just queued: maybe only waiting behind others
    report = services.ai_jobs_reap(now=timezone.now() + timedelta(hours=1))

    assert report.resent == [str(job.id)]
    job.refresh_from_db()
    assert job.status == "completed"
    assert used_units(user) == 1


@pytest.mark.django_db
def test_a_recent_job_and_finished_jobs_are_left_alone(
    openai_settings, fake_openai, client_a, user, django_capture_on_commit_callbacks
):
    job = queued_transcription(client_a, django_capture_on_commit_callbacks)
    AIJob.objects.filter(pk=job.pk).update(status="processing", started_at=timezone.now(), attempts=1)
    client_a.post("/api/ai/chat", {"message": "hello"}, format="json")
    used = used_units(user)

    report = services.ai_jobs_reap()

    assert report == ReapReport()
    assert sorted(AIJob.objects.values_list("status", flat=True)) == ["completed", "processing"]
    assert used_units(user) == used


@pytest.mark.django_db(transaction=True)
def test_a_stream_stopped_while_running_is_refunded_and_its_late_answer_is_free(
    openai_settings, fake_openai, client_a, user
):
    # The stream's thread outlives the stop: the answer is still stored, but not charged twice
    # and not charged at all, since its reservation was given back.
    fake_openai.state.reply = "A slow answer arrives word by word."
    gate = fake_openai.state.stream_gate = threading.Event()  # the provider holds after the first word
    try:
        response = client_a.post("/api/ai/chat", {"message": "Go slowly", "stream": True}, format="json")
        stream = iter(response.streaming_content)
        start = next(stream).decode()  # "event: start\ndata: {...}\n\n"
        job_id = json.loads(start.split("data: ", 1)[1])["jobId"]
        assert "event: delta" in next(stream).decode()  # the stream's thread is mid-answer

        assert services.ai_job_abandon(job_id=job_id, reason="Stopped by staff.")
        assert not services.ai_job_abandon(job_id=job_id, reason="Stopped by staff.")  # only once
        assert used_units(user) == 0
    finally:
        gate.set()

    rest = b"".join(stream).decode()
    response.close()
    assert "event: done" in rest
    job = wait_for(lambda: AIJob.objects.filter(id=job_id, status="completed").first())
    assert job.units_charged == 0
    assert used_units(user) == 0
    assert Message.objects.filter(role="assistant").get().content == "A slow answer arrives word by word."


# --- Admin -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_stop_action_refunds_unfinished_jobs_and_skips_finished_ones(
    staff, openai_settings, fake_openai, client_a, user, django_capture_on_commit_callbacks
):
    queued = queued_transcription(client_a, django_capture_on_commit_callbacks)
    client_a.post("/api/ai/chat", {"message": "hello"}, format="json")
    finished = AIJob.objects.get(type="chat")
    used = used_units(user)

    response = staff.post(
        reverse("admin:ai_services_aijob_changelist"),
        {"action": "abandon", "_selected_action": [str(queued.pk), str(finished.pk)]},
        follow=True,
    )

    page = response.content.decode()
    assert "Stopped and refunded 1 job(s)." in page
    assert "Skipped 1 finished job(s)." in page
    queued.refresh_from_db()
    assert (queued.status, queued.error) == ("failed", "Stopped by staff.")
    finished.refresh_from_db()
    assert finished.status == "completed"
    assert used_units(user) == used - 1  # the transcription's unit (one started minute) is back


@pytest.mark.django_db
def test_deleting_a_queued_job_in_the_admin_refunds_it_and_removes_its_upload(
    staff, openai_settings, client_a, user, django_capture_on_commit_callbacks
):
    job = queued_transcription(client_a, django_capture_on_commit_callbacks)
    stored = job.input_file.name

    response = staff.post(reverse("admin:ai_services_aijob_delete", args=[job.pk]), {"post": "yes"})

    assert response.status_code == 302
    assert not AIJob.objects.exists()
    assert not default_storage.exists(stored)
    assert Reservation.objects.get().status == "refunded"
    assert used_units(user) == 0


@pytest.mark.django_db
def test_job_pages_are_read_only_and_list_in_constant_queries(
    staff, openai_settings, fake_openai, client_a, make_user, auth_client
):
    client_a.post("/api/ai/chat", {"message": "hello"}, format="json")
    url = reverse("admin:ai_services_aijob_changelist")
    with CaptureQueriesContext(connection) as few:
        assert staff.get(url).status_code == 200
    for index in range(5):  # more jobs of more users: still the same number of queries
        other = auth_client(make_user(email=f"u{index}@example.com"))
        other.post("/api/ai/chat", {"message": "hi"}, format="json")
    with CaptureQueriesContext(connection) as many:
        page = staff.get(url).content.decode()
    assert "u4@example.com" in page
    assert len(many) == len(few) > 0

    job = AIJob.objects.first()
    detail = staff.get(reverse("admin:ai_services_aijob_change", args=[job.pk])).content.decode()
    assert 'name="status"' not in detail  # every field read-only
    assert staff.get(reverse("admin:ai_services_aijob_add")).status_code == 403
    assert staff.get(url, {"status__exact": "completed", "q": "u4@"}).status_code == 200


@pytest.mark.django_db
def test_conversation_admin_renames_and_deletes_through_the_services(staff, openai_settings, fake_openai, client_a):
    chat = client_a.post("/api/ai/chat", {"message": "Tell me about tides"}, format="json").json()["data"]
    conversation = Conversation.objects.get(id=chat["conversationId"])
    change = reverse("admin:ai_services_conversation_change", args=[conversation.pk])
    page = staff.get(change).content.decode()
    assert "Tell me about tides" in page  # the messages inline

    response = staff.post(change, {"title": "  Tides  ", "messages-TOTAL_FORMS": "2", "messages-INITIAL_FORMS": "2"})

    assert response.status_code == 302
    conversation.refresh_from_db()
    assert conversation.title == "Tides"
    staff.post(
        reverse("admin:ai_services_conversation_changelist"),
        {"action": "delete_selected", "_selected_action": [str(conversation.pk)], "post": "yes"},
    )
    assert not Conversation.objects.exists()
    assert not Message.objects.exists()
    assert AIJob.objects.get().conversation is None  # the job history stays


@pytest.mark.django_db
def test_a_transcription_this_worker_cannot_find_is_logged_loudly(caplog):
    missing = uuid.uuid4()
    with caplog.at_level(logging.ERROR, logger="ai_services.services"):
        assert services.transcription_job_process(job_id=str(missing)) is None
    [record] = [r for r in caplog.records if str(missing) in r.getMessage()]
    assert record.levelno == logging.ERROR
    assert "not in this worker's database" in record.getMessage()


@pytest.mark.django_db
def test_a_voice_stage_left_waiting_by_a_dead_request_is_refunded_not_sent_to_a_worker(user, celery_eager):
    """The later stages of a voice turn wait as `pending` with no upload: only their request runs
    them. If it died, the reaper gives them up and refunds them; it never hands one to the
    transcription worker."""
    from ai_services.services.jobs import ai_job_begin
    from quotas.modalities import CHAT

    call = ai_job_begin(
        user=user, modality=CHAT, units=2, provider="openai", model="m", summary={}, status=AIJob.Status.PENDING
    )
    assert used_units(user) == 2
    assert services.ai_jobs_reap() == ReapReport()  # its request may still be on an earlier stage

    report = services.ai_jobs_reap(now=timezone.now() + timedelta(hours=1))

    assert (report.failed, report.resent) == ([str(call.job.id)], [])
    call.job.refresh_from_db()
    assert (call.job.status, call.job.error_code, call.job.units_charged) == ("failed", "abandoned", 0)
    assert Reservation.objects.get(pk=call.job.reservation_id).status == "refunded"
    assert used_units(user) == 0

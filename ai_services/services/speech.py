"""Speech-to-text: check an audio upload by its content, then transcribe it now or queue it for
a worker (claimed atomically, with a heartbeat while it runs)."""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files import File
from django.core.files.uploadedfile import UploadedFile
from django.db import DatabaseError, connections, transaction

from accounts.models import User
from ai_services import audio
from ai_services.models import AIJob
from ai_services.providers import TranscriptionResult
from ai_services.providers.capabilities import transcriber
from ai_services.services.jobs import (
    AI_JOBS,
    ai_job_begin,
    ai_job_fail,
    ai_job_failures_recorded,
    ai_job_given_up,
    ai_job_resume,
    ai_job_stop,
    ai_job_succeed,
    pending_file_delete,
    text_summary,
)
from core.api.outages import BROKER_ERRORS
from core.exceptions import InvalidUpload, QueueUnavailable, UnsupportedMediaType, UploadTooLarge
from core.jobs.lifecycle import job_claim, job_heartbeat, job_release
from core.scanning import upload_scan
from quotas.modalities import TRANSCRIBE

logger = logging.getLogger(__name__)

ACCEPTED_AUDIO_FORMATS = {"wav": "wav", "mp3": "mp3", "m4a": "m4a", "mp4": "m4a", "ogg": "ogg"}


@dataclass
class AudioInfo:
    path: Path
    filename: str
    format: str
    duration: float


@contextmanager
def _upload_on_disk(upload: UploadedFile) -> Iterator[Path]:
    """A filesystem path holding the upload (large uploads already are in a temporary file)."""
    temporary_file_path = getattr(upload, "temporary_file_path", None)
    if temporary_file_path is not None:
        yield Path(temporary_file_path())
        return
    with tempfile.NamedTemporaryFile(prefix="ai-upload-", dir=settings.FILE_UPLOAD_TEMP_DIR) as handle:
        upload.seek(0)
        for chunk in upload.chunks():
            handle.write(chunk)
        handle.flush()
        yield Path(handle.name)


def audio_probe(*, path: Path, filename: str) -> AudioInfo:
    """Check an audio file by its content: WAV, MP3, M4A or OGG, at most the configured duration."""
    try:
        info = audio.probe_audio(path)
    except audio.AudioError:
        raise UnsupportedMediaType(
            "The file is not audio this service can read. Send WAV, MP3, M4A or OGG.", code="unsupported_audio"
        ) from None
    fmt = ACCEPTED_AUDIO_FORMATS.get(info["format"])
    if fmt is None:
        raise UnsupportedMediaType(
            f"Audio format '{info['format']}' is not accepted. Send WAV, MP3, M4A or OGG.", code="unsupported_audio"
        )
    duration = float(info["duration"] or 0.0)
    if duration <= 0:
        raise InvalidUpload("The audio is empty.", code="empty_audio")
    if duration > settings.AI_AUDIO_MAX_SECONDS:
        raise InvalidUpload(
            f"The audio lasts {duration:.0f} s; the limit is {settings.AI_AUDIO_MAX_SECONDS // 60} minutes.",
            code="audio_too_long",
        )
    return AudioInfo(path=path, filename=filename, format=fmt, duration=duration)


def _audio_upload_check(upload: UploadedFile) -> None:
    if (upload.size or 0) > settings.AI_AUDIO_MAX_BYTES:
        raise UploadTooLarge(f"The audio file is larger than {settings.AI_AUDIO_MAX_BYTES // (1024 * 1024)} MB.")
    upload_scan(upload, kind="audio", field="audio")


def _transcription_output(result: TranscriptionResult, *, duration: float) -> dict[str, Any]:
    return {
        "text": result.text,
        "language": result.language,
        "duration": round(result.duration or duration, 3),
        "segments": result.segments,
    }


def speech_transcribe(
    *, user: User, upload: UploadedFile, language: str | None = None, prompt: str | None = None, run_async: bool = False
) -> AIJob:
    """Transcribe an upload now (the job comes back completed) or queue it (pending).

    Quota is reserved by started minute of the probed duration, before the provider is called."""
    _audio_upload_check(upload)
    provider = transcriber()
    model = provider.default_model(TRANSCRIBE.key)
    filename = Path(upload.name or "audio").name[:100]
    with _upload_on_disk(upload) as path:
        info = audio_probe(path=path, filename=filename)
        summary = {
            "filename": filename,
            "bytes": upload.size,
            "format": info.format,
            "duration": round(info.duration, 3),
            "language": language or "",
            "prompt": text_summary(prompt or ""),
        }
        units = TRANSCRIBE.price(audio_seconds=info.duration)
        if run_async:
            return _speech_queue(user=user, info=info, units=units, model=model, summary=summary)
        call = ai_job_begin(
            user=user, modality=TRANSCRIBE, units=units, provider=provider.name, model=model, summary=summary
        )
        with ai_job_failures_recorded(call):
            result = provider.transcribe(path=path, filename=filename, model=model, language=language, prompt=prompt)
            return ai_job_succeed(
                call,
                output=_transcription_output(result, duration=info.duration),
                units=units,
                usage={"audio_seconds": info.duration},
            )


def _speech_queue(*, user: User, info: AudioInfo, units: int, model: str, summary: dict[str, Any]) -> AIJob:
    call = ai_job_begin(
        user=user,
        modality=TRANSCRIBE,
        units=units,
        provider=transcriber().name,
        model=model,
        summary={**summary, "async": True},
        status=AIJob.Status.PENDING,
    )
    with ai_job_failures_recorded(call), info.path.open("rb") as handle:
        call.job.input_file.save(f"{call.job.id}.{info.format}", File(handle), save=True)
    job_id = str(call.job.id)
    transaction.on_commit(lambda: _transcription_send_or_refuse(job_id=job_id))
    return call.job


def _transcription_send_or_refuse(*, job_id: str) -> None:
    """Queue a stored transcription, or refuse it: a job the broker never received is not
    reported as queued. It ends failed (`queue_unavailable`), refunded, its upload deleted."""
    from ai_services.tasks import transcription_job_run

    try:
        transcription_job_run.delay(job_id)
    except BROKER_ERRORS as exc:
        logger.warning("Could not queue transcription %s: %s", job_id, exc)
        refused = QueueUnavailable(
            "The job queue is unreachable: the transcription was not queued or charged. Try again shortly."
        )
        transcription_job_fail(job_id=job_id, error=refused)
        raise refused from exc


def transcription_job_process(*, job_id: str, keep_on: tuple[type[BaseException], ...] = ()) -> AIJob | None:
    """Run a queued transcription. Claims the job first (`core.jobs`): None if another worker
    has it, or it is finished or gone.

    Errors of the types in `keep_on` (transient ones the task retries) give the job back to the
    queue, its reservation and upload in place, and propagate; any other error fails the job and
    refunds it."""
    # A job left processing by a worker that died is claimable again once its heartbeat is stale
    # (the broker redelivers the task: acks_late), while it has attempts left: an upload that
    # kills its worker every time must not loop forever.
    claim = job_claim(kind=AI_JOBS, job_id=job_id)
    if claim.job is None:
        if claim.reason == "deleted":
            logger.error(
                "AI job %s is not in this worker's database (instance %s): deleted since it was queued, or "
                "sent by an instance of another database sharing this broker, whose reaper will send it again",
                job_id,
                Path(settings.INSTANCE_DIR).name,
            )
        elif claim.reason == "attempts exhausted":  # failed and refunded by the claim
            ai_job_given_up(job_id=job_id)
        return None
    job = claim.job
    call = ai_job_resume(job=job, token=claim.token)
    try:
        provider = transcriber()
        suffix = Path(job.input_file.name or "").suffix
        with (
            _TranscriptionHeartbeat(job_id=job.id, token=claim.token),
            tempfile.NamedTemporaryFile(prefix="ai-job-", suffix=suffix) as handle,
        ):
            with job.input_file.open("rb") as source:
                shutil.copyfileobj(source, handle)
            handle.flush()
            result = provider.transcribe(
                path=Path(handle.name),
                filename=job.input.get("filename") or f"audio{suffix}",
                model=job.model,
                language=job.input.get("language") or None,
                prompt=job.input.get("prompt") or None,
            )
    except keep_on:
        job_release(kind=AI_JOBS, job_id=job.id, token=claim.token)
        raise
    except BaseException as exc:
        ai_job_fail(call, exc)
        pending_file_delete(job)
        raise
    duration = float(job.input.get("duration") or 0.0)
    job = ai_job_succeed(
        call, output=_transcription_output(result, duration=duration), usage={"audio_seconds": duration}
    )
    pending_file_delete(job)
    return job


class _TranscriptionHeartbeat:
    """Beats for the claimed job while its transcription (one provider call, no progress to
    report) runs, so a job whose worker was killed is told from a long one within
    AI_JOB_HEARTBEAT_STALE_SECONDS. The beat is conditional on the claim token: a run that was
    presumed lost and taken over stops beating."""

    def __init__(self, *, job_id: uuid.UUID, token: str) -> None:
        self.job_id = job_id
        self.token = token
        self.every = max(AI_JOBS.stale_seconds / 4, 0.2)
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"ai-heartbeat-{job_id}", daemon=True)

    def __enter__(self) -> _TranscriptionHeartbeat:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.thread.join()

    def _run(self) -> None:
        try:
            while not self.stopped.wait(self.every):
                try:
                    if not job_heartbeat(kind=AI_JOBS, job_id=self.job_id, token=self.token):
                        return  # stopped by staff or taken over: its result will not be kept
                except DatabaseError as exc:  # a missed beat is retried; the claim decides anyway
                    logger.warning("Heartbeat of AI job %s not written: %s", self.job_id, exc)
        finally:
            connections.close_all()


def transcription_job_fail(*, job_id: str, error: BaseException) -> None:
    """Mark a queued job failed when its task could not run it (refunds its quota)."""
    ai_job_stop(job_id=job_id, error=error)

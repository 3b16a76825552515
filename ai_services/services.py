"""AI services: chat with memory (plain and streamed), speech both ways, image analysis,
embeddings, and the job record every provider call leaves behind.

Every call follows one path: validate, reserve quota (`quota_reserve`, 429 when it does not fit),
record an `AIJob` as processing, call the provider, then settle the reservation and complete the
job, or refund the reservation and record the job as failed before the error goes to the client.
"""

from __future__ import annotations

import io
import json
import logging
import queue
import shutil
import tempfile
import threading
import time
import uuid
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.core.serializers.json import DjangoJSONEncoder
from django.db import DatabaseError, connections, transaction
from django.db.models import F, Q
from django.utils import timezone

from ai_services import tokens as token_counter
from ai_services.concurrency import ai_call_slot_take
from ai_services.models import AIJob, Conversation, Message
from ai_services.providers import ChatResult, EmbedResult, PreparedImage, Usage, get_provider
from ai_services.providers.base import AUDIO_FORMATS
from ai_services.query_embeddings import query_embedding_get, query_embedding_put
from ai_services.selectors import conversation_get
from core.api.casing import camelize
from core.api.outages import BROKER_ERRORS
from core.exceptions import (
    ApplicationError,
    InvalidInput,
    InvalidUpload,
    ProviderError,
    QueueUnavailable,
    UnsupportedMediaType,
    UploadTooLarge,
)
from core.scanning import upload_scan
from quotas import pricing
from quotas.models import Reservation
from quotas.services import quota_reserve, reservation_refund, reservation_settle

logger = logging.getLogger(__name__)

JOB_RESERVATION_TYPE = "ai_job"
SUMMARY_CHARS = 500
TITLE_CHARS = 60
ACCEPTED_AUDIO_FORMATS = {"wav": "wav", "mp3": "mp3", "m4a": "m4a", "mp4": "m4a", "ogg": "ogg"}
ACCEPTED_IMAGE_FORMATS = {"JPEG", "PNG", "GIF", "WEBP"}
DEFAULT_VISION_PROMPT = "Describe this image in detail."
STREAM_KEEPALIVE_SECONDS = 15.0
# EXIF tags worth telling about a photo (never its GPS position).
_EXIF_TAGS = {271: "cameraMake", 272: "cameraModel", 306: "dateTime"}
_EXIF_SUB_TAGS = {36867: "dateTaken"}


def _summary(text: str) -> str:
    return text if len(text) <= SUMMARY_CHARS else text[: SUMMARY_CHARS - 1] + "…"


_METRIC_STATUS = {
    "provider_timeout": "timeout",
    "provider_unavailable": "unavailable",
    "provider_not_configured": "unavailable",
    "provider_error": "provider_error",
}


def _record_metric(job: AIJob) -> None:
    from core.metrics import record_ai_call

    status = "ok" if job.status == AIJob.Status.COMPLETED else _METRIC_STATUS.get(job.error_code, "error")
    record_ai_call(kind=job.type, provider=job.provider, status=status, tokens=job.tokens_used)


# --- Jobs ------------------------------------------------------------------------------------


@dataclass
class _Call:
    """A job in flight with the quota reservation that pays for it."""

    job: AIJob
    reservation: Reservation
    started: float


def _job_begin(
    *,
    user,
    job_type: str,
    units: int,
    provider: str,
    model: str,
    summary: dict[str, Any],
    conversation: Conversation | None = None,
    status: str = AIJob.Status.PROCESSING,
) -> _Call:
    job_id = uuid.uuid4()
    with transaction.atomic():
        if status == AIJob.Status.PROCESSING:  # a call that runs in this request holds a web thread
            ai_call_slot_take(user=user)
        reservation = quota_reserve(
            user=user, service=job_type, units=units, job_type=JOB_RESERVATION_TYPE, job_id=str(job_id)
        )
        # In the same transaction: a job that cannot be created takes its reservation with it.
        job = AIJob.objects.create(
            id=job_id,
            user=user,
            type=job_type,
            status=status,
            provider=provider,
            model=model,
            input=summary,
            units_charged=units,
            conversation=conversation,
            reservation_id=reservation.pk,
            started_at=timezone.now() if status == AIJob.Status.PROCESSING else None,
        )
    return _Call(job=job, reservation=reservation, started=time.perf_counter())


def _job_succeed(
    call: _Call,
    *,
    output: dict[str, Any],
    tokens: int = 0,
    units: int | None = None,
    usage: dict[str, Any] | None = None,
    **fields: Any,
) -> AIJob:
    elapsed_ms = int((time.perf_counter() - call.started) * 1000)
    settled = reservation_settle(
        reservation=call.reservation,
        units=units,
        usage={"tokens": max(int(tokens), 0), "processing_ms": elapsed_ms, **(usage or {})},
    )
    job = call.job
    job.status = AIJob.Status.COMPLETED
    job.output = output
    job.tokens_used = max(int(tokens), 0)
    # A job given up for lost (and refunded) that finishes after all is delivered, free.
    job.units_charged = settled.units if settled.status == Reservation.Status.SETTLED else 0
    job.processing_time_ms = elapsed_ms
    job.completed_at = timezone.now()
    job.error = ""
    job.error_code = ""
    for name, value in fields.items():
        setattr(job, name, value)
    job.save()
    _record_metric(job)
    return job


def _job_fail(call: _Call, error: BaseException) -> AIJob:
    """Refund and record the failure; the caller re-raises `error`."""
    reservation_refund(reservation=call.reservation)
    job = call.job
    if isinstance(error, ApplicationError):
        job.error, job.error_code = error.message, error.code
    else:
        logger.error("AI job %s failed unexpectedly", job.id, exc_info=error)
        job.error, job.error_code = "Internal error.", "server_error"
    job.status = AIJob.Status.FAILED
    job.units_charged = 0
    job.processing_time_ms = int((time.perf_counter() - call.started) * 1000)
    job.completed_at = timezone.now()
    job.save()
    _record_metric(job)
    return job


@contextmanager
def _failures_recorded(call: _Call) -> Iterator[None]:
    try:
        yield
    except BaseException as exc:
        _job_fail(call, exc)
        raise


# --- Chat ------------------------------------------------------------------------------------


@dataclass
class ChatPlan:
    """Everything decided before the provider is called."""

    user: Any
    conversation: Conversation | None  # None: a new conversation, created when the answer is in
    conversation_id: uuid.UUID
    system_prompt: str
    message: str
    message_tokens: int
    messages: list[dict[str, str]]  # what goes to the provider
    history_count: int
    model: str
    temperature: float | None
    max_tokens: int


@dataclass
class ChatOutcome:
    conversation: Conversation
    user_message: Message
    message: Message
    model: str
    usage: Usage
    job: AIJob


def chat_history_select(*, conversation: Conversation | None, budget: int) -> list[Message]:
    """The newest messages of `conversation` that fit in `budget` tokens, oldest first.

    Stops at the first message that does not fit, so the history sent is always a contiguous,
    most recent part of the conversation."""
    if conversation is None or budget <= 0:
        return []
    kept: list[Message] = []
    used = 0
    for message in conversation.messages.order_by("-position").iterator(chunk_size=200):
        if used + message.tokens > budget:
            break
        kept.append(message)
        used += message.tokens
    kept.reverse()
    return kept


def chat_plan(
    *,
    user,
    message: str,
    conversation_id: uuid.UUID | None = None,
    model: str | None = None,
    system_prompt: str | None = None,
    temperature: float | None = None,
    max_tokens: int | None = None,
) -> ChatPlan:
    provider = get_provider("chat")
    resolved_model = provider.resolve_model("chat", model)
    conversation = conversation_get(user=user, conversation_id=conversation_id) if conversation_id else None
    if system_prompt is None or not system_prompt.strip():
        system_prompt = (conversation.system_prompt if conversation else "") or settings.AI_CHAT_DEFAULT_SYSTEM_PROMPT
    system_prompt = system_prompt.strip()

    message_tokens = token_counter.count_message_tokens(message)
    system_tokens = token_counter.count_message_tokens(system_prompt)
    budget = settings.AI_CHAT_HISTORY_TOKENS - system_tokens - message_tokens - token_counter.REPLY_PRIMING_TOKENS
    history = chat_history_select(conversation=conversation, budget=budget)
    messages = [{"role": "system", "content": system_prompt}]
    messages += [{"role": item.role, "content": item.content} for item in history]
    messages.append({"role": "user", "content": message})
    return ChatPlan(
        user=user,
        conversation=conversation,
        conversation_id=conversation.id if conversation else uuid.uuid4(),
        system_prompt=system_prompt,
        message=message,
        message_tokens=message_tokens,
        messages=messages,
        history_count=len(history),
        model=resolved_model,
        temperature=temperature,
        max_tokens=max_tokens or settings.AI_CHAT_DEFAULT_MAX_TOKENS,
    )


def _chat_begin(plan: ChatPlan, *, stream: bool) -> _Call:
    return _job_begin(
        user=plan.user,
        job_type=AIJob.Type.CHAT,
        units=pricing.units_for_chat(),
        provider=get_provider("chat").name,
        model=plan.model,
        conversation=plan.conversation,
        summary={
            "message": _summary(plan.message),
            "message_chars": len(plan.message),
            "conversation_id": str(plan.conversation_id),
            "new_conversation": plan.conversation is None,
            "history_messages": plan.history_count,
            "stream": stream,
        },
    )


def _chat_store(plan: ChatPlan, call: _Call, result: ChatResult) -> ChatOutcome:
    """Store the exchange in the conversation and complete the job (the answer is in)."""
    estimated = result.usage is None
    usage = result.usage or Usage(
        prompt_tokens=token_counter.count_prompt_tokens(plan.messages),
        completion_tokens=token_counter.count_tokens(result.content),
    )
    with transaction.atomic():
        conversation = plan.conversation
        if conversation is None:
            conversation = Conversation.objects.create(
                id=plan.conversation_id,
                user=plan.user,
                title=_title_from(plan.message),
                model=result.model,
                system_prompt=plan.system_prompt,
            )
        # Positions are taken with one conditional UPDATE, so concurrent messages in one
        # conversation never collide.
        Conversation.objects.filter(pk=conversation.pk).update(
            message_count=F("message_count") + 2,
            model=result.model,
            system_prompt=plan.system_prompt,
            updated_at=timezone.now(),
        )
        conversation.refresh_from_db()
        user_message = Message.objects.create(
            conversation=conversation,
            role=Message.Role.USER,
            content=plan.message,
            tokens=plan.message_tokens,
            position=conversation.message_count - 1,
        )
        answer = Message.objects.create(
            conversation=conversation,
            role=Message.Role.ASSISTANT,
            content=result.content,
            tokens=token_counter.count_message_tokens(result.content),
            position=conversation.message_count,
        )
        job = _job_succeed(
            call,
            output={
                "response": _summary(result.content),
                "response_chars": len(result.content),
                "message_id": str(answer.id),
                "finish_reason": result.finish_reason or "",
                "usage_estimated": estimated,
            },
            tokens=usage.total_tokens,
            conversation=conversation,
            model=result.model,
        )
    return ChatOutcome(
        conversation=conversation, user_message=user_message, message=answer, model=result.model, usage=usage, job=job
    )


def _title_from(message: str) -> str:
    line = " ".join(message.split())
    return line if len(line) <= TITLE_CHARS else line[: TITLE_CHARS - 1].rstrip() + "…"


def chat_send(*, plan: ChatPlan) -> ChatOutcome:
    """Ask the provider and store the exchange; billed only when an answer comes back."""
    call = _chat_begin(plan, stream=False)
    with _failures_recorded(call):
        result = get_provider("chat").chat(
            messages=plan.messages, model=plan.model, temperature=plan.temperature, max_tokens=plan.max_tokens
        )
        return _chat_store(plan, call, result)


def chat_outcome_data(outcome: ChatOutcome) -> dict[str, Any]:
    """The response body of a chat answer (also the final event of a stream), snake_case."""
    return {
        "conversation_id": str(outcome.conversation.id),
        "message": {
            "id": str(outcome.message.id),
            "role": outcome.message.role,
            "content": outcome.message.content,
            "created_at": outcome.message.created_at,
        },
        "model": outcome.model,
        "usage": {
            "prompt_tokens": outcome.usage.prompt_tokens,
            "completion_tokens": outcome.usage.completion_tokens,
            "total_tokens": outcome.usage.total_tokens,
        },
        "job_id": str(outcome.job.id),
    }


def _sse(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(camelize(data), cls=DjangoJSONEncoder)}\n\n"


def chat_stream(*, plan: ChatPlan) -> Iterator[str]:
    """Start a streamed answer and return the Server-Sent Events to send.

    The provider request is made here, so a refusal is still an ordinary error response. The
    answer is then read by a background thread that stores and bills it whatever happens to the
    client: if the app disconnects mid-stream, the generation still completes and is in the
    conversation when the app comes back.
    """
    call = _chat_begin(plan, stream=True)
    with _failures_recorded(call):
        chunks = get_provider("chat").chat_stream(
            messages=plan.messages, model=plan.model, temperature=plan.temperature, max_tokens=plan.max_tokens
        )
    events: queue.Queue[str | None] = queue.Queue()
    worker = threading.Thread(
        target=_chat_stream_worker, args=(plan, call, chunks, events), name=f"chat-stream-{call.job.id}", daemon=True
    )
    worker.start()
    return _chat_stream_events(plan, call, events)


def _chat_stream_worker(plan: ChatPlan, call: _Call, chunks: Iterator, events: queue.Queue) -> None:
    parts: list[str] = []
    usage: Usage | None = None
    finish_reason: str | None = None
    model = plan.model
    try:
        for chunk in chunks:
            if chunk.delta:
                parts.append(chunk.delta)
                events.put(_sse("delta", {"content": chunk.delta}))
            usage = chunk.usage or usage
            finish_reason = chunk.finish_reason or finish_reason
            model = chunk.model or model
        outcome = _chat_store(
            plan, call, ChatResult(content="".join(parts), model=model, usage=usage, finish_reason=finish_reason)
        )
        events.put(_sse("done", chat_outcome_data(outcome)))
    except BaseException as exc:
        try:
            _job_fail(call, exc)
        except Exception:
            logger.exception("Could not record the failure of chat job %s", call.job.id)
        error = exc if isinstance(exc, ApplicationError) else ProviderError("The answer could not be completed.")
        events.put(
            _sse("error", {"success": False, "message": error.message, "code": error.code, "job_id": str(call.job.id)})
        )
    finally:
        events.put(None)
        # This thread's database connections are its own: close them, they are not reused.
        connections.close_all()


def _chat_stream_events(plan: ChatPlan, call: _Call, events: queue.Queue) -> Iterator[str]:
    yield _sse(
        "start",
        {"conversation_id": str(plan.conversation_id), "job_id": str(call.job.id), "model": plan.model},
    )
    while True:
        try:
            event = events.get(timeout=STREAM_KEEPALIVE_SECONDS)
        except queue.Empty:
            yield ": keep-alive\n\n"  # an SSE comment keeps proxies from closing an idle stream
            continue
        if event is None:
            return
        yield event


def conversation_update(*, conversation: Conversation, title: str) -> Conversation:
    conversation.title = title.strip()
    conversation.save(update_fields=["title", "updated_at"])
    return conversation


def conversation_delete(*, conversation: Conversation) -> None:
    # Its jobs stay in the history (their conversation link is cleared by SET_NULL).
    conversation.delete()


# --- Speech-to-text --------------------------------------------------------------------------


@dataclass
class AudioInfo:
    path: Path
    filename: str
    format: str
    duration: float


@contextmanager
def _upload_on_disk(upload: UploadedFile) -> Iterator[Path]:
    """A filesystem path holding the upload (large uploads already are in a temporary file)."""
    if hasattr(upload, "temporary_file_path"):
        yield Path(upload.temporary_file_path())
        return
    with tempfile.NamedTemporaryFile(prefix="ai-upload-", dir=settings.FILE_UPLOAD_TEMP_DIR) as handle:
        upload.seek(0)
        for chunk in upload.chunks():
            handle.write(chunk)
        handle.flush()
        yield Path(handle.name)


def audio_probe(*, path: Path, filename: str) -> AudioInfo:
    """Check an audio file by its content: WAV, MP3, M4A or OGG, at most the configured duration."""
    from ai_services.providers.local import audio

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
    if upload.size > settings.AI_AUDIO_MAX_BYTES:
        raise UploadTooLarge(f"The audio file is larger than {settings.AI_AUDIO_MAX_BYTES // (1024 * 1024)} MB.")
    upload_scan(upload, kind="audio", field="audio")


def _transcription_output(result, *, duration: float) -> dict[str, Any]:
    return {
        "text": result.text,
        "language": result.language,
        "duration": round(result.duration or duration, 3),
        "segments": result.segments,
    }


def speech_transcribe(
    *, user, upload: UploadedFile, language: str | None = None, prompt: str | None = None, run_async: bool = False
) -> AIJob:
    """Transcribe an upload now (the job comes back completed) or queue it (pending).

    Quota is reserved by started minute of the probed duration, before the provider is called."""
    _audio_upload_check(upload)
    provider = get_provider("transcribe")
    model = provider.default_model("transcribe")
    filename = Path(upload.name or "audio").name[:100]
    with _upload_on_disk(upload) as path:
        info = audio_probe(path=path, filename=filename)
        summary = {
            "filename": filename,
            "bytes": upload.size,
            "format": info.format,
            "duration": round(info.duration, 3),
            "language": language or "",
            "prompt": _summary(prompt or ""),
        }
        units = pricing.units_for_speech(audio_seconds=info.duration)
        if run_async:
            return _speech_queue(user=user, path=path, info=info, units=units, model=model, summary=summary)
        call = _job_begin(
            user=user, job_type=AIJob.Type.WHISPER, units=units, provider=provider.name, model=model, summary=summary
        )
        with _failures_recorded(call):
            result = provider.transcribe(path=path, filename=filename, model=model, language=language, prompt=prompt)
            return _job_succeed(
                call,
                output=_transcription_output(result, duration=info.duration),
                units=units,
                usage={"audio_seconds": info.duration},
            )


def _speech_queue(*, user, path: Path, info: AudioInfo, units: int, model: str, summary: dict) -> AIJob:
    call = _job_begin(
        user=user,
        job_type=AIJob.Type.WHISPER,
        units=units,
        provider=get_provider("transcribe").name,
        model=model,
        summary={**summary, "async": True},
        status=AIJob.Status.PENDING,
    )
    with _failures_recorded(call), path.open("rb") as handle:
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
    """Run a queued transcription. Claims the job first: None if another worker has it.

    Errors of the types in `keep_on` (transient ones the task retries) leave the reservation and
    the upload in place and propagate; any other error fails the job and refunds it."""
    now = timezone.now()
    # A job left processing by a worker that died is claimable again once it is stale (the broker
    # redelivers the task: acks_late), while it has attempts left: an upload that kills its
    # worker every time must not loop forever.
    stale = _transcription_lost(now) & Q(attempts__lt=settings.AI_JOB_MAX_ATTEMPTS)
    claimed = (
        AIJob.objects.filter(Q(status=AIJob.Status.PENDING) | stale, id=job_id)
        .exclude(input_file="")
        .update(status=AIJob.Status.PROCESSING, started_at=now, updated_at=now, attempts=F("attempts") + 1)
    )
    if not claimed:
        if not AIJob.objects.filter(id=job_id).exists():
            logger.error(
                "AI job %s is not in this worker's database (instance %s): deleted since it was queued, or "
                "sent by an instance of another database sharing this broker, whose reaper will send it again",
                job_id,
                Path(settings.INSTANCE_DIR).name,
            )
        return None
    job = AIJob.objects.get(id=job_id)
    call = _Call(job=job, reservation=Reservation.objects.get(pk=job.reservation_id), started=time.perf_counter())
    try:
        provider = get_provider("transcribe")
        suffix = Path(job.input_file.name).suffix
        with (
            _TranscriptionHeartbeat(job_id=job.id, attempts=job.attempts),
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
        raise
    except BaseException as exc:
        _job_fail(call, exc)
        _pending_file_delete(job)
        raise
    duration = float(job.input.get("duration") or 0.0)
    job = _job_succeed(call, output=_transcription_output(result, duration=duration), usage={"audio_seconds": duration})
    _pending_file_delete(job)
    return job


class _TranscriptionHeartbeat:
    """Bumps the claimed job's `updated_at` while its transcription runs, so a job whose worker
    was killed is told from a long one within AI_JOB_HEARTBEAT_STALE_SECONDS, not after the
    AI_JOB_STALE_SECONDS ceiling. Conditional on the claim (status and attempt): a run that was
    presumed lost and taken over stops beating."""

    def __init__(self, *, job_id: uuid.UUID, attempts: int) -> None:
        self.job_id = job_id
        self.attempts = attempts
        self.every = max(settings.AI_JOB_HEARTBEAT_STALE_SECONDS / 4, 0.2)
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
                    AIJob.objects.filter(id=self.job_id, status=AIJob.Status.PROCESSING, attempts=self.attempts).update(
                        updated_at=timezone.now()
                    )
                except DatabaseError as exc:  # a missed beat is retried; the claim decides anyway
                    logger.warning("Heartbeat of AI job %s not written: %s", self.job_id, exc)
        finally:
            connections.close_all()


def transcription_job_fail(*, job_id: str, error: BaseException) -> None:
    """Mark a queued job failed when its task could not run it (refunds its quota)."""
    job = AIJob.objects.filter(id=job_id).exclude(status__in=[AIJob.Status.COMPLETED, AIJob.Status.FAILED]).first()
    if job is None:
        return
    reservation = Reservation.objects.get(pk=job.reservation_id)
    _job_fail(_Call(job=job, reservation=reservation, started=time.perf_counter()), error)
    _pending_file_delete(job)


def _pending_file_delete(job: AIJob) -> None:
    if job.input_file:
        name = job.input_file.name
        default_storage.delete(name)
        AIJob.objects.filter(pk=job.pk).update(input_file="")
        job.input_file.name = ""


# --- Jobs nothing will finish ----------------------------------------------------------------

UNFINISHED = (AIJob.Status.PENDING, AIJob.Status.PROCESSING)


def _stale_before(now: datetime) -> datetime:
    return now - timedelta(seconds=settings.AI_JOB_STALE_SECONDS)


def _transcription_lost(now: datetime) -> Q:
    """Queued transcriptions whose worker is gone: no heartbeat for the heartbeat window, or
    running past the overall ceiling."""
    return (
        Q(status=AIJob.Status.PROCESSING)
        & ~Q(input_file="")
        & (
            Q(updated_at__lt=now - timedelta(seconds=settings.AI_JOB_HEARTBEAT_STALE_SECONDS))
            | Q(started_at__lt=_stale_before(now))
        )
    )


def ai_job_abandon(*, job_id: uuid.UUID | str, reason: str) -> bool:
    """Fail an unfinished job and refund its quota: its web process or worker died, or staff
    stopped it. Conditional on the status, so a job that finished meanwhile keeps its result;
    False if there was nothing to stop."""
    now = timezone.now()
    with transaction.atomic():
        stopped = AIJob.objects.filter(id=job_id, status__in=UNFINISHED).update(
            status=AIJob.Status.FAILED,
            error=reason,
            error_code="abandoned",
            units_charged=0,
            completed_at=now,
            updated_at=now,
        )
        if not stopped:
            return False
        job = AIJob.objects.get(id=job_id)
        reservation = Reservation.objects.filter(pk=job.reservation_id).first()
        if reservation is not None:
            reservation_refund(reservation=reservation)
    _pending_file_delete(job)
    _record_metric(job)
    return True


def ai_job_delete(*, job: AIJob) -> None:
    """Remove a job from the history; an unfinished one is stopped and refunded first (which also
    removes its queued upload: a finished job has none left)."""
    if job.status in UNFINISHED:
        ai_job_abandon(job_id=job.id, reason="Deleted by staff.")
    job.delete()


@dataclass
class AIReapReport:
    failed: list[str] = field(default_factory=list)
    requeued: list[str] = field(default_factory=list)
    resent: list[str] = field(default_factory=list)


def ai_jobs_reap(*, now: datetime | None = None) -> AIReapReport:
    """The periodic safety net for jobs nothing will finish.

    - `processing` since before the stale window: whatever ran it died (a web process killed
      during a stream, a worker killed during a transcription). A queued transcription with
      attempts left goes back to the queue; anything else is failed and refunded.
    - `pending` transcriptions untouched for the window: their task may have been lost (a broker
      outage); sent again. A duplicate is harmless: only one delivery can claim the job.
    """
    from ai_services.tasks import transcription_job_run

    now = now or timezone.now()
    stale_before = _stale_before(now)
    report = AIReapReport()
    stale = AIJob.objects.filter(
        Q(status=AIJob.Status.PROCESSING, input_file="", started_at__lt=stale_before) | _transcription_lost(now)
    )
    for job in stale.only("id", "attempts", "input_file", "started_at", "updated_at"):
        if job.input_file and job.attempts < settings.AI_JOB_MAX_ATTEMPTS:
            # Conditional on the start and heartbeat we saw: a worker that claimed it in the
            # meantime (or beat) keeps it, and of several reapers only one re-queues it.
            requeued = AIJob.objects.filter(
                id=job.id, status=AIJob.Status.PROCESSING, started_at=job.started_at, updated_at=job.updated_at
            )
            if requeued.update(status=AIJob.Status.PENDING, updated_at=now):
                _transcription_resend(transcription_job_run, job.id)
                report.requeued.append(str(job.id))
        elif ai_job_abandon(job_id=job.id, reason="The job was interrupted and not charged; please try again."):
            report.failed.append(str(job.id))
    waiting = AIJob.objects.filter(status=AIJob.Status.PENDING, updated_at__lt=stale_before).exclude(input_file="")
    for job in waiting.only("id", "updated_at"):
        if AIJob.objects.filter(id=job.id, updated_at=job.updated_at).update(updated_at=now):
            _transcription_resend(transcription_job_run, job.id)
            report.resent.append(str(job.id))
    if report.failed or report.requeued or report.resent:
        logger.warning("AI reaper: failed %s, requeued %s, resent %s", report.failed, report.requeued, report.resent)
    return report


def _transcription_resend(task: Any, job_id: uuid.UUID) -> None:
    # With the broker down the job stays pending and is sent again after the stale window.
    try:
        task.delay(str(job_id))
    except BROKER_ERRORS as exc:
        logger.warning("Could not re-send transcription %s: %s", job_id, exc)


def ai_files_delete_for_user(*, user) -> None:
    """Account-deletion clean-up (settings.ACCOUNT_DELETION_CLEANUPS): uploads still waiting in
    the queue. The rows go by cascade; the files are removed once the deletion commits."""
    names = list(AIJob.objects.filter(user=user).exclude(input_file="").values_list("input_file", flat=True))
    if names:
        transaction.on_commit(lambda: [default_storage.delete(name) for name in names])


# --- Text-to-speech --------------------------------------------------------------------------


@dataclass
class SpeechOutcome:
    audio: bytes
    content_type: str
    format: str
    job: AIJob


def speech_synthesize(*, user, text: str, voice: str, fmt: str, speed: float) -> SpeechOutcome:
    provider = get_provider("speak")
    voices = provider.voices()
    if voice not in voices:
        raise InvalidInput(
            f"Unknown voice '{voice}'. Available: {', '.join(voices)}.",
            errors={"voice": [f"Must be one of: {', '.join(voices)}."]},
        )
    if fmt not in AUDIO_FORMATS:
        raise InvalidInput(
            f"Unknown format '{fmt}'.", errors={"format": [f"Must be one of: {', '.join(AUDIO_FORMATS)}."]}
        )
    model = provider.default_model("speak")
    call = _job_begin(
        user=user,
        job_type=AIJob.Type.TTS,
        units=pricing.units_for_tts(characters=len(text)),
        provider=provider.name,
        model=model,
        summary={"text": _summary(text), "characters": len(text), "voice": voice, "format": fmt, "speed": speed},
    )
    with _failures_recorded(call):
        result = provider.speak(text=text, model=model, voice=voice, fmt=fmt, speed=speed)
        job = _job_succeed(
            call,
            output={
                "bytes": len(result.audio),
                "format": fmt,
                "content_type": result.content_type,
                "duration": result.duration,
            },
            usage={"characters": len(text)},
        )
    return SpeechOutcome(audio=result.audio, content_type=result.content_type, format=fmt, job=job)


# --- Vision ----------------------------------------------------------------------------------


def image_prepare(*, upload: UploadedFile) -> PreparedImage:
    """Validate an image by its content, downscale it (longest side at most AI_IMAGE_MAX_SIDE)
    and re-encode it without its metadata, which is what a provider gets to see.

    The pixel count is checked from the header before anything is decoded (AI_IMAGE_MAX_PIXELS,
    far below Pillow's own 89 MP bomb threshold), and a JPEG is decoded at the smallest DCT
    scale (1/2, 1/4, 1/8) that still covers the longest side sent on, so a 24 MP photo costs a
    quarter of its full-size memory or less."""
    from PIL import Image, UnidentifiedImageError

    if upload.size > settings.AI_IMAGE_MAX_BYTES:
        raise UploadTooLarge(f"The image is larger than {settings.AI_IMAGE_MAX_BYTES // (1024 * 1024)} MB.")
    upload_scan(upload, kind="image", field="image")
    upload.seek(0)
    raw = upload.read()
    limit = settings.AI_IMAGE_MAX_SIDE
    try:
        with warnings.catch_warnings():
            # A decompression bomb is refused, not decoded.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            picture = Image.open(io.BytesIO(raw), formats=sorted(ACCEPTED_IMAGE_FORMATS))
            source_format = picture.format or ""
            source_size = picture.size
            _check_pixels(*source_size)
            exif = _exif_summary(picture)
            picture.draft("RGB", _draft_size(source_size, limit))
            picture.seek(0)
            picture.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _too_many_pixels() from None
    except UnidentifiedImageError:
        raise UnsupportedMediaType(
            "The file is not a JPEG, PNG, GIF or WebP image.", code="unsupported_image"
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError):
        raise InvalidUpload("The image is damaged or truncated.", code="invalid_image") from None
    return _image_reencode(
        picture, source_format=source_format, source_size=source_size, source_bytes=len(raw), exif=exif
    )


def _draft_size(size: tuple[int, int], limit: int) -> tuple[int, int]:
    """The size the image is shrunk to, with its own aspect ratio: draft() reduces only while
    both sides stay at least this large, so a square box would keep a landscape photo whole."""
    width, height = size
    ratio = min(1.0, limit / max(width, height, 1))
    return max(1, int(width * ratio)), max(1, int(height * ratio))


def _too_many_pixels(width: int | None = None, height: int | None = None) -> UploadTooLarge:
    cap = settings.AI_IMAGE_MAX_PIXELS
    size = f"The image is {width}x{height} pixels; " if width else "The image has too many pixels; "
    return UploadTooLarge(
        f"{size}images may have at most {cap:,} pixels.",
        code="image_too_large",
        errors={"image": ["Too many pixels."]},
    )


def _check_pixels(width: int, height: int) -> None:
    if width * height > settings.AI_IMAGE_MAX_PIXELS:
        raise _too_many_pixels(width, height)


def _image_reencode(
    picture, *, source_format: str, source_size: tuple[int, int], source_bytes: int, exif: dict[str, str]
) -> PreparedImage:
    from PIL import Image, ImageOps

    # The size before draft(): a JPEG decoded at 1/2 scale still reports what was uploaded.
    source_width, source_height = source_size
    picture = ImageOps.exif_transpose(picture)
    has_alpha = picture.mode in ("RGBA", "LA", "PA") or (picture.mode == "P" and "transparency" in picture.info)
    picture = picture.convert("RGBA" if has_alpha else "RGB")
    limit = settings.AI_IMAGE_MAX_SIDE
    if max(picture.size) > limit:
        picture.thumbnail((limit, limit), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    if has_alpha:
        picture.save(buffer, format="PNG", optimize=True)
        mime = "image/png"
    else:
        picture.save(buffer, format="JPEG", quality=88, optimize=True)
        mime = "image/jpeg"
    return PreparedImage(
        data=buffer.getvalue(),
        mime=mime,
        width=picture.width,
        height=picture.height,
        source_format=source_format.lower(),
        source_width=source_width,
        source_height=source_height,
        source_bytes=source_bytes,
        exif=exif,
    )


def _exif_summary(picture) -> dict[str, str]:
    try:
        exif = picture.getexif()
    except Exception:  # a broken EXIF block is no reason to refuse the picture
        return {}
    found = {name: exif.get(tag) for tag, name in _EXIF_TAGS.items()}
    try:
        sub = exif.get_ifd(0x8769)
        found.update({name: sub.get(tag) for tag, name in _EXIF_SUB_TAGS.items()})
    except Exception:
        logger.debug("Unreadable EXIF sub-IFD", exc_info=True)
    return {name: str(value).strip("\x00 ")[:100] for name, value in found.items() if value}


@dataclass
class VisionOutcome:
    analysis: str
    model: str
    usage: Usage
    details: dict[str, Any]
    job: AIJob


def image_analyze(*, user, upload: UploadedFile, prompt: str | None, detail: str) -> VisionOutcome:
    image = image_prepare(upload=upload)
    provider = get_provider("vision")
    model = provider.default_model("vision")
    prompt = (prompt or "").strip() or DEFAULT_VISION_PROMPT
    call = _job_begin(
        user=user,
        job_type=AIJob.Type.VISION,
        units=pricing.units_for_vision(),
        provider=provider.name,
        model=model,
        summary={
            "filename": Path(upload.name or "image").name[:100],
            "bytes": image.source_bytes,
            "format": image.source_format,
            "width": image.source_width,
            "height": image.source_height,
            "sent_width": image.width,
            "sent_height": image.height,
            "prompt": _summary(prompt),
            "detail": detail,
        },
    )
    with _failures_recorded(call):
        result = provider.analyze_image(image=image, prompt=prompt, detail=detail, model=model)
        usage = result.usage or Usage()
        job = _job_succeed(
            call,
            output={"analysis": _summary(result.analysis), "analysis_chars": len(result.analysis)},
            tokens=usage.total_tokens,
            model=result.model,
        )
    return VisionOutcome(analysis=result.analysis, model=result.model, usage=usage, details=result.details, job=job)


# --- Embeddings ------------------------------------------------------------------------------


def embedding_run(
    *, user, texts: Sequence[str], model: str | None = None, reuse_query: bool = False
) -> tuple[EmbedResult, AIJob]:
    """Embed `texts` for `user`: quota by started 1,000 tokens, recorded as an embedding job.

    The reservation uses an offline count (cl100k, exact for OpenAI's embedding models) and is
    settled to the tokens the provider reports. With `reuse_query` (a search's single query
    text), a recent embedding of the same text by the same provider and model is reused instead
    of calling the provider again; it is charged and recorded like any other."""
    if isinstance(texts, str):
        raise TypeError("embedding_run() takes a list of strings")
    provider = get_provider("embed")
    resolved = provider.resolve_model("embed", model)
    estimate = sum(token_counter.count_tokens_batch(list(texts)))
    call = _job_begin(
        user=user,
        job_type=AIJob.Type.EMBEDDING,
        units=pricing.units_for_embedding(tokens=estimate),
        provider=provider.name,
        model=resolved,
        summary={"texts": len(texts), "characters": sum(len(text) for text in texts), "estimated_tokens": estimate},
    )
    with _failures_recorded(call):
        cached = None
        if reuse_query and len(texts) == 1:
            cached = query_embedding_get(provider=provider.name, model=resolved, text=texts[0])
        if cached is not None:
            result = cached
        else:
            result = provider.embed(list(texts), model=resolved)
            if reuse_query and len(texts) == 1:
                query_embedding_put(provider=provider.name, model=resolved, text=texts[0], result=result)
        job = _job_succeed(
            call,
            output={"vectors": len(texts), "dimensions": result.dimensions, "reused": cached is not None},
            tokens=result.tokens,
            units=pricing.units_for_embedding(tokens=result.tokens or estimate),
            model=result.model,
        )
    return result, job

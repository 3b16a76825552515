"""A voice turn in one call: speech-to-text, chat with memory (grounded when asked), then
text-to-speech, each stage an AI job of its own; the spoken reply is kept for a while for its
owner to fetch.

The quota of all three stages is reserved up front, in one transaction (a turn that cannot be
paid for in full is refused before any work, with nothing charged): the transcription by the
audio's started minutes, the chat by its units (plus the query's embedding when grounded, from
the audio's length), the speech by the longest reply the chat may give (`AI_VOICE_MAX_TOKENS`),
settled to the reply's real length. The later stages' jobs wait as `pending` until their turn.
A stage that fails refunds its own reservation and those of the stages after it (recorded as
failed, "not run"), and the error names the stage.
"""

from __future__ import annotations

import shutil
import tempfile
import time
import uuid
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from ai_services.models import AIJob
from ai_services.providers import ChatResult, Usage
from ai_services.providers.base import AUDIO_FORMATS, AUDIO_MIME
from ai_services.providers.capabilities import chat_provider, speaker, transcriber
from ai_services.selectors import conversation_get
from ai_services.services.chat import ChatPlan, chat_ground, chat_plan, chat_store
from ai_services.services.grounding import GroundingRequest, RetrievedChunk
from ai_services.services.jobs import JobCall, ai_job_begin, ai_job_fail, ai_job_succeed, text_summary
from ai_services.services.speech import AudioInfo, audio_probe
from core.exceptions import ApplicationError, InvalidInput, InvalidUpload, NotFound, ProviderError, UploadTooLarge
from core.scanning import upload_scan
from quotas.modalities import CHAT, EMBED, SPEAK, TRANSCRIBE

STAGES = ("transcribe", "chat", "speak")
STAGE_LABELS = {"transcribe": "speech-to-text", "chat": "chat", "speak": "text-to-speech"}
VOICE_AUDIO_DIR = "ai/voice"
# A reply is spoken as read: about four characters per token of the chat's answer.
CHARACTERS_PER_TOKEN = 4
# Speech runs at about three words (four tokens) a second: the query's embedding is priced from it.
QUERY_TOKENS_PER_SECOND = 5


class VoiceStageFailed(ApplicationError):
    """One stage of a voice turn failed: the stage's own error, with the stage named."""

    def __init__(self, *, stage: str, error: BaseException) -> None:
        if not isinstance(error, ApplicationError):
            error = ProviderError("The request could not be completed.")
        self.status_code = error.status_code
        self.stage = stage
        super().__init__(
            f"The {STAGE_LABELS[stage]} stage failed: {error.message}",
            code=error.code,
            errors=error.errors,
            extra={**error.extra, "stage": stage},
            headers=error.headers,
        )


class StageNotRun(ApplicationError):
    code = "voice_stage_not_run"


@dataclass
class VoiceTurn:
    """A turn with its three stages reserved; filled in as the stages run."""

    user: User
    audio: AudioInfo
    voice: str
    format: str
    conversation_id: uuid.UUID | None
    grounding: GroundingRequest | None
    calls: dict[str, JobCall]
    transcript: str = ""
    plan: ChatPlan | None = None
    done: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class VoiceOutcome:
    transcript: str
    reply: str
    conversation_id: uuid.UUID
    citations: list[RetrievedChunk]
    audio_url: str
    audio_expires_at: datetime
    job_ids: dict[str, uuid.UUID]


# Events of the streamed form, in order: transcript, citations (grounded), deltas, audio (or failed).
@dataclass(frozen=True)
class VoiceTranscript:
    transcript: str
    conversation_id: uuid.UUID | None
    job_id: uuid.UUID


@dataclass(frozen=True)
class VoiceCitations:
    citations: list[RetrievedChunk]


@dataclass(frozen=True)
class VoiceDelta:
    content: str


@dataclass(frozen=True)
class VoiceAudio:
    outcome: VoiceOutcome


@dataclass(frozen=True)
class VoiceFailed:
    stage: str
    message: str
    code: str
    success: bool = False


VoiceEvent = VoiceTranscript | VoiceCitations | VoiceDelta | VoiceAudio | VoiceFailed


def voice_audio_url(*, job_id: uuid.UUID) -> str:
    return f"/api/ai/voice/audio/{job_id}"


def _upload_keep(upload: UploadedFile) -> Path:
    """The upload copied to a temporary file the turn owns (a streamed turn outlives the request's
    own upload handling); removed once transcribed."""
    if (upload.size or 0) > settings.AI_AUDIO_MAX_BYTES:
        raise UploadTooLarge(f"The audio file is larger than {settings.AI_AUDIO_MAX_BYTES // (1024 * 1024)} MB.")
    upload_scan(upload, kind="audio", field="audio")
    with tempfile.NamedTemporaryFile(prefix="ai-voice-", dir=settings.FILE_UPLOAD_TEMP_DIR, delete=False) as handle:
        upload.seek(0)
        shutil.copyfileobj(upload, handle)
        return Path(handle.name)


def voice_turn_begin(
    *,
    user: User,
    upload: UploadedFile,
    conversation_id: uuid.UUID | None = None,
    voice: str = "alloy",
    fmt: str = "mp3",
    grounding: GroundingRequest | None = None,
) -> VoiceTurn:
    """Check everything that can be checked before any work, then reserve the three stages."""
    if conversation_id is not None:
        conversation_get(user=user, conversation_id=conversation_id)  # 404 for someone else's
    voices = speaker().voices()
    if voice not in voices:
        raise InvalidInput(
            f"Unknown voice '{voice}'. Available: {', '.join(voices)}.",
            errors={"voice": [f"Must be one of: {', '.join(voices)}."]},
        )
    if fmt not in AUDIO_FORMATS:
        raise InvalidInput(
            f"Unknown format '{fmt}'.", errors={"format": [f"Must be one of: {', '.join(AUDIO_FORMATS)}."]}
        )
    chat = chat_provider()  # not configured: refused now, before anything is reserved
    path = _upload_keep(upload)
    try:
        info = audio_probe(path=path, filename=Path(upload.name or "audio").name[:100])
        calls = _voice_reserve(user=user, info=info, voice=voice, fmt=fmt, grounding=grounding, chat_name=chat.name)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return VoiceTurn(
        user=user,
        audio=info,
        voice=voice,
        format=fmt,
        conversation_id=conversation_id,
        grounding=grounding,
        calls=calls,
    )


def _voice_reserve(
    *, user: User, info: AudioInfo, voice: str, fmt: str, grounding: GroundingRequest | None, chat_name: str
) -> dict[str, JobCall]:
    reply_chars = min(settings.AI_VOICE_MAX_TOKENS * CHARACTERS_PER_TOKEN, settings.AI_TTS_MAX_CHARS)
    chat_units = CHAT.price()
    if grounding is not None:
        chat_units += EMBED.price(tokens=int(info.duration * QUERY_TOKENS_PER_SECOND) + 8)
    stt, spoken = transcriber(), speaker()
    turn_id = str(uuid.uuid4())
    common: dict[str, Any] = {"voice_turn": turn_id}
    # One transaction: if a later stage's units do not fit, the earlier reservations go too.
    with transaction.atomic():
        return {
            "transcribe": ai_job_begin(
                user=user,
                modality=TRANSCRIBE,
                units=TRANSCRIBE.price(audio_seconds=info.duration),
                provider=stt.name,
                model=stt.default_model(TRANSCRIBE.key),
                summary={**common, "filename": info.filename, "format": info.format, "duration": info.duration},
            ),
            "chat": ai_job_begin(
                user=user,
                modality=CHAT,
                units=chat_units,
                provider=chat_name,
                model=chat_provider().resolve_model(CHAT.key, None),
                summary={**common, "use_documents": grounding is not None},
                status=AIJob.Status.PENDING,
            ),
            "speak": ai_job_begin(
                user=user,
                modality=SPEAK,
                units=SPEAK.price(characters=reply_chars),
                provider=spoken.name,
                model=spoken.default_model(SPEAK.key),
                summary={**common, "voice": voice, "format": fmt},
                status=AIJob.Status.PENDING,
            ),
        }


def _stage_start(call: JobCall, **summary: Any) -> None:
    now = timezone.now()
    call.job.status, call.job.started_at = AIJob.Status.PROCESSING, now
    call.job.input = {**call.job.input, **summary}
    call.job.save(update_fields=["status", "started_at", "input", "updated_at"])
    call.started = time.perf_counter()


def _stages_fail(turn: VoiceTurn, *, stage: str, error: BaseException) -> VoiceStageFailed:
    """Fail `stage` with `error` and every later stage as not run: all refunded."""
    failed = VoiceStageFailed(stage=stage, error=error)
    for name in STAGES[STAGES.index(stage) :]:
        if name in turn.done:
            continue
        reason = error if name == stage else StageNotRun(f"Not run: the {STAGE_LABELS[stage]} stage failed.")
        ai_job_fail(turn.calls[name], reason)
        turn.done.add(name)
    turn.audio.path.unlink(missing_ok=True)
    return failed


def _transcribe(turn: VoiceTurn) -> str:
    call = turn.calls["transcribe"]
    provider = transcriber()
    try:
        result = provider.transcribe(
            path=turn.audio.path, filename=turn.audio.filename, model=call.job.model, language=None, prompt=None
        )
    finally:
        turn.audio.path.unlink(missing_ok=True)
    text = result.text.strip()
    if not text:
        raise InvalidUpload("No speech was heard in the audio.", code="no_speech")
    ai_job_succeed(
        call,
        output={
            "text": text,
            "language": result.language,
            "duration": round(result.duration or turn.audio.duration, 3),
        },
        usage={"audio_seconds": turn.audio.duration},
    )
    turn.done.add("transcribe")
    return text


def _chat_prepare(turn: VoiceTurn) -> ChatPlan:
    plan = chat_plan(
        user=turn.user,
        message=turn.transcript,
        conversation_id=turn.conversation_id,
        max_tokens=settings.AI_VOICE_MAX_TOKENS,
        grounding=turn.grounding,
    )
    _stage_start(
        turn.calls["chat"],
        message=text_summary(plan.message),
        conversation_id=str(plan.conversation_id),
        new_conversation=plan.conversation is None,
        history_messages=plan.history_count,
    )
    chat_ground(plan=plan)
    turn.plan = plan
    return plan


def _speak(turn: VoiceTurn, reply: str) -> tuple[str, datetime]:
    call = turn.calls["speak"]
    text = reply[: settings.AI_TTS_MAX_CHARS]
    _stage_start(call, text=text_summary(text), characters=len(text))
    result = speaker().speak(text=text, model=call.job.model, voice=turn.voice, fmt=turn.format, speed=1.0)
    name = default_storage.save(
        f"{VOICE_AUDIO_DIR}/{turn.user.pk}/{call.job.id}.{turn.format}", ContentFile(result.audio)
    )
    expires_at = timezone.now() + timedelta(seconds=settings.AI_VOICE_AUDIO_TTL_SECONDS)
    ai_job_succeed(
        call,
        output={
            "bytes": len(result.audio),
            "format": turn.format,
            "content_type": result.content_type,
            "duration": result.duration,
            "audio_file": name,
            "expires_at": expires_at.isoformat(),
        },
        units=SPEAK.price(characters=len(text)),
        usage={"characters": len(text)},
    )
    turn.done.add("speak")
    return voice_audio_url(job_id=call.job.id), expires_at


def voice_turn_events(*, turn: VoiceTurn, stream: bool) -> Iterator[VoiceEvent]:
    """The turn's events for the streamed form: a failed stage ends it with `VoiceFailed`."""
    try:
        yield from _voice_turn(turn, stream=stream)
    except VoiceStageFailed as failed:
        yield VoiceFailed(stage=failed.stage, message=failed.message, code=failed.code)


def voice_turn_run(*, turn: VoiceTurn) -> VoiceOutcome:
    """The whole turn at once: its outcome, or the failed stage's error (`VoiceStageFailed`)."""
    for event in _voice_turn(turn, stream=False):
        if isinstance(event, VoiceAudio):
            return event.outcome
    raise ProviderError("The voice turn ended without an answer.")  # every path above returns


def _voice_turn(turn: VoiceTurn, *, stream: bool) -> Iterator[VoiceEvent]:
    """Run the stages, yielding the events; a failure fails and refunds that stage and the later
    ones and raises `VoiceStageFailed`. A client that goes away mid-turn (the generator is closed)
    fails the stages not done yet, refunded too."""
    stage = "transcribe"
    try:
        turn.transcript = _transcribe(turn)
        yield VoiceTranscript(
            transcript=turn.transcript, conversation_id=turn.conversation_id, job_id=turn.calls["transcribe"].job.id
        )
        stage = "chat"
        plan = _chat_prepare(turn)
        if plan.grounded is not None:
            yield VoiceCitations(citations=plan.grounded.citations)
        result = yield from _chat_answer(plan, stream=stream)
        chat = chat_store(plan=plan, call=turn.calls["chat"], result=result)
        turn.done.add("chat")
        stage = "speak"
        audio_url, expires_at = _speak(turn, result.content)
    except GeneratorExit:
        _stages_fail(turn, stage=stage, error=StageNotRun("The client went away."))
        raise
    except Exception as exc:
        raise _stages_fail(turn, stage=stage, error=exc) from exc
    yield VoiceAudio(
        outcome=VoiceOutcome(
            transcript=turn.transcript,
            reply=chat.message.content,
            conversation_id=chat.conversation.id,
            citations=chat.citations,
            audio_url=audio_url,
            audio_expires_at=expires_at,
            job_ids={name: call.job.id for name, call in turn.calls.items()},
        )
    )


def _chat_answer(plan: ChatPlan, *, stream: bool) -> Generator[VoiceEvent, None, ChatResult]:
    # A generator returning the answer: `yield from` passes the deltas on and hands back the result.
    provider = chat_provider()
    if not stream:
        return provider.chat(
            messages=plan.messages, model=plan.model, temperature=plan.temperature, max_tokens=plan.max_tokens
        )
    parts: list[str] = []
    usage: Usage | None = None
    model, finish_reason = plan.model, None
    for chunk in provider.chat_stream(
        messages=plan.messages, model=plan.model, temperature=plan.temperature, max_tokens=plan.max_tokens
    ):
        if chunk.delta:
            parts.append(chunk.delta)
            yield VoiceDelta(content=chunk.delta)
        usage = chunk.usage or usage
        finish_reason = chunk.finish_reason or finish_reason
        model = chunk.model or model
    return ChatResult(content="".join(parts), model=model, usage=usage, finish_reason=finish_reason)


@dataclass(frozen=True)
class VoiceAudioFile:
    name: str
    content_type: str
    format: str


def voice_audio_get(*, user: User, job_id: uuid.UUID) -> VoiceAudioFile:
    """The spoken reply of the user's voice turn while it lasts; 404 for anyone else, or after."""
    job = AIJob.objects.filter(id=job_id, user_id=user.pk, type=SPEAK.value, status=AIJob.Status.COMPLETED).first()
    if job is None or "expires_at" not in job.output:
        raise NotFound("Audio not found.")
    name = job.output.get("audio_file")  # removed by the purge once expired
    expires_at = datetime.fromisoformat(job.output["expires_at"])
    if not name or expires_at <= timezone.now() or not default_storage.exists(name):
        if name:
            default_storage.delete(name)  # gone for good: the next purge need not find it
        raise NotFound("This audio has expired.")
    fmt = job.output.get("format", "mp3")
    return VoiceAudioFile(name=name, content_type=AUDIO_MIME.get(fmt, "application/octet-stream"), format=fmt)


def voice_audio_purge(*, now: datetime | None = None) -> int:
    """Delete the stored replies past their expiry (for a periodic task); returns how many."""
    now = now or timezone.now()
    removed = 0
    jobs = AIJob.objects.filter(type=SPEAK.value, output__has_key="audio_file").only("id", "output")
    for job in jobs.iterator(chunk_size=500):
        if datetime.fromisoformat(job.output["expires_at"]) <= now:
            default_storage.delete(job.output.pop("audio_file"))
            job.save(update_fields=["output", "updated_at"])
            removed += 1
    return removed


def voice_audio_delete_for_user(*, user: User) -> None:
    """Account-deletion clean-up (settings.ACCOUNT_DELETION_CLEANUPS): the stored spoken replies,
    removed once the deletion commits."""
    jobs = AIJob.objects.filter(user_id=user.pk, type=SPEAK.value, output__has_key="audio_file")
    names = [job.output["audio_file"] for job in jobs.only("output")]
    if names:
        transaction.on_commit(lambda: _files_delete(names))


def _files_delete(names: list[str]) -> None:
    for name in names:
        default_storage.delete(name)

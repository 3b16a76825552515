"""AI services, one module per concern: the billed job lifecycle and its reaper (`jobs`), chat
(`chat`) and its streamed form (`streaming`), speech-to-text and its queue (`speech`),
text-to-speech (`tts`), image analysis (`vision`) and embeddings (`embed`).

Every provider call follows one path (`jobs`): validate, reserve quota (429 when it does not
fit), record an `AIJob` as processing, call the provider, then settle the reservation and
complete the job, or refund the reservation and record the job as failed before the error goes
to the client. The public functions are re-exported here for callers.
"""

from ai_services.services.chat import (
    ChatOutcome,
    ChatPlan,
    chat_history_select,
    chat_plan,
    chat_send,
    conversation_delete,
    conversation_update,
)
from ai_services.services.embed import embedding_run
from ai_services.services.jobs import (
    UNFINISHED,
    ai_files_delete_for_user,
    ai_job_abandon,
    ai_job_delete,
    ai_jobs_reap,
)
from ai_services.services.speech import (
    AudioInfo,
    audio_probe,
    speech_transcribe,
    transcription_job_fail,
    transcription_job_process,
)
from ai_services.services.streaming import StreamEvent, chat_stream
from ai_services.services.tts import SpeechOutcome, speech_synthesize
from ai_services.services.vision import VisionOutcome, image_analyze, image_prepare

__all__ = [
    "UNFINISHED",
    "AudioInfo",
    "ChatOutcome",
    "ChatPlan",
    "SpeechOutcome",
    "StreamEvent",
    "VisionOutcome",
    "ai_files_delete_for_user",
    "ai_job_abandon",
    "ai_job_delete",
    "ai_jobs_reap",
    "audio_probe",
    "chat_history_select",
    "chat_plan",
    "chat_send",
    "chat_stream",
    "conversation_delete",
    "conversation_update",
    "embedding_run",
    "image_analyze",
    "image_prepare",
    "speech_synthesize",
    "speech_transcribe",
    "transcription_job_fail",
    "transcription_job_process",
]

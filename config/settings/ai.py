"""AI services: providers and models per modality, chat limits, upload limits, job reaping."""

from __future__ import annotations

from config.settings.base import VAR_DIR, env
from config.settings.celery import CELERY_BEAT_SCHEDULE
from quotas.modalities import MODALITIES, MODALITY_KEYS

# --- AI services -----------------------------------------------------------------------------
# Provider per modality: "openai" (the official SDK, against OpenAI or any OpenAI-compatible
# server at OPENAI_BASE_URL) or "local" (offline engines shipped in packages). The default is
# openai when OPENAI_API_KEY is set, else local; each modality can be overridden on its own.
OPENAI_API_KEY = env.str("OPENAI_API_KEY", default="")
OPENAI_BASE_URL = env.str("OPENAI_BASE_URL", default="")
OPENAI_ORGANIZATION = env.str("OPENAI_ORGANIZATION", default="")
OPENAI_TIMEOUT_SECONDS = env.float("OPENAI_TIMEOUT_SECONDS", default=60.0)
OPENAI_CONNECT_TIMEOUT_SECONDS = env.float("OPENAI_CONNECT_TIMEOUT_SECONDS", default=5.0)
# Retries (with exponential backoff, honouring Retry-After) on 408/409/429/5xx and connection errors.
OPENAI_MAX_RETRIES = env.int("OPENAI_MAX_RETRIES", default=2)
AI_PROVIDER = env.str("AI_PROVIDER", default="openai" if OPENAI_API_KEY else "local")
# One entry per modality of the modality table (which imports no Django model, so settings may
# read it): a new modality needs no edit here.
AI_PROVIDERS = {key: env.str(f"AI_{key.upper()}_PROVIDER", default=AI_PROVIDER) for key in MODALITY_KEYS}
# Models a client may ask for, per modality (first = default), for the openai provider. Point
# these at the names your OpenAI-compatible server knows (e.g. AI_CHAT_MODELS=llama3.2 for Ollama).
AI_MODELS = {
    modality.key: env.list(f"AI_{modality.key.upper()}_MODELS", default=list(modality.default_models))
    for modality in MODALITIES
}
# Conversation memory: the history sent with a new message is trimmed, newest first, to this
# many tokens (the system prompt and the new message always go).
AI_CHAT_HISTORY_TOKENS = env.int("AI_CHAT_HISTORY_TOKENS", default=3000)
AI_CHAT_DEFAULT_SYSTEM_PROMPT = env.str("AI_CHAT_DEFAULT_SYSTEM_PROMPT", default="You are a helpful assistant.")
AI_CHAT_MAX_MESSAGE_CHARS = env.int("AI_CHAT_MAX_MESSAGE_CHARS", default=32000)
AI_CHAT_DEFAULT_MAX_TOKENS = env.int("AI_CHAT_DEFAULT_MAX_TOKENS", default=1024)
AI_CHAT_MAX_TOKENS_LIMIT = env.int("AI_CHAT_MAX_TOKENS_LIMIT", default=4096)
# Answers from the user's documents (`useDocuments`): at most this many of their closest chunks,
# those scoring at least the minimum cosine similarity, within this many tokens of the prompt
# (taken from the conversation memory's budget).
AI_GROUNDING_MAX_CHUNKS = env.int("AI_GROUNDING_MAX_CHUNKS", default=8)
AI_GROUNDING_MIN_SCORE = env.float("AI_GROUNDING_MIN_SCORE", default=0.3)
AI_GROUNDING_CONTEXT_TOKENS = env.int("AI_GROUNDING_CONTEXT_TOKENS", default=1500)
# Voice turns (`POST /api/ai/voice`): the spoken reply is at most this many tokens (its speech is
# reserved up front at four characters a token), and its audio can be fetched for this long.
AI_VOICE_MAX_TOKENS = env.int("AI_VOICE_MAX_TOKENS", default=300)
AI_VOICE_AUDIO_TTL_SECONDS = env.int("AI_VOICE_AUDIO_TTL_SECONDS", default=60 * 60)
# Uploads (the seed's file table).
AI_AUDIO_MAX_BYTES = env.int("AI_AUDIO_MAX_BYTES", default=25 * 1024 * 1024)
AI_AUDIO_MAX_SECONDS = env.int("AI_AUDIO_MAX_SECONDS", default=10 * 60)
AI_IMAGE_MAX_BYTES = env.int("AI_IMAGE_MAX_BYTES", default=5 * 1024 * 1024)
AI_IMAGE_MAX_SIDE = env.int("AI_IMAGE_MAX_SIDE", default=2048)
# Checked from the header before any pixel is decoded, far below Pillow's own 89 MP bomb threshold:
# 40 MP admits any phone photo (48 MP sensors save 12 MP pictures by default) while a full decode
# of the largest accepted PNG stays around 160 MB (RGBA). JPEGs are decoded at reduced scale anyway.
AI_IMAGE_MAX_PIXELS = env.int("AI_IMAGE_MAX_PIXELS", default=40_000_000)
# Text-to-speech input cap: 4,000 characters is 4 whole units at the seed's price (1 unit per
# started 1,000 characters), under OpenAI's 4,096, and bounds how long one call holds a web thread.
AI_TTS_MAX_CHARS = env.int("AI_TTS_MAX_CHARS", default=4000)
# AI calls one user may have running in the web processes at once (0 = no bound); more get a 429
# `ai_concurrency_limited`, so one user cannot occupy every web thread (ai_services/concurrency.py).
AI_USER_CONCURRENCY = env.int("AI_USER_CONCURRENCY", default=2)
# AI jobs are billable jobs of `core.jobs`, which reads AI_JOB_HEARTBEAT_STALE_SECONDS,
# AI_JOB_MAX_ATTEMPTS and AI_JOB_PROGRESS_WRITE_SECONDS.
# A job still "processing" after this long lost whatever ran it (a web process killed
# mid-stream): a call made in a request is failed and refunded by the reaper, which runs on beat.
# A queued transcription whose task was lost waiting this long is sent again.
AI_JOB_STALE_SECONDS = env.int("AI_JOB_STALE_SECONDS", default=30 * 60)
# A queued transcription is claimed at most this many times (a worker killed mid-run, then its
# job re-queued); then it is failed and refunded.
AI_JOB_MAX_ATTEMPTS = env.int("AI_JOB_MAX_ATTEMPTS", default=3)
# A queued transcription beats while it runs; one silent this long lost its worker (killed) and
# is re-queued without waiting for AI_JOB_STALE_SECONDS.
AI_JOB_HEARTBEAT_STALE_SECONDS = env.float("AI_JOB_HEARTBEAT_STALE_SECONDS", default=120.0)
# A transcription is one provider call with no progress of its own to report: its heartbeat
# (every quarter of the stale window) is what gets written.
AI_JOB_PROGRESS_WRITE_SECONDS = env.float("AI_JOB_PROGRESS_WRITE_SECONDS", default=1.0)
AI_REAPER_INTERVAL_SECONDS = env.int("AI_REAPER_INTERVAL_SECONDS", default=300)
CELERY_BEAT_SCHEDULE["ai-reap-stale-jobs"] = {
    "task": "ai_services.reap_stale_jobs",
    "schedule": AI_REAPER_INTERVAL_SECONDS,
}
# Spoken replies of voice turns are deleted once past AI_VOICE_AUDIO_TTL_SECONDS.
CELERY_BEAT_SCHEDULE["ai-purge-voice-audio"] = {
    "task": "ai_services.purge_voice_audio",
    "schedule": env.int("AI_VOICE_AUDIO_PURGE_SECONDS", default=900),
}
# Where the local Whisper model is assembled from its two packages (verified by SHA-256).
MODEL_CACHE_DIR = env.str("MODEL_CACHE_DIR", default=str(VAR_DIR / "models"))

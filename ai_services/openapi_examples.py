"""OpenAPI examples of `/api/ai/...` (the seed's values where it shows them).

Success examples hold the `data` part only; the schema hook wraps them in the envelope. See
`core.api.examples`.
"""

from __future__ import annotations

from core.api.examples import (
    MULTIPART,
    QUOTA_ERRORS,
    error_example,
    error_response,
    null_response,
    request_example,
    success_example,
)

CONVERSATION_ID = "3b8e2c71-9f4a-4d2e-8c1b-5a7f0e6d9c42"
CHAT_JOB_ID = "e54cf418-b415-4b06-bef9-a3c825c7bb0c"
WHISPER_JOB_ID = "bae1eaff-f0df-4235-a5b5-3ee21070405c"
VISION_JOB_ID = "b4d7a3a7-9424-449c-b6c7-b9d8cf16f722"
QUESTION = "Explain quantum computing in simple terms"
ANSWER = (
    "Quantum computers use qubits, which can be 0 and 1 at the same time. By letting many qubits "
    "interfere with each other, they explore many possibilities at once for certain problems."
)
USER_MESSAGE = {
    "id": "8d449cee-9895-464e-8089-b756cf9c15e4",
    "role": "user",
    "content": QUESTION,
    "createdAt": "2026-11-25T08:00:00Z",
}
ASSISTANT_MESSAGE = {
    "id": "22cbac43-bb5f-47fc-83f3-d9e14eb2732a",
    "role": "assistant",
    "content": ANSWER,
    "createdAt": "2026-11-25T08:00:02Z",
}
PROVIDER_ERRORS = {
    503: error_response(
        "No provider configured for this service, or the provider is unavailable.",
        error_example(
            "Provider unavailable",
            message="The AI provider is unavailable. Try again later.",
            code="provider_unavailable",
        ),
    ),
}

# --- Chat and conversations ---------------------------------------------------------------------

CHAT_REQUEST = request_example("Chat", {"message": QUESTION, "model": "gpt-4"})
CHAT_FOLLOW_UP_REQUEST = request_example(
    "Continue a conversation",
    {"message": "Which problems are they good at?", "conversationId": CONVERSATION_ID, "model": "gpt-4"},
)
CHAT_ANSWER = success_example(
    "Answer",
    {
        "conversationId": CONVERSATION_ID,
        "message": ASSISTANT_MESSAGE,
        "model": "gpt-4",
        "usage": {"promptTokens": 27, "completionTokens": 38, "totalTokens": 65},
        "jobId": CHAT_JOB_ID,
        "citations": [],
    },
    message="Chat response generated",
)
DOCUMENT_ID = "7d0f5a8e-3c21-4b9a-9e67-2f1c8d4b6a10"
_POLICY_CHUNK = "Refunds are accepted within 30 days of purchase with the original receipt."
CHAT_DOCUMENTS_REQUEST = request_example(
    "Answer from my documents",
    {
        "message": "How long do I have to return something?",
        "useDocuments": True,
        "documentIds": [DOCUMENT_ID],
        "filter": {"source": "handbook"},
    },
)
CHAT_GROUNDED_ANSWER = success_example(
    "Answer from documents",
    {
        "conversationId": CONVERSATION_ID,
        "message": {
            **ASSISTANT_MESSAGE,
            "content": "You can return it within 30 days of purchase, with the original receipt [1].",
        },
        "model": "gpt-4o-mini",
        "usage": {"promptTokens": 112, "completionTokens": 19, "totalTokens": 131},
        "jobId": CHAT_JOB_ID,
        "citations": [
            {
                "embeddingId": 1042,
                "documentId": DOCUMENT_ID,
                "text": _POLICY_CHUNK,
                "score": 0.71,
                "jobId": None,
                "start": None,
            }
        ],
    },
    message="Chat response generated",
)

_CONVERSATION = {
    "id": CONVERSATION_ID,
    "title": QUESTION,
    "model": "gpt-4",
    "systemPrompt": "You are a helpful assistant.",
    "messageCount": 2,
    "createdAt": "2026-11-25T08:00:00Z",
    "updatedAt": "2026-11-25T08:00:02Z",
}
CONVERSATIONS = success_example(
    "Conversations",
    {
        **{key: value for key, value in _CONVERSATION.items() if key != "systemPrompt"},
        "lastMessage": {key: ASSISTANT_MESSAGE[key] for key in ("role", "content", "createdAt")},
    },
)
# `meta.pagination` counts the messages (the hook adds it: the operation takes `page`).
CONVERSATION = success_example("Conversation", {**_CONVERSATION, "messages": [USER_MESSAGE, ASSISTANT_MESSAGE]})
CONVERSATION_UPDATE_REQUEST = request_example("Rename", {"title": "Quantum computing basics"})
CONVERSATION_UPDATED = success_example(
    "Renamed", {**_CONVERSATION, "title": "Quantum computing basics"}, message="Conversation updated"
)
CONVERSATION_DELETED = null_response("Conversation deleted")

# --- Jobs ---------------------------------------------------------------------------------------

_JOB_TIMES = {
    "createdAt": "2026-11-25T08:00:00Z",
    "startedAt": "2026-11-25T08:00:00Z",
    "completedAt": "2026-11-25T08:00:02Z",
}
CHAT_JOB = {
    "id": CHAT_JOB_ID,
    "type": "chat",
    "status": "completed",
    "provider": "openai",
    "model": "gpt-4",
    "input": {
        "message": QUESTION,
        "messageChars": len(QUESTION),
        "conversationId": CONVERSATION_ID,
        "newConversation": True,
        "historyMessages": 0,
        "stream": False,
    },
    "output": {
        "response": ANSWER,
        "responseChars": len(ANSWER),
        "messageId": ASSISTANT_MESSAGE["id"],
        "finishReason": "stop",
        "usageEstimated": False,
    },
    "tokensUsed": 65,
    "unitsCharged": 2,
    "processingTime": 1250,
    "error": None,
    "errorCode": None,
    "conversationId": CONVERSATION_ID,
    **_JOB_TIMES,
}
JOBS = success_example("AI jobs", CHAT_JOB)
JOB = success_example("Chat job", CHAT_JOB)

# --- Speech -------------------------------------------------------------------------------------

_AUDIO = "(binary) WAV, MP3, M4A or OGG, at most 25 MB and 10 minutes"
TRANSCRIBE_REQUEST = request_example("Transcribe", {"audio": _AUDIO, "language": "en"}, media_type=MULTIPART)
TRANSCRIBE_ASYNC_REQUEST = request_example(
    "Queue a transcription", {"audio": _AUDIO, "async": True}, media_type=MULTIPART
)
_TRANSCRIPT = "Remind me to call the dentist tomorrow at nine."
TRANSCRIBED = success_example(
    "Transcript",
    {
        "text": _TRANSCRIPT,
        "language": "en",
        "duration": 3.2,
        "segments": [{"start": 0.0, "end": 3.2, "text": _TRANSCRIPT}],
        "jobId": WHISPER_JOB_ID,
    },
    message="Audio transcribed",
)
TRANSCRIPTION_QUEUED = success_example(
    "Queued",
    {
        "id": WHISPER_JOB_ID,
        "type": "whisper",
        "status": "pending",
        "provider": "openai",
        "model": "whisper-1",
        "input": {
            "filename": "memo.m4a",
            "bytes": 51234,
            "format": "m4a",
            "duration": 3.2,
            "language": "",
            "prompt": "",
            "async": True,
        },
        "output": {},
        "tokensUsed": 0,
        "unitsCharged": 1,
        "processingTime": None,
        "error": None,
        "errorCode": None,
        "conversationId": None,
        "createdAt": "2026-11-25T08:00:00Z",
        "startedAt": None,
        "completedAt": None,
        "jobId": WHISPER_JOB_ID,
    },
    message="Transcription queued",
    status=202,
)
AUDIO_ERRORS = {
    413: error_response(
        "The audio file is over the size limit.",
        error_example("Too large", message="The audio file is larger than 25 MB.", code="file_too_large"),
    ),
    415: error_response(
        "Not WAV, MP3, M4A or OGG audio (by content).",
        error_example(
            "Not audio",
            message="The file is not audio this service can read. Send WAV, MP3, M4A or OGG.",
            code="unsupported_audio",
        ),
    ),
}

SPEAK_REQUEST = request_example("Speak", {"text": "Hello! How can I help you today?", "voice": "alloy"})
SPEAK_OPTIONS_REQUEST = request_example(
    "Speak with options",
    {"text": "Your video is ready.", "voice": "nova", "format": "opus", "speed": 1.25},
)

# --- Vision -------------------------------------------------------------------------------------

ANALYZE_IMAGE_REQUEST = request_example(
    "Analyze",
    {"image": "(binary) JPEG, PNG, GIF or WebP, at most 5 MB", "prompt": "What is in this picture?", "detail": "auto"},
    media_type=MULTIPART,
)
IMAGE_ANALYZED = success_example(
    "Analysis",
    {
        "analysis": "A tabby cat asleep on a windowsill, lit by afternoon sun, with a potted basil plant behind it.",
        "model": "gpt-4o-mini",
        "usage": {"promptTokens": 862, "completionTokens": 24, "totalTokens": 886},
        "jobId": VISION_JOB_ID,
    },
    message="Image analyzed",
)
IMAGE_ERRORS = {
    413: error_response(
        "The image is over the size limit.",
        error_example("Too large", message="The image is larger than 5 MB.", code="file_too_large"),
    ),
    415: error_response(
        "Not a JPEG, PNG, GIF or WebP image (by content).",
        error_example(
            "Not an image", message="The file is not a JPEG, PNG, GIF or WebP image.", code="unsupported_image"
        ),
    ),
}

# Endpoints that call a provider: quota and rate limits, and an unavailable provider.
AI_ERRORS = {**QUOTA_ERRORS, **PROVIDER_ERRORS}

# --- Voice turn ---------------------------------------------------------------------------------

VOICE_REQUEST = request_example(
    "Voice turn",
    {"audio": _AUDIO, "conversationId": CONVERSATION_ID, "voice": "alloy", "format": "mp3", "useDocuments": True},
    media_type=MULTIPART,
)
VOICE_ANSWER = success_example(
    "Voice answer",
    {
        "transcript": "How long do I have to return something?",
        "reply": "You can return it within 30 days of purchase, with the original receipt.",
        "conversationId": CONVERSATION_ID,
        "citations": [
            {
                "embeddingId": 1042,
                "documentId": DOCUMENT_ID,
                "text": _POLICY_CHUNK,
                "score": 0.71,
                "jobId": None,
                "start": None,
            }
        ],
        "audioUrl": "/api/ai/voice/audio/0c5e8d2a-6f1b-4a7e-9d3c-8b2f4e6a1c90",
        "audioExpiresAt": "2026-11-25T09:00:04Z",
        "jobIds": {
            "transcribe": WHISPER_JOB_ID,
            "chat": CHAT_JOB_ID,
            "speak": "0c5e8d2a-6f1b-4a7e-9d3c-8b2f4e6a1c90",
        },
    },
    message="Voice turn answered",
)
VOICE_AUDIO_GONE = error_response(
    "Not one of your replies, or past its expiry.",
    error_example("Expired", message="This audio has expired.", code="not_found"),
)

"""The `openai` provider: the official SDK, against OpenAI or any OpenAI-compatible server.

`OPENAI_BASE_URL` points the client at vLLM, Ollama, LM Studio or a llama.cpp server. The SDK
does the retrying: `OPENAI_MAX_RETRIES` attempts more on 408/409/429/5xx and connection errors,
with exponential backoff (0.5 s doubling, capped at 8 s, with jitter) or the server's
`Retry-After`. Whatever still fails becomes a domain error: 504 for a timeout, 503 when the
server cannot be reached or keeps answering 429/503, 502 for any other error or a body that is not
what the API promises. The API key is never put in a message: provider error texts are scrubbed.
"""

from __future__ import annotations

import base64
import logging
import re
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, cast

import httpx2
import numpy as np
import openai as sdk
from django.conf import settings
from openai.types.chat import ChatCompletionMessageParam

from ai_services import tokens as cl100k
from ai_services.providers.base import (
    AUDIO_FORMATS,
    ChatChunk,
    ChatResult,
    EmbedResult,
    PreparedImage,
    Provider,
    SpeechResult,
    TranscriptionResult,
    Usage,
    VisionResult,
)
from ai_services.providers.capabilities import (
    ChatCapable,
    Embedder,
    EmbedTokenizer,
    Speaker,
    Transcriber,
    VisionCapable,
)
from ai_services.providers.languages import language_code
from core.exceptions import (
    ApplicationError,
    ProviderError,
    ProviderNotConfigured,
    ProviderTimeout,
    ProviderUnavailable,
)

logger = logging.getLogger(__name__)

VOICES = ["alloy", "ash", "ballad", "coral", "echo", "fable", "nova", "onyx", "sage", "shimmer", "verse"]
VISION_MAX_TOKENS = 1024
EMBED_BATCH = 2048  # inputs per request, OpenAI's limit
# Inputs an OpenAI embedding model reads (text-embedding-3-*, ada-002); longer inputs are refused.
EMBED_MAX_TOKENS = 8191
# Anything that looks like an API key is masked in provider messages, not only ours.
_KEY_PATTERN = re.compile(r"\b(sk|rk|pk)-[A-Za-z0-9_\-*]{6,}")
_MALFORMED = (ValueError, TypeError, AttributeError, KeyError, IndexError)
_SPEECH_FORMATS: dict[str, Literal["mp3", "wav", "opus", "aac", "flac"]] = {
    "mp3": "mp3",
    "wav": "wav",
    "opus": "opus",
    "aac": "aac",
    "flac": "flac",
}


def _sdk_messages(messages: list[dict[str, Any]]) -> list[ChatCompletionMessageParam]:
    # Built in the API's own shape ({"role", "content"}, content parts for images): the SDK's
    # TypedDicts describe exactly these dicts.
    return cast(list[ChatCompletionMessageParam], messages)


def scrub(text: str) -> str:
    """`text` without the configured key or anything shaped like an API key."""
    key = settings.OPENAI_API_KEY
    if key and len(key) >= 4:
        text = text.replace(key, "[redacted]")
    return _KEY_PATTERN.sub("[redacted]", text)


def translate_error(exc: Exception) -> ApplicationError:
    """Map an SDK (or parsing) exception to the domain error the API answers with."""
    if isinstance(exc, ApplicationError):
        return exc
    if isinstance(exc, sdk.APITimeoutError):
        return ProviderTimeout()
    if isinstance(exc, sdk.APIConnectionError):
        return ProviderUnavailable("The AI provider could not be reached. Try again later.")
    if isinstance(exc, sdk.APIStatusError):
        detail = scrub(_provider_message(exc))
        if exc.status_code in (429, 503):
            headers = {}
            retry_after = exc.response.headers.get("retry-after")
            if retry_after and retry_after.isdigit():
                headers["Retry-After"] = retry_after
            return ProviderUnavailable(
                f"The AI provider is overloaded or rate limited ({exc.status_code}). Try again later.",
                extra={"provider_status": exc.status_code},
                headers=headers,
            )
        if exc.status_code in (401, 403):
            return ProviderError(
                "The AI provider refused the server's credentials.", extra={"provider_status": exc.status_code}
            )
        message = f"The AI provider returned an error ({exc.status_code})"
        return ProviderError(
            f"{message}: {detail}" if detail else f"{message}.", extra={"provider_status": exc.status_code}
        )
    if isinstance(exc, (sdk.OpenAIError, *_MALFORMED)):
        return ProviderError("The AI provider returned a malformed response.")
    return ProviderError("The AI provider call failed.")


def _provider_message(exc: sdk.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return inner["message"][:500]
        if isinstance(inner, str):
            return inner[:500]
    return ""


def _usage(raw: Any) -> Usage | None:
    if raw is None:
        return None
    prompt, completion = getattr(raw, "prompt_tokens", None), getattr(raw, "completion_tokens", None)
    if not isinstance(prompt, int) or not isinstance(completion, int | None):
        raise ValueError("usage is not a pair of token counts")
    return Usage(prompt_tokens=prompt, completion_tokens=completion or 0)


class OpenAIProvider(Provider, ChatCapable, Transcriber, Speaker, VisionCapable, Embedder):
    name = "openai"

    def __init__(self) -> None:
        self._clients: dict[tuple, sdk.OpenAI] = {}
        self._lock = threading.Lock()

    # -- client ------------------------------------------------------------------------------

    def client(self) -> sdk.OpenAI:
        """A client for the current settings (settings can change in tests; one client per config)."""
        config = (
            settings.OPENAI_API_KEY,
            settings.OPENAI_BASE_URL,
            settings.OPENAI_ORGANIZATION,
            settings.OPENAI_TIMEOUT_SECONDS,
            settings.OPENAI_CONNECT_TIMEOUT_SECONDS,
            settings.OPENAI_MAX_RETRIES,
        )
        client = self._clients.get(config)
        if client is None:
            key, base_url, organization, timeout, connect_timeout, retries = config
            if not key and not base_url:
                raise ProviderNotConfigured(
                    "The openai provider needs OPENAI_API_KEY (or OPENAI_BASE_URL for a local "
                    "OpenAI-compatible server)."
                )
            with self._lock:
                client = self._clients.get(config)
                if client is None:
                    client = sdk.OpenAI(
                        # Local servers (Ollama, llama.cpp) ignore the key, but the SDK needs one.
                        api_key=key or "not-needed",
                        base_url=base_url or None,
                        organization=organization or None,
                        timeout=httpx2.Timeout(timeout, connect=connect_timeout),
                        max_retries=retries,
                    )
                    self._clients[config] = client
        return client

    def _custom_server(self) -> bool:
        return bool(settings.OPENAI_BASE_URL)

    def _limit_kwargs(self, max_tokens: int | None) -> dict[str, int]:
        if max_tokens is None:
            return {}
        # OpenAI's current name for the limit; compatible servers generally know only the old one.
        return {"max_tokens" if self._custom_server() else "max_completion_tokens": max_tokens}

    # -- models and options -----------------------------------------------------------------

    def models(self, modality: str) -> list[str]:
        return list(settings.AI_MODELS.get(modality, []))

    def voices(self) -> list[str]:
        return list(VOICES)

    # -- chat ----------------------------------------------------------------------------------

    def chat(
        self, *, messages: list[dict[str, Any]], model: str, temperature: float | None, max_tokens: int | None
    ) -> ChatResult:
        kwargs: dict[str, Any] = self._limit_kwargs(max_tokens)
        if temperature is not None:
            kwargs["temperature"] = temperature
        try:
            completion = self.client().chat.completions.create(model=model, messages=_sdk_messages(messages), **kwargs)
            choice = completion.choices[0]
            content = choice.message.content
            if not isinstance(content, str):
                raise ValueError("no text content in the answer")
            return ChatResult(
                content=content,
                model=completion.model if isinstance(completion.model, str) and completion.model else model,
                usage=_usage(getattr(completion, "usage", None)),
                finish_reason=choice.finish_reason,
            )
        except (sdk.OpenAIError, *_MALFORMED) as exc:
            raise self._failed("chat", exc) from None

    def chat_stream(
        self, *, messages: list[dict[str, Any]], model: str, temperature: float | None, max_tokens: int | None
    ) -> Iterator[ChatChunk]:
        kwargs: dict[str, Any] = self._limit_kwargs(max_tokens)
        if temperature is not None:
            kwargs["temperature"] = temperature
        try:
            stream = self.client().chat.completions.create(
                model=model,
                messages=_sdk_messages(messages),
                stream=True,
                stream_options={"include_usage": True},
                **kwargs,
            )
        except (sdk.OpenAIError, *_MALFORMED) as exc:
            raise self._failed("chat stream", exc) from None
        return self._chunks(stream, model)

    def _chunks(self, stream: Any, model: str) -> Iterator[ChatChunk]:
        try:
            for chunk in stream:
                usage = _usage(getattr(chunk, "usage", None))
                choices = chunk.choices or []
                delta = ""
                finish_reason = None
                if choices:
                    content = choices[0].delta.content if choices[0].delta is not None else None
                    if content is not None and not isinstance(content, str):
                        raise ValueError("delta content is not text")
                    delta = content or ""
                    finish_reason = choices[0].finish_reason
                if delta or usage or finish_reason:
                    yield ChatChunk(delta=delta, usage=usage, finish_reason=finish_reason, model=chunk.model or model)
        except (sdk.OpenAIError, *_MALFORMED) as exc:
            raise self._failed("chat stream", exc) from None
        finally:
            stream.close()

    # -- audio ---------------------------------------------------------------------------------

    def transcribe(
        self, *, path: Path, filename: str, model: str, language: str | None, prompt: str | None
    ) -> TranscriptionResult:
        kwargs: dict[str, Any] = {}
        if language:
            kwargs["language"] = language
        if prompt:
            kwargs["prompt"] = prompt
        # Segments and duration come only with verbose_json, which only the whisper models offer.
        verbose = model.startswith("whisper")
        try:
            with open(path, "rb") as handle:
                result = self.client().audio.transcriptions.create(
                    file=(filename, handle),
                    model=model,
                    response_format="verbose_json" if verbose else "json",
                    **kwargs,
                )
            text = result.text
            if not isinstance(text, str):
                raise ValueError("no text in the transcription")
            segments = [
                {"start": float(s.start), "end": float(s.end), "text": str(s.text).strip()}
                for s in (getattr(result, "segments", None) or [])
            ]
            duration = getattr(result, "duration", None)
            return TranscriptionResult(
                text=text.strip(),
                language=language_code(str(getattr(result, "language", None) or language or "")),
                duration=float(duration) if duration is not None else 0.0,
                model=model,
                segments=segments,
            )
        except (sdk.OpenAIError, *_MALFORMED) as exc:
            raise self._failed("transcription", exc) from None

    def speak(self, *, text: str, model: str, voice: str, fmt: str, speed: float) -> SpeechResult:
        if fmt not in AUDIO_FORMATS:
            raise ValueError(f"unsupported format {fmt}")
        try:
            response = self.client().audio.speech.create(
                input=text, model=model, voice=voice, response_format=_SPEECH_FORMATS[fmt], speed=speed
            )
            audio = response.content
            content_type = response.response.headers.get("content-type", "")
            if not audio or content_type.startswith(("application/json", "text/")):
                raise ValueError("the speech response holds no audio")
            return SpeechResult(audio=audio, format=fmt, model=model)
        except (sdk.OpenAIError, *_MALFORMED) as exc:
            raise self._failed("speech", exc) from None

    # -- vision --------------------------------------------------------------------------------

    def analyze_image(self, *, image: PreparedImage, prompt: str, detail: str, model: str) -> VisionResult:
        data_url = f"data:{image.mime};base64,{base64.b64encode(image.data).decode('ascii')}"
        messages = [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": prompt},
                    {"type": "image_url", "image_url": {"url": data_url, "detail": detail}},
                ],
            }
        ]
        result = self.chat(messages=messages, model=model, temperature=None, max_tokens=VISION_MAX_TOKENS)
        return VisionResult(analysis=result.content, model=result.model, usage=result.usage)

    # -- embeddings ----------------------------------------------------------------------------

    def embed(self, texts: Sequence[str], *, model: str | None = None) -> EmbedResult:
        if isinstance(texts, str):
            raise TypeError("embed() takes a list of strings, not a single string")
        model = self.resolve_model("embed", model)
        rows: list[list[float]] = []
        tokens = 0
        try:
            for start in range(0, len(texts), EMBED_BATCH):
                batch = list(texts[start : start + EMBED_BATCH])
                response = self.client().embeddings.create(input=batch, model=model, encoding_format="float")
                data = sorted(response.data, key=lambda item: item.index)
                if len(data) != len(batch):
                    raise ValueError("the provider returned a different number of embeddings")
                rows.extend(item.embedding for item in data)
                usage = getattr(response, "usage", None)
                tokens += int(getattr(usage, "prompt_tokens", 0) or 0)
            vectors = np.asarray(rows, dtype=np.float32)
            if vectors.ndim != 2 and len(texts):
                raise ValueError("embeddings of different lengths")
        except (sdk.OpenAIError, *_MALFORMED) as exc:
            raise self._failed("embeddings", exc) from None
        dimensions = int(vectors.shape[1]) if len(texts) else 0
        return EmbedResult(
            vectors=vectors.reshape(len(texts), dimensions), model=model, dimensions=dimensions, tokens=tokens
        )

    def embed_tokenizer(self, *, model: str) -> EmbedTokenizer:
        # cl100k_base: exact for OpenAI's embedding models, an estimate for other servers behind
        # OPENAI_BASE_URL, whose reported usage is what is billed.
        return EmbedTokenizer(count_tokens=cl100k.count_tokens_batch, max_input_tokens=EMBED_MAX_TOKENS)

    # -- errors --------------------------------------------------------------------------------

    def _failed(self, what: str, exc: Exception) -> ApplicationError:
        error = translate_error(exc)
        # The exception text is scrubbed too: a server may echo what it was sent.
        logger.warning("openai %s failed: %s: %s -> %s", what, type(exc).__name__, scrub(str(exc))[:300], error.code)
        return error

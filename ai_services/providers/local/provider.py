"""The `local` provider: the offline engines of `ai_services/providers/local/` behind the
capability protocols (speech both ways, vision, embeddings).

Each engine loads once per process on first use and runs on one thread per request. There is no
local chat model (no instruction-tuned model ships in a package we trust), so the provider is not
`ChatCapable` and chat answers 503 `provider_not_configured` with the settings that enable it.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ai_services.providers.base import (
    AUDIO_FORMATS,
    EmbedResult,
    PreparedImage,
    Provider,
    SpeechResult,
    TranscriptionResult,
    VisionResult,
)
from ai_services.providers.capabilities import Embedder, EmbedTokenizer, Speaker, Transcriber, VisionCapable
from core.exceptions import (
    ApplicationError,
    InvalidInput,
    InvalidUpload,
    ProviderError,
    ProviderNotConfigured,
    ProviderUnavailable,
)

logger = logging.getLogger(__name__)

TRANSCRIBE_MODEL = "whisper-base"
SPEAK_MODEL = "piper-en_US-joe-medium"
VISION_MODEL = "local-ocr"
EMBED_MODEL = "all-MiniLM-L6-v2"

CHAT_NOT_CONFIGURED = (
    "Chat needs a language model, and the offline engines include none. Set OPENAI_API_KEY to use "
    "OpenAI, or run an OpenAI-compatible server and point OPENAI_BASE_URL at it, e.g. Ollama: "
    "OPENAI_BASE_URL=http://127.0.0.1:11434/v1 OPENAI_API_KEY=ollama AI_CHAT_PROVIDER=openai "
    "AI_CHAT_MODELS=llama3.2."
)


class LocalProvider(Provider, Transcriber, Speaker, VisionCapable, Embedder):
    name = "local"

    def models(self, modality: str) -> list[str]:
        return {
            "transcribe": [TRANSCRIBE_MODEL],
            "speak": [SPEAK_MODEL],
            "vision": [VISION_MODEL],
            "embed": [EMBED_MODEL],
        }.get(modality, [])

    def unsupported(self, modality: str) -> ApplicationError:
        if modality == "chat":
            return ProviderNotConfigured(CHAT_NOT_CONFIGURED)
        return super().unsupported(modality)

    def voices(self) -> list[str]:
        from ai_services.providers.local import piper_tts

        return list(piper_tts.VOICES)

    # -- audio ---------------------------------------------------------------------------------

    def transcribe(
        self, *, path: Path, filename: str, model: str, language: str | None, prompt: str | None
    ) -> TranscriptionResult:
        from ai_services import audio
        from ai_services.providers.local import whisper_stt

        try:
            result = whisper_stt.transcribe(str(path), language=language or None, prompt=prompt or None)
        except audio.AudioError as exc:
            raise InvalidUpload(f"The audio could not be decoded: {exc}") from None
        except ValueError as exc:
            # faster-whisper refuses unknown language codes with a ValueError.
            raise InvalidInput(
                f"Unsupported language '{language}'.", errors={"language": ["Not a supported language code."]}
            ) from exc
        except Exception as exc:
            raise self._engine_failed("speech-to-text", exc) from exc
        return TranscriptionResult(
            text=result["text"],
            language=result.get("language") or language or "",
            duration=float(result.get("duration") or 0.0),
            model=TRANSCRIBE_MODEL,
            segments=list(result.get("segments") or []),
        )

    def speak(self, *, text: str, model: str, voice: str, fmt: str, speed: float) -> SpeechResult:
        from ai_services.providers.local import piper_tts

        if fmt not in AUDIO_FORMATS:
            raise InvalidInput(f"Unsupported format '{fmt}'.", errors={"format": ["Unsupported format."]})
        try:
            samples, sample_rate = piper_tts.synthesize(text, speed=speed, voice=voice)
        except ValueError as exc:
            raise InvalidInput(
                "The text has nothing that can be spoken.", errors={"text": ["Nothing to speak in this text."]}
            ) from exc
        except Exception as exc:
            raise self._engine_failed("text-to-speech", exc) from exc
        try:
            data = piper_tts.encode_audio(samples, sample_rate, fmt)
        except Exception as exc:
            raise self._engine_failed("audio encoding", exc) from exc
        return SpeechResult(audio=data, format=fmt, model=SPEAK_MODEL, duration=round(len(samples) / sample_rate, 3))

    # -- vision --------------------------------------------------------------------------------

    def analyze_image(self, *, image: PreparedImage, prompt: str, detail: str, model: str) -> VisionResult:
        from PIL import Image

        from ai_services.providers.local import ocr

        try:
            with Image.open(io.BytesIO(image.data)) as picture:
                picture.load()
                # The engine reads the re-encoded copy (downscaled, metadata stripped). It is told
                # the original's format and the few EXIF tags kept (camera, date), never the
                # location, so its analysis describes the upload.
                picture.format = image.source_format.upper()
                if image.exif:
                    picture.info["exif"] = _exif_bytes(image.exif)
                result = ocr.analyze_image(picture, prompt=prompt)
        except Exception as exc:
            raise self._engine_failed("image analysis", exc) from exc
        facts: dict[str, Any] = dict(result.get("facts") or {})
        if (image.width, image.height) != (image.source_width, image.source_height):
            facts["original_width"], facts["original_height"] = image.source_width, image.source_height
        return VisionResult(
            analysis=str(result.get("analysis") or ""),
            model=VISION_MODEL,
            usage=None,
            details={"text": str(result.get("text") or ""), "facts": facts},
        )

    # -- embeddings ----------------------------------------------------------------------------

    def embed(self, texts: Sequence[str], *, model: str | None = None) -> EmbedResult:
        from ai_services.providers.local import minilm

        if isinstance(texts, str):
            raise TypeError("embed() takes a list of strings, not a single string")
        model = self.resolve_model("embed", model)
        try:
            embedder = minilm.get_embedder()
            vectors = embedder.embed(list(texts))
            tokens = sum(embedder.count_tokens(list(texts))) if texts else 0
        except Exception as exc:
            raise self._engine_failed("embeddings", exc) from exc
        return EmbedResult(vectors=vectors, model=embedder.model_name, dimensions=embedder.dimensions, tokens=tokens)

    def embed_tokenizer(self, *, model: str) -> EmbedTokenizer:
        # MiniLM's own WordPiece, so chunks are cut where the model would truncate.
        from ai_services.providers.local import minilm

        return EmbedTokenizer(count_tokens=minilm.get_embedder().count_tokens, max_input_tokens=minilm.MAX_SEQ_LENGTH)

    # -- errors --------------------------------------------------------------------------------

    @staticmethod
    def _engine_failed(what: str, exc: Exception) -> ProviderError | ProviderUnavailable:
        logger.exception("local %s engine failed", what)
        if isinstance(exc, FileNotFoundError | ImportError | MemoryError):
            return ProviderUnavailable(f"The local {what} engine is not available on this server.")
        return ProviderError(f"The local {what} engine failed.")


def _exif_bytes(summary: dict[str, str]) -> bytes:
    from PIL import Image

    exif = Image.Exif()
    for tag, name in ((271, "cameraMake"), (272, "cameraModel"), (306, "dateTime")):
        if summary.get(name):
            exif[tag] = summary[name]
    if summary.get("dateTaken"):
        exif[306] = summary["dateTaken"]
    return exif.tobytes()

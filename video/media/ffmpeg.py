"""Running the ffmpeg binary (no shell, hard timeout, progress lines) and the input arguments and
filter snippets every ffmpeg command of the media layer shares."""

from __future__ import annotations

import subprocess
import tempfile
import threading
from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path

from core import ffmpeg as core_ffmpeg
from video.media.errors import MediaError
from video.media.records import VideoInfo


def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary (core.ffmpeg: the pinned one unless FFMPEG_BINARY names another)."""
    try:
        return core_ffmpeg.ffmpeg_exe()
    except core_ffmpeg.FfmpegUnavailable as exc:
        raise MediaError(
            "Video processing is unavailable: ffmpeg is not usable", detail=str(exc), code="ffmpeg_unavailable"
        ) from exc


def _stderr_message(stderr: str, limit: int = 2000) -> str:
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    return "\n".join(lines)[-limit:]


def _run_ffmpeg(
    args: Sequence[str],
    *,
    timeout: float,
    what: str,
    on_progress_line: Callable[[str, str], None] | None = None,
) -> None:
    """Run ffmpeg (no shell) with a hard timeout; a failure becomes MediaError(f"{what} failed ...").

    With on_progress_line, ``-progress pipe:1`` key=value lines are handed over as they come; an
    exception raised by the callback kills ffmpeg and propagates (a way to cancel). stderr goes to a
    temporary file rather than a pipe: a corrupt input can log megabytes, and a full pipe would stall
    ffmpeg.
    """
    # -copyts: timestamps as stored in the file; _timeline() shifts them explicitly (see _input).
    cmd = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-copyts"]
    if on_progress_line is not None:
        cmd += ["-nostats", "-progress", "pipe:1", "-stats_period", "0.25"]
    cmd += list(args)
    with tempfile.TemporaryFile(mode="w+", encoding="utf-8", errors="replace") as err:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if on_progress_line else subprocess.DEVNULL,
            stderr=err,
            text=True,
        )
        timed_out = threading.Event()

        def kill() -> None:
            timed_out.set()
            proc.kill()

        watchdog = threading.Timer(timeout, kill)
        watchdog.daemon = True
        watchdog.start()
        try:
            if on_progress_line is not None and proc.stdout is not None:
                for line in proc.stdout:
                    key, sep, value = line.strip().partition("=")
                    if sep:
                        on_progress_line(key, value)
            returncode = proc.wait()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        finally:
            watchdog.cancel()
            if proc.stdout is not None:
                proc.stdout.close()
        err.seek(0)
        stderr = err.read()
    if timed_out.is_set():
        raise MediaError(f"{what} took longer than {timeout:.0f} s and was stopped", detail=_stderr_message(stderr))
    if returncode != 0:
        raise MediaError(
            f"{what} failed: {_stderr_message(stderr, 300) or f'ffmpeg exit code {returncode}'}",
            detail=_stderr_message(stderr),
        )


def _input(path: Path, info: VideoInfo, *, seek: float | None = None) -> list[str]:
    """ffmpeg input arguments for a probed file. The demuxer is the one probe accepted (ffmpeg would
    otherwise sniff again, and a playlist or concat script named .mp4 could pull in other files); local
    files only, no network; the path absolute, so neither a leading "-" nor a "proto:" prefix in a file
    name means anything to ffmpeg.

    ``seek`` (seconds on the file's timeline) jumps to the keyframe before it without discarding up to
    it (``-noaccurate_seek``). The position is given as an absolute timestamp (``-seek_timestamp``):
    ffmpeg releases disagree on where a file starts (5.1 counts an Opus track's pre-skip as a negative
    start, later releases do not), so nothing here may depend on ffmpeg's idea of the start.
    """
    demuxer = info.container.split(",")[0]
    args = ["-f", demuxer, "-protocol_whitelist", "file"]
    if seek is not None:
        args += ["-noaccurate_seek", "-seek_timestamp", "1", "-ss", f"{info.start_time + seek:.6f}"]
    return [*args, "-i", str(path.resolve())]


def _timeline(info: VideoInfo, at: float = 0.0) -> str:
    """Filter that puts a stream on the file's timeline (as probe reads it) shifted so ``at`` is 0.

    ffmpeg runs with ``-copyts`` (see _run_ffmpeg), so frames reach the graph with the timestamps
    stored in the file, and this one shift is the only offset applied whatever ffmpeg release runs.
    """
    origin = info.start_time + at
    return f"setpts=PTS{'-' if origin >= 0 else '+'}{abs(origin):.6f}/TB"


def _decode_timeout(seconds_of_video: float) -> float:
    # Decoding runs far faster than real time for anything up to 4K on one core; 4x real time plus a
    # minute of slack only trips on a stuck process.
    return 60.0 + 4.0 * max(seconds_of_video, 0.0)


def _rate(interval: float) -> str:
    """1/interval as an exact rational string for ffmpeg's fps option."""
    frac = Fraction(interval).limit_denominator(1_000_000)
    return f"{frac.denominator}/{frac.numerator}"


def _thumbnail_chain(t: float, size: tuple[int, int]) -> str:
    """Filter chain picking the frame on screen at t from a stream whose timestamps are relative to t.

    Same rule as the frames: an fps filter with one tick per 100000 s puts the last frame at or before
    t on tick 0 (``select='gte(t,T)'`` would take the first frame after t instead). The fps filter emits
    tick 0 only when a later frame arrives, so tpad clones the last frame past t: a video that ends
    before t (audio longer than video, or a header duration that overstates) still yields its last frame
    instead of an empty output, which ffmpeg treats as an error.
    """
    return (
        f"tpad=stop_mode=clone:stop_duration={t + 1:.6f},fps=fps=1/100000:round=up:start_time=0,"
        f"scale={size[0]}:{size[1]}"
    )

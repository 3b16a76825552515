"""Which ffmpeg binary the product runs, and whether its version is one we support.

The default is the binary pinned by the imageio-ffmpeg wheel, so frames, rotation, metadata and
thumbnails come out the same on every machine whatever ffmpeg the system has on PATH. An operator
who wants another one (a hardware-accelerated build, say) names it in ``FFMPEG_BINARY``: a path, or
a command name looked up on PATH. A binary older than ``MIN_VERSION`` is refused: the pipeline relies
on filters and display-matrix handling that older releases lack or get wrong. The media suite runs
against the pinned binary and against Debian 12's 5.1, the oldest release it is checked on.

No Django here: video.media and the TTS encoder call it from workers and from plain scripts alike.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from dataclasses import dataclass

ENV_VAR = "FFMPEG_BINARY"
MIN_VERSION: tuple[int, int] = (5, 1)

# "ffmpeg version 5.1.9-0+deb12u1", "ffmpeg version n9.0.2-17-g2a5...", "ffmpeg version 4.4.2-0ubuntu0...".
# Snapshot builds from FFmpeg's main branch print "N-112233-gabc..." and carry no release number.
_VERSION_RE = re.compile(r"^ffmpeg version n?(\d+)\.(\d+)")
_SNAPSHOT_RE = re.compile(r"^ffmpeg version N-\d+")


class FfmpegUnavailable(Exception):
    """The configured ffmpeg cannot be used; str() says why and what to do, fit for a log or a probe."""


@dataclass(frozen=True, slots=True)
class FfmpegBinary:
    path: str
    version: str  # as the binary prints it, e.g. "5.1.9-0+deb12u1"
    pinned: bool  # the imageio-ffmpeg binary (not chosen through FFMPEG_BINARY)


def _pinned_path() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def _resolve(configured: str) -> str:
    path = shutil.which(configured)
    if path is None:
        raise FfmpegUnavailable(f"{ENV_VAR}={configured!r} is not an executable file or a command on PATH")
    return path


def _version_line(path: str) -> str:
    try:
        proc = subprocess.run([path, "-version"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise FfmpegUnavailable(f"ffmpeg at {path} does not run: {exc}") from exc
    first = proc.stdout.splitlines()[0] if proc.stdout else ""
    if proc.returncode != 0 or not first.startswith("ffmpeg version"):
        raise FfmpegUnavailable(f"{path} is not ffmpeg (its -version printed {first[:80]!r})")
    return first


def check_version(version_line: str, *, path: str) -> str:
    """The version from ``ffmpeg -version``'s first line; raises FfmpegUnavailable when it is too old."""
    version = version_line.removeprefix("ffmpeg version ").split(" ", 1)[0]
    if _SNAPSHOT_RE.match(version_line):
        return version  # built from FFmpeg's main branch: newer than any release
    match = _VERSION_RE.match(version_line)
    if match is None:
        raise FfmpegUnavailable(f"ffmpeg at {path} reports an unrecognised version {version!r}")
    if (int(match[1]), int(match[2])) < MIN_VERSION:
        minimum = ".".join(map(str, MIN_VERSION))
        raise FfmpegUnavailable(
            f"ffmpeg {version} at {path} is older than the supported minimum {minimum}; "
            f"unset {ENV_VAR} to use the bundled ffmpeg, or point it at ffmpeg {minimum} or newer"
        )
    return version


@functools.cache
def _binary(configured: str) -> FfmpegBinary:
    path = _resolve(configured) if configured else _pinned_path()
    version = check_version(_version_line(path), path=path)
    return FfmpegBinary(path=path, version=version, pinned=not configured)


def ffmpeg_binary() -> FfmpegBinary:
    """The ffmpeg to run (cached per configured value); raises FfmpegUnavailable when it can't be used."""
    return _binary(os.environ.get(ENV_VAR, "").strip())


def ffmpeg_exe() -> str:
    return ffmpeg_binary().path

"""Which ffmpeg the product runs: the pinned one by default, another only when FFMPEG_BINARY names
it, and never one older than the supported minimum (refused in jobs, in the start-up log and in
/health/ready)."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest
from imageio_ffmpeg import get_ffmpeg_exe

from core import ffmpeg
from video import media

pytestmark = pytest.mark.django_db


def fake_ffmpeg(folder: Path, version_line: str) -> Path:
    """An executable that answers `-version` like some other ffmpeg build would."""
    exe = folder / "ffmpeg"
    exe.write_text(f"#!/bin/sh\necho '{version_line}'\necho 'built with gcc'\n")
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    return exe


def test_default_is_the_pinned_binary_even_with_another_on_path(tmp_path, monkeypatch):
    other = fake_ffmpeg(tmp_path, "ffmpeg version 6.1.1 Copyright (c) 2000-2023")
    monkeypatch.setenv("PATH", f"{other.parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv(ffmpeg.ENV_VAR, raising=False)

    binary = ffmpeg.ffmpeg_binary()
    assert binary.pinned
    assert binary.path == get_ffmpeg_exe()
    assert media.ffmpeg_exe() == get_ffmpeg_exe()


@pytest.mark.parametrize(
    "line",
    [
        "ffmpeg version 5.1.9-0+deb12u1 Copyright (c) 2000-2026 the FFmpeg developers",
        "ffmpeg version n9.0.2-17-g2a571b6068-20260930 Copyright (c) 2000-2026",
        "ffmpeg version N-118000-g1234abcd Copyright (c) 2000-2026",  # a snapshot of FFmpeg's main branch
        "ffmpeg version 7.1 Copyright (c) 2000-2024",
    ],
)
def test_a_chosen_binary_of_a_supported_version_is_used(tmp_path, monkeypatch, line):
    exe = fake_ffmpeg(tmp_path, line)
    monkeypatch.setenv(ffmpeg.ENV_VAR, str(exe))

    binary = ffmpeg.ffmpeg_binary()
    assert (binary.path, binary.pinned) == (str(exe), False)
    assert binary.version == line.split()[2]


def test_an_old_binary_is_refused_with_a_message_that_says_what_to_do(tmp_path, monkeypatch, api, caplog):
    exe = fake_ffmpeg(tmp_path, "ffmpeg version 4.4.2-0ubuntu0.22.04.1 Copyright (c) 2000-2021")
    monkeypatch.setenv(ffmpeg.ENV_VAR, str(exe))

    with pytest.raises(ffmpeg.FfmpegUnavailable, match=r"ffmpeg 4\.4\.2.* older than the supported minimum 5\.1"):
        ffmpeg.ffmpeg_binary()
    with pytest.raises(media.MediaError) as refused:
        media.ffmpeg_exe()
    assert refused.value.code == "ffmpeg_unavailable"
    assert "unset FFMPEG_BINARY" in (refused.value.detail or "")

    # Start-up names it in the log.
    from django.apps import apps

    with caplog.at_level(logging.ERROR, logger="video.apps"):
        apps.get_app_config("video").ready()
    assert any("older than the supported minimum" in r.getMessage() for r in caplog.records)

    # Readiness reports it.
    body = api.get("/health/ready").json()
    assert body["checks"]["ffmpeg"]["status"] == "down"
    assert "older than the supported minimum 5.1" in body["checks"]["ffmpeg"]["detail"]
    assert "ffmpeg" in body["failing"]


@pytest.mark.parametrize(
    ("value", "message"),
    [("/nonexistent/ffmpeg", "is not an executable file"), ("sh", "is not ffmpeg")],
)
def test_a_binary_that_is_not_a_usable_ffmpeg_is_refused(monkeypatch, value, message):
    monkeypatch.setenv(ffmpeg.ENV_VAR, value)
    with pytest.raises(ffmpeg.FfmpegUnavailable, match=message):
        ffmpeg.ffmpeg_binary()


def test_processing_with_a_refused_ffmpeg_fails_the_job_with_a_clear_error(tmp_path, monkeypatch, clips):
    """A job that needs the ffmpeg engine names the problem instead of a crash."""
    exe = fake_ffmpeg(tmp_path, "ffmpeg version 4.2.7 Copyright (c) 2000-2022")
    monkeypatch.setenv(ffmpeg.ENV_VAR, str(exe))
    with pytest.raises(media.MediaError, match="ffmpeg is not usable"):
        media.make_thumbnail(clips["mp4"], timestamp=1.0, out_path=tmp_path / "t.jpg")

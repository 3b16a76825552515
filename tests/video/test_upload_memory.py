"""A 100 MB upload through the real HTTP stack (gunicorn, one sync worker) never holds the file in
memory: the web process's peak RSS grows by well under 30 MB while it receives, probes and
stores it. The client streams the body from disk too (bench/video_upload_bench.py has the same
measurement as a stand-alone benchmark)."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings as django_settings

from bench.video_upload_bench import (
    MB,
    make_source_clip,
    measure,
    padded_mp4,
    stream_upload,
)
from tests.video.conftest import media_files, signed_in_token
from video.models import VideoJob

RSS_GROWTH_LIMIT_MB = 30


def test_a_100_mb_upload_is_streamed_to_disk(upload_server, make_user, tmp_path):
    user = make_user()
    token = signed_in_token(upload_server.port, user)
    source = make_source_clip(tmp_path / "source.mp4")
    limit = django_settings.VIDEO_MAX_UPLOAD_BYTES
    accepted = padded_mp4(source, tmp_path / "big.mp4", size=limit - 64 * 1024)
    too_large = padded_mp4(source, tmp_path / "too-big.mp4", size=limit + MB)
    # Warm-up: the first upload imports the probe, storage and task code in the worker process.
    assert stream_upload(upload_server.port, source, token=token)[0] == 202

    result = measure(upload_server, accepted, token=token)

    assert result.status == 202
    assert result.growth_mb < RSS_GROWTH_LIMIT_MB, f"peak RSS grew {result.growth_mb:.1f} MB"
    job = VideoJob.objects.filter(user=user).order_by("-created_at").first()
    stored = tmp_path / "media" / job.video_path
    assert stored.stat().st_size == accepted.stat().st_size
    # The temporary upload was moved into storage: nothing is left in the upload folder.
    assert not [p for p in Path(tmp_path).iterdir() if p.name.endswith(".upload.mp4")]

    refused = measure(upload_server, too_large, token=token)

    assert refused.status == 413
    assert refused.growth_mb < RSS_GROWTH_LIMIT_MB, f"peak RSS grew {refused.growth_mb:.1f} MB"
    assert len(media_files(tmp_path / "media")) == 2  # the warm-up clip and the 100 MB video

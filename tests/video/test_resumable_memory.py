"""A 100 MB resumable upload in 5 MB chunks through the real HTTP stack (gunicorn, one sync
worker) never holds the video in memory: the web process's peak RSS grows by well under 30 MB
(bench/video_resumable_bench.py has the same measurement next to the multipart upload)."""

from __future__ import annotations

from django.conf import settings as django_settings

from bench.video_resumable_bench import measure, tus_upload
from bench.video_upload_bench import MB, make_source_clip, padded_mp4
from tests.video.conftest import signed_in_token
from video.models import ResumableUpload, VideoJob

RSS_GROWTH_LIMIT_MB = 30


def test_a_100_mb_resumable_upload_in_5_mb_chunks_is_streamed_to_disk(upload_server, make_user, tmp_path):
    user = make_user()
    token = signed_in_token(upload_server.port, user)
    source = make_source_clip(tmp_path / "source.mp4")
    video = padded_mp4(source, tmp_path / "big.mp4", size=django_settings.VIDEO_MAX_UPLOAD_BYTES - 64 * 1024)
    assert tus_upload(upload_server.port, source, token=token, chunk=5 * MB) == 204  # warm-up

    result = measure(upload_server, video, token=token, chunk=5 * MB)

    assert result.status == 204
    assert result.growth_mb < RSS_GROWTH_LIMIT_MB, f"peak RSS grew {result.growth_mb:.1f} MB"
    job = VideoJob.objects.filter(user=user).order_by("-created_at").first()
    assert (tmp_path / "media" / job.video_path).stat().st_size == video.stat().st_size
    assert ResumableUpload.objects.filter(user=user, job=job).exists()
    assert not list((tmp_path / "media" / "resumable").rglob("*.part"))

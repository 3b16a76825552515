"""A 100 MB resumable upload in 5 MB chunks through the real HTTP stack (gunicorn, one sync
worker) never holds the video in memory: the web process's peak RSS grows by well under 30 MB
(bench/video_resumable_bench.py has the same measurement next to the multipart upload)."""

from __future__ import annotations

import pytest
from django.conf import settings as django_settings

from bench.server import request_json, running_server
from bench.video_resumable_bench import measure, tus_upload
from bench.video_upload_bench import GUNICORN_ARGS, MB, make_source_clip, padded_mp4, upload_server_env
from tests.celery_worker import _broker_url, _database_url
from tests.conftest import PASSWORD
from video.models import ResumableUpload, VideoJob

RSS_GROWTH_LIMIT_MB = 30


@pytest.fixture
def server(transactional_db, tmp_path):
    env = {**upload_server_env(tmp_path), "DATABASE_URL": _database_url(), "CELERY_BROKER_URL": _broker_url()}
    if django_settings.REDIS_URL:
        env["REDIS_URL"] = django_settings.REDIS_URL
    with running_server(env, extra_args=GUNICORN_ARGS) as running:
        yield running


def test_a_100_mb_resumable_upload_in_5_mb_chunks_is_streamed_to_disk(server, make_user, tmp_path):
    user = make_user()
    status, body = request_json(server.port, "POST", "/api/auth/login", {"email": user.email, "password": PASSWORD})
    assert status == 200, body
    token = body["data"]["accessToken"]
    source = make_source_clip(tmp_path / "source.mp4")
    video = padded_mp4(source, tmp_path / "big.mp4", size=django_settings.VIDEO_MAX_UPLOAD_BYTES - 64 * 1024)
    assert tus_upload(server.port, source, token=token, chunk=5 * MB) == 204  # warm-up

    result = measure(server, video, token=token, chunk=5 * MB)

    assert result.status == 204
    assert result.growth_mb < RSS_GROWTH_LIMIT_MB, f"peak RSS grew {result.growth_mb:.1f} MB"
    job = VideoJob.objects.filter(user=user).order_by("-created_at").first()
    assert (tmp_path / "media" / job.video_path).stat().st_size == video.stat().st_size
    assert ResumableUpload.objects.filter(user=user, job=job).exists()
    assert not list((tmp_path / "media" / "resumable").rglob("*.part"))

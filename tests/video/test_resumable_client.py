"""Resumable uploads with an independent client over real HTTP: tuspy in its own process sends
part of a video to gunicorn (the default gthread worker), is SIGKILLed, and a new process
resumes from the stored URL; the real Celery worker then processes the job. A connection cut in
the middle of a chunk keeps the bytes that arrived."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from bench.server import request_json, running_server, server_env
from bench.video_upload_bench import padded_mp4
from tests.celery_worker import _broker_url, _database_url, _instance_dir
from tests.conftest import PASSWORD
from tests.video.conftest import wait_terminal
from video.models import ResumableUpload, VideoJob

UPLOADER = Path(__file__).with_name("tus_uploader.py")
CHUNK = 256 * 1024
GTHREAD = ("--worker-class", "gthread", "--threads", "4", "--timeout", "120")


def web_env(workdir: Path, media_root: Path) -> dict[str, str]:
    env = server_env(
        workdir,
        settings_module="config.settings",
        DATABASE_URL=_database_url(),
        CELERY_BROKER_URL=_broker_url(),
        INSTANCE_DIR=str(_instance_dir()),
        MEDIA_ROOT=str(media_root),
        CELERY_TASK_ALWAYS_EAGER="false",
        RATE_LIMITS_ENABLED="false",
    )
    if django_settings.REDIS_URL:
        env["REDIS_URL"] = django_settings.REDIS_URL
    return env


@pytest.fixture
def web(worker, tmp_path):
    with running_server(web_env(tmp_path, worker.media_root), extra_args=GTHREAD) as server:
        yield server


def token_for(port: int, user) -> str:
    status, body = request_json(port, "POST", "/api/auth/login", {"email": user.email, "password": PASSWORD})
    assert status == 200, body
    return body["data"]["accessToken"]


def uploader(port: int, token: str, path: Path, url_file: Path, mode: str, options: dict) -> subprocess.Popen:
    endpoint = f"http://127.0.0.1:{port}/api/video/uploads/"
    command = [sys.executable, str(UPLOADER), endpoint, token, str(path), str(CHUNK), str(url_file), mode]
    return subprocess.Popen(
        [*command, json.dumps(options)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def test_tuspy_killed_mid_upload_resumes_from_a_new_process(web, worker, user, clips, tmp_path):
    token = token_for(web.port, user)
    video = padded_mp4(clips["index"], tmp_path / "trip.mp4", size=2 * 1024 * 1024)
    url_file = tmp_path / "upload-url"
    options = {"frameInterval": "2", "maxFrames": "3", "thumbnailTimestamp": "0.5"}

    first = uploader(web.port, token, video, url_file, "start", options)
    assert first.stdout is not None
    assert first.stdin is not None
    offsets = []
    while len(offsets) < 3:  # created, then two chunks
        line = first.stdout.readline()
        assert line.startswith("offset "), f"{line!r} {first.stderr.read() if first.poll() is not None else ''}"
        offsets.append(int(line.split()[1]))
        if len(offsets) < 3:
            first.stdin.write("\n")
            first.stdin.flush()
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(timeout=10)

    assert offsets == [0, CHUNK, 2 * CHUNK]
    upload = ResumableUpload.objects.get(user=user)
    assert upload.offset == 2 * CHUNK
    assert upload.job is None
    assert VideoJob.objects.count() == 0

    second = uploader(web.port, token, video, url_file, "resume", options)
    out, err = second.communicate(timeout=120)

    assert second.returncode == 0, err
    lines = out.split()
    assert lines[:2] == ["offset", str(2 * CHUNK)], out  # resumed where the server was, not from 0
    assert out.strip().endswith("done")
    job = wait_terminal(VideoJob.objects.get(user=user).id)
    assert job.status == "completed", f"{job.error}\n{worker.log()}"
    assert job.filename == "trip.mp4"
    assert job.size_bytes == video.stat().st_size
    assert (job.frame_interval, job.max_frames, job.thumbnail_timestamp) == (2.0, 3, 0.5)
    assert job.metadata["width"] == 320
    assert job.metadata["height"] == 240
    assert job.frames.count() == 3
    assert (worker.media_root / job.video_path).read_bytes() == video.read_bytes()
    assert not list((worker.media_root / "resumable").rglob("*.part"))


def test_a_connection_cut_mid_chunk_keeps_what_arrived(web, user, clips, tmp_path):
    token = token_for(web.port, user)
    data = clips["mp4"].read_bytes()
    conn = http.client.HTTPConnection("127.0.0.1", web.port, timeout=30)
    meta = "filename Y2xpcC5tcDQ="
    headers = {"Authorization": f"Bearer {token}", "Tus-Resumable": "1.0.0"}
    conn.request(
        "POST", "/api/video/uploads/", headers={**headers, "Upload-Length": str(len(data)), "Upload-Metadata": meta}
    )
    created = conn.getresponse()
    created.read()
    assert created.status == 201
    path = created.getheader("Location").split(str(web.port), 1)[1]
    conn.close()

    cut = http.client.HTTPConnection("127.0.0.1", web.port, timeout=30)
    cut.putrequest("PATCH", path)
    for name, value in {
        **headers,
        "Upload-Offset": "0",
        "Content-Type": "application/offset+octet-stream",
        "Content-Length": str(len(data)),
    }.items():
        cut.putheader(name, value)
    cut.endheaders()
    cut.send(data[:30_000])
    cut.sock.shutdown(2)  # the phone lost its network
    cut.close()

    def kept():
        upload = ResumableUpload.objects.filter(user=user).first()
        return upload if upload is not None and upload.offset == 30_000 else None

    from tests.celery_worker import wait_for

    wait_for(kept, timeout=30, what="the server to record the bytes that arrived")

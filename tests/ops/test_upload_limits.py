"""Bodies over an endpoint's limit are refused from their declared length before they are read,
and chunked bodies (no declared length) get 411 instead of a misleading "no file was sent".

The in-process tests cover every upload endpoint; the gunicorn tests prove the point that matters
on the wire: the 413 arrives while the client has sent only the headers and a few bytes."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from accounts.models import User
from ai_services.models import AIJob
from bench.server import running_server, server_env
from embeddings.models import Embedding
from video.models import VideoJob

pytestmark = pytest.mark.django_db

MB = 1024 * 1024
UPLOADS = [
    ("/api/video/upload", "VIDEO_MAX_UPLOAD_BYTES", "video"),
    ("/api/user/avatar", "AVATAR_MAX_BYTES", "avatar"),
    ("/api/ai/analyze-image", "AI_IMAGE_MAX_BYTES", "image"),
    ("/api/ai/speech-to-text", "AI_AUDIO_MAX_BYTES", "audio"),
]


def nothing_stored(user: User, media: Path) -> None:
    user.refresh_from_db()
    assert not user.avatar
    assert not VideoJob.objects.exists()
    assert not AIJob.objects.exists()
    assert not Embedding.objects.exists()
    assert not media.exists() or not [p for p in media.rglob("*") if p.is_file()]


@pytest.mark.parametrize(("path", "setting", "field"), UPLOADS)
def test_declared_length_over_the_upload_limit_is_413(client_a, user, settings, path, setting, field):
    declared = getattr(settings, setting) + 1 * MB
    response = client_a.generic(
        "POST",
        path,
        data=b"--x\r\n",
        content_type="multipart/form-data; boundary=x",
        CONTENT_LENGTH=str(declared),
    )
    assert response.status_code == 413, response.content
    body = response.json()
    assert body["success"] is False
    assert body["code"] == "file_too_large"
    assert "upload limit" in body["message"]
    assert body["errors"] == {field: [body["message"]]}
    nothing_stored(user, Path(settings.MEDIA_ROOT))


def test_upload_limit_follows_its_setting(client_a, settings):
    settings.AVATAR_MAX_BYTES = 1000
    response = client_a.generic(
        "POST", "/api/user/avatar", data=b"", content_type="multipart/form-data; boundary=x", CONTENT_LENGTH="70000"
    )
    assert response.status_code == 413


def test_json_body_over_the_default_limit_is_413_before_it_is_read(client_a, user, settings):
    declared = settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1
    response = client_a.generic(
        "POST",
        "/api/embeddings/create",
        data=b'{"text": "',
        content_type="application/json",
        CONTENT_LENGTH=str(declared),
    )
    assert response.status_code == 413
    assert response.json()["code"] == "request_too_large"
    nothing_stored(user, Path(settings.MEDIA_ROOT))


@pytest.mark.parametrize("path", [path for path, _setting, _field in UPLOADS] + ["/api/auth/login"])
def test_chunked_body_is_411(client_a, user, settings, path):
    response = client_a.generic(
        "POST", path, data=b"", content_type="multipart/form-data; boundary=x", HTTP_TRANSFER_ENCODING="chunked"
    )
    assert response.status_code == 411
    body = response.json()
    assert body["code"] == "length_required"
    assert "Content-Length" in body["message"]
    nothing_stored(user, Path(settings.MEDIA_ROOT))


def test_bodies_within_the_limit_still_reach_the_view(client_a):
    response = client_a.post("/api/embeddings/bulk-delete", {"ids": [1]}, format="json")
    assert response.status_code == 200


# --- on the wire, through gunicorn ------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("upload-limits")
    env = server_env(workdir, DATABASE_URL=f"sqlite:///{workdir / 'db.sqlite3'}")
    env.pop("REDIS_URL", None)
    env.pop("CELERY_BROKER_URL", None)
    with running_server(env) as running:
        yield running


def _raw_exchange(port: int, head: str, body: bytes) -> tuple[int, dict]:
    """Send the headers and `body` (a small part of what the headers announce), then read the
    answer without sending anything else."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(head.encode() + body)
        received = b""
        try:
            while b"\r\n\r\n" not in received or not _complete(received):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                received += chunk
        except ConnectionResetError:
            pass  # the server closed with our unread bytes pending: the answer came first
    status_line, _, rest = received.partition(b"\r\n")
    _headers, _, payload = rest.partition(b"\r\n\r\n")
    return int(status_line.split()[1]), json.loads(payload)


def _complete(received: bytes) -> bool:
    head, _, payload = received.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(payload) >= int(line.split(b":", 1)[1])
    return False


def test_gunicorn_answers_413_before_the_body_is_sent(server):
    declared = django_settings.VIDEO_MAX_UPLOAD_BYTES + 20 * MB  # 120 MB announced
    head = (
        "POST /api/video/upload HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: multipart/form-data; boundary=b0undary\r\n"
        f"Content-Length: {declared}\r\n\r\n"
    )
    part = b'--b0undary\r\nContent-Disposition: form-data; name="video"; filename="big.mp4"\r\n\r\n' + b"\0" * 1024
    status, body = _raw_exchange(server.port, head, part)
    assert status == 413
    assert body["code"] == "file_too_large"


def test_gunicorn_answers_411_to_a_chunked_upload(server):
    head = (
        "POST /api/video/upload HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: multipart/form-data; boundary=b0undary\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b'--b0undary\r\nContent-Disposition: form-data; name="video"; filename="a.mp4"\r\n\r\nabc\r\n'
    status, body = _raw_exchange(server.port, head, f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
    assert status == 411
    assert body["code"] == "length_required"

"""Every upload endpoint against the attack corpus (`tests/attack_corpus.py`, `tests/data/attack/`):
decompression bombs, polyglots, traversal and control-character file names, deep nesting,
control characters, zero-byte and truncated files.

Each answer is a 4xx in the error envelope, or a success for the benign samples (a real file
under a hostile name); never a 5xx. A refused upload leaves nothing behind: no stored file, no
temporary upload, no avatar, no job that is not failed, no quota spent.

The multipart bodies are written by hand: Django's test client would strip the directories from
a file name, which is the very thing a traversal name tests.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from ai_services.models import AIJob
from quotas.selectors import quota_account_forget
from quotas.services import quota_account_ensure
from tests.attack_corpus import Sample, hostile_samples
from video.models import VideoJob

pytestmark = pytest.mark.django_db


@dataclass(frozen=True)
class Endpoint:
    path: str
    field: str
    kind: str  # which samples are benign for it


ENDPOINTS = [
    Endpoint("/api/user/avatar", "avatar", "image"),
    Endpoint("/api/ai/analyze-image", "image", "image"),
    Endpoint("/api/ai/speech-to-text", "audio", "audio"),
    Endpoint("/api/video/upload", "video", "video"),
]
CASES = [
    pytest.param(endpoint, sample, id=f"{endpoint.field}-{index}-{sample.name[:24].encode('unicode_escape').decode()}")
    for endpoint in ENDPOINTS
    for index, sample in enumerate(hostile_samples(endpoint.kind))
]


def multipart(field: str, filename: str, content: bytes, *, extra: dict[str, str] | None = None) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    quoted = filename.replace("\\", "\\\\").replace('"', '\\"').encode("utf-8", "surrogateescape")
    body = b""
    for name, value in (extra or {}).items():
        body += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
    body += f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="'.encode() + quoted
    body += b'"\r\nContent-Type: application/octet-stream\r\n\r\n' + content + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


@pytest.fixture
def local_engines(settings):
    settings.OPENAI_API_KEY = ""
    settings.AI_PROVIDER = "local"
    settings.AI_PROVIDERS = dict.fromkeys(("chat", "transcribe", "speak", "vision", "embed"), "local")


def files_under(folder: Path) -> list[Path]:
    return [path for path in folder.rglob("*") if path.is_file()] if folder.exists() else []


def assert_error_envelope(response) -> dict:
    assert 400 <= response.status_code < 500, (response.status_code, response.content[:400])
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["success"] is False
    assert body["message"]
    assert body["code"]
    assert isinstance(body["errors"], dict)
    return body


@pytest.mark.parametrize(("endpoint", "sample"), CASES)
def test_upload_endpoint_survives_the_attack_corpus(
    client_a, user, settings, upload_tmp, local_engines, endpoint: Endpoint, sample: Sample
):
    body, content_type = multipart(endpoint.field, sample.name, sample.content)
    response = client_a.generic("POST", endpoint.path, data=body, content_type=content_type)

    assert response.status_code < 500, (response.status_code, response.content[:400])
    if response.status_code < 400:
        assert sample.benign, f"{sample.name!r} was accepted by {endpoint.path}: {response.content[:300]!r}"
        assert response.json()["success"] is True
        stored = files_under(Path(settings.MEDIA_ROOT))
        # Whatever was stored was named by the server, never by the client.
        assert all(".." not in path.name and "\x00" not in path.name for path in stored)
        assert all(sample.name not in str(path) for path in stored)
        assert all(b"evil.sh" not in path.read_bytes() for path in stored)  # re-encoded, payload dropped
        return

    assert_error_envelope(response)
    user.refresh_from_db()
    assert not user.avatar
    assert not VideoJob.objects.exists()
    assert not AIJob.objects.exclude(status=AIJob.Status.FAILED).exists()
    assert files_under(Path(settings.MEDIA_ROOT)) == []
    assert files_under(upload_tmp) == []
    quota_account_forget(user=user)
    assert quota_account_ensure(user=user).used == 0


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=[e.field for e in ENDPOINTS])
def test_upload_endpoint_refuses_the_file_under_another_field(client_a, user, settings, upload_tmp, endpoint):
    body, content_type = multipart("not-" + endpoint.field, "a.png", b"\x89PNG\r\n\x1a\n")
    response = client_a.generic("POST", endpoint.path, data=body, content_type=content_type)
    assert_error_envelope(response)
    assert files_under(Path(settings.MEDIA_ROOT)) == []
    assert files_under(upload_tmp) == []


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=[e.field for e in ENDPOINTS])
def test_upload_endpoint_refuses_a_broken_multipart_body(client_a, settings, upload_tmp, endpoint):
    body = b'--b\r\nContent-Disposition: form-data; name="' + endpoint.field.encode() + b'"; filename="x"\r\n\r\nabc'
    response = client_a.generic("POST", endpoint.path, data=body, content_type="multipart/form-data; boundary=b")
    assert_error_envelope(response)
    assert files_under(Path(settings.MEDIA_ROOT)) == []
    assert files_under(upload_tmp) == []

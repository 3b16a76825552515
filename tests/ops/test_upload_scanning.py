"""Virus scanning of every upload path by a real clamd (tests/clamav.py): avatar, analyze-image,
speech-to-text and video upload. Infected files are refused in the envelope with nothing stored;
a scanner that does not answer (a port with nothing listening) refuses or accepts by setting."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image
from prometheus_client import REGISTRY

from accounts.models import User
from ai_services.models import AIJob
from core.scanning import scanner_ping, upload_scan
from quotas.models import QuotaAccount
from tests.ai_services.conftest import wav_bytes
from tests.clamav import EICAR, EICAR_SIGNATURE, PATTERN_SIGNATURE, TEST_PATTERN
from tests.net import closed_port
from tests.video.media_fixtures import make_clip
from video.models import VideoJob

pytestmark = pytest.mark.django_db


def scans(kind: str, result: str) -> float:
    return REGISTRY.get_sample_value("mma_upload_scans_total", {"kind": kind, "result": result}) or 0.0


def png(size=(64, 48), color=(200, 30, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format="PNG")
    return out.getvalue()


def infected_png() -> bytes:
    # A valid image with the pattern after its end: Pillow would take it, only the scanner refuses it.
    return png() + TEST_PATTERN


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return make_clip(tmp_path_factory.mktemp("scan-clips") / "clip.mp4", seconds=1.0)


def stored_files(settings) -> list[Path]:
    root = Path(settings.MEDIA_ROOT)
    return [path for path in root.rglob("*") if path.is_file()] if root.exists() else []


def assert_infected(response, field: str, signature: str) -> None:
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["success"] is False
    assert body["code"] == "file_infected"
    assert signature in body["message"]
    assert body["errors"][field]


def post_avatar(client, content: bytes, name: str = "me.png"):
    upload = SimpleUploadedFile(name, content, content_type="image/png")
    return client.post("/api/user/avatar", {"avatar": upload}, format="multipart")


def post_video(client, content: bytes):
    upload = SimpleUploadedFile("clip.mp4", content, content_type="video/mp4")
    return client.post("/api/video/upload", {"video": upload}, format="multipart")


# --- The hook against clamd ---------------------------------------------------------------------


def test_hook_passes_clean_and_names_each_signature(clamav):
    assert scanner_ping()
    clean = SimpleUploadedFile("clean.bin", b"nothing to see here" * 100)
    upload_scan(clean, kind="avatar", field="avatar")
    assert clean.tell() == 0  # the caller reads the upload from the start

    from core.exceptions import FileInfected

    for content, signature in ((EICAR, EICAR_SIGNATURE), (b"x" * 5000 + TEST_PATTERN, PATTERN_SIGNATURE)):
        with pytest.raises(FileInfected) as caught:
            upload_scan(SimpleUploadedFile("bad.bin", content), kind="avatar", field="avatar")
        assert signature in caught.value.message


def test_scanning_off_without_an_address(settings, client_a, user):
    settings.CLAMAV_ADDRESS = ""
    assert not scanner_ping()
    response = post_avatar(client_a, infected_png())
    assert response.status_code == 200, response.content


# --- Each upload path ---------------------------------------------------------------------------


def test_clean_avatar_is_stored_and_counted(clamav, client_a, user):
    before = scans("avatar", "clean")
    response = post_avatar(client_a, png())
    assert response.status_code == 200, response.content
    user.refresh_from_db()
    assert user.avatar
    assert scans("avatar", "clean") == before + 1


def test_infected_avatar_is_refused_logged_counted_and_not_stored(clamav, client_a, user, settings, caplog):
    before = scans("avatar", "infected")
    with caplog.at_level(logging.WARNING, logger="core.scanning"):
        response = post_avatar(client_a, infected_png())
    assert_infected(response, "avatar", PATTERN_SIGNATURE)
    user.refresh_from_db()
    assert not user.avatar
    assert stored_files(settings) == []
    assert scans("avatar", "infected") == before + 1
    record = next(r for r in caplog.records if r.getMessage() == "infected upload refused")
    assert record.signature.startswith(PATTERN_SIGNATURE)
    assert record.upload_kind == "avatar"


def test_eicar_is_refused_before_the_format_check(clamav, client_a, user):
    # Not an image at all: the scanner's verdict comes first, so the client learns why.
    response = post_avatar(client_a, EICAR, name="eicar.com")
    assert_infected(response, "avatar", EICAR_SIGNATURE)


def test_clean_image_is_analyzed(clamav, local_settings, client_a, user):
    upload = SimpleUploadedFile("picture.png", png(), content_type="image/png")
    response = client_a.post("/api/ai/analyze-image", {"image": upload}, format="multipart")
    assert response.status_code == 200, response.content


def test_infected_image_is_refused_without_a_job_or_a_charge(clamav, local_settings, client_a, user):
    before = scans("image", "infected")
    upload = SimpleUploadedFile("picture.png", infected_png(), content_type="image/png")
    response = client_a.post("/api/ai/analyze-image", {"image": upload}, format="multipart")
    assert_infected(response, "image", PATTERN_SIGNATURE)
    assert AIJob.objects.count() == 0
    assert not QuotaAccount.objects.filter(user=user, used__gt=0).exists()
    assert scans("image", "infected") == before + 1


def test_clean_audio_is_queued(clamav, local_settings, client_a, user, settings):
    upload = SimpleUploadedFile("tone.wav", wav_bytes(1.0), content_type="audio/wav")
    response = client_a.post("/api/ai/speech-to-text", {"audio": upload, "async": "true"}, format="multipart")
    assert response.status_code == 202, response.content
    assert AIJob.objects.get().status == AIJob.Status.PENDING
    assert len(stored_files(settings)) == 1  # the queued upload


def test_infected_audio_is_refused_and_not_stored(clamav, local_settings, client_a, user, settings):
    upload = SimpleUploadedFile("tone.wav", wav_bytes(1.0) + TEST_PATTERN, content_type="audio/wav")
    response = client_a.post("/api/ai/speech-to-text", {"audio": upload, "async": "true"}, format="multipart")
    assert_infected(response, "audio", PATTERN_SIGNATURE)
    assert AIJob.objects.count() == 0
    assert stored_files(settings) == []


def test_clean_video_is_accepted(clamav, client_a, user, clip, upload_tmp):
    before = scans("video", "clean")
    response = post_video(client_a, clip.read_bytes())
    assert response.status_code == 202, response.content
    assert VideoJob.objects.count() == 1
    assert scans("video", "clean") == before + 1


def test_infected_video_is_refused_with_nothing_stored(clamav, client_a, user, clip, settings, upload_tmp):
    # Past the in-memory threshold: the upload streams to a temporary file, which is what clamd reads.
    padding = b"\0" * (settings.FILE_UPLOAD_MAX_MEMORY_SIZE + 1024)
    response = post_video(client_a, clip.read_bytes() + padding + TEST_PATTERN)
    assert_infected(response, "video", PATTERN_SIGNATURE)
    assert VideoJob.objects.count() == 0
    assert stored_files(settings) == []
    assert list(upload_tmp.iterdir()) == []


# --- clamd not answering ------------------------------------------------------------------------


def test_scanner_down_refuses_with_503(settings, client_a, user, clip, upload_tmp):
    settings.CLAMAV_ADDRESS = f"127.0.0.1:{closed_port()}"
    settings.CLAMAV_WHEN_UNAVAILABLE = "refuse"
    before = scans("avatar", "unavailable")

    response = post_avatar(client_a, png())
    assert response.status_code == 503, response.content
    body = response.json()
    assert body["success"] is False
    assert body["code"] == "scanner_unavailable"
    assert response["Retry-After"]
    assert not User.objects.get(pk=user.pk).avatar
    assert scans("avatar", "unavailable") == before + 1

    response = post_video(client_a, clip.read_bytes())
    assert response.status_code == 503, response.content
    assert VideoJob.objects.count() == 0
    assert list(upload_tmp.iterdir()) == []


def test_scanner_down_accepts_with_a_warning_when_so_configured(settings, client_a, user, caplog):
    settings.CLAMAV_ADDRESS = f"tcp://127.0.0.1:{closed_port()}"
    settings.CLAMAV_WHEN_UNAVAILABLE = "accept"
    with caplog.at_level(logging.WARNING, logger="core.scanning"):
        response = post_avatar(client_a, png())
    assert response.status_code == 200, response.content
    record = next(r for r in caplog.records if r.getMessage() == "virus scanner unavailable")
    assert record.accepted is True
    assert record.upload_kind == "avatar"


def test_missing_unix_socket_counts_as_down(settings, tmp_path, client_a, user):
    settings.CLAMAV_ADDRESS = str(tmp_path / "no-clamd.sock")
    settings.CLAMAV_WHEN_UNAVAILABLE = "refuse"
    response = post_avatar(client_a, png())
    assert response.status_code == 503
    assert response.json()["code"] == "scanner_unavailable"

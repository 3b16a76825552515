"""Images are capped by pixels (AI_IMAGE_MAX_PIXELS, AVATAR_MAX_PIXELS) well below Pillow's own
89 MP bomb threshold, and large JPEGs are decoded at reduced scale (draft), so a photo costs
little memory and a bomb costs none."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from ai_services.models import AIJob
from quotas.selectors import quota_account_forget, quota_account_get
from tests.attack_corpus import photo_jpeg, png_bomb

pytestmark = pytest.mark.django_db

URL = "/api/ai/analyze-image"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bomb_81mp() -> bytes:
    data = png_bomb(9000, 9000)
    assert len(data) < 300_000  # 81 MP in a few hundred KB
    return data


@pytest.fixture(scope="module")
def photo_24mp(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("photos") / "photo-24mp.jpg"
    path.write_bytes(photo_jpeg(6000, 4000))
    return path


def test_pixel_caps_are_well_below_pillows_default(settings):
    from PIL import Image

    assert settings.AI_IMAGE_MAX_PIXELS <= Image.MAX_IMAGE_PIXELS // 2
    assert settings.AVATAR_MAX_PIXELS <= Image.MAX_IMAGE_PIXELS // 2


def test_81_megapixel_png_bomb_is_refused_before_decoding(local_settings, client_a, user, bomb_81mp):
    response = client_a.post(URL, {"image": SimpleUploadedFile("bomb.png", bomb_81mp)}, format="multipart")
    assert response.status_code == 413, response.content
    body = response.json()
    assert body["code"] == "image_too_large"
    assert "9000x9000" in body["message"]
    assert not AIJob.objects.exists()
    quota_account_forget(user=user)
    assert quota_account_get(user=user).used == 0


def test_81_megapixel_png_bomb_is_refused_as_avatar(client_a, user, bomb_81mp):
    response = client_a.post(
        "/api/user/avatar", {"avatar": SimpleUploadedFile("bomb.png", bomb_81mp)}, format="multipart"
    )
    assert response.status_code == 413
    assert response.json()["code"] == "image_too_large"
    user.refresh_from_db()
    assert not user.avatar


def test_pixel_cap_comes_from_the_setting(local_settings, client_a):
    local_settings.AI_IMAGE_MAX_PIXELS = 1000
    response = client_a.post(URL, {"image": SimpleUploadedFile("wide.png", png_bomb(50, 21))}, format="multipart")
    assert response.status_code == 413
    assert "1,000 pixels" in response.json()["message"]
    local_settings.AI_IMAGE_MAX_PIXELS = 1050
    response = client_a.post(URL, {"image": SimpleUploadedFile("wide.png", png_bomb(50, 21))}, format="multipart")
    assert response.status_code == 200, response.content


def test_large_jpeg_is_analyzed_and_reports_its_real_size(local_settings, client_a, photo_24mp):
    upload = SimpleUploadedFile("photo.jpg", photo_24mp.read_bytes(), content_type="image/jpeg")
    response = client_a.post(URL, {"image": upload}, format="multipart")
    assert response.status_code == 200, response.content
    job = AIJob.objects.get()
    assert (job.input["width"], job.input["height"]) == (6000, 4000)
    assert max(job.input["sent_width"], job.input["sent_height"]) == 2048


_MEASURE = """
import json, sys, django
django.setup()
from django.core.files.uploadedfile import SimpleUploadedFile
from ai_services.services import image_prepare

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024

data = open(sys.argv[1], "rb").read()
image_prepare(upload=SimpleUploadedFile("warm.jpg", data[:0] or open(sys.argv[2], "rb").read()))
before = status("VmRSS:")
with open("/proc/self/clear_refs", "w") as refs:
    refs.write("5")  # reset the peak (VmHWM) to the current size
prepared = image_prepare(upload=SimpleUploadedFile("photo.jpg", data))
print(json.dumps({"peak_delta": status("VmHWM:") - before, "sent": [prepared.width, prepared.height]}))
"""


def test_large_jpeg_decodes_with_bounded_memory(photo_24mp, tmp_path):
    """Peak memory of preparing a 24 MP JPEG (6000x4000, 72 MB as RGB pixels), measured in a
    fresh interpreter. draft() decodes it at half scale, so the peak stays far below a full decode."""
    warm = tmp_path / "warm.jpg"
    warm.write_bytes(photo_jpeg(64, 48))
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(photo_24mp), str(warm)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    print(f"24 MP JPEG: peak RSS delta {measured['peak_delta'] / 1_048_576:.1f} MB, sent {measured['sent']}")
    assert measured["sent"] == [2048, 1365]
    # A full-size decode holds 72 MB of pixels before any copy; the bound is generous on purpose.
    assert measured["peak_delta"] < 150 * 1_048_576

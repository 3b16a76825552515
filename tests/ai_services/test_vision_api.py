"""POST /api/ai/analyze-image: validation by content, downscaling and re-encoding before a
provider sees the image, local OCR analysis, failures and billing."""

from __future__ import annotations

import base64
import io
import struct
import zlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image, ImageDraw, ImageFont

from ai_services.models import AIJob
from quotas.selectors import quota_account_forget, quota_account_get
from quotas.services import quota_limit_set

URL = "/api/ai/analyze-image"


def used_units(user) -> int:
    quota_account_forget(user=user)
    return quota_account_get(user=user).used


def image_file(
    fmt: str = "JPEG", size=(64, 48), mode: str = "RGB", color=(200, 30, 30), exif=None, name=None
) -> SimpleUploadedFile:
    buffer = io.BytesIO()
    picture = Image.new(mode, size, color)
    kwargs = {"exif": exif} if exif is not None else {}
    picture.save(buffer, format=fmt, **kwargs)
    return SimpleUploadedFile(name or f"picture.{fmt.lower()}", buffer.getvalue(), content_type="image/jpeg")


def camera_exif() -> Image.Exif:
    exif = Image.Exif()
    exif[271] = "Fairphone"
    exif[272] = "FP5"
    exif[306] = "2024:05:01 10:00:00"
    exif[0x8825] = {1: "N", 2: (52.0, 31.0, 0.0)}  # GPS: must never leave the server
    return exif


def sent_image(fake_openai) -> tuple[str, Image.Image]:
    [request] = fake_openai.requests_to("/chat/completions")
    url = request.body["messages"][0]["content"][1]["image_url"]["url"]
    header, data = url.split(",", 1)
    return header, Image.open(io.BytesIO(base64.b64decode(data)))


def text_image(text: str) -> SimpleUploadedFile:
    picture = Image.new("RGB", (900, 160), "white")
    draw = ImageDraw.Draw(picture)
    draw.text((30, 40), text, fill="black", font=ImageFont.load_default(size=64))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return SimpleUploadedFile("sign.png", buffer.getvalue(), content_type="image/png")


# --- With a remote provider: what is sent ------------------------------------------------------


def test_large_photo_is_downscaled_and_sent_without_metadata(openai_settings, fake_openai, client_a, user):
    photo = image_file(size=(3000, 1500), exif=camera_exif())
    response = client_a.post(URL, {"image": photo, "prompt": "What colour?", "detail": "high"}, format="multipart")
    assert response.status_code == 200, response.content
    data = response.json()["data"]
    assert data["analysis"] == "I see an image."
    assert data["model"] == "gpt-4o-mini"
    assert data["usage"]["promptTokens"] > 0
    assert data["usage"]["totalTokens"] == data["usage"]["promptTokens"] + data["usage"]["completionTokens"]

    header, sent = sent_image(fake_openai)
    assert header == "data:image/jpeg;base64"
    assert sent.format == "JPEG"
    assert sent.size == (2048, 1024)
    assert dict(sent.getexif()) == {}
    request = fake_openai.requests_to("/chat/completions")[0]
    assert request.body["messages"][0]["content"][0]["text"] == "What colour?"
    assert request.body["messages"][0]["content"][1]["image_url"]["detail"] == "high"

    job = AIJob.objects.get(id=data["jobId"])
    assert job.type == "vision"
    assert job.status == "completed"
    assert job.units_charged == 3
    assert job.tokens_used == data["usage"]["totalTokens"]
    assert (job.input["width"], job.input["height"]) == (3000, 1500)
    assert (job.input["sent_width"], job.input["sent_height"]) == (2048, 1024)
    assert job.input["format"] == "jpeg"
    assert used_units(user) == 3


def test_small_image_keeps_its_size_and_default_prompt(openai_settings, fake_openai, client_a):
    response = client_a.post(URL, {"image": image_file(size=(300, 200))}, format="multipart")
    assert response.status_code == 200
    _, sent = sent_image(fake_openai)
    assert sent.size == (300, 200)
    request = fake_openai.requests_to("/chat/completions")[0]
    assert request.body["messages"][0]["content"][0]["text"] == "Describe this image in detail."
    assert request.body["messages"][0]["content"][1]["image_url"]["detail"] == "auto"


def test_transparent_png_stays_png(openai_settings, fake_openai, client_a):
    response = client_a.post(
        URL, {"image": image_file("PNG", size=(40, 40), mode="RGBA", color=(0, 0, 255, 100))}, format="multipart"
    )
    assert response.status_code == 200
    header, sent = sent_image(fake_openai)
    assert header == "data:image/png;base64"
    assert sent.mode == "RGBA"


@pytest.mark.parametrize("fmt", ["GIF", "WEBP"])
def test_gif_and_webp_are_accepted(openai_settings, fake_openai, client_a, fmt):
    mode = "P" if fmt == "GIF" else "RGB"
    color = 3 if fmt == "GIF" else (10, 200, 10)
    response = client_a.post(URL, {"image": image_file(fmt, mode=mode, color=color)}, format="multipart")
    assert response.status_code == 200, response.content
    assert AIJob.objects.get().input["format"] == fmt.lower()


def test_provider_failure_is_recorded_and_refunded(openai_settings, fake_openai, client_a, user):
    fake_openai.fail_next("500", "500", "500")
    response = client_a.post(URL, {"image": image_file()}, format="multipart")
    assert response.status_code == 502
    assert response.json()["code"] == "provider_error"
    job = AIJob.objects.get()
    assert job.status == "failed"
    assert job.units_charged == 0
    assert used_units(user) == 0


# --- Validation ------------------------------------------------------------------------------


def test_fake_image_is_415(openai_settings, fake_openai, client_a, user):
    fake = SimpleUploadedFile("cat.jpg", b"GIF89a but not really an image" * 10, content_type="image/jpeg")
    response = client_a.post(URL, {"image": fake}, format="multipart")
    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_image"
    assert fake_openai.requests == []
    assert AIJob.objects.count() == 0
    assert used_units(user) == 0


def test_image_format_not_on_the_list_is_415(openai_settings, client_a):
    response = client_a.post(URL, {"image": image_file("BMP", name="x.jpg")}, format="multipart")
    assert response.status_code == 415


def test_truncated_image_is_400(openai_settings, client_a):
    whole = image_file(size=(400, 400)).read()
    broken = SimpleUploadedFile("broken.jpg", whole[: len(whole) // 2], content_type="image/jpeg")
    response = client_a.post(URL, {"image": broken}, format="multipart")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_image"


def test_decompression_bomb_is_refused(openai_settings, client_a):
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 30000, 30000, 8, 0, 0, 0, 0)  # 900 megapixels, grey
    bomb = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 100))
    bomb += chunk(b"IEND", b"")
    response = client_a.post(URL, {"image": SimpleUploadedFile("bomb.png", bomb)}, format="multipart")
    assert response.status_code == 413
    assert response.json()["code"] == "image_too_large"


def test_oversized_image_is_413(openai_settings, client_a):
    openai_settings.AI_IMAGE_MAX_BYTES = 1000
    big = image_file(size=(400, 400))
    assert big.size > 1000
    response = client_a.post(URL, {"image": big}, format="multipart")
    assert response.status_code == 413
    assert response.json()["code"] == "file_too_large"


@pytest.mark.parametrize(
    ("payload", "field"),
    [({}, "image"), ({"detail": "ultra"}, "detail"), ({"prompt": "x" * 2001}, "prompt"), ({"image": "text"}, "image")],
)
def test_validation(openai_settings, client_a, payload, field):
    if field != "image":
        payload = {"image": image_file(), **payload}
    response = client_a.post(URL, payload, format="multipart")
    assert response.status_code == 400
    assert field in response.json()["errors"]


def test_quota_exhausted(openai_settings, fake_openai, client_a, user):
    quota_limit_set(account=quota_account_get(user=user), limit=2)
    response = client_a.post(URL, {"image": image_file()}, format="multipart")
    assert response.status_code == 429
    assert response.json()["code"] == "quota_exceeded"
    assert fake_openai.requests == []


def test_no_token(openai_settings, api):
    assert api.post(URL, {"image": image_file()}, format="multipart").status_code == 401


def test_rate_limited(openai_settings, fake_openai, client_a, real_rate_limits):
    burst = real_rate_limits["ai"]["burst"][0]
    for _ in range(burst):
        assert client_a.post(URL, {"image": image_file()}, format="multipart").status_code == 200
    response = client_a.post(URL, {"image": image_file()}, format="multipart")
    assert response.status_code == 429
    assert response.json()["code"] == "rate_limited"


# --- Local analysis --------------------------------------------------------------------------


def test_local_analysis_reads_the_text_and_says_it_is_local(local_settings, client_a, user):
    response = client_a.post(URL, {"image": text_image("HELLO WORLD 2024"), "prompt": "Read it"}, format="multipart")
    assert response.status_code == 200, response.content
    data = response.json()["data"]
    assert data["model"] == "local-ocr"
    assert "HELLO WORLD" in data["text"].upper()
    assert "HELLO" in data["analysis"].upper()
    assert "local" in data["analysis"].lower()
    assert data["facts"]["width"] == 900
    assert data["facts"]["format"] == "PNG"
    assert data["usage"] == {"promptTokens": 0, "completionTokens": 0, "totalTokens": 0}
    job = AIJob.objects.get(id=data["jobId"])
    assert job.provider == "local"
    assert job.status == "completed"
    assert used_units(user) == 3


def test_local_analysis_reports_the_camera_but_not_the_position(local_settings, client_a):
    photo = image_file(size=(2500, 1000), exif=camera_exif())
    response = client_a.post(URL, {"image": photo}, format="multipart")
    assert response.status_code == 200, response.content
    data = response.json()["data"]
    assert data["facts"]["exif"]["camera"] == "Fairphone FP5"
    assert data["facts"]["format"] == "JPEG"
    assert (data["facts"]["width"], data["facts"]["originalWidth"]) == (2048, 2500)
    assert "Fairphone FP5" in data["analysis"]
    assert "52" not in str(data["facts"]["exif"])

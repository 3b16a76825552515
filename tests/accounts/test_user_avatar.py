"""POST/GET/DELETE /api/user/avatar: content-checked, bomb-proof, normalised, served privately."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from accounts.models import User

pytestmark = pytest.mark.django_db

RED, BLUE = (220, 20, 20), (20, 20, 220)


def image_bytes(fmt: str, size=(300, 150), mode="RGB", color=RED, **save) -> bytes:
    image = Image.new(mode, size, color)
    out = io.BytesIO()
    image.save(out, format=fmt, **save)
    return out.getvalue()


def oriented_jpeg() -> bytes:
    """Landscape pixels, top half red and bottom half blue, with EXIF saying "rotate 90° clockwise
    to display" (orientation 6, as phones write) and a camera make and GPS block to strip."""
    image = Image.new("RGB", (300, 150), BLUE)
    image.paste(RED, (0, 0, 300, 75))
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010F] = "SpyCam"
    exif[0x8825] = {1: "N", 2: (48.0, 51.0, 29.0)}
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif.tobytes(), quality=95)
    return out.getvalue()


def upload(client, content: bytes, name: str = "me.jpg", content_type: str = "image/jpeg"):
    return client.post(
        "/api/user/avatar", {"avatar": SimpleUploadedFile(name, content, content_type=content_type)}, format="multipart"
    )


def stored_path(settings, user: User) -> Path:
    user.refresh_from_db()
    return Path(settings.MEDIA_ROOT) / user.avatar.name


def near(pixel, color, tolerance=40) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel[:3], color, strict=True))


def test_jpeg_is_cropped_upright_and_stripped(client_a, user, settings):
    response = upload(client_a, oriented_jpeg())
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["message"] == "Avatar updated"
    assert "/api/user/avatar?v=" in body["data"]["avatar"]

    path = stored_path(settings, user)
    assert path.parent.name == str(user.pk)
    assert path.parent.parent.name == "avatars"
    assert path.suffix == ".jpg"
    with Image.open(path) as stored:
        assert stored.format == "JPEG"
        assert stored.size == (200, 200)
        assert len(stored.getexif()) == 0
        assert "exif" not in stored.info
        rgb = stored.convert("RGB")
        # Rotated 90° clockwise: the red top of the pixels is now the right side.
        assert near(rgb.getpixel((170, 100)), RED)
        assert near(rgb.getpixel((30, 100)), BLUE)
    assert b"SpyCam" not in path.read_bytes()


@pytest.mark.parametrize(
    ("content", "suffix"),
    [
        (image_bytes("PNG", mode="RGBA", color=(0, 128, 0, 100)), ".png"),  # transparency kept
        (image_bytes("PNG"), ".jpg"),
        (image_bytes("GIF", mode="P", color=3), ".jpg"),
        (image_bytes("WEBP", size=(640, 480)), ".jpg"),
    ],
    ids=["png-alpha", "png", "gif", "webp"],
)
def test_every_accepted_format_is_normalised(client_a, user, settings, content, suffix):
    response = upload(client_a, content, name="avatar.bin", content_type="application/octet-stream")
    assert response.status_code == 200, response.content
    path = stored_path(settings, user)
    assert path.suffix == suffix
    with Image.open(path) as stored:
        assert stored.size == (200, 200)
        if suffix == ".png":
            assert stored.mode == "RGBA"
            assert stored.getpixel((100, 100))[3] == 100


def test_animated_gif_keeps_its_first_frame(client_a, user, settings):
    frames = [Image.new("P", (100, 100), color) for color in (1, 2, 3)]
    out = io.BytesIO()
    frames[0].save(out, format="GIF", save_all=True, append_images=frames[1:], duration=100)
    assert upload(client_a, out.getvalue(), name="a.gif", content_type="image/gif").status_code == 200
    with Image.open(stored_path(settings, user)) as stored:
        assert stored.size == (200, 200)


def test_new_avatar_replaces_and_deletes_the_old_file(client_a, user, settings, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        upload(client_a, image_bytes("JPEG"))
    first = stored_path(settings, user)
    with django_capture_on_commit_callbacks(execute=True):
        assert upload(client_a, image_bytes("PNG", color=BLUE), name="b.png").status_code == 200
    second = stored_path(settings, user)
    assert second != first
    assert second.exists()
    assert not first.exists()
    assert sorted(p.name for p in second.parent.iterdir()) == [second.name]


def test_oversized_file_is_413(client_a, user):
    big = b"\xff\xd8\xff" + b"\0" * (5 * 1024 * 1024)
    response = upload(client_a, big)
    assert response.status_code == 413
    body = response.json()
    assert (body["success"], body["code"]) == (False, "file_too_large")
    assert "avatar" in body["errors"]
    user.refresh_from_db()
    assert not user.avatar


def test_far_oversized_upload_is_refused_from_its_declared_length(client_a, user):
    response = upload(client_a, b"\0" * (6 * 1024 * 1024))
    assert response.status_code == 413
    assert response.json()["code"] == "file_too_large"
    user.refresh_from_db()
    assert not user.avatar


def test_file_of_exactly_five_megabytes_is_judged_by_content(client_a):
    response = upload(client_a, b"x" * (5 * 1024 * 1024))
    assert response.status_code == 415


def test_text_file_named_jpg_is_415(client_a, user, settings):
    response = upload(client_a, b"this is not an image at all\n" * 20, name="photo.jpg")
    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"
    media = Path(settings.MEDIA_ROOT)
    assert not media.exists() or not any(media.rglob("*.*"))


def test_real_image_in_an_unaccepted_format_is_415(client_a):
    assert upload(client_a, image_bytes("BMP"), name="photo.png", content_type="image/png").status_code == 415


def test_decompression_bomb_is_refused_before_decoding(client_a, user):
    """20000x20000 pixels (400 MP) in a 48 KB PNG: decoding it would need hundreds of MB."""
    bomb = image_bytes("PNG", size=(20000, 20000), mode="1", color=0)
    assert len(bomb) < 100_000
    response = upload(client_a, bomb, name="bomb.png", content_type="image/png")
    assert response.status_code == 413
    assert response.json()["code"] == "image_too_large"
    user.refresh_from_db()
    assert not user.avatar


def test_pixel_limit_applies_below_pillows_own(client_a, settings):
    """12000x6000 is under Pillow's bomb threshold but over the avatar pixel limit."""
    response = upload(client_a, image_bytes("PNG", size=(12000, 6000), mode="P"), name="wide.png")
    assert response.status_code == 413
    assert response.json()["code"] == "image_too_large"
    assert "12000x6000" in response.json()["message"]


def test_truncated_image_is_400(client_a):
    content = image_bytes("JPEG", size=(400, 400))
    response = upload(client_a, content[: len(content) // 2])
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_image"


@pytest.mark.parametrize(
    ("data", "fmt", "status", "code"),
    [
        ({}, "multipart", 400, "validation_error"),
        ({"avatar": "not-a-file"}, "multipart", 400, "validation_error"),
        ({"avatar": "x"}, "json", 415, "unsupported_media_type"),
    ],
)
def test_missing_or_wrong_field_is_a_clear_error(client_a, data, fmt, status, code):
    response = client_a.post("/api/user/avatar", data, format=fmt)
    assert response.status_code == status
    assert response.json()["code"] == code


def test_empty_file_is_400(client_a):
    response = upload(client_a, b"")
    assert response.status_code == 400
    assert "avatar" in response.json()["errors"]


def test_avatar_needs_a_token(api):
    assert upload(api, image_bytes("JPEG")).status_code == 401
    assert api.get("/api/user/avatar").status_code == 401
    assert api.delete("/api/user/avatar").status_code == 401


def test_owner_gets_the_bytes_with_type_length_and_caching(client_a, user, settings):
    upload(client_a, image_bytes("JPEG"))
    response = client_a.get("/api/user/avatar?v=123", HTTP_ACCEPT="image/*")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/jpeg"
    assert int(response["Content-Length"]) == len(response.content) == stored_path(settings, user).stat().st_size
    assert response["Cache-Control"] == "private, max-age=86400"
    etag = response["ETag"]
    assert etag.startswith('"')
    assert response.content[:3] == b"\xff\xd8\xff"

    cached = client_a.get("/api/user/avatar", HTTP_IF_NONE_MATCH=etag)
    assert cached.status_code == 304
    assert cached.content == b""
    assert cached["ETag"] == etag


def test_png_avatar_is_served_as_png(client_a):
    upload(client_a, image_bytes("PNG", mode="RGBA", color=(1, 2, 3, 4)), name="a.png")
    response = client_a.get("/api/user/avatar")
    assert response["Content-Type"] == "image/png"
    assert response.content[:8] == b"\x89PNG\r\n\x1a\n"


def test_no_avatar_is_404(client_a):
    response = client_a.get("/api/user/avatar")
    assert response.status_code == 404
    assert response.json()["code"] == "avatar_not_found"


def test_another_users_avatar_is_404_unless_staff(make_user, auth_client, settings):
    owner = make_user()
    upload(auth_client(owner), image_bytes("JPEG"))
    stranger = auth_client(make_user())
    assert stranger.get(f"/api/user/avatar?userId={owner.pk}").status_code == 404

    staff = auth_client(make_user(is_staff=True))
    response = staff.get(f"/api/user/avatar?userId={owner.pk}")
    assert response.status_code == 200
    assert response.content == stored_path(settings, owner).read_bytes()
    assert staff.get("/api/user/avatar?userId=999999").status_code == 404
    assert staff.get("/api/user/avatar?userId=abc").status_code == 400


def test_delete_removes_reference_and_file(client_a, user, settings, django_capture_on_commit_callbacks):
    upload(client_a, image_bytes("JPEG"))
    path = stored_path(settings, user)
    with django_capture_on_commit_callbacks(execute=True):
        response = client_a.delete("/api/user/avatar")
    assert response.status_code == 200
    assert response.json()["data"]["avatar"] is None
    assert not path.exists()
    assert client_a.get("/api/user/avatar").status_code == 404
    again = client_a.delete("/api/user/avatar")
    assert again.status_code == 404
    assert again.json()["code"] == "avatar_not_found"

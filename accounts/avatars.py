"""Avatar images: validation by content, safe decoding, normalisation, storage and clean-up.

Uploads are decoded with Pillow restricted to the four accepted formats (so no other decoder,
e.g. one that shells out, ever sees user bytes), with the pixel count checked from the header
before any pixel is decoded. The stored image is re-encoded from pixels only, which strips EXIF
(location, camera) and every other metadata block.
"""

from __future__ import annotations

import hashlib
import io
import secrets
import warnings
from dataclasses import dataclass

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from PIL import Image, ImageOps, UnidentifiedImageError

from accounts.models import User
from core.exceptions import InvalidUpload, UnsupportedMediaType, UploadTooLarge
from core.scanning import upload_scan

ACCEPTED_FORMATS = ("JPEG", "PNG", "GIF", "WEBP")
CONTENT_TYPES = {"jpg": "image/jpeg", "png": "image/png"}


@dataclass(frozen=True)
class AvatarImage:
    content: bytes
    extension: str  # "jpg" or "png"


def _too_many_pixels(width: int, height: int) -> UploadTooLarge:
    return UploadTooLarge(
        f"The image is {width}x{height} pixels; avatars may have at most {settings.AVATAR_MAX_PIXELS:,} pixels.",
        code="image_too_large",
        errors={"avatar": ["Too many pixels."]},
    )


def avatar_image_process(upload: UploadedFile) -> AvatarImage:
    """Check and normalise an uploaded avatar: a 200x200 centre crop, upright, without metadata.

    Raises 413 (file over 5 MB, or more pixels than AVATAR_MAX_PIXELS), 415 (not a JPEG, PNG,
    GIF or WebP by content) or 400 (a broken image)."""
    if upload.size is not None and upload.size > settings.AVATAR_MAX_BYTES:
        raise UploadTooLarge(
            f"The avatar is {upload.size / 1_048_576:.1f} MB; the limit is "
            f"{settings.AVATAR_MAX_BYTES // 1_048_576} MB.",
            errors={"avatar": ["File too large."]},
        )
    if not upload.size:
        raise InvalidUpload("The avatar file is empty.", code="empty_file", errors={"avatar": ["Empty file."]})
    upload_scan(upload, kind="avatar", field="avatar")
    upload.seek(0)
    with warnings.catch_warnings():
        # Pillow only warns between its own limit and twice that; here any bomb is an error.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(upload, formats=ACCEPTED_FORMATS)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise UploadTooLarge(
                "The image has too many pixels to be an avatar.",
                code="image_too_large",
                errors={"avatar": ["Too many pixels."]},
            ) from None
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
            raise UnsupportedMediaType(
                "The avatar must be a JPEG, PNG, GIF or WebP image.",
                errors={"avatar": ["Not a JPEG, PNG, GIF or WebP image."]},
            ) from None
        with image:
            width, height = image.size
            if width * height > settings.AVATAR_MAX_PIXELS:
                raise _too_many_pixels(width, height)
            if width < 1 or height < 1:
                raise InvalidUpload("The image is empty.", code="invalid_image", errors={"avatar": ["Empty image."]})
            try:
                return _normalise(image)
            except (OSError, ValueError, SyntaxError, EOFError) as exc:
                raise InvalidUpload(
                    "The image is damaged and cannot be read.",
                    code="invalid_image",
                    errors={"avatar": [str(exc)[:200] or "Unreadable image."]},
                ) from None


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)


def _normalise(image: Image.Image) -> AvatarImage:
    size = settings.AVATAR_SIZE
    # JPEG can decode at 1/2, 1/4 or 1/8 scale: a 12 MP photo becomes a few hundred pixels
    # without ever being decoded at full size (a no-op for the other formats).
    image.draft("RGB", (size * 2, size * 2))
    # Only the first frame of an animated GIF/WebP; apply the EXIF orientation, then forget EXIF.
    upright = ImageOps.exif_transpose(image)
    alpha = _has_alpha(upright)
    pixels = upright.convert("RGBA" if alpha else "RGB")
    square = ImageOps.fit(pixels, (size, size), method=Image.Resampling.LANCZOS, centering=(0.5, 0.5))
    square.info.clear()
    out = io.BytesIO()
    if alpha:
        square.save(out, format="PNG", optimize=True)
        return AvatarImage(content=out.getvalue(), extension="png")
    square.save(out, format="JPEG", quality=88, optimize=True)
    return AvatarImage(content=out.getvalue(), extension="jpg")


def avatar_file_store(*, user_id: int, image: AvatarImage) -> str:
    """Store a processed avatar under a fresh random name (so caches never serve an old one)."""
    name = f"avatars/{user_id}/{secrets.token_urlsafe(12)}.{image.extension}"
    return default_storage.save(name, ContentFile(image.content))


def avatar_file_delete_on_commit(name: str) -> None:
    """Delete a stored avatar once the transaction that dropped the reference commits (at once
    outside a transaction), so a rolled-back change never points at a missing file."""
    if name:
        transaction.on_commit(lambda: default_storage.delete(name))


def avatar_content_type(name: str) -> str:
    return CONTENT_TYPES.get(name.rsplit(".", 1)[-1].lower(), "application/octet-stream")


def avatar_etag(name: str) -> str:
    # Names are random per upload, so the name identifies the content.
    return '"' + hashlib.sha256(name.encode()).hexdigest()[:32] + '"'


def avatar_files_delete_for_user(*, user: User) -> None:
    """Account-deletion clean-up (settings.ACCOUNT_DELETION_CLEANUPS): the avatar file and any
    other file left in the user's avatar folder."""
    names: set[str] = {user.avatar.name} if user.avatar.name else set()
    folder = f"avatars/{user.pk}"
    try:
        _dirs, files = default_storage.listdir(folder)
    except (FileNotFoundError, NotImplementedError):
        files = []
    names.update(f"{folder}/{file}" for file in files)
    for name in sorted(names):
        avatar_file_delete_on_commit(name)

"""Image analysis: validate an upload by its content, downscale and re-encode it without its
metadata (a few EXIF tags are kept as text, never the location), then ask the provider."""

from __future__ import annotations

import io
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile

from accounts.models import User
from ai_services.models import AIJob
from ai_services.providers import PreparedImage, Usage
from ai_services.providers.capabilities import vision_provider
from ai_services.services.jobs import ai_job_begin, ai_job_failures_recorded, ai_job_succeed, text_summary
from core.exceptions import InvalidUpload, UnsupportedMediaType, UploadTooLarge
from core.scanning import upload_scan
from quotas.modalities import VISION

if TYPE_CHECKING:
    from PIL import Image

logger = logging.getLogger(__name__)

ACCEPTED_IMAGE_FORMATS = {"JPEG", "PNG", "GIF", "WEBP"}
DEFAULT_VISION_PROMPT = "Describe this image in detail."
# EXIF tags worth telling about a photo (never its GPS position).
_EXIF_TAGS = {271: "cameraMake", 272: "cameraModel", 306: "dateTime"}
_EXIF_SUB_TAGS = {36867: "dateTaken"}


def image_prepare(*, upload: UploadedFile) -> PreparedImage:
    """Validate an image by its content, downscale it (longest side at most AI_IMAGE_MAX_SIDE)
    and re-encode it without its metadata, which is what a provider gets to see.

    The pixel count is checked from the header before anything is decoded (AI_IMAGE_MAX_PIXELS,
    far below Pillow's own 89 MP bomb threshold), and a JPEG is decoded at the smallest DCT
    scale (1/2, 1/4, 1/8) that still covers the longest side sent on, so a 24 MP photo costs a
    quarter of its full-size memory or less."""
    from PIL import Image, UnidentifiedImageError

    if (upload.size or 0) > settings.AI_IMAGE_MAX_BYTES:
        raise UploadTooLarge(f"The image is larger than {settings.AI_IMAGE_MAX_BYTES // (1024 * 1024)} MB.")
    upload_scan(upload, kind="image", field="image")
    upload.seek(0)
    raw = upload.read()
    limit = settings.AI_IMAGE_MAX_SIDE
    try:
        with warnings.catch_warnings():
            # A decompression bomb is refused, not decoded.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            picture = Image.open(io.BytesIO(raw), formats=sorted(ACCEPTED_IMAGE_FORMATS))
            source_format = picture.format or ""
            source_size = picture.size
            _check_pixels(*source_size)
            exif = _exif_summary(picture)
            picture.draft("RGB", _draft_size(source_size, limit))
            picture.seek(0)
            picture.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _too_many_pixels() from None
    except UnidentifiedImageError:
        raise UnsupportedMediaType(
            "The file is not a JPEG, PNG, GIF or WebP image.", code="unsupported_image"
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError):
        raise InvalidUpload("The image is damaged or truncated.", code="invalid_image") from None
    return _image_reencode(
        picture, source_format=source_format, source_size=source_size, source_bytes=len(raw), exif=exif
    )


def _draft_size(size: tuple[int, int], limit: int) -> tuple[int, int]:
    """The size the image is shrunk to, with its own aspect ratio: draft() reduces only while
    both sides stay at least this large, so a square box would keep a landscape photo whole."""
    width, height = size
    ratio = min(1.0, limit / max(width, height, 1))
    return max(1, int(width * ratio)), max(1, int(height * ratio))


def _too_many_pixels(width: int | None = None, height: int | None = None) -> UploadTooLarge:
    cap = settings.AI_IMAGE_MAX_PIXELS
    size = f"The image is {width}x{height} pixels; " if width else "The image has too many pixels; "
    return UploadTooLarge(
        f"{size}images may have at most {cap:,} pixels.",
        code="image_too_large",
        errors={"image": ["Too many pixels."]},
    )


def _check_pixels(width: int, height: int) -> None:
    if width * height > settings.AI_IMAGE_MAX_PIXELS:
        raise _too_many_pixels(width, height)


def _image_reencode(
    picture: Image.Image, *, source_format: str, source_size: tuple[int, int], source_bytes: int, exif: dict[str, str]
) -> PreparedImage:
    from PIL import Image, ImageOps

    # The size before draft(): a JPEG decoded at 1/2 scale still reports what was uploaded.
    source_width, source_height = source_size
    picture = ImageOps.exif_transpose(picture)
    has_alpha = picture.mode in ("RGBA", "LA", "PA") or (picture.mode == "P" and "transparency" in picture.info)
    picture = picture.convert("RGBA" if has_alpha else "RGB")
    limit = settings.AI_IMAGE_MAX_SIDE
    if max(picture.size) > limit:
        picture.thumbnail((limit, limit), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    if has_alpha:
        picture.save(buffer, format="PNG", optimize=True)
        mime = "image/png"
    else:
        picture.save(buffer, format="JPEG", quality=88, optimize=True)
        mime = "image/jpeg"
    return PreparedImage(
        data=buffer.getvalue(),
        mime=mime,
        width=picture.width,
        height=picture.height,
        source_format=source_format.lower(),
        source_width=source_width,
        source_height=source_height,
        source_bytes=source_bytes,
        exif=exif,
    )


def _exif_summary(picture: Image.Image) -> dict[str, str]:
    try:
        exif = picture.getexif()
    except Exception:  # a broken EXIF block is no reason to refuse the picture
        return {}
    found = {name: exif.get(tag) for tag, name in _EXIF_TAGS.items()}
    try:
        sub = exif.get_ifd(0x8769)
        found.update({name: sub.get(tag) for tag, name in _EXIF_SUB_TAGS.items()})
    except Exception:
        logger.debug("Unreadable EXIF sub-IFD", exc_info=True)
    return {name: str(value).strip("\x00 ")[:100] for name, value in found.items() if value}


@dataclass
class VisionOutcome:
    analysis: str
    model: str
    usage: Usage
    details: dict[str, Any]
    job: AIJob


def image_analyze(*, user: User, upload: UploadedFile, prompt: str | None, detail: str) -> VisionOutcome:
    image = image_prepare(upload=upload)
    provider = vision_provider()
    model = provider.default_model(VISION.key)
    prompt = (prompt or "").strip() or DEFAULT_VISION_PROMPT
    call = ai_job_begin(
        user=user,
        modality=VISION,
        units=VISION.price(),
        provider=provider.name,
        model=model,
        summary={
            "filename": Path(upload.name or "image").name[:100],
            "bytes": image.source_bytes,
            "format": image.source_format,
            "width": image.source_width,
            "height": image.source_height,
            "sent_width": image.width,
            "sent_height": image.height,
            "prompt": text_summary(prompt),
            "detail": detail,
        },
    )
    with ai_job_failures_recorded(call):
        result = provider.analyze_image(image=image, prompt=prompt, detail=detail, model=model)
        usage = result.usage or Usage()
        job = ai_job_succeed(
            call,
            output={"analysis": text_summary(result.analysis), "analysis_chars": len(result.analysis)},
            tokens=usage.total_tokens,
            model=result.model,
        )
    return VisionOutcome(analysis=result.analysis, model=result.model, usage=usage, details=result.details, job=job)

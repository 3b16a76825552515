"""The tus 1.0 wire format: its headers, how they are parsed, and the errors whose status codes
the protocol fixes (412, 409, 410, 413, 415). Bodies of errors stay the error envelope."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime

from django.utils.http import http_date

from core.api.input_guards import has_unstorable_text
from core.exceptions import ApplicationError, Conflict, InvalidInput, UnsupportedMediaType, UploadTooLarge

TUS_VERSION = "1.0.0"
TUS_EXTENSIONS = "creation,termination,expiration"
OFFSET_CONTENT_TYPE = "application/offset+octet-stream"
# CORS: the tus headers are exposed and allowed in config/settings/video.py.
MAX_METADATA_BYTES = 4096


class TusVersionUnsupported(ApplicationError):
    status_code = 412
    code = "tus_version_unsupported"
    default_message = f"Only tus {TUS_VERSION} is supported: send `Tus-Resumable: {TUS_VERSION}`."

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message, headers={"Tus-Version": TUS_VERSION})


class OffsetMismatch(Conflict):
    code = "upload_offset_mismatch"


class UploadGone(ApplicationError):
    status_code = 410
    code = "upload_expired"
    default_message = "The upload expired and its bytes were removed; start a new upload."


class ChunkTooLarge(UploadTooLarge):
    code = "upload_length_exceeded"


def check_version(value: str | None) -> None:
    if (value or "").strip() != TUS_VERSION:
        raise TusVersionUnsupported()


def check_content_type(value: str | None) -> None:
    if (value or "").split(";")[0].strip().lower() != OFFSET_CONTENT_TYPE:
        raise UnsupportedMediaType(
            f"A PATCH body must be sent as Content-Type: {OFFSET_CONTENT_TYPE}.", code="unsupported_media_type"
        )


def parse_int_header(name: str, value: str | None) -> int:
    """A non-negative integer header (Upload-Length, Upload-Offset), or a 400 naming it."""
    text = (value or "").strip()
    # At most 18 digits: every valid length fits, and Python refuses to parse thousands of digits.
    if not text.isdigit() or not text.isascii() or len(text) > 18:
        raise InvalidInput(f"{name} must be a non-negative integer.", errors={name: ["A non-negative integer."]})
    return int(text)


def parse_metadata(value: str | None) -> dict[str, str]:
    """Upload-Metadata: comma-separated `key base64value` pairs (a key alone means "")."""
    text = (value or "").strip()
    if len(text) > MAX_METADATA_BYTES:
        raise InvalidInput(f"Upload-Metadata is longer than {MAX_METADATA_BYTES} characters.")
    pairs: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, _, encoded = item.partition(" ")
        if not key.isascii() or not key.isprintable() or key in pairs:
            raise InvalidInput("Upload-Metadata has an invalid or repeated key.", errors={"uploadMetadata": [key]})
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            message = f"Upload-Metadata: the value of {key!r} is not base64 of UTF-8 text."
            raise InvalidInput(message, errors={key: [message]}) from None
        if has_unstorable_text(decoded):
            raise InvalidInput(f"Upload-Metadata: {key!r} holds characters that cannot be stored.")
        pairs[key] = decoded
    return pairs


def expires_header(when: datetime) -> str:
    """Upload-Expires in the RFC 7231 date format the expiration extension asks for."""
    return http_date(when.timestamp())

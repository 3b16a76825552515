"""Streamed video uploads: the multipart body goes to a temporary file 64 KB at a time, never
into memory, and is refused as soon as it passes the size limit.

Django's parser hands every file part to the request's upload handlers. The default pair keeps
small files in memory; the handler below always writes to disk (the probe needs a path anyway),
keeps only the `video` part, and stops the upload the moment it grows past the limit.
"""

from __future__ import annotations

from typing import NoReturn

from django.conf import settings
from django.core.files.uploadedfile import TemporaryUploadedFile, UploadedFile
from django.core.files.uploadhandler import StopUpload, TemporaryFileUploadHandler
from django.http import HttpRequest

from core.exceptions import InvalidInput, InvalidUpload, UnsupportedMediaType, UploadTooLarge
from core.scanning import upload_scan
from video import media

VIDEO_FIELD = "video"
DRAIN_CHUNK_BYTES = 64 * 1024
ACCEPTED_FORMATS = "MP4, MOV, AVI, WMV, MKV or WebM"


def max_upload_bytes() -> int:
    return settings.VIDEO_MAX_UPLOAD_BYTES


def _human(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.4g} MB"
    return f"{size / 1024:.4g} KB"


def too_large_message() -> str:
    return f"The video is larger than the {_human(max_upload_bytes())} upload limit."


class VideoUploadHandler(TemporaryFileUploadHandler):
    """Writes the `video` part to a temporary file and discards every other file part."""

    def __init__(self, request: HttpRequest | None = None, *, limit: int | None = None) -> None:
        super().__init__(request)
        self.limit = max_upload_bytes() if limit is None else limit
        self.too_large = False
        self.accepted: TemporaryUploadedFile | None = None
        self._current_is_video = False

    def new_file(
        self,
        field_name: str,
        file_name: str,
        content_type: str,
        content_length: int | None,
        charset: str | None = None,
        content_type_extra: dict[str, bytes] | None = None,
    ) -> None:
        # A second `video` part or any other file part is read past without being stored.
        # (Raising SkipFile would make Django close `self.file`, the already accepted video.)
        self._current_is_video = field_name == VIDEO_FIELD and self.accepted is None
        if not self._current_is_video:
            return
        if content_length is not None and content_length > self.limit:
            self._refuse()
        super().new_file(field_name, file_name, content_type, content_length, charset, content_type_extra)
        self.accepted = self.file

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        if not self._current_is_video:
            return None
        if start + len(raw_data) > self.limit:
            self._refuse()
        self.file.write(raw_data)
        return None

    def file_complete(self, file_size: int) -> UploadedFile | None:
        if not self._current_is_video:
            return None
        self._current_is_video = False
        return super().file_complete(file_size)

    def _refuse(self) -> NoReturn:
        self.too_large = True
        # Django closes (and so deletes) the temporary file, then reads the rest of the body
        # without keeping it, so the client still receives the 413.
        raise StopUpload(connection_reset=False)


def install_upload_handler(request: HttpRequest) -> VideoUploadHandler:
    """Make `request` stream its files through a `VideoUploadHandler` (before the body is read)."""
    handler = VideoUploadHandler(request)
    request.upload_handlers = [handler]
    return handler


def drain(request: HttpRequest) -> None:
    """Read the rest of the request body without keeping it.

    Answering before the body is read makes some servers reset the connection while the client
    is still sending, and the client then never sees the answer; the development server would
    even read the remainder into memory in one piece.
    """
    while request.read(DRAIN_CHUNK_BYTES):
        pass


def _classify(error: media.MediaError) -> InvalidUpload:
    """The probe's refusal as an HTTP error: a format or stream we do not take is 415, a file we
    cannot read (garbage, truncated, empty) is 400. The message names the rule that failed."""
    message = str(error)
    if error.code == "unsupported_video_format":
        return UnsupportedMediaType(message, code=error.code)
    if error.code == "no_video_stream":
        return UnsupportedMediaType(
            f"{message.rstrip('.')}: audio-only files are not accepted; upload a video ({ACCEPTED_FORMATS}).",
            code="no_video_stream",
        )
    return InvalidUpload(f"{message.rstrip('.')}. The file must be a complete, readable video.", code="invalid_video")


def validate_video(upload: UploadedFile | None) -> media.VideoInfo:
    """Probe the streamed upload and apply the upload rules; returns what the probe found."""
    if upload is None:
        raise InvalidInput(
            "video: no file was sent (multipart field 'video').",
            errors={VIDEO_FIELD: ["No file was sent in the multipart field 'video'."]},
        )
    size = upload.size or 0
    if size > max_upload_bytes():
        raise UploadTooLarge(too_large_message(), errors={VIDEO_FIELD: [too_large_message()]})
    if size == 0:
        raise InvalidUpload("The video file is empty.", code="invalid_video", errors={VIDEO_FIELD: ["Empty file."]})
    upload_scan(upload, kind="video", field=VIDEO_FIELD)
    try:
        # Always a file on disk: VideoUploadHandler is the request's only upload handler.
        if not isinstance(upload, TemporaryUploadedFile):
            raise TypeError("video uploads must be streamed to a temporary file (install_upload_handler)")
        info = media.probe(upload.temporary_file_path())
    except media.MediaError as exc:
        error = _classify(exc)
        error.errors = {VIDEO_FIELD: [error.message]}
        raise error from exc
    limit = settings.VIDEO_MAX_DURATION_SECONDS
    if info.duration > limit:
        message = f"The video is too long: {info.duration:.1f} s; the limit is {limit / 60:g} minutes ({limit:g} s)."
        raise InvalidUpload(message, code="video_too_long", errors={VIDEO_FIELD: [message]})
    return info

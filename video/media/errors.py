"""The one exception of the media layer: a file we cannot use or a media operation that failed."""

from __future__ import annotations


class MediaError(Exception):
    """A file that cannot be used, or a media operation that failed; str() is fit to show a user.

    ``detail`` keeps the tool output (ffmpeg stderr tail, PyAV message) for logs. ``code`` tells a
    file we do not take (``unsupported_video_format``, ``no_video_stream``) from one that is broken
    (``invalid_video``, the default).
    """

    def __init__(self, message: str, *, detail: str | None = None, code: str = "invalid_video") -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail
        self.code = code

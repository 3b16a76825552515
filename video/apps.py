import logging
import os

from django.apps import AppConfig

logger = logging.getLogger(__name__)


class VideoConfig(AppConfig):
    name = "video"
    verbose_name = "Video"

    def ready(self) -> None:
        from core import ffmpeg

        # The pinned binary is checked by the test suite; one an operator chose is checked here, so a
        # too-old ffmpeg is named at start-up rather than in the first failed job.
        if os.environ.get(ffmpeg.ENV_VAR, "").strip():
            try:
                binary = ffmpeg.ffmpeg_binary()
            except ffmpeg.FfmpegUnavailable as exc:
                logger.error("ffmpeg refused: %s", exc)
            else:
                logger.info("Using ffmpeg %s at %s (%s)", binary.version, binary.path, ffmpeg.ENV_VAR)

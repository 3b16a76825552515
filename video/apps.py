import logging
import os
from typing import Any

from django.apps import AppConfig

logger = logging.getLogger(__name__)


def _asset_builders(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    from video.services.assets import asset_builders_check  # services import models: not at app loading

    return list(asset_builders_check())


class VideoConfig(AppConfig):
    name = "video"
    verbose_name = "Video"

    def ready(self) -> None:
        from django.core import checks

        from core import ffmpeg

        # A new asset kind without a builder stops start-up (and `manage.py check`).
        checks.register(_asset_builders, checks.Tags.models)

        # The pinned binary is checked by the test suite; one an operator chose is checked here, so a
        # too-old ffmpeg is named at start-up rather than in the first failed job.
        if os.environ.get(ffmpeg.ENV_VAR, "").strip():
            try:
                binary = ffmpeg.ffmpeg_binary()
            except ffmpeg.FfmpegUnavailable as exc:
                logger.error("ffmpeg refused: %s", exc)
            else:
                logger.info("Using ffmpeg %s at %s (%s)", binary.version, binary.path, ffmpeg.ENV_VAR)

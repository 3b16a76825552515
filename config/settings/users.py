"""Quotas and user management: the quota reset run, avatars, account deletion clean-ups."""

from __future__ import annotations

from config.settings.base import env
from config.settings.celery import CELERY_BEAT_SCHEDULE

# --- Quotas and user management -------------------------------------------------------------
# The hourly run resets accounts nobody touches; an account is also reset lazily when it is used.
CELERY_BEAT_SCHEDULE["quotas-reset-due"] = {
    "task": "quotas.reset_due",
    "schedule": env.int("QUOTA_RESET_INTERVAL_SECONDS", default=3600),
}
# Avatars (the seed's upload table: 5 MB, JPEG/PNG/GIF/WebP, cropped to 200x200). The pixel cap
# refuses decompression bombs before Pillow decodes them; 40 MP (as AI_IMAGE_MAX_PIXELS) admits any
# phone camera photo.
AVATAR_MAX_BYTES = 5 * 1024 * 1024
AVATAR_SIZE = 200
AVATAR_MAX_PIXELS = env.int("AVATAR_MAX_PIXELS", default=40_000_000)
AVATAR_CACHE_SECONDS = env.int("AVATAR_CACHE_SECONDS", default=86400)
# Dotted paths of callables run as `cleanup(user=user)` inside the transaction that deletes an
# account, before the user row (and by cascade every row it owns) is deleted. Each removes the
# files of its app's rows, with `transaction.on_commit` so a failed deletion keeps them.
ACCOUNT_DELETION_CLEANUPS: list[str] = [
    "accounts.avatars.avatar_files_delete_for_user",
    "video.services.video_files_delete_for_user",
    "ai_services.services.ai_files_delete_for_user",
    "ai_services.services.voice.voice_audio_delete_for_user",
    "embeddings.services.embeddings_cache_delete_for_user",
]

"""Files: media and static storage, upload buffering, virus scanning of uploads."""

from __future__ import annotations

import re
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from config.settings.base import BASE_DIR, IS_PRODUCTION, VAR_DIR, env

# --- Files -----------------------------------------------------------------------------------
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(VAR_DIR / "media")))
MEDIA_URL = "/media/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
STATIC_URL = "/static/"
STORAGES = {
    "default": {"BACKEND": env.str("FILE_STORAGE_BACKEND", default="django.core.files.storage.FileSystemStorage")},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if IS_PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
# Uploads larger than this go to a temporary file while they stream in.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_TEMP_DIR = env.str("FILE_UPLOAD_TEMP_DIR", default=None)
# Virus scanning of every upload by clamd (core/scanning.py). Empty: off. `host:port`,
# `tcp://host:port`, or a unix socket (`/run/clamav/clamd.ctl` or `unix:///...`). While clamd does
# not answer, `refuse` answers 503 scanner_unavailable and `accept` keeps the upload with a
# logged warning; production refuses by default, development accepts.
CLAMAV_ADDRESS = env.str("CLAMAV_ADDRESS", default="").strip()
if CLAMAV_ADDRESS and not re.fullmatch(r"unix://.+|/.+|(tcp://)?(\[[0-9a-fA-F:.]+\]|[^:/\s]+):\d{1,5}", CLAMAV_ADDRESS):
    raise ImproperlyConfigured("CLAMAV_ADDRESS must be host:port, tcp://host:port, a socket path or unix:///path.")
CLAMAV_TIMEOUT_SECONDS = env.float("CLAMAV_TIMEOUT_SECONDS", default=30.0)
CLAMAV_WHEN_UNAVAILABLE = env.str("CLAMAV_WHEN_UNAVAILABLE", default="refuse" if IS_PRODUCTION else "accept")
if CLAMAV_WHEN_UNAVAILABLE not in ("refuse", "accept"):
    raise ImproperlyConfigured("CLAMAV_WHEN_UNAVAILABLE must be 'refuse' or 'accept'.")

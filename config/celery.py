"""The Celery app. The broker is Redis when `REDIS_URL` is set, else a SQLite file (see settings)."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Receivers connected on import: task start/finish/failure log lines, request ids across the
# queue, worker heartbeat and metrics; and the job reapers every worker runs (no beat needed to
# recover a killed worker's job).
from config import reaper  # noqa: E402, F401
from config.observability import celery_signals  # noqa: E402, F401

"""Celery: the broker (embedded SQLite or Redis), task behaviour, worker recycling, and the beat
schedule that the ai, users and video modules add their periodic tasks to."""

from __future__ import annotations

from config.instance import embedded_broker_url
from config.settings.base import env
from config.settings.stores import INSTANCE_DIR, REDIS_URL

# --- Celery ----------------------------------------------------------------------------------
# Without Redis the embedded broker is kombu's SQLAlchemy transport on a SQLite file, so a real
# worker process takes the jobs and requests never block on video or AI work.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or embedded_broker_url(INSTANCE_DIR))
if CELERY_BROKER_URL.startswith("sqla+sqlite:"):
    INSTANCE_DIR.mkdir(parents=True, exist_ok=True)  # SQLite creates the file, not its folder
# Beat (embedded in the `make run` worker, or its own process) keeps its schedule here.
CELERY_BEAT_SCHEDULE_FILENAME = str(INSTANCE_DIR / "celerybeat-schedule")
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Redis re-delivers an unacknowledged task (a worker killed mid-job) after this many seconds.
CELERY_BROKER_TRANSPORT_OPTIONS = (
    {"visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600)}
    if CELERY_BROKER_URL.startswith(("redis://", "rediss://"))
    else {}
)
# Worker children are not recycled by task count: the Whisper model and ffmpeg work would be
# reloaded for nothing. A child whose memory passed this cap (MB; 0 = none) is replaced after
# its current task instead, which bounds growth of the AI libraries where it happens.
_worker_max_memory_mb = env.int("WORKER_MAX_MEMORY_MB", default=2048)
CELERY_WORKER_MAX_MEMORY_PER_CHILD = _worker_max_memory_mb * 1024 if _worker_max_memory_mb > 0 else None
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE: dict[str, dict] = {}

"""Where state lives: the database, the instance directory of this database, the cache."""

from __future__ import annotations

from pathlib import Path

from config.instance import instance_dir
from config.settings.base import VAR_DIR, env

# --- Database --------------------------------------------------------------------------------
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web process read while the worker writes; the timeout rides out short locks.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"}
    )
    # Keep connections: opening one (and running the PRAGMAs) per request costs more than the request.
    DATABASES["default"]["CONN_MAX_AGE"] = None
    # A file, not memory, so a Celery worker process started by the tests sees the test data.
    DATABASES["default"]["TEST"] = {"NAME": env.str("TEST_SQLITE_NAME", default=str(VAR_DIR / "test-db.sqlite3"))}
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# Embedded broker, beat schedule, worker heartbeat files and vector caches of this database only
# (see config/instance.py): instances serving different databases never share them.
INSTANCE_DIR = Path(env.str("INSTANCE_DIR", default="") or instance_dir(VAR_DIR, DATABASES["default"]))

# --- Cache (rate-limit counters, Google keys, token grace windows) ----------------------------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="mma"),
            "OPTIONS": {"CLIENT_CLASS": "django_redis.client.DefaultClient"},
        }
    }
else:
    # Process-local: rate-limit counters are per process, so the embedded default is meant for
    # one web process (which is what `make run` starts).
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

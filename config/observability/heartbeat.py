"""Worker heartbeats: each Celery worker writes "I am alive at T"; `/health/ready` reads the newest.

Where the beats go must be a store the web processes and the workers share:

- `cache` (when `REDIS_URL` is set, the production setup): the Django cache, i.e. Redis. Each worker
  writes `worker:heartbeat:<instance>:<hostname>` and the shared `worker:heartbeat:<instance>:latest`
  (the instance names the database, see config/instance.py, so a deployment of another database on the
  same Redis never passes for ours); readiness only needs
  to know that *some* worker beat recently, so the last writer winning is exactly right, and keys
  expire by themselves when every worker is gone.
- `file` (the embedded default, where the cache is per process): one small JSON file per worker
  under `WORKER_HEARTBEAT_DIR` (default `var/instances/<instance>/worker-heartbeats/`), replaced atomically. `make run`
  starts the web server and the worker on one machine, so a folder is shared by construction.

A database table would also be shared in both setups, but it would need an app of its own and
would put a write every few seconds per worker on the primary database for no gain.

The beat comes from a thread in the worker's main process (started on `worker_ready`), not from
a task: a task would need beat running and a free pool slot, and would report a busy worker as
dead. The thread stops, and the worker's beat is removed, on a graceful shutdown.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.cache import cache

logger = logging.getLogger(__name__)

_SAFE_NAME = re.compile(r"[^A-Za-z0-9._@-]")


@dataclass(frozen=True)
class Heartbeat:
    hostname: str
    at: float  # seconds since the epoch

    @property
    def age(self) -> float:
        return max(0.0, time.time() - self.at)


def _store() -> str:
    return settings.WORKER_HEARTBEAT_STORE


def _key(name: str) -> str:
    return f"worker:heartbeat:{Path(settings.INSTANCE_DIR).name}:{name}"


def _expiry_seconds() -> int:
    # Long enough to read a stale beat (and say "stale" rather than "never"), short enough to clean up.
    return max(3 * settings.WORKER_HEARTBEAT_STALE_SECONDS, 60)


def _file_for(hostname: str) -> Path:
    return Path(settings.WORKER_HEARTBEAT_DIR) / f"{_SAFE_NAME.sub('_', hostname)[:200]}.json"


def heartbeat_write(*, hostname: str, at: float | None = None) -> Heartbeat:
    beat = Heartbeat(hostname=hostname, at=time.time() if at is None else at)
    payload = {"hostname": beat.hostname, "at": beat.at}
    if _store() == "cache":
        cache.set_many({_key(hostname): payload, _key("latest"): payload}, timeout=_expiry_seconds())
        return beat
    path = _file_for(hostname)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Write then rename: a reader never sees half a file.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".beat-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(payload, handle)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return beat


def heartbeat_latest() -> Heartbeat | None:
    if _store() == "cache":
        payload = cache.get(_key("latest"))
        return Heartbeat(hostname=payload["hostname"], at=float(payload["at"])) if payload else None
    directory = Path(settings.WORKER_HEARTBEAT_DIR)
    latest: Heartbeat | None = None
    if not directory.is_dir():
        return None
    for path in directory.glob("*.json"):
        try:
            payload = json.loads(path.read_text())
            beat = Heartbeat(hostname=str(payload["hostname"]), at=float(payload["at"]))
        except (OSError, ValueError, KeyError, TypeError):
            continue  # removed while listing, or not ours
        if latest is None or beat.at > latest.at:
            latest = beat
    return latest


def heartbeat_clear(*, hostname: str) -> None:
    if _store() == "cache":
        cache.delete(_key(hostname))
        latest = cache.get(_key("latest"))
        if latest and latest.get("hostname") == hostname:
            cache.delete(_key("latest"))
        return
    _file_for(hostname).unlink(missing_ok=True)


class HeartbeatThread(threading.Thread):
    """Writes this worker's beat every `WORKER_HEARTBEAT_INTERVAL` seconds until stopped."""

    def __init__(self, hostname: str, interval: float | None = None) -> None:
        super().__init__(name="worker-heartbeat", daemon=True)
        self.hostname = hostname
        self.interval = interval if interval is not None else settings.WORKER_HEARTBEAT_INTERVAL
        self._stop_event = threading.Event()
        self.last_success: float | None = None  # time.monotonic() of the last beat written

    def run(self) -> None:
        while not self._stop_event.is_set():
            try:
                heartbeat_write(hostname=self.hostname)
                self.last_success = time.monotonic()
            except Exception as exc:  # a store that is down now may be back at the next beat
                logger.warning("Worker heartbeat not written: %s: %s", type(exc).__name__, exc)
            self._stop_event.wait(self.interval)

    def is_fresh(self) -> bool:
        return (
            self.last_success is not None
            and time.monotonic() - self.last_success <= settings.WORKER_HEARTBEAT_STALE_SECONDS
        )

    def stop(self, *, clear: bool = True) -> None:
        self._stop_event.set()
        self.join(timeout=self.interval + 5)
        if clear:
            try:
                heartbeat_clear(hostname=self.hostname)
            except Exception as exc:
                logger.warning("Worker heartbeat not cleared: %s", type(exc).__name__)

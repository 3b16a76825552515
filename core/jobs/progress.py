"""Progress reporting for a worker holding a claim: throttled progress writes that double as the
heartbeat, and the stop signal (`JobLost`) once the job is no longer the run's."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

from core.jobs.kinds import JobKind
from core.jobs.lifecycle import job_heartbeat


class JobLost(Exception):
    """The job was cancelled, deleted or taken over while this run was working on it."""


class ProgressReporter:
    """Writes `progress` and the heartbeat at most every `<PREFIX>_PROGRESS_WRITE_SECONDS`, beats
    well inside the stale window even when progress does not move, and raises `JobLost` as soon as
    the job is no longer this run's. Progress never goes back."""

    def __init__(self, *, kind: JobKind[Any], job_id: uuid.UUID | str, token: str) -> None:
        self.kind = kind
        self.job_id = job_id
        self.token = token
        self.percent = 0
        self._written_at = float("-inf")  # the first report is always written
        self._written_percent = -1
        self._min_interval = kind.progress_write_seconds
        self._heartbeat_every = max(kind.stale_seconds / 4, self._min_interval)

    def __call__(self, percent: float, *, force: bool = False) -> None:
        self.percent = max(self.percent, min(int(percent), 100))
        elapsed = time.monotonic() - self._written_at
        changed = self.percent != self._written_percent
        if not force and not (changed and elapsed >= self._min_interval) and elapsed < self._heartbeat_every:
            return
        self.checkpoint()

    def checkpoint(self) -> None:
        owned = job_heartbeat(kind=self.kind, job_id=self.job_id, token=self.token, progress=self.percent)
        self._written_at = time.monotonic()
        self._written_percent = self.percent
        if not owned:
            raise JobLost(str(self.job_id))

    def scaled(self, start: int, end: int) -> Callable[..., None]:
        """A callback for one step that maps the step's own 0..1 (or done/total) onto start..end."""

        def report(done: float, total: float | None = None) -> None:
            fraction = done / total if total else done
            self(start + (end - start) * min(max(fraction, 0.0), 1.0))

        return report

"""The events of one video job: its current state at once, then `progress` and `status` events
as the row changes, until the job ends (or the stream's lifetime is up), with keep-alives.

The row is polled by primary key, three columns, every VIDEO_EVENTS_POLL_SECONDS: one indexed
read per open stream and tick, the same on PostgreSQL and the embedded SQLite, and nothing for
the worker to publish. A stream holds one gunicorn thread, so its lifetime is bounded
(VIDEO_EVENTS_MAX_SECONDS); the client reconnects with Last-Event-ID and gets the current state
at once.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import InterfaceError, OperationalError

from video.models import VideoJob

TERMINAL = frozenset({VideoJob.Status.COMPLETED, VideoJob.Status.FAILED, VideoJob.Status.CANCELLED})


@dataclass(frozen=True)
class JobState:
    job_id: uuid.UUID
    status: str
    progress: int
    error: str
    error_code: str
    updated_at: datetime

    @property
    def event_id(self) -> str:
        """An opaque cursor naming this state (what Last-Event-ID sends back)."""
        return f"{self.status}-{self.progress}"

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL


@dataclass(frozen=True)
class StatusEvent:
    state: JobState


@dataclass(frozen=True)
class ProgressEvent:
    state: JobState


@dataclass(frozen=True)
class KeepAlive:
    """Nothing changed for a while: a comment keeps proxies from closing the stream."""


JobEvent = StatusEvent | ProgressEvent | KeepAlive


def job_state_of(job: VideoJob) -> JobState:
    return JobState(job.id, job.status, job.progress, job.error, job.error_code, job.updated_at)


def video_job_state(*, job_id: uuid.UUID) -> JobState | None:
    row = (
        VideoJob.objects.filter(id=job_id)
        .values_list("status", "progress", "error", "error_code", "updated_at")
        .first()
    )
    if row is None:
        return None
    status, progress, error, error_code, updated_at = row
    return JobState(job_id, status, progress, error, error_code, updated_at)


def video_job_events(
    *, first: JobState, clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep
) -> Iterator[JobEvent]:
    """Events from `first` (the state read when the request was authorised) until the job ends.

    A job deleted while watched ends the stream after its last known state."""
    poll = settings.VIDEO_EVENTS_POLL_SECONDS
    keepalive = settings.VIDEO_EVENTS_KEEPALIVE_SECONDS
    started = last_sent = clock()
    deadline = started + settings.VIDEO_EVENTS_MAX_SECONDS
    state = first
    yield StatusEvent(state)
    while not state.is_terminal and clock() < deadline:
        sleep(poll)
        try:
            current = video_job_state(job_id=first.job_id)
        except (OperationalError, InterfaceError):
            # The database went away under a long-lived stream: end it; the client reconnects
            # (EventSource does, after `retry`) and gets the current state.
            return
        if current is None:
            return
        if current.status != state.status:
            yield StatusEvent(current)
            last_sent = clock()
        elif current.progress != state.progress:
            yield ProgressEvent(current)
            last_sent = clock()
        elif clock() - last_sent >= keepalive:
            yield KeepAlive()
            last_sent = clock()
        state = current

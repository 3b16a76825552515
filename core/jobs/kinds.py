"""What the lifecycle needs to know about one kind of job: its model, its settings, how its
tasks are sent, and how it is paid for (a `Billing` the app injects, so core imports no app)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from django.conf import settings
from django.db.models import Q, QuerySet

from core.jobs.models import BillableJob, JobStatus

J = TypeVar("J", bound=BillableJob)


class Billing(Protocol):
    """Closes what was reserved for a job. Both are called once per job, inside the transaction
    that finishes it (so a finished job never has an open reservation); implementations are
    idempotent."""

    def settle(self, job: BillableJob, *, units: int | None = None, usage: Mapping[str, float] | None = None) -> None:
        """The job succeeded: charge `units` (None keeps the reserved amount) and record `usage`."""

    def refund(self, job: BillableJob) -> None:
        """The job failed or was cancelled: give everything back."""


class NoBilling:
    """For jobs nobody pays for (and tests of the lifecycle alone)."""

    def settle(self, job: BillableJob, *, units: int | None = None, usage: Mapping[str, float] | None = None) -> None:
        return None

    def refund(self, job: BillableJob) -> None:
        return None


def interrupted_message(attempts: int) -> str:
    started = "once" if attempts == 1 else f"{attempts} times"
    return f"Processing was interrupted (the worker stopped) after being started {started}; giving up."


def _interrupted(attempts: int) -> tuple[str, str]:
    return interrupted_message(attempts), "interrupted"


def _never_sent(job_id: uuid.UUID) -> bool:
    return False


def _no_event(status: str, seconds: float | None) -> None:
    return None


@dataclass(frozen=True)
class JobKind(Generic[J]):
    """One kind of billable job.

    Settings are read at call time from `<settings_prefix>_HEARTBEAT_STALE_SECONDS`,
    `<settings_prefix>_MAX_ATTEMPTS` and `<settings_prefix>_PROGRESS_WRITE_SECONDS` (for video:
    the `VIDEO_*` settings deployments already set)."""

    name: str
    model: type[J]
    settings_prefix: str
    billing: Billing = field(default_factory=NoBilling)
    # Statuses a worker may claim the job from, and how long a job may sit in each before the
    # reaper sends its task again (a lost task; a queued job may just be waiting): a number of
    # stale windows, or the name of a `<settings_prefix>_` setting holding seconds.
    waiting: Mapping[str, int | str] = field(default_factory=lambda: {JobStatus.QUEUED: 5})
    # The waiting status a released or re-queued job goes back to (kinds that have always stored
    # another value for "queued" keep it).
    queued_status: str = JobStatus.QUEUED
    # Why a job is given up after its worker died `attempts` times: (error, error_code).
    give_up: Callable[[int], tuple[str, str]] = _interrupted
    # Columns written, besides the status and error, whenever a job is failed or cancelled
    # (refunded): e.g. what the job says it was charged.
    refunded_fields: Mapping[str, object] = field(default_factory=dict)
    # Hands the job to a worker; False when the broker could not be reached.
    send: Callable[[uuid.UUID], bool] = _never_sent
    # Observes transitions (claimed -> "processing", "completed" with its seconds, "failed", ...).
    on_event: Callable[[str, float | None], None] = _no_event
    select_related: tuple[str, ...] = ()
    # The rows a worker runs, when only some rows of the model are worker jobs (the others are
    # begun and finished in a request): only these are claimed and resent.
    worker_rows: Q = field(default_factory=Q)

    def setting(self, name: str) -> float:
        value: float = getattr(settings, f"{self.settings_prefix}_{name}")
        return value

    @property
    def stale_seconds(self) -> float:
        """A running job whose heartbeat is older than this belonged to a worker that died."""
        return self.setting("HEARTBEAT_STALE_SECONDS")

    @property
    def max_attempts(self) -> int:
        return int(self.setting("MAX_ATTEMPTS"))

    @property
    def progress_write_seconds(self) -> float:
        return self.setting("PROGRESS_WRITE_SECONDS")

    def waiting_seconds(self, status: str) -> float:
        """How long a job may wait in `status` before its task is presumed lost."""
        limit = self.waiting[status]
        return self.setting(limit) if isinstance(limit, str) else limit * self.stale_seconds

    @property
    def waiting_statuses(self) -> tuple[str, ...]:
        return tuple(self.waiting)

    @property
    def active_statuses(self) -> tuple[str, ...]:
        return (*self.waiting, JobStatus.RUNNING)

    def rows(self) -> QuerySet[J]:
        return self.model._default_manager.all()

    def event(self, status: str, seconds: float | None = None) -> None:
        self.on_event(status, seconds)

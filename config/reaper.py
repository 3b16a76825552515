"""Workers run the job reapers themselves, so a job whose worker died is recovered with no beat.

Each worker's main process starts one thread on `worker_ready` that calls the reaper tasks in
`WORKER_REAPER_TASKS` directly (not through the broker: it keeps working while the broker is
down, and sends what it re-queues once the broker is back) every `WORKER_REAPER_INTERVAL_SECONDS`,
with jitter so several workers don't reap in lockstep. Several workers (and a beat, if one runs)
may reap at once: every reaper step is a conditional UPDATE on the row as it was seen (status
and heartbeat), so only one of them re-queues, fails or refunds a given job.
"""

from __future__ import annotations

import logging
import random
import threading
from typing import Any

from celery import signals
from django.conf import settings
from django.db import connections

logger = logging.getLogger(__name__)


class ReaperThread(threading.Thread):
    def __init__(self, *, app: Any, tasks: list[str], interval: float) -> None:
        super().__init__(name="job-reaper", daemon=True)
        self.app = app
        self.tasks = tasks
        self.interval = interval
        self.stopped = threading.Event()

    def run(self) -> None:
        # A first pass at once: jobs left behind by a worker that died before this one started.
        while not self.stopped.is_set():
            self.reap_once()
            if self.stopped.wait(self.interval * random.uniform(0.8, 1.2)):  # noqa: S311  (jitter, not crypto)
                break

    def reap_once(self) -> None:
        for name in self.tasks:
            try:
                self.app.tasks[name]()
            except Exception:  # one failed pass (database down) must not end the thread
                logger.warning("Reaper %s failed; retrying in %ss", name, self.interval, exc_info=True)
        # This thread's connection is not kept between passes: a prefork pool forks children
        # from this process, and an idle connection is one more for PostgreSQL to hold.
        connections.close_all()

    def stop(self) -> None:
        self.stopped.set()


_threads: list[ReaperThread] = []


@signals.worker_ready.connect
def _reaper_start(sender: Any = None, **_: Any) -> None:
    interval = settings.WORKER_REAPER_INTERVAL_SECONDS
    if interval <= 0 or sender is None:
        return
    thread = ReaperThread(app=sender.app, tasks=list(settings.WORKER_REAPER_TASKS), interval=interval)
    thread.start()
    _threads.append(thread)


@signals.worker_shutdown.connect
def _reaper_stop(**_: Any) -> None:
    while _threads:
        _threads.pop().stop()

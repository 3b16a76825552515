"""Fixtures of the job-core tests: VideoJob rows (the first kind on the core) with a real quota
reservation, and a kind whose sends are recorded instead of going to a broker."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from core.jobs.kinds import JobKind
from quotas.modalities import Service
from quotas.models import QuotaAccount
from quotas.pricing import units_for_video
from quotas.services import quota_reserve
from video.jobs import VIDEO_JOBS
from video.models import VideoJob


@dataclasses.dataclass
class Sent:
    ids: list[uuid.UUID] = dataclasses.field(default_factory=list)

    def __call__(self, job_id: uuid.UUID) -> bool:
        self.ids.append(job_id)
        return True


@pytest.fixture
def sent() -> Sent:
    return Sent()


@pytest.fixture
def kind(sent: Sent) -> JobKind[VideoJob]:
    """The video kind as configured, except that tasks are recorded rather than sent."""
    return dataclasses.replace(VIDEO_JOBS, send=sent)


@pytest.fixture
def make_job(user) -> Callable[..., VideoJob]:
    def make(**fields: Any) -> VideoJob:
        job_id = uuid.uuid4()
        reservation = quota_reserve(
            user=user, service=Service.VIDEO, units=units_for_video(), job_type="video", job_id=str(job_id)
        )
        fields.setdefault("status", VideoJob.Status.QUEUED)
        return VideoJob.objects.create(
            id=job_id,
            user=user,
            filename="clip.mp4",
            video_path=f"videos/{user.pk}/{job_id}/clip.mp4",
            reservation=reservation,
            **fields,
        )

    return make


@pytest.fixture
def used(user) -> Callable[[], int]:
    return lambda: QuotaAccount.objects.get(user=user).used

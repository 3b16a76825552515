"""Finding moments: the query embedded (charged like any embedding search) and matched against
the user's video moments, best first. Only the caller's vector space is searched, so another
user's moments can never come back."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from accounts.models import User
from core.exceptions import NotFound
from embeddings.services import embedding_search
from video.models import VideoJob
from video.search.indexing import MOMENT_KIND


@dataclass(frozen=True)
class Moment:
    job_id: uuid.UUID
    start: float
    end: float
    text: str
    score: float
    source: str


@dataclass(frozen=True)
class MomentSearch:
    moments: list[Moment]
    units_charged: int


def video_moments_search(*, user: User, query: str, limit: int, job_id: uuid.UUID | None = None) -> MomentSearch:
    """The user's moments closest to `query`, best first; within one video with `job_id`."""
    metadata_filter: dict[str, Any] = {"kind": MOMENT_KIND}
    if job_id is not None:
        if not VideoJob.objects.filter(user=user, id=job_id).exists():
            raise NotFound("Video job not found.")
        metadata_filter["jobId"] = str(job_id)
    outcome = embedding_search(
        user=user,
        query=query,
        limit=limit,
        threshold=settings.VIDEO_SEARCH_MIN_SCORE,
        metadata_filter=metadata_filter,
    )
    hits = [(hit.embedding.get("metadata") or {}, hit) for hit in outcome.results]
    # Moments of a video deleted while they were being indexed are dropped, never shown.
    ids = {str(metadata.get("jobId")) for metadata, _hit in hits}
    live = {str(pk) for pk in VideoJob.objects.filter(user=user, id__in=_uuids(ids)).values_list("id", flat=True)}
    moments = [
        Moment(
            job_id=uuid.UUID(str(metadata["jobId"])),
            start=float(metadata.get("start") or 0.0),
            end=float(metadata.get("end") or 0.0),
            text=str(hit.embedding.get("text") or ""),
            score=round(hit.score, 4),
            source=str(metadata.get("source") or ""),
        )
        for metadata, hit in hits
        if str(metadata.get("jobId")) in live
    ]
    return MomentSearch(moments=moments, units_charged=outcome.units_charged)


def _uuids(values: set[str]) -> list[uuid.UUID]:
    found = []
    for value in values:
        try:
            found.append(uuid.UUID(value))
        except ValueError:
            continue
    return found

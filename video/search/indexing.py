"""The worker's indexing step: caption cues and on-screen text of a job as timed moments in the
owner's embeddings, under the document id of the job (so a re-run replaces them and deleting the
video deletes them). Charged like any embedding, through the embeddings services."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings
from PIL import Image

from accounts.models import User
from embeddings.documents import Piece, embedding_document_replace
from embeddings.retrieval import VIDEO_MOMENT
from embeddings.services import document_delete
from video import storage
from video.captions.timing import Cue
from video.models import VideoFrame, VideoJob

logger = logging.getLogger(__name__)

# The metadata every moment carries, and the `source` values.
MOMENT_KIND = VIDEO_MOMENT  # grounded chat cites these with their video and time
SOURCE_CAPTIONS = "captions"
SOURCE_SCREEN = "screen"


@dataclass(frozen=True)
class ScreenText:
    start: float
    end: float
    text: str


def _ocr(frame: VideoFrame) -> str:
    from ai_services.providers.local.ocr import ocr_image  # loads the OCR engine on first use

    with storage.storage().open(frame.path, "rb") as handle, Image.open(handle) as image:
        return " ".join(ocr_image(image).split())


def _has_word(text: str) -> bool:
    """Whether on-screen text is worth finding: it holds a word (a burnt-in timecode or a lone
    number does not)."""
    letters = max(settings.VIDEO_SEARCH_OCR_MIN_LETTERS, 1)
    return re.search(rf"[^\W\d_]{{{letters},}}", text) is not None


def screen_texts(*, frames: Sequence[VideoFrame], interval: float) -> list[ScreenText]:
    """Text on the pipeline's frames (at most VIDEO_SEARCH_OCR_MAX_FRAMES of them, evenly spread):
    a text shown on consecutive frames is one moment, from its first frame to after its last."""
    if not frames or settings.VIDEO_SEARCH_OCR_MAX_FRAMES <= 0:
        return []
    step = max(1, -(-len(frames) // settings.VIDEO_SEARCH_OCR_MAX_FRAMES))
    chosen = list(frames)[::step]
    found: list[ScreenText] = []
    for frame in chosen:
        text = _ocr(frame)
        if not _has_word(text):
            continue
        end = frame.timestamp + interval * step
        if found and found[-1].text == text:
            found[-1] = ScreenText(found[-1].start, end, text)
        else:
            found.append(ScreenText(frame.timestamp, end, text))
    return found


def moment_pieces(*, job_id: uuid.UUID, cues: Sequence[Cue], screen: Sequence[ScreenText]) -> list[Piece]:
    def piece(text: str, start: float, end: float, source: str) -> Piece:
        metadata = {"kind": MOMENT_KIND, "jobId": str(job_id), "start": start, "end": end, "source": source}
        return Piece(text=text, metadata=metadata)

    return [piece(cue.text, cue.start, cue.end, SOURCE_CAPTIONS) for cue in cues] + [
        piece(item.text, round(item.start, 3), round(item.end, 3), SOURCE_SCREEN) for item in screen
    ]


def video_moments_index(*, job: VideoJob, cues: Sequence[Cue], frames: Sequence[VideoFrame]) -> int:
    """Replace the job's moments; returns how many were stored. Never raises: a video stays
    useful without search (a quota too low for the embeddings, say), so failures are logged."""
    if not settings.VIDEO_SEARCH_INDEX:
        return 0
    try:
        screen = screen_texts(frames=frames, interval=job.frame_interval)
        pieces = moment_pieces(job_id=job.id, cues=cues, screen=screen)
        created = embedding_document_replace(user=_owner(job), document_id=job.id, pieces=pieces)
    except Exception:
        logger.warning("Indexing the moments of video job %s failed", job.id, exc_info=True)
        return 0
    if not VideoJob.objects.filter(id=job.id).exists():
        video_moments_delete(job=job)  # deleted while it was being indexed: leave nothing behind
        return 0
    return 0 if created is None else created.chunks


def video_moments_delete(*, job: VideoJob) -> None:
    """Remove the job's moments from its owner's embeddings."""
    try:
        document_delete(user=_owner(job), document_id=job.id)
    except Exception:
        logger.warning("Deleting the moments of video job %s failed", job.id, exc_info=True)


def _owner(job: VideoJob) -> User:
    return User.objects.get(pk=job.user_id)

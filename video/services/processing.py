"""The worker's path for a claimed job: probe, frames, thumbnail, then the results committed
together with the job's completion (and settlement).

Every processing run writes into its own `<run>` folder (from the claim token), so a worker that
was presumed dead and comes back can never overwrite or delete the files of the run that replaced
it; the previous run's files are removed once the new run's rows are committed."""

from __future__ import annotations

import os
import time

from django.db import transaction

from core.exceptions import ApplicationError
from core.jobs import lifecycle
from core.jobs.progress import JobLost, ProgressReporter
from video import media, storage
from video.captions.transcribe import caption_cue_rows, captions_for_job
from video.jobs import VIDEO_JOBS, video_job_record
from video.models import VideoCaptionCue, VideoFrame, VideoJob
from video.search.indexing import video_moments_index
from video.services.metadata import clamp_timestamp, metadata_from_info

THUMBNAIL_MAX_SIDE = 320
FRAME_JPEG_QUALITY = 85

# The name the pipeline and its tasks have always used for the core's stop signal: the job was
# cancelled, deleted or taken over while this worker was processing it.
JobCancelled = JobLost


def video_job_process(*, job: VideoJob, token: str) -> VideoJob:
    """Run the pipeline for a claimed job: metadata, frames, thumbnail, then commit the results.

    Raises JobCancelled if the job stops being this run's; any other exception means failure
    (the task marks the job failed and refunds)."""
    started = time.monotonic()
    progress = ProgressReporter(kind=VIDEO_JOBS, job_id=job.id, token=token)
    run = token[:12]
    paths = storage.JobPaths(user_id=job.user_id, job_id=job.id)
    frames_prefix = paths.frames(run)
    thumbnail_name = paths.run_thumbnail(run)
    try:
        progress(1, force=True)  # a job cancelled or deleted since the claim stops here
        with storage.local_video(job.video_path) as path:
            info = media.probe(path)
            metadata = metadata_from_info(info, container=job.container)
            progress(5)
            thumbnail_at = clamp_timestamp(job.thumbnail_timestamp, duration=info.duration, fps=info.fps)
            frames, thumbnail = _extract(
                job=job,
                path=path,
                info=info,
                progress=progress,
                frames_prefix=frames_prefix,
                thumbnail_name=thumbnail_name,
                thumbnail_at=thumbnail_at,
            )
            transcript = captions_for_job(wanted=job.captions, path=path, info=info)
        progress(98, force=True)
        processing_ms = int((time.monotonic() - started) * 1000)
        usage: dict[str, float] = {"processing_ms": processing_ms}
        if transcript is not None:
            usage["audio_seconds"] = transcript.audio_seconds  # the captions' reservation settles on it
        with transaction.atomic():
            completed = lifecycle.job_complete(
                kind=VIDEO_JOBS,
                job_id=job.id,
                token=token,
                fields={
                    "metadata": metadata,
                    "duration": info.duration,
                    "thumbnail_path": thumbnail,
                    "thumbnail_timestamp": thumbnail_at,
                },
                usage=usage,
            )
            if not completed:
                raise JobCancelled(str(job.id))
            # The previous run's rows go in the same transaction as this run's come in (the job
            # row is locked by the update above): readers see either the old frames or the new
            # ones, never both and never none.
            VideoFrame.objects.filter(job_id=job.id).delete()
            VideoFrame.objects.bulk_create(frames)
            VideoCaptionCue.objects.filter(job_id=job.id).delete()
            if transcript is not None:
                VideoCaptionCue.objects.bulk_create(caption_cue_rows(job_id=job.id, transcript=transcript))
    except BaseException:
        # Whatever stopped this run, its own files are not referenced by anything.
        storage.delete_tree(frames_prefix)
        storage.delete_quietly(thumbnail_name)
        raise
    _delete_other_runs(paths=paths, keep_run=run)
    # After the commit, so only the run that owns the results indexes them.
    video_moments_index(job=job, cues=transcript.cues if transcript else [], frames=frames)
    video_job_record(VideoJob.Status.COMPLETED, time.monotonic() - started)
    job.refresh_from_db()
    return job


def _extract(
    *,
    job: VideoJob,
    path: str,
    info: media.VideoInfo,
    progress: ProgressReporter,
    frames_prefix: str,
    thumbnail_name: str,
    thumbnail_at: float,
) -> tuple[list[VideoFrame], str]:
    """Frames and thumbnail of one run, stored; returns the unsaved frame rows and the thumbnail name."""
    frames: list[VideoFrame] = []
    with storage.output_dir(frames_prefix) as (out_dir, in_place):
        if job.extract_frames:
            result = media.extract_frames(
                path,
                interval=job.frame_interval,
                max_frames=job.max_frames,
                out_dir=out_dir,
                thumbnail_timestamp=thumbnail_at,
                thumbnail_max_side=THUMBNAIL_MAX_SIDE,
                jpeg_quality=FRAME_JPEG_QUALITY,
                on_progress=progress.scaled(5, 90),
                info=info,
            )
            extracted = result.frames
            thumbnail_local = str(result.thumbnail.path)
        else:
            thumbnail_local = os.path.join(out_dir, "thumbnail.jpg")
            media.make_thumbnail(
                path, timestamp=thumbnail_at, out_path=thumbnail_local, max_side=THUMBNAIL_MAX_SIDE, info=info
            )
            extracted = []
        progress(90, force=True)
        for position, frame in enumerate(extracted):
            name = storage.storage_name_for(str(frame.path), prefix=frames_prefix, local_dir=out_dir)
            stored = storage.publish(str(frame.path), name, in_place=in_place)
            frames.append(
                VideoFrame(
                    job_id=job.id,
                    index=frame.index,
                    timestamp=round(float(frame.timestamp), 3),
                    width=frame.width,
                    height=frame.height,
                    path=stored,
                    size_bytes=frame.size_bytes,
                )
            )
            if not in_place:
                progress.scaled(90, 97)(position + 1, len(extracted))
        target = storage.local_path(thumbnail_name) if in_place else None
        if target is not None:
            # The media layer writes the thumbnail next to the frames; it lives with the thumbnails.
            os.makedirs(os.path.dirname(target), exist_ok=True)
            os.replace(thumbnail_local, target)
            thumbnail = thumbnail_name
        else:
            thumbnail = storage.publish(thumbnail_local, thumbnail_name, in_place=False)
    return frames, thumbnail


def _delete_other_runs(*, paths: storage.JobPaths, keep_run: str) -> None:
    """Remove files of earlier runs of this job (a re-run replaces them)."""
    runs, _files = storage.listdir(paths.frames_root)
    for run in runs:
        if run != keep_run:
            storage.delete_tree(paths.frames(run))
    _dirs, files = storage.listdir(paths.thumbnails)
    keep = paths.run_thumbnail_file(keep_run)
    for name in files:
        if name.startswith(storage.RUN_THUMBNAIL_PREFIX) and name != keep:
            storage.delete_quietly(paths.thumbnails_file(name))


def failure_message(exc: BaseException) -> str:
    """What the client reads in `error`: media errors verbatim, anything else generically."""
    if isinstance(exc, media.MediaError):
        return str(exc)
    if isinstance(exc, ApplicationError):
        return exc.message
    return "Processing failed because of an internal error."


def failure_code(exc: BaseException) -> str:
    """The machine-readable `error_code` next to `failure_message`."""
    if isinstance(exc, media.MediaError):
        return "media_error"
    if isinstance(exc, ApplicationError):
        return exc.code
    return "internal_error"

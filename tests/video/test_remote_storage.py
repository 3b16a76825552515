"""The pipeline on a storage without local files (Django's InMemoryStorage standing in for S3):
the video is downloaded to a temporary file for the media layer and every result is uploaded
through the storage API; nothing is written under MEDIA_ROOT."""

from __future__ import annotations

import io

import pytest
from django.core.files.storage import default_storage
from PIL import Image

from tests.video.conftest import media_files, upload
from tests.video.media_fixtures import frame_index_of
from video import services, storage
from video.models import VideoJob

pytestmark = pytest.mark.django_db


@pytest.fixture
def remote_storage(settings):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    }
    assert storage.local_path("videos") is None
    return default_storage


def stored_names(prefix: str) -> list[str]:
    return sorted(storage.walk(prefix))


def test_processing_through_the_storage_api(remote_storage, process, clips, settings, user, client_a):
    job = process(clips["index"], frameInterval="2")

    assert job.status == "completed", job.error
    frames = list(job.frames.order_by("index"))
    assert [f.timestamp for f in frames] == [0.0, 2.0, 4.0]
    for frame in frames:
        with remote_storage.open(frame.path, "rb") as handle:
            assert frame_index_of(Image.open(io.BytesIO(handle.read()))) == round(frame.timestamp * 25)
        assert remote_storage.size(frame.path) == frame.size_bytes
    assert remote_storage.exists(job.thumbnail_path)
    assert media_files(settings.MEDIA_ROOT) == []

    frame = client_a.get(f"/api/video/jobs/{job.id}/frames/1")
    assert frame.status_code == 200
    assert frame_index_of(Image.open(io.BytesIO(b"".join(frame.streaming_content)))) == 50
    thumbnail = client_a.get(f"/api/video/jobs/{job.id}/thumbnail", {"timestamp": "3"})
    assert thumbnail.status_code == 200
    assert frame_index_of(Image.open(io.BytesIO(b"".join(thumbnail.streaming_content)))) == 75


def test_rerun_and_delete_through_the_storage_api(
    remote_storage, process, clips, user, django_capture_on_commit_callbacks
):
    job = process(clips["index"], frameInterval="2")
    with django_capture_on_commit_callbacks(execute=True):
        services.video_job_requeue(job=job)
    job.refresh_from_db()

    assert job.status == "completed", job.error
    assert stored_names(f"frames/{user.pk}/{job.id}") == sorted(job.frames.values_list("path", flat=True))
    assert stored_names(f"thumbnails/{user.pk}/{job.id}") == [job.thumbnail_path]

    with django_capture_on_commit_callbacks(execute=True):
        services.video_job_delete(job=job)

    for root in storage.ROOTS:
        assert stored_names(f"{root}/{user.pk}") == []
    assert not VideoJob.objects.exists()


def test_upload_refusal_leaves_nothing_in_remote_storage(remote_storage, client_a, clips, user):
    assert upload(client_a, clips["garbage"]).status_code == 400

    assert stored_names(f"videos/{user.pk}") == []

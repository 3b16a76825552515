"""The data migration that stores `VideoJob.metadata` snake_case, both ways, and the API still
rendering the camelCase keys clients read."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps

from video.models import VideoJob
from video.serializers import VideoJobSerializer

migration = importlib.import_module("video.migrations.0003_videojob_metadata_snake_case")

pytestmark = pytest.mark.django_db

CAMEL = {"duration": 2.0, "width": 320, "height": 240, "fps": 25.0, "codec": "h264", "bitrate": 1000,
         "rotation": 0, "hasAudio": True, "size": 123, "container": "mp4"}  # fmt: skip


def _job(user, metadata: dict) -> VideoJob:
    return VideoJob.objects.create(user=user, filename="a.mp4", video_path="videos/x/a.mp4", metadata=metadata)


def test_forwards_renames_camel_keys_and_backwards_restores_them(user):
    job = _job(user, CAMEL)
    empty = _job(user, {})

    migration.forwards(apps, None)
    job.refresh_from_db()
    assert job.metadata == {**{k: v for k, v in CAMEL.items() if k != "hasAudio"}, "has_audio": True}
    migration.forwards(apps, None)  # idempotent
    job.refresh_from_db()
    assert "has_audio" in job.metadata

    migration.backwards(apps, None)
    job.refresh_from_db()
    empty.refresh_from_db()
    assert job.metadata == CAMEL
    assert empty.metadata == {}


def test_the_api_renders_stored_snake_case_as_camel_case_in_the_same_order(user):
    migrated = {**{k: v for k, v in CAMEL.items() if k != "hasAudio"}, "has_audio": True}
    job = _job(user, migrated)

    rendered = VideoJobSerializer(job).data["metadata"]

    assert list(rendered.items()) == list(CAMEL.items())

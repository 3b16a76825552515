"""`VideoJob.metadata` is stored with snake_case keys (the API still renders camelCase through
its output serializer). Only `hasAudio` ever differed; the mapping is frozen here, not imported,
so the migration keeps meaning the same thing whatever the app's code becomes."""

from __future__ import annotations

from typing import Any

from django.db import migrations

CAMEL_TO_SNAKE = {"hasAudio": "has_audio"}
BATCH = 500


def _rename(apps: Any, mapping: dict[str, str]) -> None:
    VideoJob = apps.get_model("video", "VideoJob")
    changed = []
    for job in VideoJob.objects.only("id", "metadata").iterator(chunk_size=BATCH):
        metadata = job.metadata
        if not isinstance(metadata, dict) or not any(key in metadata for key in mapping):
            continue
        job.metadata = {mapping.get(key, key): value for key, value in metadata.items()}
        changed.append(job)
        if len(changed) >= BATCH:
            VideoJob.objects.bulk_update(changed, ["metadata"])
            changed = []
    if changed:
        VideoJob.objects.bulk_update(changed, ["metadata"])


def forwards(apps: Any, schema_editor: Any) -> None:
    _rename(apps, CAMEL_TO_SNAKE)


def backwards(apps: Any, schema_editor: Any) -> None:
    _rename(apps, {snake: camel for camel, snake in CAMEL_TO_SNAKE.items()})


class Migration(migrations.Migration):
    dependencies = [("video", "0002_videojob_error_code")]

    operations = [migrations.RunPython(forwards, backwards)]

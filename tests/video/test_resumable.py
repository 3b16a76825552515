"""Resumable uploads (tus 1.0) through the API: discovery, creation with the multipart upload's
options, chunks, the offset rules, completion into a video job, every refusal, idempotency,
ownership, termination and expiry."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from quotas.models import QuotaAccount
from tests.video.conftest import media_files
from tests.video.tus import OFFSET_STREAM, TUS, UPLOADS, create, head, location, patch, upload_file
from video.models import ResumableUpload, VideoJob
from video.resumable.services import resumable_uploads_expire
from video.tasks import expire_resumable_uploads

pytestmark = pytest.mark.django_db


def partial_files(settings) -> list[str]:
    return [name for name in media_files(settings.MEDIA_ROOT) if name.startswith("resumable/")]


def test_options_reports_the_protocol_without_an_account(api, settings):
    response = api.options(UPLOADS)

    assert response.status_code == 200
    assert response.json()["success"] is True
    assert response["Tus-Version"] == "1.0.0"
    assert response["Tus-Resumable"] == "1.0.0"
    assert set(response["Tus-Extension"].split(",")) == {"creation", "termination", "expiration"}
    assert int(response["Tus-Max-Size"]) == settings.VIDEO_MAX_UPLOAD_BYTES


def test_a_chunked_upload_becomes_a_video_job_like_a_multipart_one(client_a, user, clips, settings):
    source = clips["mp4"]
    created, last = upload_file(
        client_a,
        source,
        chunk=50_000,
        extractFrames="false",
        frameInterval="2",
        maxFrames="7",
        thumbnailTimestamp="0.5",
    )

    body = created.json()
    assert body["success"] is True
    assert body["data"]["uploadLength"] == source.stat().st_size
    assert body["data"]["uploadOffset"] == 0
    assert created["Upload-Offset"] == "0"
    assert created["Upload-Expires"].endswith("GMT")
    assert created["Tus-Resumable"] == "1.0.0"
    assert last.status_code == 204, last.content
    assert last["Upload-Offset"] == str(source.stat().st_size)
    job = VideoJob.objects.get(user=user)
    assert last["Video-Job-Id"] == str(job.id)
    assert job.filename == "mp4.mp4"
    assert job.size_bytes == source.stat().st_size
    assert (job.extract_frames, job.frame_interval, job.max_frames, job.thumbnail_timestamp) == (False, 2.0, 7, 0.5)
    assert job.metadata["has_audio"] is True
    assert job.container == "mp4"
    stored = settings.MEDIA_ROOT / job.video_path
    assert stored.read_bytes() == source.read_bytes()
    assert partial_files(settings) == []
    # The job reads like any other, and HEAD still answers for the finished upload.
    assert client_a.get(f"/api/video/jobs/{job.id}").json()["data"]["options"]["maxFrames"] == 7
    done = head(client_a, location(created))
    assert done.status_code == 200
    assert done["Upload-Offset"] == done["Upload-Length"] == str(source.stat().st_size)
    assert done["Video-Job-Id"] == str(job.id)


def test_head_reports_the_offset_and_a_resume_continues_from_it(client_a, clips):
    data = clips["mp4"].read_bytes()
    url = location(create(client_a, len(data), filename="clip.mp4"))
    assert patch(client_a, url, data[:1000], offset=0).status_code == 204

    answer = head(client_a, url)

    assert answer.status_code == 200
    assert answer["Upload-Offset"] == "1000"
    assert answer["Upload-Length"] == str(len(data))
    assert answer["Cache-Control"] == "no-store"
    assert answer.content == b""
    assert patch(client_a, url, data[1000:], offset=1000).status_code == 204
    assert VideoJob.objects.count() == 1


def test_a_wrong_offset_is_409_and_changes_nothing(client_a, clips):
    data = clips["mp4"].read_bytes()
    url = location(create(client_a, len(data), filename="clip.mp4"))
    patch(client_a, url, data[:1000], offset=0)

    for offset in (0, 999, 1001):
        answer = patch(client_a, url, data[offset : offset + 10], offset=offset)
        assert answer.status_code == 409
        assert answer.json()["code"] == "upload_offset_mismatch"
    assert head(client_a, url)["Upload-Offset"] == "1000"


def test_a_chunk_past_the_declared_length_is_413(client_a):
    url = location(create(client_a, 100, filename="clip.mp4"))

    answer = patch(client_a, url, b"x" * 101, offset=0)

    assert answer.status_code == 413
    assert answer.json()["code"] == "upload_length_exceeded"
    assert head(client_a, url)["Upload-Offset"] == "0"
    # Exactly the declared length is taken (and then refused as not a video, which removes the upload).
    assert patch(client_a, url, b"x" * 100, offset=0).json()["code"] == "invalid_video"
    assert head(client_a, url).status_code == 404


def test_creation_refusals(client_a, settings):
    too_large = create(client_a, settings.VIDEO_MAX_UPLOAD_BYTES + 1, filename="big.mp4")
    assert too_large.status_code == 413
    assert too_large.json()["code"] == "file_too_large"
    assert create(client_a, 0, filename="a.mp4").json()["code"] == "invalid_video"
    no_name = create(client_a, 10)
    assert no_name.status_code == 400
    assert "filename" in no_name.json()["errors"]
    bad_option = create(client_a, 10, filename="a.mp4", frameInterval="0")
    assert bad_option.status_code == 400
    assert "frameInterval" in bad_option.json()["errors"]
    for raw in ("filename !!notbase64", "filename", "filename AA==,filename AA=="):
        answer = client_a.post(UPLOADS, HTTP_UPLOAD_LENGTH="10", HTTP_UPLOAD_METADATA=raw, **TUS)
        assert answer.status_code == 400, raw
        assert answer.json()["success"] is False
    for length in ("", "-1", "ten", "1e3", "٣", "9" * 5000):
        answer = client_a.post(UPLOADS, HTTP_UPLOAD_LENGTH=length, HTTP_UPLOAD_METADATA="filename YS5tcDQ=", **TUS)
        assert answer.status_code == 400, length
    nul = client_a.post(UPLOADS, HTTP_UPLOAD_LENGTH="10", HTTP_UPLOAD_METADATA="filename YQBi", **TUS)
    assert nul.status_code == 400
    assert ResumableUpload.objects.count() == 0


def test_a_missing_or_other_tus_version_is_412(client_a):
    answer = client_a.post(UPLOADS, HTTP_UPLOAD_LENGTH="10", HTTP_UPLOAD_METADATA="filename YS5tcDQ=")
    assert answer.status_code == 412
    assert answer["Tus-Version"] == "1.0.0"
    assert answer.json()["code"] == "tus_version_unsupported"
    other = client_a.post(
        UPLOADS, HTTP_UPLOAD_LENGTH="10", HTTP_UPLOAD_METADATA="filename YS5tcDQ=", HTTP_TUS_RESUMABLE="0.2.2"
    )
    assert other.status_code == 412


def test_a_patch_must_be_an_offset_stream(client_a):
    url = location(create(client_a, 10, filename="a.mp4"))

    answer = patch(client_a, url, b"x" * 10, offset=0, content_type="application/octet-stream")

    assert answer.status_code == 415
    assert answer.json()["code"] == "unsupported_media_type"


def test_not_a_video_is_refused_on_the_last_chunk_and_its_bytes_go(client_a, clips, settings):
    data = clips["garbage"].read_bytes()
    url = location(create(client_a, len(data), filename="garbage.mp4"))

    assert patch(client_a, url, data[:100_000], offset=0).status_code == 204
    assert partial_files(settings) != []
    answer = patch(client_a, url, data[100_000:], offset=100_000)

    assert answer.status_code == 400
    assert answer.json()["code"] == "invalid_video"
    assert VideoJob.objects.count() == 0
    assert ResumableUpload.objects.count() == 0
    assert partial_files(settings) == []
    assert head(client_a, url).status_code == 404


def test_an_audio_only_file_is_415_like_the_multipart_upload(client_a, clips):
    _created, last = upload_file(client_a, clips["audio_only"])

    assert last.status_code == 415
    assert last.json()["code"] == "no_video_stream"


def test_a_video_over_the_duration_limit_is_refused(client_a, clips, settings):
    settings.VIDEO_MAX_DURATION_SECONDS = 2
    _created, last = upload_file(client_a, clips["mp4"])

    assert last.status_code == 400
    assert last.json()["code"] == "video_too_long"


def test_exhausted_quota_refuses_the_creation(client_a, user):
    from quotas.selectors import quota_account_get

    account = quota_account_get(user=user)
    QuotaAccount.objects.filter(pk=account.pk).update(used=account.limit - 4)

    answer = create(client_a, 1000, filename="a.mp4")

    assert answer.status_code == 429
    body = answer.json()
    assert body["code"] == "quota_exceeded"
    assert body["unitsNeeded"] == 5
    assert "Retry-After" in answer
    assert ResumableUpload.objects.count() == 0


def test_quota_spent_meanwhile_keeps_the_bytes_for_a_retry(client_a, user, clips, settings):
    from quotas.selectors import quota_account_get

    data = clips["mp4"].read_bytes()
    url = location(create(client_a, len(data), filename="clip.mp4"))
    account = quota_account_get(user=user)
    QuotaAccount.objects.filter(pk=account.pk).update(used=account.limit)

    refused = patch(client_a, url, data, offset=0)

    assert refused.status_code == 429
    assert head(client_a, url)["Upload-Offset"] == str(len(data))
    QuotaAccount.objects.filter(pk=account.pk).update(used=0)
    retried = patch(client_a, url, b"", offset=len(data))
    assert retried.status_code == 204
    assert VideoJob.objects.get().size_bytes == len(data)
    assert partial_files(settings) == []


def test_another_users_upload_is_404(client_a, auth_client, make_user, clips):
    data = clips["mp4"].read_bytes()
    url = location(create(client_a, len(data), filename="clip.mp4"))
    other = auth_client(make_user())

    assert head(other, url).status_code == 404
    assert patch(other, url, data, offset=0).status_code == 404
    assert other.delete(url, **TUS).status_code == 404
    assert head(client_a, url)["Upload-Offset"] == "0"
    assert VideoJob.objects.count() == 0


def test_without_a_token_is_401(api):
    assert (
        api.post(UPLOADS, HTTP_UPLOAD_LENGTH="10", HTTP_UPLOAD_METADATA="filename YS5tcDQ=", **TUS).status_code == 401
    )
    url = f"{UPLOADS}5b0e5c29-7a49-4c1e-9d0c-6f3c2f0a8e11"
    assert api.generic("PATCH", url, b"x", content_type=OFFSET_STREAM, HTTP_UPLOAD_OFFSET="0", **TUS).status_code == 401


def test_termination_removes_the_upload_and_its_bytes(client_a, clips, settings):
    data = clips["mp4"].read_bytes()
    url = location(create(client_a, len(data), filename="clip.mp4"))
    patch(client_a, url, data[:5000], offset=0)
    assert partial_files(settings) != []

    answer = client_a.delete(url, **TUS)

    assert answer.status_code == 204
    assert answer["Tus-Resumable"] == "1.0.0"
    assert partial_files(settings) == []
    assert head(client_a, url).status_code == 404
    assert patch(client_a, url, data[5000:], offset=5000).status_code == 404


def test_an_expired_upload_is_410_then_removed_with_its_bytes(client_a, clips, settings):
    data = clips["mp4"].read_bytes()
    url = location(create(client_a, len(data), filename="clip.mp4"))
    patch(client_a, url, data[:5000], offset=0)
    ResumableUpload.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    assert head(client_a, url).status_code == 410
    answer = patch(client_a, url, data[5000:], offset=5000)
    assert answer.status_code == 410
    assert answer.json()["code"] == "upload_expired"

    assert expire_resumable_uploads() == {"expired": 1}
    assert partial_files(settings) == []
    assert head(client_a, url).status_code == 404


def test_each_patch_pushes_the_expiry_and_the_beat_sweeps_only_expired(client_a, clips, settings):
    assert "video-expire-resumable-uploads" in settings.CELERY_BEAT_SCHEDULE
    data = clips["mp4"].read_bytes()
    kept = location(create(client_a, len(data), filename="kept.mp4"))
    ResumableUpload.objects.update(expires_at=timezone.now() + timedelta(seconds=5))
    patch(client_a, kept, data[:10], offset=0)

    assert ResumableUpload.objects.get().expires_at > timezone.now() + timedelta(hours=23)
    assert resumable_uploads_expire() == 0
    assert head(client_a, kept).status_code == 200


def test_the_cleanup_command_removes_expired_uploads(client_a, clips, settings, capsys):
    data = clips["mp4"].read_bytes()
    url = location(create(client_a, len(data), filename="clip.mp4"))
    patch(client_a, url, data[:5000], offset=0)
    ResumableUpload.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    call_command("cleanup_video_files")

    assert "1 expired resumable upload(s)" in capsys.readouterr().out
    assert ResumableUpload.objects.count() == 0
    assert partial_files(settings) == []


def test_the_orphan_sweep_leaves_uploads_in_progress_alone(client_a, clips, settings):
    data = clips["mp4"].read_bytes()
    url = location(create(client_a, len(data), filename="clip.mp4"))
    patch(client_a, url, data[:5000], offset=0)

    call_command("cleanup_video_files", grace_seconds=0)

    assert head(client_a, url)["Upload-Offset"] == "5000"
    assert partial_files(settings) != []


def test_idempotency_key_replays_the_creation(client_a, clips):
    data = clips["mp4"].read_bytes()
    first = create(client_a, len(data), key="trip-1", filename="clip.mp4")
    again = create(client_a, len(data), key="trip-1", filename="clip.mp4")

    assert first.status_code == again.status_code == 201
    assert again["Idempotent-Replayed"] == "true"
    assert location(again) == location(first)
    assert ResumableUpload.objects.count() == 1
    patch(client_a, location(first), data, offset=0)
    assert VideoJob.objects.get().idempotency_key == "trip-1"


def test_a_key_already_used_by_a_multipart_upload_names_its_job(client_a, clips):
    from tests.video.conftest import upload

    job_id = upload(client_a, clips["mp4"], headers={"Idempotency-Key": "k-1"}).json()["data"]["id"]

    answer = create(client_a, 1234, key="k-1", filename="clip.mp4")

    assert answer.status_code == 201
    assert answer["Idempotent-Replayed"] == "true"
    assert answer["Upload-Offset"] == answer["Upload-Length"] == "1234"
    assert answer["Video-Job-Id"] == job_id
    assert VideoJob.objects.count() == 1


def test_a_bad_idempotency_key_is_400(client_a):
    answer = create(client_a, 10, key="x" * 300, filename="a.mp4")
    assert answer.status_code == 400


def test_chunks_have_their_own_rate_limit(client_a, real_rate_limits, settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "upload_chunk": {"rate": (2, 60), "burst": None}}
    url = location(create(client_a, 100, filename="a.mp4"))

    assert patch(client_a, url, b"x", offset=0).status_code == 204
    assert patch(client_a, url, b"x", offset=1).status_code == 204
    limited = patch(client_a, url, b"x", offset=2)

    assert limited.status_code == 429
    assert limited.json()["code"] == "rate_limited"


def test_creations_count_as_uploads(client_a, real_rate_limits):
    assert create(client_a, 100, filename="a.mp4").status_code == 201
    assert create(client_a, 100, filename="b.mp4").status_code == 429


def test_cors_exposes_the_tus_headers(client_a, settings):
    settings.CORS_ALLOWED_ORIGINS = ["https://app.example.com"]
    answer = client_a.post(
        UPLOADS,
        HTTP_ORIGIN="https://app.example.com",
        HTTP_UPLOAD_LENGTH="10",
        HTTP_UPLOAD_METADATA="filename YS5tcDQ=",
        **TUS,
    )
    exposed = {name.strip().lower() for name in answer["Access-Control-Expose-Headers"].split(",")}
    assert {"location", "upload-offset", "tus-resumable", "upload-expires", "video-job-id"} <= exposed
    preflight = client_a.options(
        UPLOADS,
        HTTP_ORIGIN="https://app.example.com",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="PATCH",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="tus-resumable,upload-offset,upload-length,upload-metadata",
    )
    allowed = preflight["Access-Control-Allow-Headers"].lower()
    assert "upload-offset" in allowed
    assert "tus-resumable" in allowed


def test_the_documented_examples_match_the_real_answers(schema, client_a, user):
    from tests.ops.test_openapi_examples import differences, response_example

    created = create(client_a, 52_428_800, filename="holiday.mp4")
    example = response_example(schema, "post", "/api/video/uploads/", 201)
    assert differences(example, created.json()) == []
    assert example["message"] == created.json()["message"]
    url = location(created)
    small = location(create(client_a, 5, filename="small.mp4"))
    for status, answer in (
        (409, patch(client_a, url, b"x", offset=5)),
        (413, patch(client_a, small, b"x" * 10, offset=0)),
        (415, patch(client_a, url, b"x", offset=0, content_type="text/plain")),
    ):
        assert answer.status_code == status
        documented = response_example(schema, "patch", "/api/video/uploads/{upload_id}", status)
        assert documented["code"] == answer.json()["code"]
        assert differences(documented, answer.json()) == []
    ResumableUpload.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    gone = head(client_a, url)
    assert gone.status_code == 410
    expired = patch(client_a, url, b"x", offset=0).json()
    assert expired == response_example(schema, "patch", "/api/video/uploads/{upload_id}", 410)


def test_a_patch_while_another_is_appending_is_409(client_a, settings):
    import fcntl

    url = location(create(client_a, 100, filename="a.mp4"))
    upload = ResumableUpload.objects.get()
    with open(settings.MEDIA_ROOT / upload.path, "r+b") as busy:  # what a PATCH in flight holds
        fcntl.flock(busy.fileno(), fcntl.LOCK_EX)
        answer = patch(client_a, url, b"x", offset=0)

    assert answer.status_code == 409
    assert answer.json()["code"] == "upload_locked"
    assert head(client_a, url)["Upload-Offset"] == "0"
    assert patch(client_a, url, b"x", offset=0).status_code == 204


def test_bytes_past_the_recorded_offset_are_not_trusted(client_a, clips, settings):
    data = clips["mp4"].read_bytes()
    url = location(create(client_a, len(data), filename="clip.mp4"))
    patch(client_a, url, data[:1000], offset=0)
    upload = ResumableUpload.objects.get()
    with open(settings.MEDIA_ROOT / upload.path, "ab") as stray:  # a server killed before recording them
        stray.write(b"garbage")

    assert patch(client_a, url, data[1000:], offset=1000).status_code == 204

    job = VideoJob.objects.get()
    assert (settings.MEDIA_ROOT / job.video_path).read_bytes() == data

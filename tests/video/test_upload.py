"""POST /api/video/upload: accepted formats, options, every refusal, quota, rate limit, idempotency."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from quotas.models import QuotaAccount, Reservation
from tests.video.conftest import media_files, upload
from video import media, services
from video.models import VideoJob

pytestmark = pytest.mark.django_db


def used_units(user) -> int:
    account = QuotaAccount.objects.filter(user=user).first()
    return account.used if account else 0


def assert_nothing_stored(settings, upload_tmp: Path) -> None:
    assert VideoJob.objects.count() == 0
    assert media_files(settings.MEDIA_ROOT) == []
    assert list(upload_tmp.iterdir()) == []


def test_upload_answers_202_with_the_job_and_stores_the_video(client_a, user, clips, settings, upload_tmp):
    response = upload(client_a, clips["mp4"])

    assert response.status_code == 202, response.content
    body = response.json()
    assert body["success"] is True
    data = body["data"]
    assert data["status"] == "uploaded"
    assert data["progress"] == 0
    assert data["error"] is None
    assert data["filename"] == "mp4.mp4"
    assert data["options"] == {"extractFrames": True, "frameInterval": 1.0, "maxFrames": 100, "thumbnailTimestamp": 1.0}
    metadata = data["metadata"]
    assert metadata["duration"] == pytest.approx(6.0, abs=0.1)
    assert (metadata["width"], metadata["height"], metadata["fps"]) == (320, 240, 25.0)
    assert metadata["codec"] == "h264"
    assert metadata["hasAudio"] is True
    assert metadata["rotation"] == 0
    assert metadata["size"] == clips["mp4"].stat().st_size
    assert metadata["container"] == "mp4"
    assert data["frames"] == []
    assert data["frameCount"] == 0
    assert data["thumbnailUrl"].endswith(f"/api/video/jobs/{data['id']}/thumbnail")

    job = VideoJob.objects.get(id=data["id"])
    assert job.user == user
    assert job.video_path == f"videos/{user.pk}/{job.id}/mp4.mp4"
    stored = Path(settings.MEDIA_ROOT) / job.video_path
    assert stored.read_bytes() == clips["mp4"].read_bytes()
    # The temporary upload was moved into storage, not copied and left behind.
    assert list(upload_tmp.iterdir()) == []
    # Five units reserved for the job, and one speech-to-text unit for its captions (the clip has
    # audio, and captions are on by default then).
    assert used_units(user) == 6
    reservation = Reservation.objects.get(user=user, service="video")
    assert (reservation.units, reservation.status, reservation.job_id) == (5, "reserved", str(job.id))
    captions = Reservation.objects.get(user=user, service="whisper")
    assert (captions.units, captions.status, captions.job_id) == (1, "reserved", str(job.id))
    assert response["X-Quota-Used"] == "6"


def test_options_are_read_from_the_multipart_fields(client_a, clips):
    response = upload(
        client_a, clips["mp4"], extractFrames=False, frameInterval="0.5", maxFrames="3", thumbnailTimestamp="2.5"
    )

    assert response.status_code == 202, response.content
    assert response.json()["data"]["options"] == {
        "extractFrames": False,
        "frameInterval": 0.5,
        "maxFrames": 3,
        "thumbnailTimestamp": 2.5,
    }


def test_thumbnail_timestamp_is_clamped_into_the_video(client_a, clips):
    response = upload(client_a, clips["mp4"], thumbnailTimestamp="100")

    assert response.status_code == 202, response.content
    # 6 s at 25 fps: the last frame starts at 5.96 s.
    assert response.json()["data"]["options"]["thumbnailTimestamp"] == pytest.approx(5.96)


@pytest.mark.parametrize(
    ("clip", "container", "codec", "has_audio"),
    [
        ("mov", "mov", "h264", True),
        ("avi", "avi", "mpeg4", True),
        ("wmv", "wmv", "wmv2", True),
        ("webm", "webm", "vp9", True),
        ("hevc", "mp4", "hevc", False),
        ("no_audio", "mp4", "h264", False),
    ],
)
def test_accepted_formats_are_recognised_by_content(client_a, clips, clip, container, codec, has_audio):
    response = upload(client_a, clips[clip])

    assert response.status_code == 202, response.content
    metadata = response.json()["data"]["metadata"]
    assert (metadata["container"], metadata["codec"], metadata["hasAudio"]) == (container, codec, has_audio)


def test_a_video_with_a_misleading_name_is_judged_by_its_content(client_a, clips, tmp_path, user):
    disguised = tmp_path / "holiday.txt"
    disguised.write_bytes(clips["webm"].read_bytes())

    response = upload(client_a, disguised)

    assert response.status_code == 202, response.content
    job = VideoJob.objects.get()
    assert job.container == "webm"
    assert job.video_path == f"videos/{user.pk}/{job.id}/holiday.webm"


def test_rotated_video_reports_display_size_and_rotation(client_a, clips):
    response = upload(client_a, clips["rotated"])

    assert response.status_code == 202, response.content
    metadata = response.json()["data"]["metadata"]
    assert metadata["rotation"] == 90
    assert (metadata["width"], metadata["height"]) == (240, 320)


@pytest.mark.parametrize(
    ("clip", "status", "code", "phrase"),
    [
        ("garbage", 400, "invalid_video", "not a readable video"),
        ("truncated", 400, "invalid_video", "not a readable video"),
        ("faststart_truncated", 400, "invalid_video", "truncated"),
        ("empty", 400, "invalid_video", "empty"),
        ("audio_only", 415, "no_video_stream", "no video stream"),
        ("flv", 415, "unsupported_video_format", "unsupported file format"),
        ("too_long", 400, "video_too_long", "too long"),
    ],
)
def test_unusable_files_are_refused_naming_the_rule_and_leave_nothing(
    client_a, user, clips, settings, upload_tmp, clip, status, code, phrase
):
    response = upload(client_a, clips[clip])

    assert response.status_code == status, response.content
    body = response.json()
    assert body["success"] is False
    assert body["code"] == code
    assert phrase in body["message"].lower()
    assert body["errors"]["video"]
    assert_nothing_stored(settings, upload_tmp)
    assert used_units(user) == 0


def test_too_long_names_the_limit(client_a, clips):
    body = upload(client_a, clips["too_long"]).json()

    assert "301.0 s" in body["message"]
    assert "5 minutes" in body["message"]


def test_a_body_declared_larger_than_the_limit_is_refused_before_it_is_parsed(
    client_a, user, clips, settings, upload_tmp
):
    settings.VIDEO_MAX_UPLOAD_BYTES = 100 * 1024  # the 800 KB clip is far over it

    response = upload(client_a, clips["mp4"])

    assert response.status_code == 413
    body = response.json()
    assert body["code"] == "file_too_large"
    assert "larger than the 100 KB upload limit" in body["message"]
    assert_nothing_stored(settings, upload_tmp)
    assert used_units(user) == 0


def test_a_file_just_over_the_limit_is_stopped_while_streaming(client_a, user, clips, settings, upload_tmp):
    # The declared body fits the limit plus the form overhead, so only the streaming handler,
    # counting the file's own bytes, can catch it.
    size = clips["mp4"].stat().st_size
    settings.VIDEO_MAX_UPLOAD_BYTES = size - 1

    response = upload(client_a, clips["mp4"], frameInterval="2")

    assert response.status_code == 413, response.content
    assert response.json()["code"] == "file_too_large"
    assert_nothing_stored(settings, upload_tmp)
    assert used_units(user) == 0


def test_a_file_exactly_at_the_limit_is_accepted(client_a, clips, settings):
    settings.VIDEO_MAX_UPLOAD_BYTES = clips["mp4"].stat().st_size

    assert upload(client_a, clips["mp4"]).status_code == 202


def test_the_default_limits_are_the_seeds(settings):
    assert settings.VIDEO_MAX_UPLOAD_BYTES == 100 * 1024 * 1024
    assert settings.VIDEO_MAX_DURATION_SECONDS == 300


def test_missing_video_field(client_a, settings, upload_tmp):
    response = upload(client_a, None, frameInterval="1")

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "validation_error"
    assert "multipart field 'video'" in body["errors"]["video"][0]
    assert_nothing_stored(settings, upload_tmp)


def test_a_file_in_another_field_is_not_taken_for_the_video(client_a, clips, settings, upload_tmp):
    with open(clips["mp4"], "rb") as handle:
        response = client_a.post("/api/video/upload", {"movie": handle}, format="multipart")

    assert response.status_code == 400
    assert "video" in response.json()["errors"]
    assert_nothing_stored(settings, upload_tmp)


def test_extra_file_parts_are_ignored(client_a, clips, settings, upload_tmp):
    with open(clips["mp4"], "rb") as video, open(clips["mov"], "rb") as other:
        response = client_a.post("/api/video/upload", {"video": video, "other": other}, format="multipart")

    assert response.status_code == 202, response.content
    job = VideoJob.objects.get()
    assert media_files(settings.MEDIA_ROOT) == [job.video_path]
    assert list(upload_tmp.iterdir()) == []


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"frameInterval": "0.05"}, "frameInterval"),
        ({"frameInterval": "61"}, "frameInterval"),
        ({"frameInterval": "abc"}, "frameInterval"),
        ({"frameInterval": "nan"}, "frameInterval"),
        ({"maxFrames": "0"}, "maxFrames"),
        ({"maxFrames": "301"}, "maxFrames"),
        ({"maxFrames": "1.5"}, "maxFrames"),
        ({"extractFrames": "maybe"}, "extractFrames"),
        ({"thumbnailTimestamp": "-1"}, "thumbnailTimestamp"),
        ({"thumbnailTimestamp": "inf"}, "thumbnailTimestamp"),
    ],
)
def test_invalid_options_are_refused_per_field(client_a, user, clips, settings, upload_tmp, fields, field):
    response = upload(client_a, clips["mp4"], **fields)

    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "validation_error"
    assert field in body["errors"]
    assert_nothing_stored(settings, upload_tmp)
    assert used_units(user) == 0


def test_option_limits_are_inclusive(client_a, clips):
    assert upload(client_a, clips["short"], frameInterval="0.1", maxFrames="300").status_code == 202
    assert upload(client_a, clips["short"], frameInterval="60", maxFrames="1").status_code == 202


def test_json_body_is_refused(client_a):
    response = client_a.post("/api/video/upload", {"video": "abc"}, format="json")

    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"


def test_upload_needs_a_token(api, clips, settings, upload_tmp):
    response = upload(api, clips["mp4"])

    assert response.status_code == 401
    assert response.json()["success"] is False
    assert_nothing_stored(settings, upload_tmp)


def test_exhausted_quota_refuses_the_upload_and_keeps_nothing(client_a, user, clips, settings, upload_tmp):
    from quotas.selectors import quota_account_get

    account = quota_account_get(user=user)
    QuotaAccount.objects.filter(pk=account.pk).update(used=account.limit - 4)

    response = upload(client_a, clips["mp4"])

    assert response.status_code == 429
    body = response.json()
    assert body["code"] == "quota_exceeded"
    assert body["unitsNeeded"] == 5
    assert "Retry-After" in response
    assert_nothing_stored(settings, upload_tmp)
    assert used_units(user) == account.limit - 4


def test_uploads_are_rate_limited(client_a, clips, real_rate_limits):
    assert upload(client_a, clips["short"]).status_code == 202

    response = upload(client_a, clips["short"])

    assert response.status_code == 429
    assert response.json()["code"] == "rate_limited"
    assert int(response["Retry-After"]) >= 1
    assert VideoJob.objects.count() == 1


def test_a_retried_upload_with_the_same_idempotency_key_returns_the_first_job(
    client_a, user, clips, settings, upload_tmp
):
    first = upload(client_a, clips["mp4"], headers={"Idempotency-Key": "upload-1"})
    second = upload(client_a, clips["mp4"], headers={"Idempotency-Key": "upload-1"})

    assert first.status_code == second.status_code == 202
    assert second.json()["data"]["id"] == first.json()["data"]["id"]
    assert second["Idempotent-Replayed"] == "true"
    assert VideoJob.objects.count() == 1
    assert used_units(user) == 6  # charged once: the video's 5 and its captions' 1
    assert len(media_files(settings.MEDIA_ROOT)) == 1
    assert list(upload_tmp.iterdir()) == []


def test_idempotency_keys_are_scoped_per_user(client_a, auth_client, make_user, clips):
    other = auth_client(make_user())

    first = upload(client_a, clips["short"], headers={"Idempotency-Key": "same"})
    second = upload(other, clips["short"], headers={"Idempotency-Key": "same"})
    third = upload(client_a, clips["short"], headers={"Idempotency-Key": "different"})

    ids = {first.json()["data"]["id"], second.json()["data"]["id"], third.json()["data"]["id"]}
    assert len(ids) == 3


def test_an_overlong_idempotency_key_is_refused(client_a, clips):
    response = upload(client_a, clips["short"], headers={"Idempotency-Key": "k" * 256})

    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["message"]


def test_racing_uploads_with_one_key_make_one_job(user, clips, settings):
    """The second of two concurrent requests passes the early look-up and meets the unique
    constraint: it gets the first job, and neither its file nor its charge stays."""
    info = media.probe(clips["short"])
    data = clips["short"].read_bytes()

    first, created_first = services.video_job_create(
        user=user,
        upload=SimpleUploadedFile("a.mp4", data),
        info=info,
        options=services.UploadOptions(),
        idempotency_key="race",
    )
    second, created_second = services.video_job_create(
        user=user,
        upload=SimpleUploadedFile("b.mp4", data),
        info=info,
        options=services.UploadOptions(),
        idempotency_key="race",
    )

    assert (created_first, created_second) == (True, False)
    assert second.id == first.id
    assert media_files(settings.MEDIA_ROOT) == [first.video_path]
    assert used_units(user) == 5
    assert Reservation.objects.filter(user=user).count() == 1


def test_unsafe_file_names_are_cleaned(client_a, clips, tmp_path, user):
    odd = tmp_path / "my clip (final)!.mp4"
    odd.write_bytes(clips["short"].read_bytes())

    response = upload(client_a, odd)

    assert response.status_code == 202
    job = VideoJob.objects.get()
    assert job.filename == "my clip (final)!.mp4"
    assert job.video_path == f"videos/{user.pk}/{job.id}/my_clip_final.mp4"


@pytest.mark.django_db(transaction=True)
def test_a_broker_outage_at_upload_refuses_the_upload_uncharged(client_a, clips, user, settings, tmp_path):
    """Committed for real (no test transaction), so the task is sent when the upload commits."""
    from quotas.models import UsageEntry
    from tests.celery_worker import _point_app_at

    settings.MEDIA_ROOT = tmp_path
    previous = _point_app_at("redis://127.0.0.1:1/0")  # nothing listens there
    try:
        response = upload(client_a, clips["short"], headers={"Idempotency-Key": "outage-1"})
    finally:
        _point_app_at(previous)

    assert response.status_code == 503, response.content
    assert response.json()["code"] == "queue_unavailable"
    assert not VideoJob.objects.exists()
    assert media_files(tmp_path) == []
    assert QuotaAccount.objects.get(user=user).used == 0
    assert sum(UsageEntry.objects.filter(user=user).values_list("units", flat=True)) == 0
    assert Reservation.objects.get(user=user).status == "refunded"

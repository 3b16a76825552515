"""Reading and deleting: job list and details, frame and thumbnail bytes, storyboard and preview
GIF made on first request, deletion with every file, scoping to the owner, rate categories."""

from __future__ import annotations

import io
import uuid
from pathlib import Path

import pytest
from PIL import Image

from quotas.models import QuotaAccount
from tests.conftest import PASSWORD
from tests.video.conftest import media_files, upload
from tests.video.media_fixtures import frame_index_of
from video import services
from video.models import VideoAsset, VideoFrame, VideoJob

pytestmark = pytest.mark.django_db


@pytest.fixture
def done(process, clips) -> VideoJob:
    """A completed job of the 6 s frame-numbered clip: 6 frames at 0..5 s, thumbnail at 1 s."""
    job = process(clips["index"])
    assert job.status == "completed", job.error
    return job


@pytest.fixture
def other(auth_client, make_user):
    return auth_client(make_user())


def image_of(response) -> Image.Image:
    return Image.open(io.BytesIO(b"".join(response.streaming_content) if response.streaming else response.content))


def body_of(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


# --- List and details -------------------------------------------------------------------------------


def test_list_is_paginated_newest_first(client_a, clips):
    ids = [upload(client_a, clips["short"]).json()["data"]["id"] for _ in range(3)]

    response = client_a.get("/api/video/jobs", {"limit": 2})

    assert response.status_code == 200
    body = response.json()
    assert [job["id"] for job in body["data"]] == [ids[2], ids[1]]
    assert body["meta"]["pagination"] == {"page": 1, "limit": 2, "total": 3, "pages": 2}
    second = client_a.get("/api/video/jobs", {"limit": 2, "page": 2}).json()
    assert [job["id"] for job in second["data"]] == [ids[0]]


def test_list_filters_by_status(client_a, done, clips):
    pending = upload(client_a, clips["short"]).json()["data"]["id"]

    completed = client_a.get("/api/video/jobs", {"status": "completed"}).json()["data"]
    uploaded = client_a.get("/api/video/jobs", {"status": "uploaded"}).json()["data"]

    assert [job["id"] for job in completed] == [str(done.id)]
    assert completed[0]["frameCount"] == 6
    assert [job["id"] for job in uploaded] == [pending]


def test_list_refuses_an_unknown_status(client_a):
    response = client_a.get("/api/video/jobs", {"status": "done"})

    assert response.status_code == 400
    assert "status" in response.json()["errors"]


def test_list_shows_only_the_callers_jobs(client_a, other, done):
    assert other.get("/api/video/jobs").json()["data"] == []
    assert client_a.get("/api/video/jobs").json()["meta"]["pagination"]["total"] == 1


def test_details_have_metadata_frames_progress_and_urls(client_a, done):
    response = client_a.get(f"/api/video/jobs/{done.id}")

    assert response.status_code == 200
    data = response.json()["data"]
    assert data["status"] == "completed"
    assert data["progress"] == 100
    assert data["error"] is None
    assert data["metadata"]["hasAudio"] is False
    assert data["frameCount"] == 6
    assert [frame["timestamp"] for frame in data["frames"]] == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    first = data["frames"][0]
    assert set(first) == {"index", "timestamp", "width", "height", "filename", "filePath", "size", "url"}
    assert first["filename"] == "frame_00000.jpg"
    assert first["url"] == f"http://testserver/api/video/jobs/{done.id}/frames/0"
    assert data["thumbnailUrl"] == f"http://testserver/api/video/jobs/{done.id}/thumbnail"
    assert data["storyboardUrl"].endswith("/storyboard")
    assert data["previewUrl"].endswith("/preview.gif")


def test_failed_job_shows_its_error(client_a, clips, settings, eager):
    from video.tasks import process_video_job

    job_id = upload(client_a, clips["short"]).json()["data"]["id"]
    job = VideoJob.objects.get(id=job_id)
    (Path(settings.MEDIA_ROOT) / job.video_path).unlink()
    process_video_job.delay(job_id).get()

    data = client_a.get(f"/api/video/jobs/{job_id}").json()["data"]

    assert data["status"] == "failed"
    assert data["error"] == "The uploaded video is no longer in storage."


def test_another_users_job_is_not_found(other, done):
    for path in ("", "/frames/0", "/thumbnail", "/storyboard", "/preview.gif"):
        response = other.get(f"/api/video/jobs/{done.id}{path}")
        assert response.status_code == 404, path
        assert response.json()["code"] == "not_found"
    assert other.delete(f"/api/video/jobs/{done.id}").status_code == 404
    assert VideoJob.objects.filter(id=done.id).exists()


def test_unknown_and_malformed_ids_are_not_found(client_a):
    assert client_a.get(f"/api/video/jobs/{uuid.uuid4()}").status_code == 404
    response = client_a.get("/api/video/jobs/not-a-uuid")
    assert response.status_code == 404
    assert response.json()["success"] is False


def test_reading_needs_a_token(api, done):
    for path in ("/api/video/jobs", f"/api/video/jobs/{done.id}", f"/api/video/jobs/{done.id}/frames/0"):
        response = api.get(path)
        assert response.status_code == 401, path
        assert response.json()["success"] is False


# --- Frames ----------------------------------------------------------------------------------------


def test_frame_bytes_with_type_length_and_cache_headers(client_a, done, settings):
    frame = done.frames.get(index=3)

    response = client_a.get(f"/api/video/jobs/{done.id}/frames/3")

    assert response.status_code == 200
    content = body_of(response)
    assert content == (Path(settings.MEDIA_ROOT) / frame.path).read_bytes()
    assert response["Content-Type"] == "image/jpeg"
    assert response["Content-Length"] == str(len(content)) == str(frame.size_bytes)
    assert response["Cache-Control"].startswith("private")
    assert "max-age=" in response["Cache-Control"]
    assert response["ETag"]
    assert frame_index_of(Image.open(io.BytesIO(content))) == 75


def test_frame_revalidation_answers_304(client_a, done):
    etag = client_a.get(f"/api/video/jobs/{done.id}/frames/0")["ETag"]

    response = client_a.get(f"/api/video/jobs/{done.id}/frames/0", HTTP_IF_NONE_MATCH=etag)

    assert response.status_code == 304
    assert response["ETag"] == etag
    assert client_a.get(f"/api/video/jobs/{done.id}/frames/1", HTTP_IF_NONE_MATCH=etag).status_code == 200


def test_frame_index_out_of_range_is_404(client_a, done):
    response = client_a.get(f"/api/video/jobs/{done.id}/frames/6")

    assert response.status_code == 404
    body = response.json()
    assert body["code"] == "frame_not_found"
    assert "6 frames (indexes 0 to 5)" in body["message"]


def test_frames_are_rate_limited_as_downloads(client_a, done, real_rate_limits):
    responses = [client_a.get(f"/api/video/jobs/{done.id}/frames/0") for _ in range(51)]

    assert [r.status_code for r in responses[:50]] == [200] * 50
    assert responses[0]["X-RateLimit-Limit"] == "100"
    assert responses[50].status_code == 429
    assert responses[50].json()["code"] == "rate_limited"


def test_rate_categories(client_a, done, clips, real_rate_limits):
    assert client_a.get("/api/video/jobs")["X-RateLimit-Limit"] == "60"
    assert client_a.get(f"/api/video/jobs/{done.id}")["X-RateLimit-Limit"] == "60"
    assert client_a.get(f"/api/video/jobs/{done.id}/thumbnail")["X-RateLimit-Limit"] == "100"
    assert upload(client_a, clips["short"])["X-RateLimit-Limit"] == "3"


# --- Thumbnails ------------------------------------------------------------------------------------


def test_stored_thumbnail(client_a, done, settings):
    response = client_a.get(f"/api/video/jobs/{done.id}/thumbnail")

    assert response.status_code == 200
    assert response["Content-Type"] == "image/jpeg"
    content = body_of(response)
    assert content == (Path(settings.MEDIA_ROOT) / done.thumbnail_path).read_bytes()
    assert response["Content-Length"] == str(len(content))
    assert frame_index_of(Image.open(io.BytesIO(content))) == 25


def test_thumbnail_for_another_time_is_made_and_cached(client_a, done, settings, user):
    cache = Path(settings.MEDIA_ROOT) / f"thumbnails/{user.pk}/{done.id}/cache"

    first = client_a.get(f"/api/video/jobs/{done.id}/thumbnail", {"timestamp": "3"})

    assert first.status_code == 200
    image = image_of(first)
    assert image.size == (320, 240)
    assert frame_index_of(image) == 75
    assert len(media_files(cache)) == 1
    second = client_a.get(f"/api/video/jobs/{done.id}/thumbnail", {"timestamp": "3"})
    assert body_of(second) == body_of(client_a.get(f"/api/video/jobs/{done.id}/thumbnail", {"timestamp": "3"}))
    assert second["ETag"] == first["ETag"]
    assert len(media_files(cache)) == 1


def test_thumbnail_width(client_a, done):
    response = client_a.get(f"/api/video/jobs/{done.id}/thumbnail", {"width": "160"})

    assert response.status_code == 200
    assert image_of(response).size == (160, 120)


def test_thumbnail_width_of_a_portrait_video(client_a, process, clips):
    job = process(clips["rotated"])

    response = client_a.get(f"/api/video/jobs/{job.id}/thumbnail", {"width": "120"})

    assert image_of(response).size == (120, 160)


def test_thumbnail_time_past_the_end_is_clamped(client_a, done):
    response = client_a.get(f"/api/video/jobs/{done.id}/thumbnail", {"timestamp": "999"})

    assert response.status_code == 200
    assert frame_index_of(image_of(response)) == 149  # the last frame of 6 s at 25 fps


@pytest.mark.parametrize(
    ("query", "field"),
    [({"timestamp": "-1"}, "timestamp"), ({"timestamp": "abc"}, "timestamp"), ({"width": "5"}, "width")],
)
def test_thumbnail_query_is_validated(client_a, done, query, field):
    response = client_a.get(f"/api/video/jobs/{done.id}/thumbnail", query)

    assert response.status_code == 400
    assert field in response.json()["errors"]


def test_thumbnail_of_a_job_not_yet_processed_is_made_on_demand(client_a, clips):
    job_id = upload(client_a, clips["index"], thumbnailTimestamp="2").json()["data"]["id"]

    response = client_a.get(f"/api/video/jobs/{job_id}/thumbnail")

    assert response.status_code == 200
    assert frame_index_of(image_of(response)) == 50


def test_thumbnail_of_a_failed_job_is_a_conflict(client_a, clips):
    job_id = upload(client_a, clips["short"]).json()["data"]["id"]
    VideoJob.objects.filter(id=job_id).update(status="failed", error="boom")

    response = client_a.get(f"/api/video/jobs/{job_id}/thumbnail")

    assert response.status_code == 409
    assert response.json()["code"] == "video_not_ready"


def test_thumbnails_beyond_the_cache_limit_are_served_but_not_kept(client_a, done, settings, user):
    settings.VIDEO_THUMBNAIL_CACHE_MAX = 1
    cache = Path(settings.MEDIA_ROOT) / f"thumbnails/{user.pk}/{done.id}/cache"

    first = client_a.get(f"/api/video/jobs/{done.id}/thumbnail", {"timestamp": "2"})
    second = client_a.get(f"/api/video/jobs/{done.id}/thumbnail", {"timestamp": "4"})

    assert first.status_code == second.status_code == 200
    assert frame_index_of(image_of(second)) == 100
    assert second["Content-Length"] == str(len(body_of(second)))
    assert len(media_files(cache)) == 1


# --- Storyboard and preview -----------------------------------------------------------------------


def test_storyboard_is_made_by_the_worker_on_first_request(client_a, done, django_capture_on_commit_callbacks):
    url = f"/api/video/jobs/{done.id}/storyboard"
    with django_capture_on_commit_callbacks(execute=True):
        first = client_a.get(url)

    assert first.status_code == 202
    assert first["Retry-After"] == "2"
    assert first.json()["data"] == {"status": "processing", "retryAfter": 2}

    ready = client_a.get(url)
    assert ready.status_code == 200, ready.content
    data = ready.json()["data"]
    assert data["status"] == "ready"
    assert data["spriteUrl"] == f"http://testserver{url}?format=jpg"
    assert "sprite" not in data
    assert data["columns"] * data["rows"] >= len(data["tiles"]) > 1
    assert data["tiles"][0] == {
        "index": 0,
        "time": 0.0,
        "x": 0,
        "y": 0,
        "w": data["tileWidth"],
        "h": data["tileHeight"],
    }

    sprite = client_a.get(url, {"format": "jpg"})
    assert sprite.status_code == 200
    assert sprite["Content-Type"] == "image/jpeg"
    assert image_of(sprite).size == (data["width"], data["height"])

    vtt = client_a.get(url, {"format": "vtt"})
    assert vtt.status_code == 200
    assert vtt["Content-Type"].startswith("text/vtt")
    text = vtt.content.decode()
    assert text.startswith("WEBVTT")
    assert f"{data['spriteUrl']}#xywh=0,0,{data['tileWidth']},{data['tileHeight']}" in text
    assert VideoAsset.objects.get(job=done, kind="storyboard").status == "ready"


def test_storyboard_format_is_validated(client_a, done):
    response = client_a.get(f"/api/video/jobs/{done.id}/storyboard", {"format": "xml"})

    assert response.status_code == 400
    assert "format" in response.json()["errors"]


def test_preview_gif_is_made_on_first_request_then_served(client_a, done, django_capture_on_commit_callbacks):
    url = f"/api/video/jobs/{done.id}/preview.gif"
    with django_capture_on_commit_callbacks(execute=True):
        first = client_a.get(url)

    assert first.status_code == 202
    assert first.json()["data"]["status"] == "processing"

    ready = client_a.get(url)
    assert ready.status_code == 200
    assert ready["Content-Type"] == "image/gif"
    content = body_of(ready)
    assert content.startswith(b"GIF8")
    assert ready["Content-Length"] == str(len(content))
    gif = Image.open(io.BytesIO(content))
    assert gif.n_frames > 1
    assert gif.size[0] == 240
    # Asked again, the cached asset is served without new work.
    assert body_of(client_a.get(url)) == content
    assert VideoAsset.objects.filter(job=done).count() == 1


def test_previews_of_an_unfinished_job_are_a_conflict(client_a, clips):
    job_id = upload(client_a, clips["short"]).json()["data"]["id"]

    for path in ("storyboard", "preview.gif"):
        response = client_a.get(f"/api/video/jobs/{job_id}/{path}")
        assert response.status_code == 409
        assert response.json()["code"] == "video_not_ready"
    assert VideoAsset.objects.count() == 0


def test_an_asset_that_failed_reports_why(client_a, done):
    VideoAsset.objects.create(job=done, kind="preview_gif", status="failed", error="The preview could not be made.")

    response = client_a.get(f"/api/video/jobs/{done.id}/preview.gif")

    assert response.status_code == 409
    assert response.json()["code"] == "asset_failed"
    assert "could not be made" in response.json()["message"]


# --- Deleting -------------------------------------------------------------------------------------


def test_delete_removes_rows_and_every_file(client_a, done, settings, user, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        client_a.get(f"/api/video/jobs/{done.id}/storyboard")
    client_a.get(f"/api/video/jobs/{done.id}/thumbnail", {"timestamp": "2"})
    assert len(media_files(settings.MEDIA_ROOT)) > 8

    with django_capture_on_commit_callbacks(execute=True):
        response = client_a.delete(f"/api/video/jobs/{done.id}")

    assert response.status_code == 200
    assert response.json()["data"] == {"id": str(done.id)}
    assert not VideoJob.objects.filter(id=done.id).exists()
    assert VideoFrame.objects.count() == VideoAsset.objects.count() == 0
    assert media_files(settings.MEDIA_ROOT) == []
    # The work was done: the charge stays.
    assert QuotaAccount.objects.get(user=user).used == 5
    assert client_a.get(f"/api/video/jobs/{done.id}").status_code == 404


def test_deleting_a_job_not_yet_processed_cancels_and_refunds_it(
    client_a, clips, settings, user, django_capture_on_commit_callbacks
):
    job_id = upload(client_a, clips["short"]).json()["data"]["id"]

    with django_capture_on_commit_callbacks(execute=True):
        assert client_a.delete(f"/api/video/jobs/{job_id}").status_code == 200

    assert media_files(settings.MEDIA_ROOT) == []
    assert QuotaAccount.objects.get(user=user).used == 0


def test_deleting_leaves_other_jobs_alone(client_a, done, clips, settings, django_capture_on_commit_callbacks):
    keep = upload(client_a, clips["short"]).json()["data"]["id"]

    with django_capture_on_commit_callbacks(execute=True):
        client_a.delete(f"/api/video/jobs/{done.id}")

    kept = VideoJob.objects.get(id=keep)
    assert media_files(settings.MEDIA_ROOT) == [kept.video_path]


def test_deleting_the_account_removes_the_users_video_files(
    client_a, done, other, clips, settings, django_capture_on_commit_callbacks
):
    theirs = upload(other, clips["short"]).json()["data"]["id"]

    with django_capture_on_commit_callbacks(execute=True):
        response = client_a.delete("/api/user/account", {"password": PASSWORD}, format="json")

    assert response.status_code == 200, response.content
    assert list(VideoJob.objects.values_list("id", flat=True)) == [uuid.UUID(theirs)]
    assert media_files(settings.MEDIA_ROOT) == [VideoJob.objects.get().video_path]


def test_the_job_is_deleted_with_the_service_too(done, settings, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        services.video_job_delete(job=done)

    assert media_files(settings.MEDIA_ROOT) == []


def test_frames_of_a_job_without_frames(client_a, process, clips):
    job = process(clips["short"], extractFrames=False)

    response = client_a.get(f"/api/video/jobs/{job.id}/frames/0")

    assert response.status_code == 404
    assert response.json()["message"] == "Frame 0 does not exist; this job has no frames."


def test_an_asset_the_worker_cannot_make_fails_with_the_reason(
    client_a, done, settings, django_capture_on_commit_callbacks
):
    from tests.video.media_fixtures import write_garbage

    write_garbage(Path(settings.MEDIA_ROOT) / done.video_path, size=30_000)
    url = f"/api/video/jobs/{done.id}/preview.gif"

    with django_capture_on_commit_callbacks(execute=True):
        assert client_a.get(url).status_code == 202

    response = client_a.get(url)
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "asset_failed"
    assert body["message"].startswith("The preview gif could not be made: The file is not a readable video")
    assert VideoAsset.objects.get(job=done).status == "failed"

"""GET /api/video/jobs/{id}/events: the job's progress as Server-Sent Events. Behind gunicorn
(gthread, the default) each change of the row is one event, in order, while other requests are
served, and the stream closes after the terminal status; a reconnect with Last-Event-ID starts with
the current state; a real worker's job, held mid-run while the stream opens, streams its progress
from there to its end; another user gets 404, no token 401, a finished job one event."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator

import pytest
from django.utils import timezone

from bench.server import request_json, running_server
from bench.video_upload_bench import stream_upload
from tests.video.conftest import held_mid_job, wait_terminal
from tests.video.test_resumable_client import GTHREAD, token_for, web_env
from video.events.stream import JobState, StatusEvent, video_job_events
from video.models import VideoJob


def parse(lines: Iterator[str]) -> Iterator[dict]:
    """SSE events (`{"id", "event", "data"}`, or `{"comment"}`) from the stream's lines."""
    event: dict = {}
    for raw in lines:
        line = raw.rstrip("\n")
        if not line:
            if event:
                yield event
            event = {}
        elif line.startswith(":"):
            yield {"comment": line[1:].strip()}
        else:
            name, _, value = line.partition(": ")
            event[name] = json.loads(value) if name == "data" else value
    if event:
        yield event


def events_of(response) -> list[dict]:
    text = b"".join(response.streaming_content).decode()
    return [event for event in parse(iter(text.splitlines(keepends=True))) if "event" in event]


def make_job(user, **fields) -> VideoJob:
    return VideoJob.objects.create(user=user, filename="a.mp4", video_path="videos/x/a.mp4", **fields)


@pytest.mark.django_db
def test_a_finished_job_yields_one_status_event_and_closes(client_a, user):
    job = make_job(user, status="completed", progress=100, completed_at=timezone.now())

    response = client_a.get(f"/api/video/jobs/{job.id}/events", HTTP_ACCEPT="text/event-stream")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/event-stream"
    assert response["Cache-Control"] == "no-cache"
    events = events_of(response)
    assert [(e["event"], e["id"]) for e in events] == [("status", "completed-100")]
    data = events[0]["data"]
    assert data["jobId"] == str(job.id)
    assert (data["status"], data["progress"], data["error"], data["errorCode"]) == ("completed", 100, None, None)
    assert set(data) == {"jobId", "status", "progress", "error", "errorCode", "updatedAt"}


@pytest.mark.django_db
def test_a_failed_job_carries_its_error(client_a, user):
    job = make_job(user, status="failed", progress=30, error="The video could not be decoded.", error_code="bad")

    (event,) = events_of(client_a.get(f"/api/video/jobs/{job.id}/events"))

    assert event["data"]["error"] == "The video could not be decoded."
    assert event["data"]["errorCode"] == "bad"


@pytest.mark.django_db
def test_another_users_job_is_404_and_no_token_401(client_a, api, make_user, auth_client):
    job = make_job(make_user())

    answer = client_a.get(f"/api/video/jobs/{job.id}/events", HTTP_ACCEPT="text/event-stream")
    assert answer.status_code == 404
    assert answer.json()["success"] is False
    assert api.get(f"/api/video/jobs/{job.id}/events").status_code == 401


@pytest.mark.django_db
def test_the_stream_ends_at_its_lifetime_with_keep_alives(user, settings):
    settings.VIDEO_EVENTS_POLL_SECONDS = 1
    settings.VIDEO_EVENTS_KEEPALIVE_SECONDS = 3
    settings.VIDEO_EVENTS_MAX_SECONDS = 10
    job = make_job(user, status="processing", progress=5)
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    first = JobState(job.id, job.status, job.progress, job.error, job.error_code, job.updated_at)
    events = list(video_job_events(first=first, clock=lambda: now[0], sleep=sleep))

    assert isinstance(events[0], StatusEvent)
    assert [type(event).__name__ for event in events[1:]] == ["KeepAlive"] * 3
    assert now[0] == 10


def read_events(conn: http.client.HTTPConnection, path: str, token: str, **headers: str) -> Iterator[dict]:
    """The stream's events (keep-alive comments left out) as they arrive."""
    conn.request("GET", path, headers={"Authorization": f"Bearer {token}", "Accept": "text/event-stream", **headers})
    response = conn.getresponse()
    assert response.status == 200, response.read()
    events = parse(line.decode() for line in iter(response.readline, b""))
    return (event for event in events if "event" in event)


# Streams poll the row often here so that a real job's short steps are seen; the tests that drive
# the row themselves wait for each event before the next change, so they hold at any speed.
POLL = {"VIDEO_EVENTS_POLL_SECONDS": "0.05"}


@pytest.fixture
def web(worker, tmp_path):
    with running_server({**web_env(tmp_path, worker.media_root), **POLL}, extra_args=GTHREAD) as server:
        yield server


@pytest.fixture
def web_alone(transactional_db, tmp_path):
    """gunicorn on the test database with no worker: the test itself moves the job's row."""
    with running_server({**web_env(tmp_path, tmp_path / "media"), **POLL}, extra_args=GTHREAD) as server:
        yield server


Stream = tuple[http.client.HTTPConnection, Iterator[dict]]


def stream_of(port: int, job: VideoJob, token: str, **headers: str) -> Stream:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    return conn, read_events(conn, f"/api/video/jobs/{job.id}/events", token, **headers)


def test_each_change_of_the_row_is_one_event_in_order_behind_gunicorn(web_alone, user):
    token = token_for(web_alone.port, user)
    job = make_job(user, status="processing", progress=0)
    conn, stream = stream_of(web_alone.port, job, token)

    first = next(stream)
    assert (first["event"], first["id"], first["data"]["progress"]) == ("status", "processing-0", 0)
    # The open stream holds one thread; another request is served meanwhile (were it queued
    # behind the stream, it would wait out the stream's lifetime and time out).
    status, body = request_json(web_alone.port, "GET", f"/api/video/jobs/{job.id}", token=token)
    assert (status, body["data"]["status"]) == (200, "processing")

    for percent in (10, 45, 80):
        VideoJob.objects.filter(id=job.id).update(progress=percent)
        event = next(stream)
        assert (event["event"], event["id"]) == ("progress", f"processing-{percent}")
        assert (event["data"]["status"], event["data"]["progress"]) == ("processing", percent)
    VideoJob.objects.filter(id=job.id).update(status="completed", progress=100, completed_at=timezone.now())
    last = next(stream)

    assert (last["event"], last["id"]) == ("status", "completed-100")
    assert (last["data"]["status"], last["data"]["progress"], last["data"]["error"]) == ("completed", 100, None)
    assert list(stream) == []  # the server closed the stream after the terminal status
    conn.close()


def test_a_reconnect_with_last_event_id_gets_the_current_state_at_once(web_alone, user):
    token = token_for(web_alone.port, user)
    job = make_job(user, status="processing", progress=40)

    # The app saw processing-20 before it lost its connection; the row has moved on since and
    # does not change while it reconnects, so a stream that waited for a change would send nothing.
    conn, stream = stream_of(web_alone.port, job, token, **{"Last-Event-ID": "processing-20"})
    first = next(stream)
    assert (first["event"], first["id"], first["data"]["progress"]) == ("status", "processing-40", 40)

    error = "The video could not be decoded."
    VideoJob.objects.filter(id=job.id).update(status="failed", error=error, error_code="bad")
    last = next(stream)
    assert (last["event"], last["id"]) == ("status", "failed-40")
    assert (last["data"]["error"], last["data"]["errorCode"]) == (error, "bad")
    assert list(stream) == []
    conn.close()


def test_the_stream_follows_a_real_job_to_its_end(web, worker, user, clips):
    token = token_for(web.port, user)
    status, body = stream_upload(
        web.port, clips["slow"], token=token, fields={"frameInterval": "0.1", "maxFrames": "300"}
    )
    assert status == 202, body
    job = VideoJob.objects.get(id=body["data"]["id"])

    # The stream opens while the job is held mid-run, so it starts there however fast the job is.
    with held_mid_job(worker, str(job.id)):
        conn, stream = stream_of(web.port, job, token)
        first = next(stream)
    seen = [first, *stream]  # ends when the server closes the stream after the terminal status
    conn.close()

    job = wait_terminal(job.id)
    assert job.status == "completed", f"{job.error}\n{worker.log()}"
    assert (first["event"], first["data"]["status"]) == ("status", "processing")
    assert first["id"] == f"processing-{first['data']['progress']}"
    assert 10 <= first["data"]["progress"] <= 90
    assert (seen[-1]["event"], seen[-1]["id"], seen[-1]["data"]["status"]) == ("status", "completed-100", "completed")
    # How many of the worker's progress writes a poll sees depends on the machine's speed; the
    # row-driven test above pins one event per change. Here: progress from mid-run on, never back.
    progress = [event["data"]["progress"] for event in seen if event["event"] == "progress"]
    assert progress == sorted(progress)
    assert len(set(progress)) == len(progress)
    assert all(first["data"]["progress"] < percent < 100 for percent in progress)
    assert len({event["id"] for event in seen}) == len(seen)

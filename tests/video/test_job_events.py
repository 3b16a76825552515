"""GET /api/video/jobs/{id}/events: the job's progress as Server-Sent Events. Through a real
worker behind gunicorn (gthread, the default) the stream shows increasing progress and ends with
the terminal status while other requests are served; a reconnect with Last-Event-ID starts with
the current state; another user gets 404, no token 401, a finished job one event."""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterator

import pytest
from django.utils import timezone

from bench.server import request_json, running_server
from bench.video_upload_bench import stream_upload
from tests.video.conftest import wait_terminal
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
    conn.request("GET", path, headers={"Authorization": f"Bearer {token}", "Accept": "text/event-stream", **headers})
    response = conn.getresponse()
    assert response.status == 200, response.read()
    return parse(line.decode() for line in iter(response.readline, b""))


@pytest.fixture
def web(worker, tmp_path):
    with running_server(web_env(tmp_path, worker.media_root), extra_args=GTHREAD) as server:
        yield server


def test_the_stream_follows_a_real_job_to_its_end(web, worker, user, clips):
    token = token_for(web.port, user)
    status, body = stream_upload(
        web.port, clips["slow"], token=token, fields={"frameInterval": "0.1", "maxFrames": "300"}
    )
    assert status == 202, body
    job_id = body["data"]["id"]
    path = f"/api/video/jobs/{job_id}/events"

    seen: list[dict] = []
    other_traffic: list[int] = []
    conn = http.client.HTTPConnection("127.0.0.1", web.port, timeout=60)
    for event in read_events(conn, path, token):
        if "event" not in event:
            continue
        seen.append(event)
        if event["event"] == "progress" and not other_traffic:
            # Another request while the stream holds a thread: served at once.
            started = time.monotonic()
            other_traffic.append(request_json(web.port, "GET", f"/api/video/jobs/{job_id}", token=token)[0])
            assert time.monotonic() - started < 5
    conn.close()  # the server closed the stream after the terminal status (the loop ended)

    job = wait_terminal(job_id)
    assert job.status == "completed", f"{job.error}\n{worker.log()}"
    assert other_traffic == [200]
    assert seen[0]["event"] == "status"
    assert seen[-1]["event"] == "status"
    assert seen[-1]["data"]["status"] == "completed"
    assert seen[-1]["id"] == "completed-100"
    progress = [event["data"]["progress"] for event in seen if event["event"] == "progress"]
    assert len(progress) >= 3, seen
    assert progress == sorted(progress)
    assert len(set(progress)) == len(progress)
    assert all(event["id"] for event in seen)
    assert len({event["id"] for event in seen}) == len(seen)


def test_a_reconnect_with_last_event_id_gets_the_current_state_at_once(web, worker, user, clips):
    token = token_for(web.port, user)
    status, body = stream_upload(
        web.port, clips["slow"], token=token, fields={"frameInterval": "0.1", "maxFrames": "300"}
    )
    assert status == 202, body
    job_id = body["data"]["id"]
    path = f"/api/video/jobs/{job_id}/events"

    conn = http.client.HTTPConnection("127.0.0.1", web.port, timeout=60)
    last_id = ""
    for event in read_events(conn, path, token):
        if event.get("event") == "progress":
            last_id = event["id"]
            break
    conn.close()  # the app lost its connection mid-job
    assert last_id.startswith("processing-")

    again = http.client.HTTPConnection("127.0.0.1", web.port, timeout=60)
    started = time.monotonic()
    stream = read_events(again, path, token, **{"Last-Event-ID": last_id})
    first = next(event for event in stream if "event" in event)
    waited = time.monotonic() - started

    assert first["event"] == "status"
    assert waited < 2
    current = VideoJob.objects.get(id=job_id)
    assert first["data"]["status"] in {"processing", "completed"}
    assert first["data"]["progress"] >= int(last_id.split("-")[1])
    assert first["data"]["progress"] <= current.progress
    rest = [event for event in stream if "event" in event]
    again.close()
    assert rest[-1]["data"]["status"] == "completed"
    wait_terminal(job_id)

"""Streamed chat (Server-Sent Events), including a client that goes away mid-answer.

The answer is stored by a background thread with its own database connection, so these tests
run with real transactions."""

from __future__ import annotations

import json
import threading

import pytest

from ai_services.models import AIJob, Conversation, Message
from quotas.models import Reservation
from quotas.selectors import quota_account_forget, quota_account_get
from tests.ai_services.conftest import wait_for

URL = "/api/ai/chat"
pytestmark = pytest.mark.django_db(transaction=True)


def parse_events(raw: str) -> list[tuple[str, dict]]:
    events = []
    for block in raw.split("\n\n"):
        lines = [line for line in block.split("\n") if line and not line.startswith(":")]
        if not lines:
            continue
        name = next(line[7:] for line in lines if line.startswith("event: "))
        data = json.loads(next(line[6:] for line in lines if line.startswith("data: ")))
        events.append((name, data))
    return events


def read_stream(response) -> list[tuple[str, dict]]:
    raw = b"".join(response.streaming_content).decode()
    response.close()
    return parse_events(raw)


def used_units(user) -> int:
    quota_account_forget(user=user)
    return quota_account_get(user=user).used


def finished_job(job_id):
    return wait_for(lambda: AIJob.objects.filter(id=job_id, status__in=["completed", "failed"]).first())


def test_stream_sends_deltas_then_the_stored_answer(openai_settings, fake_openai, client_a, user):
    fake_openai.state.reply = "Streams arrive one word at a time."
    response = client_a.post(URL, {"message": "Stream please", "stream": True}, format="json")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/event-stream")
    assert response["Cache-Control"] == "no-cache"
    events = read_stream(response)
    names = [name for name, _ in events]
    assert names[0] == "start"
    assert names[-1] == "done"
    assert set(names[1:-1]) == {"delta"}
    assert len(names) > 4
    deltas = "".join(data["content"] for name, data in events if name == "delta")
    assert deltas == "Streams arrive one word at a time."

    start, done = events[0][1], events[-1][1]
    assert done["conversationId"] == start["conversationId"]
    assert done["jobId"] == start["jobId"]
    assert done["message"]["content"] == deltas
    assert done["message"]["role"] == "assistant"
    assert done["usage"]["completionTokens"] == 7
    assert done["usage"]["totalTokens"] == done["usage"]["promptTokens"] + 7

    job = finished_job(done["jobId"])
    assert job.status == "completed"
    assert job.tokens_used == done["usage"]["totalTokens"]
    assert job.input["stream"] is True
    assert Message.objects.get(id=done["message"]["id"]).content == deltas
    assert used_units(user) == 2


def test_accept_header_asks_for_a_stream(openai_settings, fake_openai, client_a):
    response = client_a.post(URL, {"message": "hello"}, format="json", HTTP_ACCEPT="text/event-stream")
    assert response["Content-Type"].startswith("text/event-stream")
    events = read_stream(response)
    assert events[-1][0] == "done"
    assert events[-1][1]["message"]["content"] == "Echo: hello"


def test_stream_continues_the_conversation(openai_settings, fake_openai, client_a):
    first = client_a.post(URL, {"message": "first"}, format="json").json()["data"]
    response = client_a.post(
        URL, {"message": "second", "conversationId": first["conversationId"], "stream": True}, format="json"
    )
    events = read_stream(response)
    assert events[-1][1]["conversationId"] == first["conversationId"]
    finished_job(events[-1][1]["jobId"])
    sent = fake_openai.requests_to("/chat/completions")[-1].body["messages"]
    assert [m["content"] for m in sent[1:]] == ["first", "Echo: first", "second"]
    assert Conversation.objects.get(id=first["conversationId"]).message_count == 4


def test_client_disconnect_mid_stream_still_completes_stores_and_bills(openai_settings, fake_openai, client_a, user):
    words = [f"word{i}" for i in range(12)]
    fake_openai.state.reply = " ".join(words)
    gate = fake_openai.state.stream_gate = threading.Event()  # the provider holds after the first word
    try:
        response = client_a.post(URL, {"message": "long answer", "stream": True}, format="json")
        stream = iter(response.streaming_content)
        start = parse_events(next(stream).decode())[0]
        first_delta = parse_events(next(stream).decode())[0]
        assert start[0] == "start"
        assert (first_delta[0], first_delta[1]["content"]) == ("delta", "word0 ")
        response.close()  # the app went away after the first word, the rest still to come
    finally:
        gate.set()

    job = finished_job(start[1]["jobId"])
    assert job.status == "completed"
    conversation = Conversation.objects.get(id=start[1]["conversationId"])
    answer = conversation.messages.get(role="assistant")
    assert answer.content == " ".join(words)
    assert Reservation.objects.get(pk=job.reservation_id).status == "settled"
    assert used_units(user) == 2
    # The app resumes by fetching the conversation.
    detail = client_a.get(f"/api/ai/conversations/{conversation.id}").json()["data"]
    assert detail["messages"][-1]["content"] == " ".join(words)


def test_refusal_before_the_stream_is_a_json_error(openai_settings, fake_openai, client_a, user):
    fake_openai.fail_next("429", "429", "429")
    response = client_a.post(URL, {"message": "hi", "stream": True}, format="json")
    assert response.status_code == 503
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["code"] == "provider_unavailable"
    job = AIJob.objects.get()
    assert job.status == "failed"
    assert used_units(user) == 0


def test_stream_broken_midway_sends_an_error_event_and_refunds(openai_settings, fake_openai, client_a, user):
    fake_openai.state.reply = "one two three four five six"
    fake_openai.fail_next("stream_break")
    response = client_a.post(URL, {"message": "hi", "stream": True}, format="json")
    events = read_stream(response)
    name, data = events[-1]
    assert name == "error"
    assert data["success"] is False
    assert data["code"] == "provider_error"
    job = finished_job(data["jobId"])
    assert job.status == "failed"
    assert Reservation.objects.get(pk=job.reservation_id).status == "refunded"
    assert used_units(user) == 0
    assert Message.objects.count() == 0


def test_stream_on_the_local_provider_is_503(local_settings, client_a):
    response = client_a.post(URL, {"message": "hi", "stream": True}, format="json")
    assert response.status_code == 503
    assert response.json()["code"] == "provider_not_configured"


def test_stream_validation_errors_are_json(openai_settings, client_a):
    response = client_a.post(URL, {"message": "", "stream": True}, format="json", HTTP_ACCEPT="text/event-stream")
    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"

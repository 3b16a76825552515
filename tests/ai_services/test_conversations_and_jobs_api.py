"""Conversations (list, detail with paginated messages, rename, delete) and AI job history."""

from __future__ import annotations

import uuid

import pytest

from ai_services.models import AIJob, Conversation, Message

CHAT = "/api/ai/chat"
CONVERSATIONS = "/api/ai/conversations"
JOBS = "/api/ai/jobs"


def start_conversation(client, text: str) -> str:
    return client.post(CHAT, {"message": text}, format="json").json()["data"]["conversationId"]


def make_job(user, **fields) -> AIJob:
    defaults = {"type": "chat", "status": "completed", "provider": "openai", "model": "gpt-4o-mini"}
    return AIJob.objects.create(user=user, **{**defaults, **fields})


# --- Conversations ---------------------------------------------------------------------------


def test_list_shows_title_last_message_and_newest_first(openai_settings, fake_openai, client_a):
    first = start_conversation(client_a, "First topic")
    second = start_conversation(client_a, "Second topic")
    client_a.post(CHAT, {"message": "more on the first", "conversationId": first}, format="json")
    response = client_a.get(CONVERSATIONS)
    assert response.status_code == 200
    body = response.json()
    assert body["meta"]["pagination"] == {"page": 1, "limit": 20, "total": 2, "pages": 1}
    ids = [item["id"] for item in body["data"]]
    assert ids == [first, second]
    item = body["data"][0]
    assert item["title"] == "First topic"
    assert item["messageCount"] == 4
    assert item["lastMessage"]["role"] == "assistant"
    assert item["lastMessage"]["content"] == "Echo: more on the first"
    assert {"updatedAt", "createdAt", "model"} <= set(item)


def test_list_is_only_mine_and_needs_a_token(openai_settings, fake_openai, client_a, auth_client, make_user, api):
    start_conversation(client_a, "mine")
    other = auth_client(make_user())
    assert other.get(CONVERSATIONS).json()["data"] == []
    assert api.get(CONVERSATIONS).status_code == 401


def test_detail_pages_through_messages_oldest_first(openai_settings, fake_openai, client_a):
    conversation_id = start_conversation(client_a, "m0")
    for i in range(1, 3):
        client_a.post(CHAT, {"message": f"m{i}", "conversationId": conversation_id}, format="json")
    page1 = client_a.get(f"{CONVERSATIONS}/{conversation_id}?limit=4").json()
    assert page1["data"]["id"] == conversation_id
    assert page1["data"]["title"] == "m0"
    assert [m["content"] for m in page1["data"]["messages"]] == ["m0", "Echo: m0", "m1", "Echo: m1"]
    assert page1["meta"]["pagination"] == {"page": 1, "limit": 4, "total": 6, "pages": 2}
    page2 = client_a.get(f"{CONVERSATIONS}/{conversation_id}?limit=4&page=2").json()
    assert [m["content"] for m in page2["data"]["messages"]] == ["m2", "Echo: m2"]
    assert set(page2["data"]["messages"][0]) == {"id", "role", "content", "createdAt"}
    assert client_a.get(f"{CONVERSATIONS}/{conversation_id}?limit=0").status_code == 400


def test_rename(openai_settings, fake_openai, client_a):
    conversation_id = start_conversation(client_a, "old")
    response = client_a.patch(f"{CONVERSATIONS}/{conversation_id}", {"title": "  Trip plans  "}, format="json")
    assert response.status_code == 200
    assert response.json()["data"]["title"] == "Trip plans"
    assert Conversation.objects.get(id=conversation_id).title == "Trip plans"


@pytest.mark.parametrize("payload", [{}, {"title": ""}, {"title": 5}, {"title": "x" * 201}])
def test_rename_validation(openai_settings, fake_openai, client_a, payload):
    conversation_id = start_conversation(client_a, "old")
    response = client_a.patch(f"{CONVERSATIONS}/{conversation_id}", payload, format="json")
    assert response.status_code == 400
    assert "title" in response.json()["errors"]


def test_delete_removes_messages_and_keeps_the_job_history(openai_settings, fake_openai, client_a):
    conversation_id = start_conversation(client_a, "bye")
    response = client_a.delete(f"{CONVERSATIONS}/{conversation_id}")
    assert response.status_code == 200
    assert response.json()["success"] is True
    assert not Conversation.objects.filter(id=conversation_id).exists()
    assert Message.objects.count() == 0
    job = AIJob.objects.get()
    assert job.conversation_id is None
    assert client_a.get(f"{CONVERSATIONS}/{conversation_id}").status_code == 404


def test_another_users_conversation_is_404_for_every_method(
    openai_settings, fake_openai, client_a, auth_client, make_user
):
    conversation_id = start_conversation(client_a, "private")
    other = auth_client(make_user())
    url = f"{CONVERSATIONS}/{conversation_id}"
    assert other.get(url).status_code == 404
    assert other.patch(url, {"title": "mine now"}, format="json").status_code == 404
    assert other.delete(url).status_code == 404
    assert Conversation.objects.get(id=conversation_id).title == "private"
    assert client_a.get(f"{CONVERSATIONS}/{uuid.uuid4()}").json()["code"] == "not_found"
    assert client_a.get(f"{CONVERSATIONS}/not-a-uuid").status_code == 404


# --- Jobs ------------------------------------------------------------------------------------


def test_jobs_newest_first_with_the_seed_fields(client_a, user):
    older = make_job(user, type="tts", tokens_used=0, units_charged=1)
    newer = make_job(
        user, type="chat", tokens_used=150, units_charged=2, processing_time_ms=1250, input={"message": "Hi"}
    )
    response = client_a.get(JOBS)
    assert response.status_code == 200
    body = response.json()
    assert [j["id"] for j in body["data"]] == [str(newer.id), str(older.id)]
    item = body["data"][0]
    assert item["tokensUsed"] == 150
    assert item["unitsCharged"] == 2
    assert item["processingTime"] == 1250
    assert item["input"] == {"message": "Hi"}
    assert {"type", "status", "output", "provider", "model", "error", "createdAt", "completedAt"} <= set(item)
    assert body["meta"]["pagination"]["total"] == 2


def test_jobs_filter_by_type_and_status(client_a, user):
    make_job(user, type="chat", status="completed")
    make_job(user, type="chat", status="failed")
    make_job(user, type="whisper", status="pending")
    assert len(client_a.get(f"{JOBS}?type=chat").json()["data"]) == 2
    assert len(client_a.get(f"{JOBS}?status=failed").json()["data"]) == 1
    assert client_a.get(f"{JOBS}?type=whisper&status=pending").json()["data"][0]["type"] == "whisper"
    assert client_a.get(f"{JOBS}?type=chat&status=pending").json()["data"] == []


@pytest.mark.parametrize(("query", "field"), [("type=video", "type"), ("status=done", "status"), ("limit=x", "limit")])
def test_jobs_bad_filters_are_400(client_a, query, field):
    response = client_a.get(f"{JOBS}?{query}")
    assert response.status_code == 400
    assert field in response.json()["errors"]


def test_jobs_paginate(client_a, user):
    for _ in range(5):
        make_job(user)
    body = client_a.get(f"{JOBS}?limit=2&page=3").json()
    assert len(body["data"]) == 1
    assert body["meta"]["pagination"] == {"page": 3, "limit": 2, "total": 5, "pages": 3}


def test_job_detail_and_other_users_job(client_a, user, auth_client, make_user, api):
    job = make_job(user, output={"text": "done"})
    response = client_a.get(f"{JOBS}/{job.id}")
    assert response.status_code == 200
    assert response.json()["data"]["output"] == {"text": "done"}
    other = auth_client(make_user())
    assert other.get(f"{JOBS}/{job.id}").status_code == 404
    assert other.get(JOBS).json()["data"] == []
    assert client_a.get(f"{JOBS}/{uuid.uuid4()}").status_code == 404
    assert api.get(JOBS).status_code == 401
    assert api.get(f"{JOBS}/{job.id}").status_code == 401

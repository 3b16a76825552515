"""POST /api/ai/chat: answers, conversation memory, failures, quota and rate limits."""

from __future__ import annotations

import logging
import uuid

import pytest

from ai_services.models import AIJob, Conversation, Message
from quotas.models import Reservation
from quotas.selectors import quota_account_get
from quotas.services import quota_limit_set
from tests.ai_services.conftest import SHORT_TIMEOUT_SECONDS, TEST_KEY

URL = "/api/ai/chat"


def used_units(user) -> int:
    from quotas.selectors import quota_account_forget

    quota_account_forget(user=user)
    return quota_account_get(user=user).used


def test_chat_answers_and_starts_a_conversation(openai_settings, fake_openai, client_a, user):
    response = client_a.post(URL, {"message": "Explain quantum computing", "model": "gpt-4o"}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["success"] is True
    data = body["data"]
    assert set(data) >= {"conversationId", "message", "model", "usage"}
    assert data["message"]["role"] == "assistant"
    assert data["message"]["content"] == "Echo: Explain quantum computing"
    assert set(data["message"]) == {"id", "role", "content", "createdAt"}
    assert data["model"] == "gpt-4o"
    usage = data["usage"]
    assert usage["totalTokens"] == usage["promptTokens"] + usage["completionTokens"]
    assert usage["completionTokens"] == 4

    conversation = Conversation.objects.get(id=data["conversationId"], user=user)
    assert conversation.title == "Explain quantum computing"
    assert [(m.role, m.position) for m in conversation.messages.all()] == [("user", 1), ("assistant", 2)]

    job = AIJob.objects.get(id=data["jobId"])
    assert job.type == "chat"
    assert job.status == "completed"
    assert job.provider == "openai"
    assert job.model == "gpt-4o"
    assert job.tokens_used == usage["totalTokens"]
    assert job.units_charged == 2
    assert job.conversation_id == conversation.id
    assert job.input["message"] == "Explain quantum computing"
    assert used_units(user) == 2


def test_follow_up_sends_the_history_and_the_system_prompt(openai_settings, fake_openai, client_a):
    first = client_a.post(URL, {"message": "My name is Ada", "systemPrompt": "Be terse."}, format="json").json()
    conversation_id = first["data"]["conversationId"]
    second = client_a.post(URL, {"message": "What is my name?", "conversationId": conversation_id}, format="json")
    assert second.status_code == 200
    assert second.json()["data"]["conversationId"] == conversation_id
    sent = fake_openai.requests_to("/chat/completions")[-1].body["messages"]
    assert sent == [
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": "My name is Ada"},
        {"role": "assistant", "content": "Echo: My name is Ada"},
        {"role": "user", "content": "What is my name?"},
    ]
    assert Message.objects.filter(conversation_id=conversation_id).count() == 4


def test_default_system_prompt_when_none_given(openai_settings, fake_openai, client_a):
    client_a.post(URL, {"message": "Hi"}, format="json")
    sent = fake_openai.requests_to("/chat/completions")[-1].body["messages"]
    assert sent[0] == {"role": "system", "content": openai_settings.AI_CHAT_DEFAULT_SYSTEM_PROMPT}


def test_history_is_trimmed_newest_first_to_the_token_budget(openai_settings, fake_openai, client_a):
    from ai_services import tokens

    conversation_id = None
    for i in range(6):
        payload = {"message": f"message number {i} " + "word " * 20}
        if conversation_id:
            payload["conversationId"] = conversation_id
        conversation_id = client_a.post(URL, payload, format="json").json()["data"]["conversationId"]
    # Room for the system prompt, the new message and about two earlier messages.
    one = tokens.count_message_tokens("message number 0 " + "word " * 20)
    system = tokens.count_message_tokens(openai_settings.AI_CHAT_DEFAULT_SYSTEM_PROMPT)
    openai_settings.AI_CHAT_HISTORY_TOKENS = system + tokens.count_message_tokens("last") + 3 + 2 * one + 12
    client_a.post(URL, {"message": "last", "conversationId": conversation_id}, format="json")
    sent = fake_openai.requests_to("/chat/completions")[-1].body["messages"]
    assert sent[0]["role"] == "system"
    assert sent[-1] == {"role": "user", "content": "last"}
    history = sent[1:-1]
    assert len(history) == 2
    # The most recent exchange of the conversation, in order.
    assert history[0]["content"].startswith("message number 5")
    assert history[1]["content"].startswith("Echo: message number 5")


def test_empty_and_wrongly_typed_fields_are_400(openai_settings, client_a):
    for payload, field in [
        ({"message": ""}, "message"),
        ({"message": "   "}, "message"),
        ({}, "message"),
        ({"message": 42}, "message"),
        ({"message": ["a"]}, "message"),
        ({"message": "hi", "temperature": "hot"}, "temperature"),
        ({"message": "hi", "temperature": 3}, "temperature"),
        ({"message": "hi", "maxTokens": 0}, "maxTokens"),
        ({"message": "hi", "conversationId": "not-a-uuid"}, "conversationId"),
        ({"message": "hi", "stream": "maybe"}, "stream"),
    ]:
        response = client_a.post(URL, payload, format="json")
        assert response.status_code == 400, payload
        body = response.json()
        assert body["success"] is False
        assert body["code"] == "validation_error"
        assert field in body["errors"], (payload, body)
    assert AIJob.objects.count() == 0


def test_too_long_message_is_400(openai_settings, client_a):
    openai_settings.AI_CHAT_MAX_MESSAGE_CHARS = 10
    response = client_a.post(URL, {"message": "x" * 11}, format="json")
    assert response.status_code == 400
    assert "message" in response.json()["errors"]


def test_unknown_model_is_400(openai_settings, fake_openai, client_a):
    response = client_a.post(URL, {"message": "hi", "model": "gpt-99"}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "validation_error"
    assert "model" in body["errors"]
    assert fake_openai.requests == []


def test_malformed_json_is_400(openai_settings, client_a):
    response = client_a.post(URL, data="{nope", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["success"] is False


def test_no_token_is_401(openai_settings, api):
    response = api.post(URL, {"message": "hi"}, format="json")
    assert response.status_code == 401
    assert response.json()["success"] is False


def test_another_users_conversation_is_404(openai_settings, fake_openai, client_a, auth_client, make_user):
    conversation_id = client_a.post(URL, {"message": "secret"}, format="json").json()["data"]["conversationId"]
    other = auth_client(make_user())
    response = other.post(URL, {"message": "let me in", "conversationId": conversation_id}, format="json")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    unknown = client_a.post(URL, {"message": "hi", "conversationId": str(uuid.uuid4())}, format="json")
    assert unknown.status_code == 404


def test_quota_exhausted_is_429_and_nothing_is_called(openai_settings, fake_openai, client_a, user):
    quota_limit_set(account=quota_account_get(user=user), limit=1)
    response = client_a.post(URL, {"message": "hi"}, format="json")
    assert response.status_code == 429
    body = response.json()
    assert body["code"] == "quota_exceeded"
    assert "Retry-After" in response
    assert fake_openai.requests == []
    assert AIJob.objects.count() == 0


def test_rate_limited_after_the_ai_burst(openai_settings, fake_openai, client_a, real_rate_limits):
    burst = real_rate_limits["ai"]["burst"][0]
    codes = [client_a.post(URL, {"message": f"hi {i}"}, format="json").status_code for i in range(burst + 1)]
    assert codes[:burst] == [200] * burst
    assert codes[burst] == 429
    last = client_a.post(URL, {"message": "again"}, format="json")
    assert last.json()["code"] == "rate_limited"
    assert int(last["Retry-After"]) >= 1


@pytest.mark.parametrize(
    ("failures", "status", "code"),
    [
        (["429", "429", "429"], 503, "provider_unavailable"),
        (["500", "500", "500"], 502, "provider_error"),
        (["503", "503", "503"], 503, "provider_unavailable"),
        (["malformed"], 502, "provider_error"),
    ],
)
def test_provider_failures_are_recorded_and_refunded(
    openai_settings, fake_openai, client_a, user, failures, status, code
):
    fake_openai.fail_next(*failures)
    response = client_a.post(URL, {"message": "hi"}, format="json")
    assert response.status_code == status
    body = response.json()
    assert body["success"] is False
    assert body["code"] == code
    job = AIJob.objects.get()
    assert job.status == "failed"
    assert job.error_code == code
    assert job.units_charged == 0
    assert job.error
    assert Reservation.objects.get(pk=job.reservation_id).status == "refunded"
    assert used_units(user) == 0
    assert Conversation.objects.count() == 0


def test_provider_timeout_is_504(openai_settings, fake_openai, client_a, user):
    openai_settings.OPENAI_MAX_RETRIES = 0
    openai_settings.OPENAI_TIMEOUT_SECONDS = SHORT_TIMEOUT_SECONDS
    fake_openai.state.timeout_sleep = 1.5
    fake_openai.fail_next("timeout")
    response = client_a.post(URL, {"message": "hi"}, format="json")
    assert response.status_code == 504
    assert response.json()["code"] == "provider_timeout"
    assert AIJob.objects.get().status == "failed"
    assert used_units(user) == 0


def test_the_key_never_reaches_the_client_the_job_or_the_logs(openai_settings, fake_openai, client_a, caplog):
    fake_openai.fail_next("401")
    with caplog.at_level(logging.DEBUG):
        response = client_a.post(URL, {"message": "hi"}, format="json")
    assert response.status_code == 502
    assert TEST_KEY not in response.content.decode()
    job = AIJob.objects.get()
    assert TEST_KEY not in f"{job.error} {job.input} {job.output}"
    assert TEST_KEY not in caplog.text
    # It was sent to the provider, which is the only place it belongs.
    assert fake_openai.requests[0].headers["authorization"] == f"Bearer {TEST_KEY}"


def test_local_provider_has_no_chat_and_says_how_to_get_one(local_settings, client_a):
    response = client_a.post(URL, {"message": "hi", "model": "gpt-4"}, format="json")
    assert response.status_code == 503
    body = response.json()
    assert body["code"] == "provider_not_configured"
    assert "OPENAI_API_KEY" in body["message"]
    assert "OPENAI_BASE_URL" in body["message"]
    assert "11434" in body["message"]
    assert AIJob.objects.count() == 0


def test_usage_is_estimated_when_the_server_reports_none(openai_settings, fake_openai, client_a):
    from ai_services import tokens

    fake_openai.state.reply = "Short answer."
    fake_openai.fail_next("no_usage")
    response = client_a.post(URL, {"message": "hi"}, format="json")
    usage = response.json()["data"]["usage"]
    assert usage["completionTokens"] == tokens.count_tokens("Short answer.")
    assert AIJob.objects.get().output["usage_estimated"] is True

"""POST /api/ai/voice: speech-to-text, chat with memory, text-to-speech in one call.

Speech runs on the real local engines (whisper, piper); chat on the fake OpenAI-compatible
server. A stage made to fail does so at the fake server's HTTP boundary (that stage is pointed
at it)."""

from __future__ import annotations

import json

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile

from ai_services.models import AIJob
from ai_services.providers.local import piper_tts, whisper_stt
from ai_services.tasks import purge_voice_audio
from quotas.models import Reservation
from quotas.selectors import quota_account_forget, quota_account_get
from quotas.services import quota_limit_set
from tests.ai_services.test_chat_stream import parse_events
from tests.text_metrics import word_error_rate

URL = "/api/ai/voice"
QUESTION = "What is the tallest mountain in the world?"
REPLY = "Mount Everest is the tallest mountain in the world."


@pytest.fixture(scope="module")
def question_wav() -> bytes:
    samples, rate = piper_tts.synthesize(QUESTION)
    return piper_tts.encode_audio(samples, rate, "wav")


@pytest.fixture
def voice_settings(openai_settings, fake_openai, tmp_path):
    """Chat on the fake server; speech (and embeddings) on the local engines."""
    local = {"transcribe": "local", "speak": "local", "embed": "local"}
    openai_settings.AI_PROVIDERS = {**openai_settings.AI_PROVIDERS, **local}
    openai_settings.EMBEDDINGS_CACHE_DIR = str(tmp_path / "vector-cache")
    fake_openai.state.reply = REPLY
    return openai_settings


def used_units(user) -> int:
    quota_account_forget(user=user)
    return quota_account_get(user=user).used


def post(client, wav: bytes, **fields):
    audio = SimpleUploadedFile("question.wav", wav, content_type="audio/wav")
    return client.post(URL, {"audio": audio, **fields}, format="multipart")


def transcribe_bytes(data: bytes, tmp_path) -> str:
    path = tmp_path / "reply.wav"
    path.write_bytes(data)
    return whisper_stt.transcribe(str(path))["text"]


def stage_jobs(user) -> dict[str, AIJob]:
    jobs = AIJob.objects.filter(user=user).order_by("created_at")
    by_type = {"whisper": "transcribe", "chat": "chat", "tts": "speak"}
    return {by_type[job.type]: job for job in jobs if job.input.get("voice_turn")}


def test_a_spoken_question_gets_a_spoken_answer(voice_settings, fake_openai, client_a, user, question_wav, tmp_path):
    response = post(client_a, question_wav, format="wav")
    assert response.status_code == 200, response.content
    data = response.json()["data"]
    assert word_error_rate([QUESTION], [data["transcript"]]) <= 0.10, data["transcript"]
    assert data["reply"] == REPLY
    assert data["citations"] == []
    # The chat got the transcript as the user's message.
    assert fake_openai.requests_to("/chat/completions")[-1].body["messages"][-1]["content"] == data["transcript"]

    audio = client_a.get(data["audioUrl"])
    assert audio.status_code == 200
    assert audio["Content-Type"] == "audio/wav"
    spoken = b"".join(audio.streaming_content)
    assert word_error_rate([REPLY], [transcribe_bytes(spoken, tmp_path)]) <= 0.10

    jobs = stage_jobs(user)
    assert {name: job.status for name, job in jobs.items()} == dict.fromkeys(
        ("transcribe", "chat", "speak"), "completed"
    )
    assert {name: str(job.id) for name, job in jobs.items()} == data["jobIds"]
    assert str(jobs["chat"].conversation_id) == data["conversationId"]
    # Speech reserved for the longest reply, settled to this one: 1 + 2 + 1 units.
    assert [jobs[name].units_charged for name in ("transcribe", "chat", "speak")] == [1, 2, 1]
    assert used_units(user) == 4

    # The next turn continues the conversation (memory).
    again = post(client_a, question_wav, conversationId=data["conversationId"])
    assert again.status_code == 200, again.content
    assert again.json()["data"]["conversationId"] == data["conversationId"]
    contents = [m["content"] for m in fake_openai.requests_to("/chat/completions")[-1].body["messages"]]
    assert REPLY in contents


def test_the_reply_audio_is_its_owners_only_and_expires(
    voice_settings, client_a, auth_client, make_user, user, question_wav
):
    data = post(client_a, question_wav).json()["data"]
    assert client_a.get(data["audioUrl"])["Content-Type"] == "audio/mpeg"  # as text-to-speech's default
    other = auth_client(make_user(email="eve@example.com"))
    assert other.get(data["audioUrl"]).status_code == 404

    voice_settings.AI_VOICE_AUDIO_TTL_SECONDS = 0
    data = post(client_a, question_wav).json()["data"]
    stored = AIJob.objects.get(id=data["audioUrl"].rstrip("/").rsplit("/", 1)[-1])
    assert purge_voice_audio() == 1  # the beat task: only the expired reply goes
    assert not default_storage.exists(stored.output["audio_file"])
    gone = client_a.get(data["audioUrl"])
    assert gone.status_code == 404
    assert gone.json()["message"] == "This audio has expired."


def test_a_grounded_voice_turn_cites_the_documents(voice_settings, client_a, question_wav):
    text = "Mount Everest, at 8,849 metres, is the tallest mountain on Earth above sea level."
    created = client_a.post("/api/embeddings/create", {"text": text}, format="json")
    assert created.status_code in (200, 201), created.content
    data = post(client_a, question_wav, useDocuments="true").json()["data"]
    assert [c["text"] for c in data["citations"]] == [text]


@pytest.mark.parametrize(
    ("stage", "fake_provider", "script", "done"),
    [
        ("transcribe", "transcribe", ("400",), []),
        ("chat", None, ("400",), ["transcribe"]),
        ("speak", "speak", ("ok", "400"), ["transcribe", "chat"]),
    ],
)
def test_a_failed_stage_refunds_itself_and_the_later_stages(
    voice_settings, fake_openai, client_a, user, question_wav, stage, fake_provider, script, done
):
    if fake_provider:  # this stage on the fake server, which fails it
        voice_settings.AI_PROVIDERS = {**voice_settings.AI_PROVIDERS, fake_provider: "openai"}
    fake_openai.fail_next(*script)
    response = post(client_a, question_wav)
    assert response.status_code == 502, response.content  # the provider's refusal, as elsewhere
    body = response.json()
    assert body["stage"] == stage
    label = {"transcribe": "speech-to-text", "chat": "chat", "speak": "text-to-speech"}[stage]
    assert body["message"].startswith(f"The {label} stage failed")

    jobs = stage_jobs(user)
    assert set(jobs) == {"transcribe", "chat", "speak"}
    for name, job in jobs.items():
        reservation = Reservation.objects.get(pk=job.reservation_id)
        if name in done:
            assert job.status == "completed"
            assert reservation.status == Reservation.Status.SETTLED
        else:
            assert job.status == "failed"
            assert job.units_charged == 0
            assert reservation.status == Reservation.Status.REFUNDED
            if name != stage:
                assert job.error_code == "voice_stage_not_run"
    assert used_units(user) == sum(jobs[name].units_charged for name in done)


def test_a_turn_that_cannot_be_paid_in_full_is_refused_with_nothing_charged(
    voice_settings, client_a, user, question_wav
):
    quota_limit_set(account=quota_account_get(user=user), limit=3)  # the turn needs 1 + 2 + 2
    response = post(client_a, question_wav)
    assert response.status_code == 429, response.content
    assert used_units(user) == 0
    assert not AIJob.objects.filter(user=user).exists()


def test_the_streamed_turn_sends_transcript_deltas_then_audio(voice_settings, client_a, question_wav):
    response = post(client_a, question_wav, stream="true")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/event-stream")
    events = parse_events(b"".join(response.streaming_content).decode())
    names = [name for name, _ in events]
    assert names[0] == "transcript"
    assert "delta" in names
    assert names[-1] == "audio"
    assert "".join(data["content"] for name, data in events if name == "delta") == REPLY
    audio = events[-1][1]
    assert audio["reply"] == REPLY
    assert audio["transcript"] == events[0][1]["transcript"]
    assert client_a.get(audio["audioUrl"]).status_code == 200


def test_the_stream_reports_the_failed_stage(voice_settings, fake_openai, client_a, user, question_wav):
    fake_openai.fail_next("400")
    response = post(client_a, question_wav, stream="true")
    events = parse_events(b"".join(response.streaming_content).decode())
    assert [name for name, _ in events] == ["transcript", "error"]
    error = events[-1][1]
    assert error["stage"] == "chat"
    assert error["success"] is False
    assert used_units(user) == 1  # the transcription only


@pytest.mark.parametrize(
    "fields",
    [{"voice": "nobody"}, {"format": "wav2"}, {"filter": "[1]"}, {"conversationId": "not-a-uuid"}],
)
def test_bad_voice_requests_are_refused_before_any_work(voice_settings, client_a, user, question_wav, fields):
    response = post(client_a, question_wav, **fields)
    assert response.status_code == 400, response.content
    assert not AIJob.objects.filter(user=user).exists()
    assert json.loads(response.content)["success"] is False

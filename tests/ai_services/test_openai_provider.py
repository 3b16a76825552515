"""The `openai` provider with the real SDK against the fake OpenAI-compatible server."""

from __future__ import annotations

import logging
import socket

import numpy as np
import pytest

from ai_services.providers import PreparedImage, get_provider
from core.exceptions import InvalidInput, ProviderError, ProviderTimeout, ProviderUnavailable
from tests.ai_services.conftest import SHORT_TIMEOUT_SECONDS, TEST_KEY

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello there"}]


def chat(**overrides):
    kwargs = {"messages": MESSAGES, "model": "gpt-4o-mini", "temperature": 0.2, "max_tokens": 50, **overrides}
    return get_provider("chat").chat(**kwargs)


def test_chat_returns_answer_and_usage(openai_settings, fake_openai):
    result = chat()
    assert result.content == "Echo: hello there"
    assert result.model == "gpt-4o-mini"
    assert result.finish_reason == "stop"
    assert result.usage.prompt_tokens > 0
    assert result.usage.completion_tokens == 3
    [request] = fake_openai.requests_to("/chat/completions")
    assert request.headers["authorization"] == f"Bearer {TEST_KEY}"
    assert request.body["messages"] == MESSAGES
    assert request.body["temperature"] == 0.2
    # A custom base URL means an OpenAI-compatible server: the widely supported limit name.
    assert request.body["max_tokens"] == 50


def test_chat_stream_yields_deltas_then_usage(openai_settings, fake_openai):
    fake_openai.state.reply = "one two three four"
    chunks = list(
        get_provider("chat").chat_stream(messages=MESSAGES, model="gpt-4o", temperature=None, max_tokens=None)
    )
    assert "".join(chunk.delta for chunk in chunks) == "one two three four"
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 4
    assert any(chunk.finish_reason == "stop" for chunk in chunks)
    [request] = fake_openai.requests_to("/chat/completions")
    assert request.body["stream"] is True
    assert request.body["stream_options"] == {"include_usage": True}


def test_429_is_retried_then_succeeds(openai_settings, fake_openai):
    fake_openai.fail_next("429")
    assert chat().content == "Echo: hello there"
    requests = fake_openai.requests_to("/chat/completions")
    assert [r.retry_count for r in requests] == [0, 1]


def test_persistent_429_gives_up_after_bounded_retries(openai_settings, fake_openai):
    fake_openai.fail_next("429", "429", "429", "429")
    with pytest.raises(ProviderUnavailable) as caught:
        chat()
    assert caught.value.status_code == 503
    assert caught.value.code == "provider_unavailable"
    # One attempt plus OPENAI_MAX_RETRIES (2) retries, then no more.
    assert len(fake_openai.requests_to("/chat/completions")) == 3


def test_500_is_retried_and_mapped_to_502(openai_settings, fake_openai):
    fake_openai.fail_next("500", "500", "500")
    with pytest.raises(ProviderError) as caught:
        chat()
    assert caught.value.status_code == 502
    assert caught.value.code == "provider_error"
    assert len(fake_openai.requests_to("/chat/completions")) == 3


def test_500_then_success_counts_one_retry(openai_settings, fake_openai):
    fake_openai.fail_next("500")
    assert chat().content.startswith("Echo:")
    assert len(fake_openai.requests_to("/chat/completions")) == 2


def test_400_is_not_retried(openai_settings, fake_openai):
    fake_openai.fail_next("400")
    with pytest.raises(ProviderError) as caught:
        chat()
    assert "maximum context length" in caught.value.message
    assert len(fake_openai.requests_to("/chat/completions")) == 1


def test_timeout_is_retried_then_mapped_to_504(openai_settings, fake_openai):
    openai_settings.OPENAI_MAX_RETRIES = 1
    openai_settings.OPENAI_TIMEOUT_SECONDS = SHORT_TIMEOUT_SECONDS
    fake_openai.state.timeout_sleep = 2.0
    fake_openai.fail_next("timeout", "timeout")
    with pytest.raises(ProviderTimeout) as caught:
        chat()
    assert caught.value.status_code == 504
    assert caught.value.code == "provider_timeout"
    assert len(fake_openai.requests_to("/chat/completions")) == 2


def test_malformed_body_is_a_provider_error(openai_settings, fake_openai):
    fake_openai.fail_next("malformed")
    with pytest.raises(ProviderError) as caught:
        chat()
    assert caught.value.message == "The AI provider returned a malformed response."


def test_body_of_the_wrong_shape_is_a_provider_error(openai_settings, fake_openai):
    fake_openai.fail_next("wrong_shape")
    with pytest.raises(ProviderError):
        chat()


def test_stream_broken_midway_raises_from_the_iterator(openai_settings, fake_openai):
    fake_openai.state.reply = "one two three four five"
    fake_openai.fail_next("stream_break")
    chunks = get_provider("chat").chat_stream(messages=MESSAGES, model="gpt-4o", temperature=None, max_tokens=None)
    received = []

    def read_all() -> None:
        for chunk in chunks:
            received.append(chunk.delta)

    with pytest.raises(ProviderError):
        read_all()
    assert "".join(received).startswith("one two")


def test_unreachable_server_is_unavailable(openai_settings):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    openai_settings.OPENAI_BASE_URL = f"http://127.0.0.1:{port}/v1"
    openai_settings.OPENAI_MAX_RETRIES = 0
    with pytest.raises(ProviderUnavailable) as caught:
        chat()
    assert caught.value.code == "provider_unavailable"


def test_key_echoed_by_the_server_is_scrubbed_everywhere(openai_settings, fake_openai, caplog):
    fake_openai.fail_next("401")
    with caplog.at_level(logging.DEBUG), pytest.raises(ProviderError) as caught:
        chat()
    assert TEST_KEY not in caught.value.message
    assert TEST_KEY not in str(caught.value.extra)
    assert TEST_KEY not in caplog.text
    assert "credentials" in caught.value.message


def test_key_in_a_provider_message_is_redacted(openai_settings):
    from ai_services.providers.openai import scrub

    assert scrub(f"bad key {TEST_KEY} and sk-otherKey12345678") == "bad key [redacted] and [redacted]"


def test_transcription_with_segments(openai_settings, fake_openai, tmp_path):
    audio = tmp_path / "clip.wav"
    audio.write_bytes(b"RIFF0000WAVE")
    result = get_provider("transcribe").transcribe(
        path=audio, filename="clip.wav", model="whisper-1", language="en", prompt="Fox"
    )
    assert result.text == fake_openai.state.transcript
    assert result.language == "en"  # the API reports "english": every provider answers the code
    assert result.duration == 1.5
    assert result.segments == [{"start": 0.0, "end": 1.5, "text": fake_openai.state.transcript}]
    [request] = fake_openai.requests_to("/audio/transcriptions")
    assert request.body["model"] == "whisper-1"
    assert request.body["language"] == "en"
    assert request.body["prompt"] == "Fox"
    assert request.body["response_format"] == "verbose_json"
    assert request.body["file"] == {"filename": "clip.wav", "size": 12}


def test_speech_returns_audio_bytes(openai_settings, fake_openai):
    result = get_provider("speak").speak(text="Hi there", model="tts-1", voice="nova", fmt="opus", speed=1.5)
    assert result.audio == b"FAKE-opus-Hi there"
    assert result.content_type == "audio/ogg"
    [request] = fake_openai.requests_to("/audio/speech")
    assert request.body == {
        "input": "Hi there",
        "model": "tts-1",
        "voice": "nova",
        "response_format": "opus",
        "speed": 1.5,
    }


def test_vision_sends_a_data_url_with_detail(openai_settings, fake_openai):
    image = PreparedImage(
        data=b"\xff\xd8jpeg", mime="image/jpeg", width=10, height=5, source_format="png",
        source_width=10, source_height=5, source_bytes=100,
    )  # fmt: skip
    result = get_provider("vision").analyze_image(image=image, prompt="What is it?", detail="low", model="gpt-4o")
    assert result.analysis == "I see an image."
    assert result.usage.prompt_tokens > 0
    [request] = fake_openai.requests_to("/chat/completions")
    parts = request.body["messages"][0]["content"]
    assert parts[0] == {"type": "text", "text": "What is it?"}
    assert parts[1]["image_url"]["detail"] == "low"
    assert parts[1]["image_url"]["url"].startswith("data:image/jpeg;base64,")


def test_embed_sorts_by_index_and_returns_float32(openai_settings, fake_openai):
    result = get_provider("embed").embed(["alpha beta", "gamma", "delta epsilon zeta"])
    assert result.vectors.dtype == np.float32
    assert result.vectors.shape == (3, 8)
    assert result.dimensions == 8
    assert result.model == "text-embedding-3-small"
    assert result.tokens == 6
    # The fake answers in reverse order: rows must still follow the inputs.
    again = get_provider("embed").embed(["gamma"])
    np.testing.assert_allclose(result.vectors[1], again.vectors[0])
    [first, _] = fake_openai.requests_to("/embeddings")
    assert first.body["encoding_format"] == "float"


def test_embed_unknown_model_is_invalid_input(openai_settings):
    with pytest.raises(InvalidInput):
        get_provider("embed").embed(["x"], model="no-such-model")


def test_resolve_model_defaults_and_refuses_unknown(openai_settings):
    provider = get_provider("chat")
    assert provider.resolve_model("chat", None) == "gpt-4o-mini"
    assert provider.resolve_model("chat", "gpt-4o") == "gpt-4o"
    with pytest.raises(InvalidInput) as caught:
        provider.resolve_model("chat", "gpt-99")
    assert "model" in caught.value.errors


def test_provider_is_chosen_per_modality(settings):
    from ai_services.providers import provider_name

    settings.AI_PROVIDERS = {"chat": "openai", "embed": "local"}
    assert provider_name("chat") == "openai"
    assert provider_name("embed") == "local"
    with pytest.raises(ValueError):
        provider_name("telepathy")


@pytest.mark.parametrize(
    ("reported", "code"),
    [("english", "en"), ("Haitian Creole", "ht"), ("cantonese", "yue"), ("en", "en"), ("klingon", "klingon")],
)
def test_reported_language_names_become_whisper_codes(reported, code):
    from ai_services.providers.languages import language_code

    assert language_code(reported) == code

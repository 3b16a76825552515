"""Offline token counting (cl100k_base) and the embed interface other apps use."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from ai_services import tokens
from ai_services.models import AIJob
from ai_services.providers import EmbedResult, get_provider
from quotas.selectors import quota_account_forget, quota_account_get

# Counts from a reference cl100k_base implementation (tiktoken-compatible).
REFERENCE_COUNTS = {
    "Hello, world!": 4,
    "Explain quantum computing in simple terms.": 8,
    "def f(x):\n    return x ** 2\n": 11,
    '{"id": 12345, "ok": true}': 12,
    "Привет, как дела?": 8,
    "日本語のテキストです。": 10,
    "مرحبا بالعالم": 10,
    "x          ": 2,
    "hello \n\n  ": 3,
    "I'm here. You'LL see": 8,
    "1234567890": 4,
    "👍🏽🇫🇷 emoji": 13,
    "<|endoftext|> plain": 8,
}


@pytest.mark.parametrize(("text", "expected"), list(REFERENCE_COUNTS.items()))
def test_counts_match_the_reference_encoding(text, expected):
    assert tokens.count_tokens(text) == expected


def test_batch_and_message_counts():
    texts = list(REFERENCE_COUNTS)
    assert tokens.count_tokens_batch(texts) == list(REFERENCE_COUNTS.values())
    assert tokens.count_tokens("") == 0
    assert tokens.count_message_tokens("Hello, world!") == 4 + tokens.MESSAGE_OVERHEAD_TOKENS
    messages = [{"role": "system", "content": "Hello, world!"}, {"role": "user", "content": "1234567890"}]
    assert tokens.count_prompt_tokens(messages) == 4 + 4 + 2 * tokens.MESSAGE_OVERHEAD_TOKENS + 3


def test_a_tampered_encoding_file_is_refused(tmp_path, monkeypatch):
    original = gzip.decompress(tokens.ENCODING_FILE.read_bytes())
    tampered = tmp_path / "cl100k_base.tiktoken.gz"
    tampered.write_bytes(gzip.compress(original.replace(b" 0\n", b" 1\n", 1)))
    monkeypatch.setattr(tokens, "ENCODING_FILE", tampered)
    with pytest.raises(tokens.EncodingFileError):
        tokens._load_ranks()


def test_local_embed_interface(local_settings):
    result = get_provider("embed").embed(["A cat sits on the mat.", "A kitten rests on a rug.", "Stock prices fell."])
    assert isinstance(result, EmbedResult)
    assert result.model == "all-MiniLM-L6-v2"
    assert result.dimensions == 384
    assert result.vectors.shape == (3, 384)
    assert result.vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(result.vectors, axis=1), 1.0, atol=1e-5)
    similarity = result.vectors @ result.vectors.T
    assert similarity[0, 1] > similarity[0, 2]
    assert result.tokens > 10
    assert get_provider("embed").embed([]).vectors.shape == (0, 384)
    with pytest.raises(TypeError):
        get_provider("embed").embed("one string")


def test_embedding_run_records_a_job_and_charges(local_settings, user):
    from ai_services.services import embedding_run

    result, job = embedding_run(user=user, texts=["first text", "second text"])
    assert result.vectors.shape == (2, 384)
    assert job.type == AIJob.Type.EMBEDDING
    assert job.status == "completed"
    assert job.tokens_used == result.tokens
    assert job.units_charged == 1
    assert job.input["texts"] == 2
    quota_account_forget(user=user)
    assert quota_account_get(user=user).used == 1


def test_embedding_run_failure_is_refunded(openai_settings, fake_openai, user):
    from ai_services.services import embedding_run
    from core.exceptions import ProviderUnavailable

    fake_openai.fail_next("503", "503", "503")
    with pytest.raises(ProviderUnavailable):
        embedding_run(user=user, texts=["x"])
    job = AIJob.objects.get()
    assert job.status == "failed"
    quota_account_forget(user=user)
    assert quota_account_get(user=user).used == 0

"""Chunking with the models' real tokenizers (MiniLM's WordPiece and OpenAI's cl100k_base)."""

from __future__ import annotations

import itertools
import random

import pytest

from ai_services import tokens as cl100k
from ai_services.providers.local.minilm import get_embedder
from embeddings.chunking import text_chunk, text_token_count


def minilm_count(texts):
    return get_embedder().count_tokens(texts)


def cl100k_count(texts):
    return cl100k.count_tokens_batch(texts)


COUNTERS = [pytest.param(minilm_count, id="minilm"), pytest.param(cl100k_count, id="cl100k")]
WORDS = [
    "river",
    "mountain",
    "forest",
    "ocean",
    "desert",
    "valley",
    "glacier",
    "meadow",
    "canyon",
    "island",
    "harbor",
    "village",
]


def prose(seed: int = 7, sentences: int = 120) -> str:
    rng = random.Random(seed)
    out = []
    for i in range(sentences):
        sentence = " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 28))).capitalize() + "."
        out.append(sentence + ("\n\n" if i % 6 == 5 else " "))
    return "".join(out).strip()


@pytest.mark.parametrize("count", COUNTERS)
def test_chunks_fit_the_size_and_cut_only_at_sentence_ends(count):
    text = prose()
    overhead = count([""])[0]
    chunks = text_chunk(text=text, count_tokens=count, chunk_size=80, chunk_overlap=0)
    assert len(chunks) > 5
    for chunk in chunks:
        assert chunk.tokens - overhead <= 80
        assert chunk.text == text[chunk.start : chunk.end]
        assert chunk.text.endswith(".")
        assert chunk.text[0].isupper()
    assert [c.index for c in chunks] == list(range(len(chunks)))
    # Without overlap the chunks tile the text: nothing is lost between them.
    rebuilt = " ".join(c.text for c in chunks).split()
    assert rebuilt == text.split()


@pytest.mark.parametrize("count", COUNTERS)
def test_overlap_repeats_trailing_sentences(count):
    text = prose(seed=3)
    chunks = text_chunk(text=text, count_tokens=count, chunk_size=100, chunk_overlap=40)
    overhead = count([""])[0]
    overlapping = 0
    for previous, current in itertools.pairwise(chunks):
        assert current.start > previous.start  # always progress
        assert current.start <= previous.end
        if current.start < previous.end:
            overlapping += 1
            shared = text[current.start : previous.end]
            assert count([shared])[0] - overhead <= 40
    assert overlapping >= len(chunks) // 2
    assert chunks[-1].end == len(text)


def test_token_counts_match_the_model_tokenizer():
    text = prose(seed=11, sentences=30)
    chunks = text_chunk(text=text, count_tokens=minilm_count, chunk_size=64, chunk_overlap=8)
    assert [c.tokens for c in chunks] == get_embedder().count_tokens([c.text for c in chunks])


def test_long_sentences_and_long_words_are_split():
    run_on = " ".join(["compartmentalization"] * 400)  # one sentence of ~1,600 word pieces
    blob = "x9" * 2000  # one "word" far beyond a chunk
    text = f"Short start. {run_on} {blob} End."
    chunks = text_chunk(text=text, count_tokens=minilm_count, chunk_size=50, chunk_overlap=10)
    assert all(c.tokens <= 52 for c in chunks)
    assert "".join(text[c.start : c.end] for c in chunks).replace(" ", "").count("x9") >= 2000


def test_token_count_is_not_capped_by_the_model_window():
    text = prose(seed=5, sentences=200)
    assert minilm_count([text])[0] == 256  # the model tokenizer truncates
    total = text_token_count(text=text, count_tokens=minilm_count)
    chunks = text_chunk(text=text, count_tokens=minilm_count, chunk_size=200, chunk_overlap=0)
    assert total == sum(c.tokens - 2 for c in chunks) + 2
    assert total > 1000


def test_short_text_is_one_chunk():
    chunks = text_chunk(text="  Hello there.  ", count_tokens=minilm_count, chunk_size=64, chunk_overlap=8)
    assert [(c.text, c.tokens) for c in chunks] == [("Hello there.", 5)]


@pytest.mark.parametrize(("size", "overlap"), [(0, 0), (10, 10), (10, -1)])
def test_bad_parameters_are_refused(size, overlap):
    with pytest.raises(ValueError):
        text_chunk(text="Hello.", count_tokens=minilm_count, chunk_size=size, chunk_overlap=overlap)

"""Tests of the offline engines in ai_services.providers.local (no Django, no database).

Run: .venv/bin/python -m pytest tests/ai_services/test_local_engines.py -p no:django -q

Each engine is loaded once per module. The MiniLM reference vectors in
fixtures/minilm_reference.json were produced by the slow, independent float64 implementation
below (``reference_embed``); regenerate them with:

    .venv/bin/python tests/ai_services/test_local_engines.py regenerate-minilm
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import subprocess
import sys
import threading
import unicodedata
from pathlib import Path

import numpy as np
import pytest

from tests.text_metrics import character_error_rate, word_error_rate

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # running the file directly (fixture regeneration)
    sys.path.insert(0, str(ROOT))

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "minilm_reference.json"


# ============================================================================================
# Helpers
# ============================================================================================


def test_word_error_rate_helper() -> None:
    assert word_error_rate(["the cat sat"], ["the cat sat"]) == 0
    assert word_error_rate(["the cat sat"], ["The cat, sat."]) == 0
    assert word_error_rate(["the cat sat on"], ["the dog sat"]) == pytest.approx(0.5)
    assert word_error_rate(["a b", "c d"], ["a b x", "c d"]) == pytest.approx(0.25)


# ============================================================================================
# MiniLM: independent slow reference (pure-Python WordPiece + per-token float64 forward pass)
# ============================================================================================


def _bert_basic_tokens(text: str) -> list[str]:
    """BERT BasicTokenizer (uncased): clean, split CJK, lower-case, strip accents, split punctuation."""
    cleaned = []
    for ch in text:
        cp = ord(ch)
        if cp == 0 or cp == 0xFFFD or (unicodedata.category(ch).startswith("C") and ch not in "\t\n\r"):
            continue
        if ch in " \t\n\r" or unicodedata.category(ch) == "Zs":
            cleaned.append(" ")
        elif 0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0xF900 <= cp <= 0xFAFF:
            cleaned.append(f" {ch} ")
        else:
            cleaned.append(ch)
    tokens: list[str] = []
    for word in "".join(cleaned).split():
        word = "".join(c for c in unicodedata.normalize("NFD", word.lower()) if unicodedata.category(c) != "Mn")
        current = ""
        for ch in word:
            cp = ord(ch)
            is_punct = (33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126) or (
                unicodedata.category(ch).startswith("P")
            )
            if is_punct:
                if current:
                    tokens.append(current)
                tokens.append(ch)
                current = ""
            else:
                current += ch
        if current:
            tokens.append(current)
    return tokens


def _wordpiece(token: str, vocab: dict[str, int]) -> list[int]:
    if len(token) > 100:
        return [vocab["[UNK]"]]
    pieces, start = [], 0
    while start < len(token):
        end = len(token)
        found = None
        while start < end:
            candidate = token[start:end] if start == 0 else "##" + token[start:end]
            if candidate in vocab:
                found = vocab[candidate]
                break
            end -= 1
        if found is None:
            return [vocab["[UNK]"]]
        pieces.append(found)
        start = end
    return pieces


def reference_token_ids(text: str, vocab: dict[str, int], max_length: int = 256) -> list[int]:
    ids: list[int] = []
    for token in _bert_basic_tokens(text):
        ids.extend(_wordpiece(token, vocab))
    return [vocab["[CLS]"], *ids[: max_length - 2], vocab["[SEP]"]]


def _load_reference_model() -> tuple[dict[str, np.ndarray], dict[str, int]]:
    from safetensors.numpy import load_file

    from ai_services.providers.local.minilm import model_dir

    path = model_dir()
    weights = {k: v.astype(np.float64) for k, v in load_file(str(path / "model.safetensors")).items()}
    vocab = {
        line.rstrip("\n"): i for i, line in enumerate((path / "vocab.txt").read_text(encoding="utf-8").splitlines())
    }
    return weights, vocab


def reference_embed(text: str, weights: dict[str, np.ndarray], vocab: dict[str, int]) -> np.ndarray:
    """Straightforward BERT forward pass, token by token, in float64 with math.erf GELU."""
    w = weights
    ids = reference_token_ids(text, vocab)
    eps, heads, head_dim = 1e-12, 12, 32

    def layer_norm(vec: np.ndarray, prefix: str) -> np.ndarray:
        mean = sum(vec) / len(vec)
        var = sum((x - mean) ** 2 for x in vec) / len(vec)
        return (vec - mean) / math.sqrt(var + eps) * w[f"{prefix}.weight"] + w[f"{prefix}.bias"]

    def linear(vec: np.ndarray, prefix: str) -> np.ndarray:
        return w[f"{prefix}.weight"] @ vec + w[f"{prefix}.bias"]

    hidden = [
        layer_norm(
            w["embeddings.word_embeddings.weight"][tok]
            + w["embeddings.position_embeddings.weight"][pos]
            + w["embeddings.token_type_embeddings.weight"][0],
            "embeddings.LayerNorm",
        )
        for pos, tok in enumerate(ids)
    ]
    for layer in range(6):
        p = f"encoder.layer.{layer}"
        qs = [linear(h, f"{p}.attention.self.query") for h in hidden]
        ks = [linear(h, f"{p}.attention.self.key") for h in hidden]
        vs = [linear(h, f"{p}.attention.self.value") for h in hidden]
        new_hidden = []
        for i in range(len(hidden)):
            context = np.zeros(384)
            for head in range(heads):
                sl = slice(head * head_dim, (head + 1) * head_dim)
                scores = [float(qs[i][sl] @ ks[j][sl]) / math.sqrt(head_dim) for j in range(len(hidden))]
                top = max(scores)
                exps = [math.exp(s - top) for s in scores]
                total = sum(exps)
                for j, e in enumerate(exps):
                    context[sl] += (e / total) * vs[j][sl]
            attn = layer_norm(
                linear(context, f"{p}.attention.output.dense") + hidden[i], f"{p}.attention.output.LayerNorm"
            )
            inter = linear(attn, f"{p}.intermediate.dense")
            inter = np.array([0.5 * x * (1.0 + math.erf(x / math.sqrt(2.0))) for x in inter])
            new_hidden.append(layer_norm(linear(inter, f"{p}.output.dense") + attn, f"{p}.output.LayerNorm"))
        hidden = new_hidden
    pooled = sum(hidden) / len(hidden)
    return pooled / math.sqrt(float(pooled @ pooled))


MINILM_TEXTS = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The girl is carrying a baby.",
    "Café owners in Zürich don't open before 9:30, naïvely.",
    "unbelievably-long-hyphenated-words, EMOJI? 😀 and numbers 3.14159",
    # Longer than 256 word pieces: checks truncation.
    " ".join(
        ["Embeddings map every sentence to a fixed-size vector so that similar meanings end up close together."] * 16
    ),
]


def regenerate_fixture() -> None:
    weights, vocab = _load_reference_model()
    vectors = []
    for text in MINILM_TEXTS:
        print(f"reference: {text[:50]!r}", flush=True)
        vectors.append([round(float(x), 8) for x in reference_embed(text, weights, vocab)])
    data = {
        "model": "all-MiniLM-L6-v2",
        "how": "tests/ai_services/test_local_engines.py::reference_embed (pure-Python WordPiece, per-token "
        "float64 forward pass with math.erf GELU); independent of the numpy engine under test",
        "texts": MINILM_TEXTS,
        "vectors": vectors,
        # Published by the sentence-transformers documentation (PyTorch, 4 decimals):
        # https://sbert.net/docs/sentence_transformer/usage/semantic_textual_similarity.html
        "published_similarities": {
            "sentences1": ["The new movie is awesome", "The cat sits outside", "A man is playing guitar"],
            "sentences2": ["The dog plays in the garden", "The new movie is so great", "A woman watches TV"],
            "scores": [[0.0543, 0.8939, -0.0502], [0.2838, -0.0029, 0.1310], [0.2277, -0.0136, -0.0327]],
        },
    }
    FIXTURE.parent.mkdir(parents=True, exist_ok=True)
    FIXTURE.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {FIXTURE}")


# ============================================================================================
# MiniLM tests
# ============================================================================================


@pytest.fixture(scope="module")
def embedder():
    from ai_services.providers.local.minilm import get_embedder

    return get_embedder()


@pytest.fixture(scope="module")
def minilm_fixture() -> dict:
    return json.loads(FIXTURE.read_text(encoding="utf-8"))


def test_minilm_basic_properties(embedder) -> None:
    assert embedder.dimensions == 384
    assert embedder.model_name == "all-MiniLM-L6-v2"
    texts = ["A man is eating food.", "Someone is having a meal.", "The stock market fell sharply today.", ""]
    vectors = embedder.embed(texts)
    assert vectors.shape == (4, 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # Deterministic, and independent of batching/padding.
    np.testing.assert_array_equal(vectors, embedder.embed(texts))
    singles = np.vstack([embedder.embed([t]) for t in texts])
    np.testing.assert_allclose(singles, vectors, atol=1e-5)
    paraphrase = float(vectors[0] @ vectors[1])
    unrelated = float(vectors[0] @ vectors[2])
    assert paraphrase > unrelated + 0.3
    assert embedder.embed([]).shape == (0, 384)
    with pytest.raises(TypeError):
        embedder.embed("not a list")


def test_minilm_matches_reference_fixture(embedder, minilm_fixture) -> None:
    expected = np.array(minilm_fixture["vectors"], dtype=np.float64)
    got = embedder.embed(minilm_fixture["texts"]).astype(np.float64)
    assert np.abs(got - expected).max() < 1e-5
    # Order of the batch must not matter either.
    reversed_got = embedder.embed(minilm_fixture["texts"][::-1]).astype(np.float64)[::-1]
    assert np.abs(reversed_got - expected).max() < 1e-5


def test_minilm_matches_published_similarities(embedder, minilm_fixture) -> None:
    published = minilm_fixture["published_similarities"]
    a = embedder.embed(published["sentences1"])
    b = embedder.embed(published["sentences2"])
    # The documentation prints 4 decimals.
    assert np.abs(a @ b.T - np.array(published["scores"])).max() < 1.5e-4


def test_minilm_reference_reproduces_fixture(embedder, minilm_fixture) -> None:
    """The fixture really comes from the independent reference (checked on the short texts)."""
    weights, vocab = _load_reference_model()
    for text in minilm_fixture["texts"]:
        ids = reference_token_ids(text, vocab)
        assert ids == embedder.tokenizer.encode(text).ids, text
    for index in (0, 3):
        vector = reference_embed(minilm_fixture["texts"][index], weights, vocab)
        assert np.abs(vector - np.array(minilm_fixture["vectors"][index])).max() < 1e-7


def test_minilm_count_tokens_and_truncation(embedder, minilm_fixture) -> None:
    counts = embedder.count_tokens(["Hello world", minilm_fixture["texts"][-1]])
    assert counts == [4, 256]  # [CLS] hello world [SEP]; long text capped at 256


def test_minilm_singleton_is_thread_safe() -> None:
    from ai_services.providers.local import minilm

    results = []
    threads = [threading.Thread(target=lambda: results.append(minilm.get_embedder())) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(r) for r in results}) == 1


# ============================================================================================
# TTS, audio encoding and STT
# ============================================================================================

SENTENCES = [
    "The weather is nice today and the sky is clear.",
    "Please send the report to the finance team by Friday.",
    "My favorite color is green.",
    "We are going to the park after lunch.",
    "The train leaves the station at noon.",
    "She bought fresh bread and milk at the market.",
    "Turn left at the next corner and walk straight ahead.",
    "The children played football in the garden.",
    "Can you help me carry these boxes upstairs?",
    "Our meeting was moved to the afternoon.",
]


@pytest.fixture(scope="module")
def tts():
    from ai_services.providers.local import piper_tts

    return piper_tts


@pytest.fixture(scope="module")
def spoken(tts) -> list[tuple[np.ndarray, int]]:
    return [tts.synthesize(sentence) for sentence in SENTENCES]


@pytest.fixture(scope="module")
def stt():
    from ai_services.providers.local import whisper_stt

    whisper_stt.get_transcriber()
    return whisper_stt


def test_tts_output_format(spoken, tts) -> None:
    samples, rate = spoken[0]
    assert samples.dtype == np.int16
    assert samples.ndim == 1
    assert rate == 22050
    assert 1.0 < len(samples) / rate < 8.0
    assert np.abs(samples).max() > 10000  # audible, normalised
    assert set(tts.VOICES) == {"alloy", "echo", "fable", "onyx", "nova", "shimmer"}
    assert {v.piper_voice for v in tts.VOICES.values()} == {"en_US-joe-medium"}
    with pytest.raises(ValueError):
        tts.synthesize("   ")


def test_tts_speed_changes_duration(tts) -> None:
    # Piper draws each phoneme's length at random, so one rendering's length varies by a few
    # percent (200 pairs: fast/normal 0.61-0.70, mean 0.65). Means of five renderings each keep
    # the comparison well clear of that spread.
    text = "Speed changes how long this sentence takes."
    normal = sum(len(tts.synthesize(text)[0]) for _ in range(5))
    fast = sum(len(tts.synthesize(text, speed=2.0)[0]) for _ in range(5))
    assert fast < 0.7 * normal


@pytest.mark.parametrize("fmt", ["mp3", "wav", "opus", "aac", "flac"])
def test_encode_audio_formats(fmt, spoken, tts) -> None:
    import av

    samples, rate = spoken[1]
    data = tts.encode_audio(samples, rate, fmt)
    magic = {"wav": b"RIFF", "opus": b"OggS", "flac": b"fLaC"}
    if fmt in magic:
        assert data[:4] == magic[fmt]
    elif fmt == "mp3":
        assert data[:3] == b"ID3" or (data[0] == 0xFF and data[1] & 0xE0 == 0xE0)
    elif fmt == "aac":
        assert data[0] == 0xFF
        assert data[1] & 0xF6 == 0xF0
    assert tts.AUDIO_MIME[fmt].startswith("audio/")
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        decoded = sum(frame.samples for frame in container.decode(stream))
        duration = decoded / stream.rate
    # AAC adds encoder priming/padding frames; the others are near-exact.
    assert abs(duration - len(samples) / rate) < (0.1 if fmt == "aac" else 0.03)
    if fmt == "opus":
        assert stream.codec_context.name == "opus"


def test_encode_audio_rejects_unknown_format(tts) -> None:
    with pytest.raises(ValueError):
        tts.encode_audio(np.zeros(100, dtype=np.int16), 22050, "wma")


def test_tts_stt_round_trip_wer(spoken, stt, tts, tmp_path) -> None:
    hypotheses = []
    for index, (samples, rate) in enumerate(spoken):
        path = tmp_path / f"s{index}.wav"
        path.write_bytes(tts.encode_audio(samples, rate, "wav"))
        result = stt.transcribe(str(path), language="en")
        assert result["language"] == "en"
        assert result["duration"] == pytest.approx(len(samples) / rate, abs=0.01)
        for segment in result["segments"]:
            assert 0 <= segment["start"] <= segment["end"] <= result["duration"] + 1e-6
        hypotheses.append(result["text"])
    wer = word_error_rate(SENTENCES, hypotheses)
    print(f"TTS->STT WER over {len(SENTENCES)} sentences: {wer:.3f}")
    assert wer <= 0.10, list(zip(SENTENCES, hypotheses, strict=True))


def test_stt_detects_language_and_reads_mp3(spoken, stt, tts, tmp_path) -> None:
    samples, rate = spoken[2]
    path = tmp_path / "speech.mp3"
    path.write_bytes(tts.encode_audio(samples, rate, "mp3"))
    result = stt.transcribe(str(path))
    assert result["language"] == "en"
    assert word_error_rate([SENTENCES[2]], [result["text"]]) <= 0.2


def test_whisper_model_hash_is_verified(stt, tmp_path, monkeypatch) -> None:
    target = tmp_path / stt.MODEL_SUBDIR
    target.mkdir()
    (target / "model.bin").write_bytes(b"corrupted")
    # A corrupted cached copy is rebuilt and verified.
    assert stt.ensure_model(tmp_path) == target
    assert (target / "model.bin").stat().st_size == stt.MODEL_BIN_SIZE
    # A package whose content does not match the pinned hash is refused.
    (target / "model.bin").unlink()
    monkeypatch.setattr(stt, "MODEL_BIN_SHA256", "0" * 64)
    with pytest.raises(stt.ModelIntegrityError):
        stt.ensure_model(tmp_path)
    assert not (target / "model.bin").exists()


# ============================================================================================
# Audio probing
# ============================================================================================


def _ffmpeg_encode(wav: Path, out: Path, *args: str) -> None:
    import imageio_ffmpeg

    subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-i", str(wav), *args, "-y", str(out)],
        check=True,
        capture_output=True,
    )


def test_probe_audio_formats(spoken, tts, tmp_path) -> None:
    from ai_services.audio import AudioError, decode_audio, probe_audio

    samples, rate = spoken[0]
    seconds = len(samples) / rate
    wav = tmp_path / "a.wav"
    wav.write_bytes(tts.encode_audio(samples, rate, "wav"))
    (tmp_path / "a.mp3").write_bytes(tts.encode_audio(samples, rate, "mp3"))
    _ffmpeg_encode(wav, tmp_path / "a.m4a", "-c:a", "aac", "-b:a", "64k")
    _ffmpeg_encode(wav, tmp_path / "a.ogg", "-c:a", "libvorbis")
    expected = {
        "a.wav": ("wav", "pcm_s16le"),
        "a.mp3": ("mp3", "mp3"),
        "a.m4a": ("m4a", "aac"),
        "a.ogg": ("ogg", "vorbis"),
    }
    for name, (fmt, codec) in expected.items():
        info = probe_audio(tmp_path / name)
        assert info["format"] == fmt, info
        assert info["codec"].startswith(codec), info
        assert info["channels"] == 1
        assert info["duration"] == pytest.approx(seconds, abs=0.1), info
        decoded = decode_audio(tmp_path / name)
        assert decoded.dtype == np.float32
        assert len(decoded) / 16000 == pytest.approx(seconds, abs=0.1)
    # In-memory uploads work too.
    assert probe_audio(io.BytesIO(wav.read_bytes()))["format"] == "wav"
    (tmp_path / "bad.mp3").write_bytes(b"definitely not audio" * 50)
    with pytest.raises(AudioError):
        probe_audio(tmp_path / "bad.mp3")
    # Playlist-style demuxers that would open other files are refused.
    (tmp_path / "list.ffconcat").write_text(f"ffconcat version 1.0\nfile {wav}\n")
    with pytest.raises(AudioError):
        probe_audio(tmp_path / "list.ffconcat")


# ============================================================================================
# OCR / image analysis
# ============================================================================================


def _render(lines: list[str], size: int) -> Image.Image:  # noqa: F821 - PIL imported lazily
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=size)  # Pillow's bundled font: no system fonts needed
    width = int(max(font.getlength(line) for line in lines)) + 60
    image = Image.new("RGB", (width, int(size * (2.2 * len(lines) + 2))), "white")
    draw = ImageDraw.Draw(image)
    for index, line in enumerate(lines):
        draw.text((30, size * (1 + 2.2 * index)), line, fill=(20, 20, 20), font=font)
    return image


@pytest.fixture(scope="module")
def ocr():
    from ai_services.providers.local import ocr as module

    module.get_engine()
    return module


def test_ocr_recovers_words_with_spaces(ocr, monkeypatch) -> None:
    sentences = [
        "The quick brown fox jumps over the lazy dog near the river bank.",
        "Please send the quarterly report to the finance team by Friday morning.",
    ]
    cases = [(sentence, _render([sentence], size)) for sentence in sentences for size in (14, 16, 18, 20, 22)]
    fixed = [ocr.ocr_image(image) for _, image in cases]
    references = [sentence for sentence, _ in cases]
    fixed_wer = word_error_rate(references, fixed)
    # The recogniser alone glues words together on several of these images.
    monkeypatch.setattr(ocr, "restore_spaces", lambda text, centers, gray: text)
    raw_wer = word_error_rate(references, [ocr.ocr_image(image) for _, image in cases])
    print(f"OCR WER on rendered lines: {fixed_wer:.3f} with space restoration, {raw_wer:.3f} without")
    assert fixed_wer <= 0.1, fixed
    assert raw_wer > fixed_wer + 0.1


def test_ocr_multiline_and_single_word(ocr) -> None:
    lines = ["Please send the quarterly report", "to the finance team by Friday morning."]
    text = ocr.ocr_image(_render(lines, 24))
    assert word_error_rate([" ".join(lines)], [text.replace("\n", " ")]) <= 0.1, text
    assert len(text.splitlines()) == 2
    assert character_error_rate("Internationalization", ocr.ocr_image(_render(["Internationalization"], 24))) <= 0.1


def test_analyze_image_facts_and_text(ocr) -> None:
    from PIL import Image

    image = _render(["Invoice number 4821 is due on Friday"], 24)
    buffer = io.BytesIO()
    exif = Image.Exif()
    exif[0x010F] = "Canon"  # Make
    exif[0x0110] = "Canon EOS R6"  # Model
    exif.get_ifd(0x8769)[0x9003] = "2024:03:05 14:30:00"  # DateTimeOriginal
    image.save(buffer, format="JPEG", quality=95, exif=exif)
    result = ocr.analyze_image(buffer.getvalue(), prompt="What does this say?")
    facts = result["facts"]
    assert (facts["width"], facts["height"]) == image.size
    assert facts["format"] == "JPEG"
    assert facts["mode"] == "RGB"
    assert facts["exif"] == {"camera": "Canon EOS R6", "taken_at": "2024-03-05T14:30:00"}
    top = facts["dominant_colors"][0]
    assert top["name"] == "white"
    assert top["share"] > 0.7
    assert re.fullmatch(r"#[0-9a-f]{6}", top["hex"])
    assert word_error_rate(["Invoice number 4821 is due on Friday"], [result["text"]]) <= 0.15, result["text"]
    assert "local analysis" in result["analysis"].lower()
    assert "no vision model" in result["analysis"].lower()
    assert result["text"] in result["analysis"]


def test_analyze_image_without_text(ocr) -> None:
    from PIL import Image

    image = Image.new("RGBA", (64, 48), (200, 30, 40, 255))
    result = ocr.analyze_image(image, prompt=None)
    assert result["text"] == ""
    assert result["facts"]["mode"] == "RGBA"
    assert "exif" not in result["facts"]
    assert result["facts"]["dominant_colors"][0]["name"] == "red"
    assert "No text" in result["analysis"]


if __name__ == "__main__":
    if sys.argv[1:] == ["regenerate-minilm"]:
        regenerate_fixture()
    else:
        print(__doc__)

"""AI services benchmark: what our layer costs over the engines and the SDK it wraps.

    .venv/bin/python bench/ai_bench.py [--rounds 3] [--chat-requests 200] [--out bench/ai_numbers.md]
    .venv/bin/python bench/ai_bench.py --only chat    # prints `chat overhead ms: X`

Prints (and writes as Markdown to --out):
- local embeddings, sentences/s, batch (256 sentences per call) and single (one per call), through
  the provider (`get_provider("embed").embed`) against the bare engine call (`minilm` directly);
- text-to-speech real-time factor (synthesis seconds per audio second) through the provider,
  WAV and MP3;
- speech-to-text real-time factor through the provider (the Whisper base engine);
- POST /api/ai/chat on gunicorn (authentication, quota reserve/settle, job and messages written,
  token counting, the SDK call) against a direct SDK call to the same local stub server: mean
  latency of sequential requests and their ratio; and, on the same gunicorn, a POST of the same
  body to a bare DRF view (no authentication, no database): the floor under that overhead.

Each figure is the median of --rounds runs, interleaved so drift on a noisy machine hits both
sides. The database is a fresh SQLite file unless DATABASE_URL is set.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.server import PY, database_engine, register, request_json, running_server, server_env  # noqa: E402

WORDS = [
    "the",
    "a",
    "model",
    "user",
    "phone",
    "camera",
    "picture",
    "voice",
    "song",
    "music",
    "video",
    "night",
    "morning",
    "city",
    "river",
    "mountain",
    "quick",
    "slow",
    "bright",
    "dark",
    "small",
    "large",
    "happy",
    "quiet",
    "noisy",
    "data",
    "server",
    "network",
    "battery",
    "screen",
    "message",
    "friend",
    "family",
    "travel",
    "train",
    "plane",
    "weather",
    "rain",
    "sun",
    "snow",
    "coffee",
    "book",
    "story",
    "language",
    "learn",
    "build",
    "share",
    "record",
    "play",
    "watch",
    "listen",
]


def sentences(count: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 20))).capitalize() + "." for _ in range(count)]


def median_of(rounds: int, run: Callable[[], float]) -> float:
    return statistics.median(run() for _ in range(rounds))


# --- Local engines ---------------------------------------------------------------------------


def bench_embeddings(rounds: int) -> dict[str, float]:
    from ai_services.providers.local import minilm
    from ai_services.providers.local.provider import LocalProvider

    engine = minilm.get_embedder()
    provider = LocalProvider()
    batch = sentences(256)
    singles = sentences(100, seed=11)
    engine.embed(batch[:8])  # load and warm

    def rate(call: Callable[[list[str]], object], texts: list[str], per_call: int) -> float:
        started = time.perf_counter()
        for start in range(0, len(texts), per_call):
            call(texts[start : start + per_call])
        return len(texts) / (time.perf_counter() - started)

    results = {}
    for label, texts, per_call in (("batch", batch, len(batch)), ("single", singles, 1)):
        engine_runs, provider_runs = [], []
        for _ in range(rounds):
            engine_runs.append(rate(engine.embed, texts, per_call))
            provider_runs.append(rate(provider.embed, texts, per_call))
        results[f"{label}_engine"] = statistics.median(engine_runs)
        results[f"{label}_provider"] = statistics.median(provider_runs)
    return results


def bench_speech(rounds: int) -> dict[str, float]:
    import io
    import wave

    from ai_services.providers.local.provider import LocalProvider

    provider = LocalProvider()
    text = " ".join(sentences(6, seed=3))
    provider.speak(text="Warm up.", model="", voice="alloy", fmt="wav", speed=1.0)

    def tts_rtf(fmt: str) -> float:
        started = time.perf_counter()
        result = provider.speak(text=text, model="", voice="alloy", fmt=fmt, speed=1.0)
        return (time.perf_counter() - started) / result.duration

    results = {"tts_wav_rtf": median_of(rounds, lambda: tts_rtf("wav"))}
    results["tts_mp3_rtf"] = median_of(rounds, lambda: tts_rtf("mp3"))

    audio = provider.speak(text=text, model="", voice="alloy", fmt="wav", speed=1.0).audio
    with wave.open(io.BytesIO(audio)) as reader:
        seconds = reader.getnframes() / reader.getframerate()
    with tempfile.NamedTemporaryFile(suffix=".wav") as handle:
        handle.write(audio)
        handle.flush()
        path = Path(handle.name)
        provider.transcribe(path=path, filename="a.wav", model="", language="en", prompt=None)  # load

        def stt_rtf() -> float:
            started = time.perf_counter()
            provider.transcribe(path=path, filename="a.wav", model="", language="en", prompt=None)
            return (time.perf_counter() - started) / seconds

        results["stt_rtf"] = median_of(rounds, stt_rtf)
    results["speech_seconds"] = seconds
    return results


# --- Chat endpoint over the SDK ----------------------------------------------------------------


def bench_chat(rounds: int, requests: int) -> dict[str, float]:
    import openai

    from tests.ai_services.fake_openai import FakeOpenAI

    stub = FakeOpenAI().start()
    stub.state.reply = "A short answer from the stub server."
    key = "sk-bench-0000000000000000"
    env = server_env(
        Path(tempfile.mkdtemp(prefix="ai-bench-")),
        OPENAI_API_KEY=key,
        OPENAI_BASE_URL=stub.url,
        AI_CHAT_PROVIDER="openai",
        AI_CHAT_MODELS="gpt-4o-mini",
    )
    try:
        with running_server(env) as server:
            email = "ai-bench@example.com"
            token = register(server.port, email)
            # Enough quota for every request of the run (2 units per chat).
            subprocess.run(
                [PY, "manage.py", "shell", "-c",
                 "from accounts.models import User; "
                 "from quotas.services import quota_account_ensure, quota_limit_set; "
                 f"quota_limit_set(account=quota_account_ensure(user=User.objects.get(email='{email}')), limit=10**9)"],
                cwd=ROOT, env=env, check=True,
            )  # fmt: skip

            client = openai.OpenAI(api_key=key, base_url=stub.url, max_retries=0)
            messages = [
                {"role": "system", "content": "You are a helpful assistant."},
                {"role": "user", "content": "Hi"},
            ]

            def direct() -> float:
                started = time.perf_counter()
                for _ in range(requests):
                    client.chat.completions.create(model="gpt-4o-mini", messages=messages, max_tokens=1024)
                return (time.perf_counter() - started) / requests * 1000

            def endpoint() -> float:
                started = time.perf_counter()
                for i in range(requests):
                    # New conversations, so the history (and the work per request) stays the same.
                    status, data = request_json(server.port, "POST", "/api/ai/chat", {"message": f"Hi {i}"}, token)
                    assert status == 200, data
                return (time.perf_counter() - started) / requests * 1000

            def bare() -> float:
                # The floor under the endpoint on this host: the HTTP hop to the same gunicorn and
                # DRF's request cycle for a JSON body, with no authentication and no database.
                started = time.perf_counter()
                for i in range(requests):
                    status, data = request_json(server.port, "POST", "/bench/bare", {"message": f"Hi {i}"})
                    assert status == 200, data
                return (time.perf_counter() - started) / requests * 1000

            direct()  # warm every path
            endpoint()
            bare()
            direct_runs, endpoint_runs, bare_runs = [], [], []
            for _ in range(rounds):
                direct_runs.append(direct())
                endpoint_runs.append(endpoint())
                bare_runs.append(bare())
    finally:
        stub.stop()
    return {
        "direct_ms": statistics.median(direct_runs),
        "endpoint_ms": statistics.median(endpoint_runs),
        "bare_ms": statistics.median(bare_runs),
        "database": database_engine(env),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--chat-requests", type=int, default=200)
    parser.add_argument("--out", default="", help="also write the table to this file")
    parser.add_argument("--only", choices=["all", "chat"], default="all", help="chat: only the chat overhead")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.bench_settings")

    if args.only == "chat":
        chat = bench_chat(args.rounds, args.chat_requests)
        print(
            f"POST /api/ai/chat ({chat['database']}): {chat['endpoint_ms']:.2f} ms; direct SDK call: "
            f"{chat['direct_ms']:.2f} ms; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
        )
        print(f"bare DRF round trip ms: {chat['bare_ms']:.2f} (the part of the overhead no endpoint avoids)")
        print(f"chat overhead ms: {chat['endpoint_ms'] - chat['direct_ms']:.2f}")
        return

    load_before = os.getloadavg()[0]
    embed = bench_embeddings(args.rounds)
    speech = bench_speech(args.rounds)
    chat = bench_chat(args.rounds, args.chat_requests)

    lines = [
        "# AI services benchmark",
        "",
        f"`bench/ai_bench.py --rounds {args.rounds} --chat-requests {args.chat_requests}`, "
        f"{os.cpu_count()} cores, medians of {args.rounds} interleaved rounds; 1-minute load average "
        f"{load_before:.1f} at the start and {os.getloadavg()[0]:.1f} at the end (other work on the machine "
        "slows every figure, the ratios less so).",
        "",
        "| measure | ours | reference | ratio |",
        "| --- | ---: | ---: | ---: |",
        f"| embeddings, batch of 256 (sentences/s): provider vs bare engine | {embed['batch_provider']:.0f} "
        f"| {embed['batch_engine']:.0f} | {embed['batch_provider'] / embed['batch_engine']:.2f} |",
        f"| embeddings, one per call (sentences/s): provider vs bare engine | {embed['single_provider']:.0f} "
        f"| {embed['single_engine']:.0f} | {embed['single_provider'] / embed['single_engine']:.2f} |",
        f"| text-to-speech real-time factor, WAV ({speech['speech_seconds']:.1f} s of speech) "
        f"| {speech['tts_wav_rtf']:.3f} | | |",
        f"| text-to-speech real-time factor, MP3 | {speech['tts_mp3_rtf']:.3f} | | |",
        f"| speech-to-text real-time factor (Whisper base, {speech['speech_seconds']:.1f} s) "
        f"| {speech['stt_rtf']:.3f} | | |",
        f"| chat, mean latency (ms): POST /api/ai/chat on gunicorn ({chat['database']}) vs direct SDK call "
        f"| {chat['endpoint_ms']:.1f} | {chat['direct_ms']:.1f} | {chat['endpoint_ms'] / chat['direct_ms']:.2f} |",
        f"| bare DRF round trip (ms): POST of the same body to a view with no authentication or database "
        f"| {chat['bare_ms']:.2f} | | |",
        "",
        "Real-time factor: seconds of computing per second of audio (below 1 is faster than real time).",
        f"Chat: our endpoint adds {chat['endpoint_ms'] - chat['direct_ms']:.1f} ms per request. Sequential requests, "
        "both answered by the same local stub server; the endpoint adds an HTTP",
        "hop to gunicorn, authentication, quota reserve and settle, the job and two messages written, and",
        "offline token counting of the history.",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    print(f"chat overhead ms: {chat['endpoint_ms'] - chat['direct_ms']:.2f}")
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()

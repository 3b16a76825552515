"""Benchmark of the assistant: what grounding adds to a chat, and where a voice turn spends its time.

    .venv/bin/python bench/assistant_bench.py [--chunks 10000] [--rounds 30] [--voice-rounds 3]

- Grounding: `chat_send` of a plain chat against the same chat with `useDocuments`, interleaved,
  over a user holding `--chunks` stored chunks (384-dimension vectors of the local MiniLM model,
  clustered like bench/embeddings_service_bench.py's, so the index is the real one). Chat goes to
  the fake OpenAI-compatible server in process; every query is a new sentence, so the query
  embedding (real MiniLM) is never a cache hit. Prints the added latency (median), and its parts:
  retrieval (embed the query + search) and prompt assembly (chunk selection + the sources message).
- Voice: `POST /api/ai/voice`'s service (`voice_turn_run`) on a piper-synthesized question with
  local speech engines and the fake chat server; prints each stage's time from its AI job.

The database is a fresh SQLite file under var/ unless DATABASE_URL is set.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATA = ROOT / "var" / "bench-assistant"

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.bench_settings")
os.environ.setdefault("DEBUG", "false")  # as deployed: DEBUG logs every statement, which costs more than some of them
os.environ.setdefault("DATABASE_URL", f"sqlite:///{DATA / 'db.sqlite3'}")
os.environ["EMBEDDINGS_CACHE_DIR"] = str(DATA / "cache")
os.environ["AI_PROVIDER"] = "local"
os.environ["AI_CHAT_PROVIDER"] = "openai"
os.environ["OPENAI_API_KEY"] = "sk-bench-0000"

from bench.embeddings_bench import make_centers  # noqa: E402
from bench.embeddings_service_bench import fill  # noqa: E402

WORDS = [
    "refund",
    "policy",
    "receipt",
    "order",
    "shipping",
    "invoice",
    "warranty",
    "return",
    "store",
    "days",
    "customer",
    "product",
    "price",
]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def sentence(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(8)) + f" {rng.randint(0, 10**9)}?"


def bench_grounding(user, *, chunks: int, rounds: int) -> None:
    from django.conf import settings

    from ai_services.services.chat import chat_plan, chat_send
    from ai_services.services.grounding import (
        GroundingRequest,
        grounding_context_select,
        grounding_message,
        retriever_get,
    )

    fill(user, chunks, make_centers())
    # The stored vectors are synthetic (no text meaning): every chunk counts, so each answer carries
    # the full AI_GROUNDING_MAX_CHUNKS and the prompt assembly is measured at its largest.
    settings.AI_GROUNDING_MIN_SCORE = -1.0
    rng = random.Random(7)
    retrieve = retriever_get()
    # Warm: the index built from the rows, the MiniLM session loaded, the SDK client made.
    chat_send(plan=chat_plan(user=user, message=sentence(rng), grounding=GroundingRequest()))
    plain, grounded, retrieval, assembly, cited = [], [], [], [], []
    for _ in range(rounds):
        t0 = time.perf_counter()
        chat_send(plan=chat_plan(user=user, message=sentence(rng)))
        t1 = time.perf_counter()
        outcome = chat_send(plan=chat_plan(user=user, message=sentence(rng), grounding=GroundingRequest()))
        t2 = time.perf_counter()
        plain.append(t1 - t0)
        grounded.append(t2 - t1)
        cited.append(len(outcome.citations))
        query = sentence(rng)
        t3 = time.perf_counter()
        found = retrieve(
            user=user,
            query=query,
            limit=settings.AI_GROUNDING_MAX_CHUNKS,
            threshold=settings.AI_GROUNDING_MIN_SCORE,
            document_ids=None,
            metadata_filter=None,
        )
        t4 = time.perf_counter()
        kept, _ = grounding_context_select(chunks=found.chunks, budget=settings.AI_GROUNDING_CONTEXT_TOKENS)
        grounding_message(chunks=kept)
        t5 = time.perf_counter()
        retrieval.append(t4 - t3)
        assembly.append(t5 - t4)
    added = statistics.median(grounded) - statistics.median(plain)
    print(f"grounding over {chunks} chunks, {rounds} interleaved rounds (medians):")
    print(f"  plain chat {ms(statistics.median(plain))}, grounded chat {ms(statistics.median(grounded))}")
    print(f"  added latency of grounding: {ms(added)}")
    print(f"  retrieval (query embedding + search): {ms(statistics.median(retrieval))}")
    print(f"  prompt assembly: {ms(statistics.median(assembly))}; citations per answer: {statistics.median(cited)}")


def bench_voice(user, *, rounds: int) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    from ai_services.models import AIJob
    from ai_services.providers.local import piper_tts
    from ai_services.services.voice import voice_turn_begin, voice_turn_run

    samples, rate = piper_tts.synthesize("What is the tallest mountain in the world?")
    question = piper_tts.encode_audio(samples, rate, "wav")
    stages: dict[str, list[int]] = {"transcribe": [], "chat": [], "speak": []}
    totals = []
    for _ in range(rounds):
        upload = SimpleUploadedFile("q.wav", question, content_type="audio/wav")
        t0 = time.perf_counter()
        outcome = voice_turn_run(turn=voice_turn_begin(user=user, upload=upload, fmt="mp3"))
        totals.append(time.perf_counter() - t0)
        for name, job_id in outcome.job_ids.items():
            stages[name].append(AIJob.objects.get(id=job_id).processing_time_ms or 0)
    print(f"voice turn, {rounds} rounds (medians), question {len(samples) / rate:.1f} s of audio, reply as MP3:")
    for name, values in stages.items():
        print(f"  {name}: {statistics.median(values)} ms")
    print(f"  whole turn: {ms(statistics.median(totals))}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--chunks", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--voice-rounds", type=int, default=3)
    args = parser.parse_args()

    import django
    from django.core.management import call_command

    from tests.ai_services.fake_openai import FakeOpenAI

    DATA.mkdir(parents=True, exist_ok=True)
    stub = FakeOpenAI().start()
    stub.state.reply = "Mount Everest is the tallest mountain in the world."
    os.environ["OPENAI_BASE_URL"] = stub.url
    django.setup()
    call_command("migrate", verbosity=0, interactive=False)
    from django.conf import settings

    from accounts.models import User
    from quotas.selectors import quota_account_forget
    from quotas.services import quota_account_ensure, quota_limit_set

    settings.OPENAI_BASE_URL = stub.url
    settings.AI_USER_CONCURRENCY = 0
    User.objects.filter(email="assistant-bench@example.com").delete()
    user = User.objects.create_user(email="assistant-bench@example.com", password="x" * 12)
    quota_limit_set(account=quota_account_ensure(user=user), limit=10**9)
    quota_account_forget(user=user)
    try:
        bench_grounding(user, chunks=args.chunks, rounds=args.rounds)
        bench_voice(user, rounds=args.voice_rounds)
    finally:
        user.delete()
        stub.stop()
        shutil.rmtree(DATA, ignore_errors=True)


if __name__ == "__main__":
    main()

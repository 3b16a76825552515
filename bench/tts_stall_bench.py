"""`GET /api/auth/me` latency while two long text-to-speech calls run, on the deployed gunicorn
configuration (config/gunicorn.py, WEB_CONCURRENCY=2) with the offline Piper engine.

    .venv/bin/python bench/tts_stall_bench.py [--chars 4000] [--probes 20]

Prints the median and worst `/me` latency when idle and while two TTS calls of `--chars`
characters (one each from two users) are running, and their ratio. SQLite unless DATABASE_URL is
set; rate limits off (the seed's AI limits would refuse nothing here, but `/me` probes would count).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.server import register, request, running_server, server_env


def me_latency(port: int, token: str) -> float:
    began = time.perf_counter()
    status, _ = request(port, "GET", "/api/auth/me", token=token, timeout=120)
    assert status == 200, status
    return (time.perf_counter() - began) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chars", type=int, default=4000)
    parser.add_argument("--probes", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tts-stall-") as tmp:
        env = server_env(Path(tmp), settings_module="bench.bench_settings", WEB_CONCURRENCY="2", AI_PROVIDER="local")
        env.pop("OPENAI_API_KEY", None)
        env.pop("GUNICORN_THREADS", None)
        with running_server(env, workers=2, extra_args=["--config", "config/gunicorn.py"]) as server:
            port = server.port
            light = register(port, "light@example.com")
            heavy = [register(port, f"heavy-{i}@example.com") for i in range(2)]
            # Warm both workers' TTS engine, so the measured calls are synthesis only.
            text = ("The quick brown fox jumps over the lazy dog. " * 200)[: args.chars]
            for token in heavy:
                request(port, "POST", "/api/ai/text-to-speech", {"text": "Warm up.", "format": "wav"}, token, 120)
            idle = [me_latency(port, light) for _ in range(args.probes)]

            finished: list[tuple[int, float]] = []

            def speak(token: str) -> None:
                began = time.perf_counter()
                status, _ = request(port, "POST", "/api/ai/text-to-speech", {"text": text, "format": "wav"}, token, 300)
                finished.append((status, time.perf_counter() - began))

            calls = [threading.Thread(target=speak, args=(token,)) for token in heavy]
            for call in calls:
                call.start()
            time.sleep(0.5)  # let both calls reach the engine before probing
            busy = []
            while any(call.is_alive() for call in calls) and len(busy) < args.probes:
                busy.append(me_latency(port, light))
            for call in calls:
                call.join()
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"uptime: {uptime}")
    print(f"TTS calls ({args.chars} chars): " + ", ".join(f"{status} in {secs:.1f} s" for status, secs in finished))
    print(
        f"/me idle:            median {statistics.median(idle):7.1f} ms, max {max(idle):7.1f} ms ({len(idle)} probes)"
    )
    if busy:
        print(
            f"/me during two TTS:  median {statistics.median(busy):7.1f} ms, "
            f"max {max(busy):7.1f} ms ({len(busy)} probes)"
        )
        print(f"ratio (median busy / median idle): {statistics.median(busy) / statistics.median(idle):.1f}")
        print(f"ratio (max busy / median idle):    {max(busy) / statistics.median(idle):.1f}")
    else:
        print("/me during two TTS: no probe finished before the calls did")


if __name__ == "__main__":
    main()

"""Peak RSS growth of the web process while it receives a 100 MB video upload.

    .venv/bin/python bench/video_upload_bench.py [--megabytes 100] [--rounds 3]

A real gunicorn (one sync worker) serves the backend; a streaming client sends the multipart
body 64 KB at a time (it never holds the file either), while a sampler reads the gunicorn
worker's RSS every few milliseconds. The upload is a valid MP4 of about 1 s padded to the size
with an MP4 `free` box, so it passes the probe and is stored like any other video. Reported:
the worker's RSS before the upload and the peak growth during it (target: under 30 MB), for an
accepted upload (202) and for one just over the limit (413).

The database is a fresh SQLite file unless `DATABASE_URL` is set; tasks go to a broker file
nobody consumes (no worker runs: only the web process is measured).
"""

from __future__ import annotations

import argparse
import http.client
import json
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.server import Server, register, running_server, server_env

# One sync worker (the production web server, one process to measure), patient with 100 MB bodies.
GUNICORN_ARGS = ("--worker-class", "sync", "--timeout", "120")
CHUNK = 64 * 1024
MB = 1024 * 1024


def padded_mp4(source: Path, target: Path, *, size: int) -> Path:
    """Copy an MP4 and append a `free` box so the file is exactly `size` bytes."""
    data = source.read_bytes()
    padding = size - len(data)
    if padding < 8:
        raise ValueError("size must exceed the source by at least 8 bytes")
    zeros = bytes(CHUNK)
    with open(target, "wb") as out:
        out.write(data)
        out.write(struct.pack(">I", padding) + b"free")
        remaining = padding - 8
        while remaining:
            step = min(remaining, CHUNK)
            out.write(zeros[:step])
            remaining -= step
    return target


def make_source_clip(path: Path) -> Path:
    """A 1 s 320x240 H.264 MP4 made with the bundled ffmpeg."""
    import imageio_ffmpeg

    subprocess.run(
        [
            imageio_ffmpeg.get_ffmpeg_exe(),
            "-nostdin",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=s=320x240:r=25:d=1",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            str(path),
        ],
        check=True,
    )
    return path


def stream_upload(port: int, path: Path, *, token: str, fields: dict[str, str] | None = None) -> tuple[int, dict]:
    """POST /api/video/upload with a multipart body streamed from disk in 64 KB chunks."""
    boundary = uuid.uuid4().hex
    head = b""
    for name, value in (fields or {}).items():
        head += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
    head += (
        f'--{boundary}\r\nContent-Disposition: form-data; name="video"; filename="{path.name}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    length = len(head) + path.stat().st_size + len(tail)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    conn.putrequest("POST", "/api/video/upload")
    conn.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
    conn.putheader("Content-Length", str(length))
    conn.putheader("Authorization", f"Bearer {token}")
    conn.endheaders()
    try:
        conn.send(head)
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(CHUNK), b""):
                conn.send(chunk)
        conn.send(tail)
    except (BrokenPipeError, ConnectionResetError):
        # The server answered (a 413 from the declared length) and closed before the whole
        # body was sent: its answer is waiting to be read.
        pass
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, json.loads(data) if data else {}


class RssSampler:
    """Samples a process's RSS in a thread; `peak` is the highest value seen."""

    def __init__(self, pid: int, interval: float = 0.002) -> None:
        self.process = psutil.Process(pid)
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(self.interval)

    def __enter__(self) -> RssSampler:
        self.peak = self.process.memory_info().rss
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.process.memory_info().rss)


def upload_server_env(workdir: Path) -> dict[str, str]:
    """The production settings; tasks go to a broker file nobody consumes (only the web process
    is measured)."""
    return server_env(
        workdir,
        settings_module="config.settings",
        FILE_UPLOAD_TEMP_DIR=str(workdir),
        CELERY_BROKER_URL=f"sqla+sqlite:///{workdir / 'broker.sqlite3'}",
        CELERY_TASK_ALWAYS_EAGER="false",
        RATE_LIMITS_ENABLED="false",
    )


@dataclass
class Measurement:
    status: int
    baseline_mb: float
    growth_mb: float


def measure(server: Server, path: Path, *, token: str) -> Measurement:
    pid = server.worker_pid
    baseline = psutil.Process(pid).memory_info().rss
    with RssSampler(pid) as sampler:
        status, _body = stream_upload(server.port, path, token=token, fields={"extractFrames": "true"})
    return Measurement(status=status, baseline_mb=baseline / MB, growth_mb=(sampler.peak - baseline) / MB)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--megabytes", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="video-upload-bench-"))
    env = upload_server_env(workdir)
    source = make_source_clip(workdir / "source.mp4")
    limit = args.megabytes * MB
    accepted = padded_mp4(source, workdir / "upload.mp4", size=limit - 64 * 1024)
    too_large = padded_mp4(source, workdir / "too-large.mp4", size=limit + MB)

    with running_server(env, extra_args=GUNICORN_ARGS) as server:
        token = register(server.port, f"bench-{uuid.uuid4().hex[:8]}@example.com")
        # Warm up: the first upload imports the probe and storage code paths.
        assert stream_upload(server.port, source, token=token)[0] == 202

        results: dict[str, list[Measurement]] = {"accepted": [], "too_large": []}
        for _ in range(args.rounds):
            results["accepted"].append(measure(server, accepted, token=token))
            results["too_large"].append(measure(server, too_large, token=token))
    sizes = f"{accepted.stat().st_size / MB:.1f} MB and {too_large.stat().st_size / MB:.1f} MB"
    print(f"gunicorn, 1 sync worker; uploads of {sizes}")
    for name, runs in results.items():
        statuses = sorted({run.status for run in runs})
        growth = max(run.growth_mb for run in runs)
        baseline = runs[0].baseline_mb
        print(
            f"{name:10s} status {statuses}  worker RSS before {baseline:6.1f} MB  "
            f"peak growth (worst of {len(runs)}) {growth:5.1f} MB  (target < 30 MB)"
        )


if __name__ == "__main__":
    main()

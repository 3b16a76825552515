"""Peak RSS growth of the web process, and throughput, for a 100 MB video sent as a resumable
(tus) upload in 5 MB chunks, next to the same video as one multipart upload, in the same run.

    .venv/bin/python bench/video_resumable_bench.py [--megabytes 100] [--chunk-mb 5] [--rounds 3]

The server is the one of bench/video_upload_bench.py (gunicorn, one sync worker, production
settings, rate limits off, no Celery worker: only the web process is measured). The tus client
streams every chunk from disk 64 KB at a time, so the client holds no chunk either. Reported per
way of uploading: the worker's peak RSS growth over the whole upload (target: under 30 MB) and the
throughput (MB/s over the wall time, creation and completion included).
"""

from __future__ import annotations

import argparse
import base64
import http.client
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.server import Server, register, running_server
from bench.video_upload_bench import (
    CHUNK,
    GUNICORN_ARGS,
    MB,
    RssSampler,
    make_source_clip,
    padded_mp4,
    stream_upload,
    upload_server_env,
)


@dataclass
class Result:
    status: int
    growth_mb: float
    seconds: float
    megabytes: float

    @property
    def throughput(self) -> float:
        return self.megabytes / self.seconds


def tus_upload(port: int, path: Path, *, token: str, chunk: int) -> int:
    """Create a tus upload and PATCH it chunk by chunk; returns the last status."""
    size = path.stat().st_size
    auth = {"Authorization": f"Bearer {token}", "Tus-Resumable": "1.0.0"}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    name = base64.b64encode(path.name.encode()).decode()
    conn.request(
        "POST",
        "/api/video/uploads/",
        headers={**auth, "Upload-Length": str(size), "Upload-Metadata": f"filename {name}"},
    )
    created = conn.getresponse()
    created.read()
    if created.status != 201:
        return created.status
    url = created.getheader("Location", "").split(f":{port}", 1)[1]
    status = 0
    with open(path, "rb") as handle:
        for offset in range(0, size, chunk):
            length = min(chunk, size - offset)
            conn.putrequest("PATCH", url)
            for header, value in {
                **auth,
                "Upload-Offset": str(offset),
                "Content-Type": "application/offset+octet-stream",
                "Content-Length": str(length),
            }.items():
                conn.putheader(header, value)
            conn.endheaders()
            sent = 0
            while sent < length:
                data = handle.read(min(CHUNK, length - sent))
                conn.send(data)
                sent += len(data)
            answer = conn.getresponse()
            answer.read()
            status = answer.status
            if status != 204:
                break
    conn.close()
    return status


def measure(server: Server, path: Path, *, token: str, chunk: int | None) -> Result:
    pid = server.worker_pid
    baseline = psutil.Process(pid).memory_info().rss
    started = time.perf_counter()
    with RssSampler(pid) as sampler:
        if chunk is None:
            status = stream_upload(server.port, path, token=token)[0]
        else:
            status = tus_upload(server.port, path, token=token, chunk=chunk)
    seconds = time.perf_counter() - started
    return Result(status, (sampler.peak - baseline) / MB, seconds, path.stat().st_size / MB)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--megabytes", type=int, default=100)
    parser.add_argument("--chunk-mb", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="video-resumable-bench-"))
    source = make_source_clip(workdir / "source.mp4")
    video = padded_mp4(source, workdir / "upload.mp4", size=args.megabytes * MB - 64 * 1024)
    results: dict[str, list[Result]] = {"multipart": [], f"tus {args.chunk_mb} MB chunks": []}
    with running_server(upload_server_env(workdir), extra_args=GUNICORN_ARGS) as server:
        token = register(server.port, f"bench-{uuid.uuid4().hex[:8]}@example.com")
        # Warm-up of both paths: the first upload imports the probe, storage and task code.
        assert stream_upload(server.port, source, token=token)[0] == 202
        assert tus_upload(server.port, source, token=token, chunk=args.chunk_mb * MB) == 204
        for _ in range(args.rounds):  # interleaved, so both see the same machine load
            results["multipart"].append(measure(server, video, token=token, chunk=None))
            results[f"tus {args.chunk_mb} MB chunks"].append(
                measure(server, video, token=token, chunk=args.chunk_mb * MB)
            )
    print(f"gunicorn, 1 sync worker; a {video.stat().st_size / MB:.1f} MB video, {args.rounds} rounds")
    best: dict[str, float] = {}
    for name, runs in results.items():
        statuses = sorted({run.status for run in runs})
        growth = max(run.growth_mb for run in runs)
        best[name] = max(run.throughput for run in runs)
        print(
            f"{name:22s} status {statuses}  peak RSS growth (worst) {growth:5.1f} MB (target < 30 MB)  "
            f"throughput (best) {best[name]:6.1f} MB/s"
        )
    tus, multipart = best[f"tus {args.chunk_mb} MB chunks"], best["multipart"]
    print(f"ratio tus/multipart throughput: {tus / multipart:.2f}")


if __name__ == "__main__":
    main()

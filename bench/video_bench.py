"""Video pipeline benchmark: our frame extraction vs. the fastest plain ffmpeg command for the same output.

Output per clip: frames at 1 s intervals (at most 100) + a 320 px thumbnail + metadata. "ours" is
``run_ours`` (probe + extract_frames through video.media; swap it for a service-level call to measure
more of the stack). "plain" is the one-pass ffmpeg command a person would write for the same files::

    ffmpeg -i X -filter_complex "[0:v]split=2[a][b];[a]fps=1:round=up[f];
        [b]select='isnan(prev_selected_t)*gte(t,T)',scale=...[t]"
        -map [f] -frames:v 100 -q:v 2 f_%05d.jpg -map [t] -frames:v 1 -q:v 2 thumb.jpg

Each is run `--runs` times (default 3), alternating which goes first, and the median wall time is
compared: target ratio ours/plain <= 1.1. CPU seconds (process + ffmpeg children) are shown too: on a
shared machine they move far less than wall time. Clips are generated once into bench/.data/
(gitignored; VIDEO_BENCH_DATA moves it): 1080p H.264 + AAC, 60 to 300 s, with x264's default keyframe
interval (~8 s here) and with phone-style 1 s GOPs (see CLIPS).

Run from the project root: ``.venv/bin/python bench/video_bench.py [--runs N] [--clips NAME,...]``.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from video import media  # noqa: E402
from video.media import planning  # noqa: E402

# VIDEO_BENCH_DATA moves the clip cache (e.g. outside a work tree that gets cleaned).
DATA = Path(os.environ.get("VIDEO_BENCH_DATA", ROOT / "bench" / ".data"))
INTERVAL = 1.0
MAX_FRAMES = 100

# name: (seconds, frame rate, keyframe interval in frames or None for x264's default, source clip to loop)
# The 1 s GOP at exactly 30 fps puts a keyframe on every whole second: the best case for skipping. Its
# 300 s loop shifts the keyframes 21 ms after each second from the first loop on (the worst case: each
# target is the last frame of a GOP), and 29.97 fps with 30-frame GOPs drifts through every alignment,
# as phone footage does.
CLIPS: dict[str, tuple[int, str, int | None, str | None]] = {
    "1080p-60s-gop-default": (60, "30", None, None),
    "1080p-300s-gop-default": (300, "30", None, "1080p-60s-gop-default"),
    "1080p-60s-gop-1s": (60, "30", 30, None),
    "1080p-300s-gop-1s": (300, "30", 30, "1080p-60s-gop-1s"),
    "1080p-120s-29.97-gop-30": (120, "30000/1001", 30, None),
}


def _ffmpeg(args: list[str], timeout: float = 1800) -> None:
    cmd = [media.ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args]
    subprocess.run(cmd, check=True, timeout=timeout)


def clip_path(name: str) -> Path:
    """The clip, generated on first use. Long clips loop a 60 s one with stream copy: same content
    statistics, minutes less encoding."""
    path = DATA / f"{name}.mp4"
    if path.exists():
        return path
    seconds, rate, gop, source = CLIPS[name]
    DATA.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial.mp4")
    print(f"generating {path} ...", flush=True)
    if source:
        src = clip_path(source)
        loops = -(-seconds // CLIPS[source][0]) - 1
        _ffmpeg(["-stream_loop", str(loops), "-i", str(src), "-t", str(seconds), "-c", "copy", str(partial)])
    else:
        video = ["-f", "lavfi", "-i", f"testsrc2=s=1920x1080:r={rate}:d={seconds}"]
        audio = ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}"]
        x264 = ["-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p"]
        if gop:
            x264 += ["-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0"]
        _ffmpeg([*video, *audio, *x264, "-c:a", "aac", "-b:a", "128k", "-movflags", "+faststart", str(partial)])
    partial.rename(path)
    return path


def run_ours(path: Path, out_dir: Path, **options: object) -> media.ExtractionResult:
    """Our pipeline: metadata + frames + thumbnail."""
    info = media.probe(path)
    return media.extract_frames(path, interval=INTERVAL, max_frames=MAX_FRAMES, out_dir=out_dir, info=info, **options)


def run_plain_ffmpeg(path: Path, out_dir: Path, thumb_time: float, thumb_size: tuple[int, int]) -> None:
    """The fastest plain ffmpeg command for the same output (one process, one decode pass)."""
    graph = (
        "[0:v]split=2[a][b];[a]fps=1:round=up[f];"
        f"[b]select='isnan(prev_selected_t)*gte(t\\,{thumb_time:.6f})',scale={thumb_size[0]}:{thumb_size[1]}[t]"
    )
    frames = ["-map", "[f]", "-frames:v", str(MAX_FRAMES), "-q:v", "2", str(out_dir / "f_%05d.jpg")]
    thumb = ["-map", "[t]", "-frames:v", "1", "-q:v", "2", "-update", "1", str(out_dir / "thumb.jpg")]
    _ffmpeg(["-i", str(path), "-filter_complex", graph, *frames, *thumb])


def _cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)  # waited-for ffmpeg processes
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed(fn: Callable[[Path], object]) -> tuple[float, float, object]:
    """Wall seconds, CPU seconds (this process and its ffmpeg children) and the result of fn(out_dir).
    CPU time is the steadier number on a shared machine: it barely moves with other load."""
    out_dir = Path(tempfile.mkdtemp(prefix="video-bench-"))
    try:
        cpu = _cpu_seconds()
        started = time.perf_counter()
        result = fn(out_dir)
        return time.perf_counter() - started, _cpu_seconds() - cpu, result
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)


def bench_clip(name: str, runs: int, variants: list[str]) -> list[dict[str, object]]:
    path = clip_path(name)
    info = media.probe(path)
    # Same thumbnail time as extract_frames' default (10% of the duration, on the 1 s grid).
    n = min(MAX_FRAMES, int(-(-info.duration // INTERVAL)))
    thumb_time = min((info.duration * 0.1) // INTERVAL * INTERVAL, (n - 1) * INTERVAL)
    thumb_size = planning._fit(info.width, info.height, 320)
    path.read_bytes()  # page cache warm for everyone

    contenders: dict[str, Callable[[Path], object]] = {
        "plain": lambda out: run_plain_ffmpeg(path, out, thumb_time, thumb_size),
    }
    for variant in variants:
        options = {} if variant == "auto" else {"engine": variant}
        contenders[f"ours:{variant}"] = lambda out, options=options: run_ours(path, out, **options)

    times: dict[str, list[float]] = {key: [] for key in contenders}
    cpus: dict[str, list[float]] = {key: [] for key in contenders}
    engines: dict[str, str] = {}
    order = list(contenders)
    for run in range(runs):
        # Rotate the order every run so drift in machine load does not favour one contender.
        shift = run % len(order)
        for key in order[shift:] + order[:shift]:
            elapsed, cpu, result = timed(contenders[key])
            times[key].append(elapsed)
            cpus[key].append(cpu)
            if isinstance(result, media.ExtractionResult):
                engines[key] = result.engine
    plain = statistics.median(times["plain"])
    plain_cpu = statistics.median(cpus["plain"])
    rows = []
    for key, values in times.items():
        median = statistics.median(values)
        cpu = statistics.median(cpus[key])
        rows.append(
            {
                "clip": name,
                "contender": key,
                "engine": engines.get(key, "-"),
                "median_s": median,
                "runs_s": values,
                "ratio": median / plain,
                "cpu_s": cpu,
                "cpu_ratio": cpu / plain_cpu,
            }
        )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--clips", default=",".join(CLIPS), help="comma-separated subset of: " + ", ".join(CLIPS))
    parser.add_argument(
        "--variants",
        default="auto,ffmpeg,pyav",
        help="engines of ours to time: auto (what production runs), ffmpeg, pyav",
    )
    args = parser.parse_args()
    variants = [v for v in args.variants.split(",") if v]
    print(f"ffmpeg: {media.ffmpeg_exe()}; {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.2f}")
    print(f"frames every {INTERVAL:g} s (max {MAX_FRAMES}) + 320 px thumbnail + probe; median of {args.runs} runs")
    print("ratio = ours / plain ffmpeg; cpu = user+sys seconds of this process and its ffmpeg children")
    header = (
        f"{'clip':<24} {'contender':<13} {'engine':<7} {'wall s':>7} {'ratio':>6} {'cpu s':>7} {'ratio':>6}  wall runs"
    )
    print(header)
    print("-" * len(header))
    worst = worst_cpu = 0.0
    for name in args.clips.split(","):
        for row in bench_clip(name, args.runs, variants):
            runs = " ".join(f"{v:.2f}" for v in row["runs_s"])  # type: ignore[union-attr]
            print(
                f"{row['clip']:<24} {row['contender']:<13} {row['engine']:<7} {row['median_s']:>7.2f} "
                f"{row['ratio']:>6.2f} {row['cpu_s']:>7.2f} {row['cpu_ratio']:>6.2f}  {runs}",
                flush=True,
            )
            if row["contender"] == "ours:auto":
                worst = max(worst, float(row["ratio"]))  # type: ignore[arg-type]
                worst_cpu = max(worst_cpu, float(row["cpu_ratio"]))  # type: ignore[arg-type]
    if "auto" in variants:
        print(f"worst ours:auto / plain ratio: wall {worst:.2f}, cpu {worst_cpu:.2f} (target <= 1.10)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The two frame-extraction engines: one ffmpeg process, or PyAV decoding only the GOPs it needs.

Two engines, one contract (numbers: bench/README.md, from bench/video_bench.py)
-----------------------------------------------------------------------------------------
Decoding is nearly all of the cost (1080p H.264 decodes at ~300 frames/s per core here; a JPEG costs
~7 ms), and the two ways to decode run at the same speed: PyAV (bundling FFmpeg 8 libraries) and the
ffmpeg CLI (imageio-ffmpeg's 9.0) run the same decoder code with frame threads. What differs is how
much has to be decoded.

* ``ffmpeg`` engine: one ffmpeg process, one decode pass, the command a person would write::

      ffmpeg -t LIMIT -i X -filter_complex
        "[0:v]split=2[a][b];[a]fps=1/interval:round=up:start_time=0[f];
         [b]setpts=PTS-T/TB,tpad=...,fps=1/100000:round=up:start_time=0,scale=W:H[t]"
        -map [f] -frames:v n frame_%05d.jpg -map [t] -frames:v 1 thumbnail.jpg

  Once both outputs have their frames ffmpeg stops reading, so 100 frames at 1 s from a 300 s file
  decode ~100 s of it (``-t`` only bounds a runaway). The thumbnail branch uses the same "on screen
  at t" rule as the frames (shift T to 0, then an fps filter with a single tick); tpad keeps it from
  coming out empty when the picture ends before T. A thumbnail past the frames window is not worth
  decoding up to: a second input of the same file, seeked with ``-noaccurate_seek -ss T`` (keyframe
  before T, timestamps relative to T), feeds it in the same process. Progress: ``-progress pipe:1``.
  Cost against the plain one-pass command (``select='gte(t,T)'`` thumbnail, no progress): the same
  within measurement noise — it *is* that command plus a ~5 ms probe.

* ``pyav`` engine: a frame only depends on the frames since its keyframe, so it demuxes every packet
  (cheap: ~25 ms per minute of 1080p) but *decodes* only from the last keyframe before each target up
  to the target; the rest of every GOP is skipped (see ``_pyav_grab``). JPEGs are encoded (swscale to
  RGB + Pillow/libjpeg-turbo) on a worker thread while decoding goes on. With nothing to skip it costs
  what the ffmpeg engine costs (bench: 0.95-0.99 of the plain command's CPU on x264-default GOPs); the
  gain depends on where keyframes fall relative to the targets. Best case, a keyframe on every target
  (1 s GOPs at exactly 30 fps): a quarter of the plain command's time. Worst case, every target is the
  *last* frame of its GOP (29.97 fps with 30-frame GOPs: keyframes at 1.001 s, 2.002 s, ... so the
  frame on screen at 2 s closes the GOP before): nothing to skip. 2 s GOPs at 1 s intervals halve it.

``engine="auto"`` (default) reads the keyframe index (MP4/MOV sample table, Matroska cues; a few ms)
and takes ``pyav`` when it would decode at most ``PYAV_MAX_COST_RATIO`` (0.6) of what ffmpeg decodes,
else ``ffmpeg`` (the estimate tracks the measurement: 0.53 estimated, 0.55-0.57 of the CPU measured on
the bench file that has both aligned and misaligned keyframes). AVI and ASF always take ``ffmpeg``.
Both engines give the same frames: the tests check each against an independent decode, frame number by
frame number, for every container and for B-frames, open GOPs, HEVC and 29.97 fps. The ffmpeg engine's
subprocess also keeps a decoder crash on a hostile file out of the worker process; the PyAV engine only
runs in-process on the containers and files where it wins.
"""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
from av.video.stream import VideoStream

from video.media.errors import MediaError
from video.media.ffmpeg import _decode_timeout, _input, _rate, _run_ffmpeg, _thumbnail_chain, _timeline
from video.media.images import _to_image
from video.media.probe import _AV_OPTIONS
from video.media.records import _EPS, FRAME_NAME, THUMBNAIL_NAME, VideoInfo


def _extract_ffmpeg(
    path: Path,
    info: VideoInfo,
    *,
    interval: float,
    targets: list[float],
    thumb_time: float,
    thumb_size: tuple[int, int],
    frame_size: tuple[int, int] | None,
    out_dir: Path,
    qscale: int,
    report: Callable[[float], None],
    timeout: float | None,
) -> None:
    n = len(targets)
    window = targets[-1]
    thumb_in_window = thumb_time <= window + _EPS
    frames_chain = f"{_timeline(info)},fps={_rate(interval)}:round=up:start_time=0"
    if frame_size is not None:
        frames_chain += f",scale={frame_size[0]}:{frame_size[1]}"
    thumb_chain = _thumbnail_chain(thumb_time, thumb_size)
    # Bound reading even if an output never completes (a thumbnail past the last video frame).
    args = ["-t", f"{window + 2 * interval + 1:.6f}", *_input(path, info)]
    src = f"[0:{info.stream_index}]"
    if thumb_in_window:
        graph = f"{src}split=2[a][b];[a]{frames_chain}[f];[b]{_timeline(info, thumb_time)},{thumb_chain}[t]"
    else:
        # A second input of the same file, seeked to the keyframe before T.
        args += _input(path, info, seek=thumb_time)
        graph = f"{src}{frames_chain}[f];[1:{info.stream_index}]{_timeline(info, thumb_time)},{thumb_chain}[t]"
    frames_out = ["-map", "[f]", "-frames:v", str(n), "-q:v", str(qscale), "-start_number", "0", "-f", "image2"]
    thumb_out = ["-map", "[t]", "-frames:v", "1", "-q:v", str(qscale), "-update", "1", "-f", "image2"]
    args += ["-filter_complex", graph, *frames_out, str(out_dir / "frame_%05d.jpg")]
    args += [*thumb_out, str(out_dir / THUMBNAIL_NAME)]
    total = n * interval  # out_time of the frames output reaches n*interval when the last frame is out

    def on_line(key: str, value: str) -> None:
        if key == "out_time_us" and value.lstrip("-").isdigit():
            report(int(value) / 1e6 / total)
        elif key == "frame" and value.isdigit():
            report(int(value) / n)

    _run_ffmpeg(args, timeout=timeout or _decode_timeout(window), what="Frame extraction", on_progress_line=on_line)


@dataclass(slots=True)
class _Job:
    time: float
    key: Any


def _frame_seconds(frame: av.VideoFrame, tb: Fraction, offset: float) -> float | None:
    ts = frame.pts if frame.pts is not None else frame.dts
    return None if ts is None else float(ts * tb) - offset


def _pyav_grab(
    path: Path,
    info: VideoInfo,
    jobs: list[_Job],
    sink: Callable[[_Job, av.VideoFrame], None],
    report: Callable[[float], None],
    deadline: float,
) -> None:
    """Decode only what each job needs and hand sink(job, frame) the frame shown at job.time.

    Jobs must be sorted by time. Packets are demuxed in order; while the next job's time is ahead, a
    packet displayed at or before it is held back rather than decoded: a later keyframe that is still
    at or before that time makes everything held useless (dropped; the decoder is flushed and restarts
    at that keyframe), while the first packet displayed after it proves the wanted frame is in this
    GOP (the held packets are decoded then). So each GOP is decoded from its keyframe up to its last
    wanted frame and no further, and GOPs with nothing wanted are never decoded. At the end of the
    stream the last frame serves jobs within its duration, and the thumbnail job in any case.
    """
    with av.open(str(path), metadata_errors="ignore", options=_AV_OPTIONS) as container:
        vs = container.streams[info.stream_index]
        tb = vs.time_base
        # Never true of the stream probe chose; the checks narrow the types for what follows.
        if not isinstance(vs, VideoStream) or tb is None:
            raise MediaError("The video could not be decoded.", detail="not a video stream with a time base")
        vs.thread_type = "AUTO"  # frame + slice threads, as the ffmpeg CLI decodes
        cc = vs.codec_context
        offset = info.start_time
        ji = 0
        prev: av.VideoFrame | None = None
        prev_time = 0.0
        floor: float | None = None  # after a jump: frames before the restart keyframe are not usable
        held: list[av.Packet] = []
        restart = False  # held[0] is a keyframe to restart decoding at
        fed = False  # the decoder has been given packets since it was last flushed

        def handle(frame: av.VideoFrame) -> None:
            nonlocal ji, prev, prev_time
            ft = _frame_seconds(frame, tb, offset)
            if ft is None or (floor is not None and ft < floor - _EPS):
                # Leading pictures of an open GOP reference frames that were skipped.
                return
            while ji < len(jobs):
                target = jobs[ji].time
                if ft <= target + _EPS:
                    duration = float(frame.duration * tb) if frame.duration else 0.0
                    if not (abs(ft - target) <= _EPS or ft + duration > target + _EPS):
                        break  # an earlier frame; the next one may still be at or before target
                    chosen = frame  # on screen at target: no need to wait for the next frame
                else:
                    # The first frame after target arrived, so the previous one was on screen at target
                    # (before the first frame, the first frame stands in, like ffmpeg's start_time=0).
                    chosen = prev if prev is not None else frame
                sink(jobs[ji], chosen)
                ji += 1
                report(ji / len(jobs))
            prev, prev_time = frame, ft

        def decode(packet: av.Packet | None) -> None:
            nonlocal fed
            fed = True
            try:
                frames = cc.decode(packet)
            except av.error.InvalidDataError:
                return  # a damaged packet: skip it and go on, as the ffmpeg CLI does
            for frame in frames:
                handle(frame)

        def decode_held() -> None:
            nonlocal prev, floor, restart, fed
            if restart:
                if fed:
                    cc.flush_buffers()
                    fed = False
                key_ts = held[0].pts if held[0].pts is not None else held[0].dts
                prev, floor, restart = None, (None if key_ts is None else float(key_ts * tb) - offset), False
            for pending in held:
                decode(pending)
            held.clear()

        for packet in container.demux(vs):
            if ji >= len(jobs):
                break
            if time.monotonic() > deadline:
                raise MediaError("Frame extraction took too long and was stopped.")
            if packet.size == 0:
                continue
            ts = packet.pts if packet.pts is not None else packet.dts
            pt = None if ts is None else float(ts * tb) - offset
            if pt is not None and pt <= jobs[ji].time + _EPS:
                if packet.is_keyframe:
                    held, restart = [packet], True
                    continue
                if held or prev is not None:
                    held.append(packet)
                    continue
            decode_held()
            decode(packet)
        if ji < len(jobs):
            decode_held()
            decode(None)
        if prev is not None:
            last_end = prev_time + (float(prev.duration * tb) if prev.duration else 0.0)
            for job in jobs[ji:]:
                if job.time < last_end - _EPS or job.key == "thumbnail":
                    sink(job, prev)


def _extract_pyav(
    path: Path,
    info: VideoInfo,
    *,
    targets: list[float],
    thumb_time: float,
    thumb_size: tuple[int, int],
    frame_size: tuple[int, int] | None,
    out_dir: Path,
    jpeg_quality: int,
    report: Callable[[float], None],
    timeout: float | None,
) -> None:
    jobs = sorted(
        [_Job(t, k) for k, t in enumerate(targets)] + [_Job(thumb_time, "thumbnail")],
        key=lambda j: (j.time, j.key == "thumbnail"),
    )
    deadline = time.monotonic() + (timeout or _decode_timeout(max(targets[-1], thumb_time)))
    # JPEG work (swscale + libjpeg, both GIL-free) overlaps decoding on one worker thread; the bound
    # on in-flight frames caps memory (a decoded 4K frame is 12 MB).
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="jpeg")
    in_flight: list[concurrent.futures.Future[None]] = []

    def write(frame: av.VideoFrame, size: tuple[int, int] | None, dest: Path) -> None:
        _to_image(frame, size, info.rotation).save(dest, "JPEG", quality=jpeg_quality)

    def sink(job: _Job, frame: av.VideoFrame) -> None:
        if job.key == "thumbnail":
            future = pool.submit(write, frame, thumb_size, out_dir / THUMBNAIL_NAME)
        else:
            future = pool.submit(write, frame, frame_size, out_dir / FRAME_NAME.format(job.key))
        in_flight.append(future)
        while len(in_flight) > 3:
            in_flight.pop(0).result()

    try:
        _pyav_grab(path, info, jobs, sink, report, deadline)
        for future in in_flight:
            future.result()
    except av.FFmpegError as exc:
        raise MediaError("The video could not be decoded.", detail=str(exc)) from exc
    finally:
        pool.shutdown(wait=True, cancel_futures=True)

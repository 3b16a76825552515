"""Hostile files, built at run time so nothing large is committed.

The tiny hand-written samples live in `tests/data/attack/` (see its README); the generators here
make what would be large or binary: decompression bombs whose header promises far more pixels
than the bytes hold, a large photo-like JPEG, truncated copies of real files, polyglots.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw

DATA_DIR = Path(__file__).resolve().parent / "data" / "attack"


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(width: int, height: int) -> bytes:
    """A valid greyscale PNG of `width` x `height` black pixels, compressed row by row so that
    building an 81 MP bomb never holds 81 MB (it is about 80 KB)."""
    compressor = zlib.compressobj(9)
    row = b"\x00" * (width + 1)  # filter byte + one byte per pixel
    parts = [compressor.compress(row) for _ in range(height)]
    parts.append(compressor.flush())
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", b"".join(parts))
        + _png_chunk(b"IEND", b"")
    )


def photo_jpeg(width: int, height: int, *, quality: int = 70) -> bytes:
    """A large JPEG that compresses like a simple photo (a gradient sky, shapes, some text)."""
    picture = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    draw = ImageDraw.Draw(picture)
    for index in range(12):
        x, y = (index * width) // 12, (index * height) // 14
        draw.ellipse((x, y, x + width // 10, y + height // 10), fill=(40 + index * 15, 90, 160))
    draw.text((width // 20, height // 2), "Hello corpus", fill="white")
    out = io.BytesIO()
    picture.save(out, format="JPEG", quality=quality)
    return out.getvalue()


def small_image(fmt: str, size: tuple[int, int] = (32, 24)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(out, format=fmt)
    return out.getvalue()


def tiny_zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("../../evil.sh", "#!/bin/sh\necho owned\n")
    return out.getvalue()


def wav(seconds: float = 0.5, rate: int = 16000) -> bytes:
    frames = int(seconds * rate)
    data = b"\x00\x00" * frames
    return (
        b"RIFF"
        + struct.pack("<I", 36 + len(data))
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
        + b"data"
        + struct.pack("<I", len(data))
        + data
    )


@dataclass(frozen=True)
class Sample:
    name: str  # the file name sent (itself part of the attack for traversal names)
    content: bytes
    benign: bool = False  # a real file of the endpoint's kind: success is an acceptable answer


def hostile_samples(kind: str) -> list[Sample]:
    """Every sample, for an endpoint that takes `kind` ("image", "audio" or "video")."""
    real = {"image": small_image("PNG"), "audio": wav(), "video": b""}[kind]
    samples = [
        Sample("empty.bin", b""),
        Sample("zero-byte.png", b""),
        Sample("one-byte.jpg", b"\xff"),
        Sample("png-bomb-81mp.png", png_bomb(9000, 9000)),
        Sample("png-bomb-900mp.png", png_bomb(30000, 30000)[:4096]),
        Sample("truncated.jpg", small_image("JPEG", (400, 300))[:200]),
        Sample("truncated.png", small_image("PNG", (400, 300))[:60]),
        Sample("truncated.wav", wav()[:30]),
        Sample("polyglot-gif-js.gif", (DATA_DIR / "polyglot-gif-js.gif").read_bytes()),
        # A real PNG with a zip behind it: acceptable as an image only because the stored copy is
        # re-encoded from pixels (the test checks the zip is gone).
        Sample("polyglot-zip-in-png.png", small_image("PNG") + tiny_zip(), benign=kind == "image"),
        Sample("html-as-image.jpg", (DATA_DIR / "script.html").read_bytes()),
        Sample("svg-xxe.svg", (DATA_DIR / "xxe.svg").read_bytes()),
        Sample("deep-nesting.json", (b"[" * 5000) + (b"]" * 5000)),
        Sample("control-chars.txt", bytes(range(32)) * 8),
        Sample("../../../../etc/passwd", b"root:x:0:0:root:/root:/bin/bash\n"),
        Sample("..\\..\\windows\\win.ini", b"[fonts]\r\n"),
        Sample("nul\x00name.png", small_image("PNG"), benign=kind == "image"),
        Sample("ctrl\x1b[31mname\r\n.png", small_image("PNG"), benign=kind == "image"),
        Sample("a" * 300 + ".png", small_image("PNG"), benign=kind == "image"),
    ]
    if real:
        samples.append(Sample(f"real.{'png' if kind == 'image' else 'wav'}", real, benign=True))
    return samples

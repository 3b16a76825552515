"""Pillow side of the media layer: decoded frames to upright RGB images, and JPEG sizes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import av
from PIL import Image


def _to_image(frame: av.VideoFrame, size: tuple[int, int] | None, rotation: int) -> Image.Image:
    """RGB Pillow image of the frame turned upright; size is the upright target size."""
    if size is not None and rotation in (90, 270):
        size = (size[1], size[0])
    kwargs: dict[str, Any] = {"format": "rgb24"}
    if size is not None and size != (frame.width, frame.height):
        kwargs.update(width=size[0], height=size[1], interpolation="AREA")
    rgb = frame.reformat(**kwargs)
    plane = rgb.planes[0]
    # Pillow reads any buffer-protocol object (the plane maps the frame's memory, no copy); its stubs only
    # name bytes and the array interface.
    img = Image.frombuffer("RGB", (rgb.width, rgb.height), plane, "raw", "RGB", plane.line_size, 1)  # type: ignore[arg-type]
    if rotation == 90:
        img = img.transpose(Image.Transpose.ROTATE_270)  # Pillow's ROTATE_n turn counter-clockwise
    elif rotation == 180:
        img = img.transpose(Image.Transpose.ROTATE_180)
    elif rotation == 270:
        img = img.transpose(Image.Transpose.ROTATE_90)
    return img


def _image_size(path: Path) -> tuple[int, int]:
    with Image.open(path) as img:  # reads the header only
        return img.size

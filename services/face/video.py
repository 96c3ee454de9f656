"""A clip's frames at a capped rate, upright, as the Landmarker takes them (no RGB conversion).

Every frame is decoded (H.264 needs its references) on one thread — the least CPU per frame —
but only sampled frames are turned into arrays. Times count from the clip's first frame.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from services.errors import InputError
from services.face.landmarks import Image, Yuv420
from services.media.metadata import (
    check_frame_size,
    declared_frame,
    open_input,
    stat_regular_file,
)

_PLANAR_420 = frozenset({"yuv420p", "yuvj420p"})
# AVColorSpace / AVColorRange numbers PyAV reports for a frame
_BT709, _FULL_RANGE, _UNSPECIFIED = 1, 2, 2
# a frame counts as on the sampling grid this close before its slot (timestamps are rounded)
_SLOT_SLACK_S = 1e-3


@dataclass(frozen=True)
class Sampled:
    t: float  # seconds since the clip's first frame
    image: Image


def sampled_frames(path: Path, max_fps: float, *, label: str = "video") -> Iterator[Sampled]:
    """Frames no closer than 1/max_fps apart, on a fixed grid of that step from the first
    frame. Raises InputError (naming the file as `label`) for anything unreadable."""
    name = f"The {label} {Path(path).name}"
    # Results come from providers: a regular file, opened as one (never a protocol), and
    # refused before decoding when its frames would not fit the decoding budget.
    if Path(path).exists():
        stat_regular_file(Path(path))  # a folder, pipe or device: its own sentence
    try:
        container = open_input(Path(path))
    except FileNotFoundError:
        raise InputError(f"{name} does not exist.") from None
    except (av.error.FFmpegError, OSError, UnicodeDecodeError):
        raise InputError(f"{name} could not be read as a video.") from None
    with container:
        if container.streams.video:
            check_frame_size(name, *declared_frame(Path(path), container))
        # an MP4's cover art is a one-frame video stream of its own: skip it
        moving = [
            v
            for v in container.streams.video
            if not v.disposition & av.stream.Disposition.attached_pic
        ]
        if not moving:
            raise InputError(f"{name} has no video track.")
        stream = moving[0]
        stream.thread_type = "SLICE"
        stream.codec_context.thread_count = 1
        step = 1.0 / max_fps
        start: float | None = None
        next_slot = 0.0
        index = 0
        try:
            for frame in container.decode(stream):
                stamp = frame.time
                if stamp is None:  # no timestamps: count frames at the stated rate
                    rate = float(stream.average_rate or stream.guessed_rate or 25)
                    stamp = index / rate
                index += 1
                if start is None:
                    start = stamp
                t = stamp - start
                if t + _SLOT_SLACK_S < next_slot:
                    continue
                next_slot = (math.floor((t + _SLOT_SLACK_S) / step) + 1) * step
                yield Sampled(t, frame_image(frame))
        except av.error.FFmpegError:
            raise InputError(f"{name} is damaged part-way through.") from None
        if start is None:
            raise InputError(f"{name} has no frames that could be decoded.")


def frame_image(frame: av.VideoFrame) -> Image:
    """A decoded frame upright, as the Landmarker takes it: its 4:2:0 planes (no copy) when it
    has them, RGB otherwise."""
    turns = (round(frame.rotation or 0) // 90) % 4
    if frame.format.name in _PLANAR_420 and frame.width % 2 == 0 and frame.height % 2 == 0:
        y, u, v = (_plane(frame, i) for i in range(3))
        if turns:
            y, u, v = (np.ascontiguousarray(np.rot90(p, turns)) for p in (y, u, v))
        space = frame.colorspace
        bt709 = space == _BT709 or (space == _UNSPECIFIED and frame.height >= 720)
        full = frame.format.name == "yuvj420p" or frame.color_range == _FULL_RANGE
        return Yuv420(y, u, v, bt709=bt709, full_range=full)
    rgb = frame.to_ndarray(format="rgb24")  # other layouts and bit depths: let swscale convert
    return np.ascontiguousarray(np.rot90(rgb, turns)) if turns else rgb


def _plane(frame: av.VideoFrame, i: int) -> np.ndarray:
    plane = frame.planes[i]
    # memoryview: zero-copy, and numpy's stubs for 3.11 take no buffer-protocol object.
    rows = np.frombuffer(memoryview(plane), np.uint8).reshape(plane.height, plane.line_size)
    return rows[:, : plane.width]

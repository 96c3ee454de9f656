"""Streaming video I/O with PyAV: decode the driving clip; the result is written on its
timeline (its frame rate, its audio) by the shared H.264 writer (services.media.encode).

Nothing holds more than a frame at a time, so memory stays flat however long the clip is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Any, Generic, TypeVar, overload

import av
import numpy as np

from services.engine.config import EncoderConfig
from services.errors import InputError
from services.media.encode import H264Writer
from services.media.metadata import (
    check_frame_size,
    declared_frame,
    open_input,
    stat_regular_file,
    stated_duration,
)

# 8-bit formats whose first plane is the luma itself: read it without any conversion.
_LUMA_FIRST = frozenset(
    {"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "nv12", "nv21", "gray"}
)


def luma(frame: av.VideoFrame) -> np.ndarray:
    """The frame's 8-bit luma, upright as a player shows it (phones store pixels turned and
    say so in a display matrix): a view of the decoded plane when possible."""
    if frame.format.name in _LUMA_FIRST:
        plane = frame.planes[0]
        rows = np.frombuffer(memoryview(plane), np.uint8).reshape(frame.height, plane.line_size)
        y: np.ndarray = rows[:, : frame.width]
    else:
        y = frame.to_ndarray(format="gray")
    turns = (round(frame.rotation or 0) // 90) % 4
    return np.ascontiguousarray(np.rot90(y, turns)) if turns else y


T = TypeVar("T")


class DrivingReader(Generic[T]):
    """Opens the driving clip; iterating yields luma arrays (video) and packets (audio).

    `convert` replaces the luma read when a caller needs something else of each decoded frame
    (the engine takes the frame's planes for the landmark model, the comparison export a
    scaled colour tile).
    """

    @overload
    def __init__(self: DrivingReader[np.ndarray], path: str | Path) -> None: ...
    @overload
    def __init__(self, path: str | Path, *, convert: Callable[[av.VideoFrame], T]) -> None: ...
    def __init__(self, path: str | Path, *, convert: Callable[[av.VideoFrame], Any] = luma) -> None:
        name = Path(path).name
        self._convert = convert
        stat_regular_file(Path(path))  # a FIFO or a device would block or never end
        try:
            self._container = open_input(Path(path))
        except FileNotFoundError:
            raise InputError(f"The driving video {path} does not exist.") from None
        except (av.error.FFmpegError, OSError):
            raise InputError(
                f"The driving video {name} could not be read; use an MP4, MOV or WebM file."
            ) from None
        if not self._container.streams.video:
            self._container.close()
            raise InputError(f"The driving video {name} has no video track.")
        self.video = self._container.streams.video[0]
        try:
            size = declared_frame(Path(path), self._container)
            check_frame_size(f"The driving video {name}", *size)
        except InputError:
            self._container.close()
            raise
        self.video.thread_type = "AUTO"
        rate = self.video.average_rate or self.video.guessed_rate or self.video.base_rate
        if not rate or rate <= 0:
            self._container.close()
            raise InputError(f"The driving video {name} does not say its frame rate.")
        self.fps = Fraction(rate).limit_denominator(100000)
        self.audio = self._container.streams.audio[0] if self._container.streams.audio else None
        self.frames_total = self._count_hint()
        self._name = name

    def _count_hint(self) -> int | None:
        """The frame count the container states (or its duration implies); progress only."""
        if self.video.frames:
            return int(self.video.frames)
        if self.video.duration is not None and self.video.time_base is not None:
            return max(1, round(float(self.video.duration * self.video.time_base * self.fps)))
        if self._container.duration:
            return max(1, round(self._container.duration / av.time_base * float(self.fps)))
        return None

    @property
    def duration_s(self) -> float | None:
        """Seconds the header states (unjudged: may be negative or absurd); None if none."""
        return stated_duration(self.video, self._container)

    @property
    def video_start(self) -> float:
        """Seconds at which the video track starts (audio is shifted by the same amount)."""
        if self.video.start_time is None or self.video.time_base is None:
            return 0.0
        return float(self.video.start_time * self.video.time_base)

    def __iter__(self) -> Iterator[T | av.Packet]:
        streams = [self.video] + ([self.audio] if self.audio is not None else [])
        try:
            for packet in self._container.demux(streams):
                if packet.stream is self.video:
                    for frame in packet.decode():
                        assert isinstance(frame, av.VideoFrame)  # a video packet's frames
                        yield self._convert(frame)
                elif packet.size and packet.pts is not None:
                    yield packet
        except av.error.FFmpegError:
            raise InputError(
                f"The driving video {self._name} is damaged part-way through; "
                "re-export it and try again."
            ) from None

    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> DrivingReader[T]:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def result_writer(
    path: str | Path, size: tuple[int, int], reader: DrivingReader[Any], encoder: EncoderConfig
) -> H264Writer:
    """An MP4 on the driving clip's timeline: its frame rate, frames numbered from its first,
    its audio from that frame on, BT.709 tags (framing.rgb_to_i420 converts so). Writes the
    engine's result and the comparison's side-by-side."""
    fps = reader.fps
    return H264Writer(
        path,
        size,
        fps,
        preset=encoder.preset,
        crf=encoder.crf,
        audio=reader.audio,
        audio_start_s=reader.video_start,
        bt709=True,
        time_base=Fraction(fps.denominator, fps.numerator),
        queue_depth=encoder.queue_depth,
    )

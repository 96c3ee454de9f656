"""Streaming video I/O with PyAV: decode the driving clip, encode the result, keep its audio.

Nothing holds more than a frame at a time, so memory stays flat however long the clip is.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import av
import numpy as np

from services.errors import InputError
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
# Audio codecs an MP4 holds that every browser plays: copied as they are, others become AAC.
_COPY_AUDIO = frozenset({"aac", "mp3", "mp3float"})
ENCODER_OPTIONS = {"preset": "veryfast", "crf": "20"}
_QUEUE_DEPTH = 4


def luma(frame: av.VideoFrame) -> np.ndarray:
    """The frame's 8-bit luma, upright as a player shows it (phones store pixels turned and
    say so in a display matrix): a view of the decoded plane when possible."""
    if frame.format.name in _LUMA_FIRST:
        plane = frame.planes[0]
        rows = np.frombuffer(plane, np.uint8).reshape(frame.height, plane.line_size)
        y = rows[:, : frame.width]
    else:
        y = frame.to_ndarray(format="gray")
    turns = (round(frame.rotation or 0) // 90) % 4
    return np.ascontiguousarray(np.rot90(y, turns)) if turns else y


class DrivingReader:
    """Opens the driving clip; iterating yields luma arrays (video) and packets (audio).

    `convert` replaces the luma read when a caller needs something else of each decoded frame
    (the comparison export takes a scaled colour tile).
    """

    def __init__(
        self, path: str | Path, *, convert: Callable[[av.VideoFrame], np.ndarray] = luma
    ) -> None:
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

    def __iter__(self) -> Iterator[np.ndarray | av.Packet]:
        streams = [self.video] + ([self.audio] if self.audio is not None else [])
        try:
            for packet in self._container.demux(streams):
                if packet.stream is self.video:
                    for frame in packet.decode():
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

    def __enter__(self) -> DrivingReader:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class ResultWriter:
    """H.264 yuv420p MP4 (BT.709 tags) at the driving clip's rate, with its audio kept.

    Encoding and muxing run on a thread of their own (PyAV releases the GIL inside the codec),
    so x264 works while the next frame is decoded and warped: on two cores that overlap is
    most of the engine's speed. A short queue keeps memory flat.
    """

    def __init__(
        self,
        path: str | Path,
        size: tuple[int, int],
        fps: Fraction,
        audio: av.AudioStream | None = None,
        audio_shift_s: float = 0.0,
    ) -> None:
        # faststart puts the index first so browsers can play the file while it downloads
        self._container = av.open(str(path), "w", format="mp4", options={"movflags": "faststart"})
        v = self._container.add_stream("libx264", rate=fps)
        v.width, v.height = size
        v.pix_fmt = "yuv420p"
        v.time_base = Fraction(fps.denominator, fps.numerator)
        v.options = dict(ENCODER_OPTIONS)
        cc = v.codec_context
        cc.colorspace, cc.color_primaries, cc.color_trc = 1, 1, 1  # BT.709
        cc.color_range = 1  # limited ("MPEG")
        self._video = v
        self._n = 0
        self._audio_in = audio
        self._audio_out: av.AudioStream | None = None
        self._copy_audio = False
        self._shift = 0
        if audio is not None:
            self._copy_audio = audio.codec_context.name in _COPY_AUDIO
            if self._copy_audio:
                self._audio_out = self._container.add_stream_from_template(audio)
                if audio.time_base is not None:
                    self._shift = round(audio_shift_s / audio.time_base)
            else:
                self._audio_out = self._container.add_stream(
                    "aac", rate=audio.codec_context.sample_rate or 48000
                )
                self._audio_shift_s = audio_shift_s

        self._queue: queue.Queue[Callable[[], None] | None] = queue.Queue(maxsize=_QUEUE_DEPTH)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="encode", daemon=True)
        self._thread.start()

    @property
    def frames(self) -> int:
        return self._n

    def _run(self) -> None:
        while (job := self._queue.get()) is not None:
            if self._error is None:
                try:
                    job()
                except BaseException as err:  # handed to the producing thread
                    self._error = err

    def _submit(self, job: Callable[[], None]) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put(job)

    def write(self, i420: np.ndarray) -> None:
        """Queue one frame (copied now, so the caller may reuse its buffer)."""
        frame = av.VideoFrame.from_ndarray(i420, format="yuv420p")
        frame.pts = self._n
        self._n += 1
        self._submit(lambda: self._container.mux(self._video.encode(frame)))

    def mux_audio(self, packet: av.Packet) -> None:
        if self._audio_out is not None:
            self._submit(lambda: self._mux_audio(packet))

    def _mux_audio(self, packet: av.Packet) -> None:
        assert self._audio_out is not None
        if self._copy_audio:
            if self._shift:
                if packet.pts is not None and packet.pts + (packet.duration or 0) <= self._shift:
                    return  # audio from before the first video frame
                packet.pts = None if packet.pts is None else packet.pts - self._shift
                packet.dts = None if packet.dts is None else packet.dts - self._shift
            packet.stream = self._audio_out
            self._container.mux(packet)
            return
        for frame in packet.decode():
            if frame.pts is not None and frame.time_base is not None and self._audio_shift_s:
                start = float(frame.pts * frame.time_base) - self._audio_shift_s
                if start < 0:
                    continue
            frame.pts = None  # the encoder numbers samples itself
            self._container.mux(self._audio_out.encode(frame))

    def _flush(self) -> None:
        self._container.mux(self._video.encode(None))
        if self._audio_out is not None and not self._copy_audio:
            self._container.mux(self._audio_out.encode(None))
        self._container.close()

    def _stop(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    def finish(self) -> None:
        """Flush the encoder and write the file; raises what the encoding thread met."""
        self._submit(self._flush)
        self._stop()
        if self._error is not None:
            raise self._error

    def abort(self) -> None:
        self._error = self._error or _Aborted()
        self._stop()
        with contextlib.suppress(av.error.FFmpegError):
            self._container.close()


class _Aborted(Exception):
    """Marks the writer as stopped: queued work is dropped."""

"""The one H.264 MP4 writer: the local engine's results, the one-click fixes' videos and the
comparison's side-by-side all go through it.

yuv420p H.264 with the index in front (faststart) so browsers play the file while it
downloads. The source's audio is copied when its codec is in the caller's list, otherwise
re-encoded to AAC. Encoding and muxing run on a thread of their own (PyAV releases the GIL
inside the codec), so x264 works while the caller decodes and draws the next frame — on two
cores that overlap is most of the engine's speed. A short queue keeps memory flat.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Collection
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

# Audio codecs (decoder names) an MP4 holds that every browser plays.
BROWSER_AUDIO = frozenset({"aac", "mp3", "mp3float"})
# Sample rates the AAC encoder is given; others are resampled to 48 kHz.
_AAC_RATES = (22050, 24000, 32000, 44100, 48000)


class H264Writer:
    """Frames in (I420 arrays numbered at `rate`, or av.VideoFrames carrying their own time),
    an MP4 out.

    `audio`: the source's audio stream, whose packets go to `mux_audio`. Its time
    `audio_start_s` (the first video frame's) becomes the output's zero, and audio ending
    after `audio_end_s` past the audio's own start is cut (`audio_done` says so).
    `bt709`: the pixels are BT.709 limited range (as the engine converts them); the stream
    says so. `time_base`: the video stream's, when the caller wants it fixed.
    """

    def __init__(
        self,
        path: str | Path,
        size: tuple[int, int],
        rate: Fraction,
        *,
        preset: str,
        crf: int,
        audio: av.AudioStream | None = None,
        copy_audio: Collection[str] = BROWSER_AUDIO,
        audio_start_s: float = 0.0,
        audio_end_s: float | None = None,
        bt709: bool = False,
        time_base: Fraction | None = None,
        queue_depth: int = 4,
    ) -> None:
        self._container = av.open(str(path), "w", format="mp4", options={"movflags": "faststart"})
        try:
            v = self._container.add_stream("libx264", rate=rate)
            v.width, v.height = size
            v.pix_fmt = "yuv420p"
            if time_base is not None:
                v.time_base = time_base
            v.options = {"preset": preset, "crf": str(crf)}
            if bt709:
                cc = v.codec_context
                cc.colorspace, cc.color_primaries, cc.color_trc = 1, 1, 1
                cc.color_range = 1  # limited ("MPEG")
            self._video = v
            self._audio = (
                AudioTrack(self._container, audio, copy_audio, audio_start_s, audio_end_s)
                if audio is not None
                else None
            )
        except BaseException:
            self._container.close()
            raise
        self._n = 0
        self._queue: queue.Queue[Callable[[], None] | None] = queue.Queue(maxsize=queue_depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="encode", daemon=True)
        self._thread.start()

    @property
    def frames(self) -> int:
        return self._n

    @property
    def audio_done(self) -> bool:
        """No more audio is wanted (past `audio_end_s`, or there is none)."""
        return self._audio is None or self._audio.done

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

    def write(self, frame: np.ndarray | av.VideoFrame) -> None:
        """Queue one frame: an (h*3/2, w) I420 array (copied now, so the caller may reuse its
        buffer; numbered in turn at `rate`) or a VideoFrame with its pts and time_base."""
        if isinstance(frame, np.ndarray):
            frame = av.VideoFrame.from_ndarray(frame, format="yuv420p")
            frame.pts = self._n
        self._n += 1
        video = self._video
        self._submit(lambda: self._container.mux(video.encode(frame)))

    def mux_audio(self, packet: av.Packet) -> None:
        audio = self._audio
        if audio is not None and audio.wants(packet):
            self._submit(lambda: audio.mux(packet))

    def _flush(self) -> None:
        self._container.mux(self._video.encode(None))
        if self._audio is not None:
            self._audio.flush()
        self._container.close()

    def _stop(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    def finish(self) -> None:
        """Flush the encoders and write the file; raises what the encoding thread met."""
        self._submit(self._flush)
        self._stop()
        if self._error is not None:
            raise self._error

    def abort(self) -> None:
        """Stop without finishing (the caller deletes the file)."""
        self._error = self._error or _Aborted()
        self._stop()
        with contextlib.suppress(av.error.FFmpegError):
            self._container.close()


class _Aborted(Exception):
    """Marks the writer as stopped: queued work is dropped."""


class AudioTrack:
    """The source's audio into the output: packets copied, or re-encoded to AAC. Also used
    on its own by media/remux.py, which adds a driving clip's sound to a silent result."""

    def __init__(
        self,
        out: av.container.OutputContainer,
        ain: av.AudioStream,
        copy_codecs: Collection[str],
        start_s: float,
        end_s: float | None,
    ) -> None:
        self._out = out
        self._tb = ain.time_base
        self._origin = ain.start_time or 0
        self._start_s = start_s
        self._end_s = end_s
        self.done = False
        self.copy = ain.codec_context.name in copy_codecs
        self._resampler: av.AudioResampler | None = None
        self._shift = 0  # start_s in the stream's ticks, for copied packets
        if self.copy:
            self._stream = out.add_stream_from_template(ain)
            if self._tb is not None:
                self._shift = round(start_s / self._tb)
        else:
            rate = ain.codec_context.sample_rate or 48000
            rate = rate if rate in _AAC_RATES else 48000
            layout = "mono" if (ain.codec_context.channels or 2) == 1 else "stereo"
            self._stream = out.add_stream("aac", rate=rate, layout=layout)
            self._resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate)

    def wants(self, packet: av.Packet) -> bool:
        """Whether the packet is muxed; decided on the caller's thread, so the caller can stop
        demuxing once `done`."""
        if self.done or (packet.dts is None and packet.pts is None):
            return False  # past the end, or a demuxer's flush packet
        if self._end_s is not None and packet.pts is not None and self._tb is not None:
            end = (packet.pts - self._origin + (packet.duration or 0)) * self._tb
            if float(end) > self._end_s + 1e-6:
                self.done = True
                return False
        return True

    def mux(self, packet: av.Packet) -> None:
        if self.copy:
            if self._shift:
                if packet.pts is not None and packet.pts + (packet.duration or 0) <= self._shift:
                    return  # audio from before the first video frame
                packet.pts = None if packet.pts is None else packet.pts - self._shift
                packet.dts = None if packet.dts is None else packet.dts - self._shift
            packet.stream = self._stream
            self._out.mux(packet)
            return
        assert self._resampler is not None
        for frame in packet.decode():
            assert isinstance(frame, av.AudioFrame)  # an audio packet's frames
            # Timestamps are kept (shifted to the output's zero): the encoder then marks its
            # priming samples, and players skip them instead of playing the audio late.
            if self._start_s and frame.pts is not None and frame.time_base is not None:
                if float(frame.pts * frame.time_base) < self._start_s:
                    continue  # audio from before the first video frame
                frame.pts -= round(self._start_s / frame.time_base)
            for resampled in self._resampler.resample(frame):
                self._out.mux(self._stream.encode(resampled))

    def flush(self) -> None:
        if self.copy:
            return
        assert self._resampler is not None
        for resampled in self._resampler.resample(None):
            self._out.mux(self._stream.encode(resampled))
        self._out.mux(self._stream.encode(None))

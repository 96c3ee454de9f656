"""Sound for a silent result: the result's video packets copied as they are (nothing is
re-encoded, so the picture is bit-identical to the provider's) plus the driving clip's audio,
aligned so that the driving clip's first video frame falls on the result's first frame and cut
where the result's picture ends. The audio is copied when browsers play it in an MP4 (AAC,
MP3), otherwise re-encoded to AAC (PCM from a camera's MOV, Opus or Vorbis from WebM).
Faststart, like every MP4 the app writes, so the player starts at once.

Only packets move (no frame is decoded unless the audio must be re-encoded): 30 s of 720p
take a few tens of milliseconds (bench/bench_remux.py).
"""

from __future__ import annotations

import heapq
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction
from pathlib import Path

import av

from services.errors import InputError, is_disk_full
from services.media.encode import BROWSER_AUDIO, AudioTrack
from services.media.metadata import open_input

# Anything PyAV or the OS raises for an unreadable, truncated or unwritable file.
MEDIA_ERRORS = (av.FFmpegError, OSError, UnicodeDecodeError, ValueError)


class Skipped(StrEnum):
    """Why no sound was added, when nothing went wrong."""

    RESULT_HAS_AUDIO = "result_has_audio"
    DRIVING_SILENT = "driving_silent"


@dataclass(frozen=True)
class Remuxed:
    audio_codec: str  # the driving clip's audio codec (decoder name)
    copied: bool  # its packets copied as they are (False: re-encoded to AAC)
    duration_s: float  # the result's picture, which the audio was cut to


def _seconds(value: int | None, time_base: Fraction | None) -> float | None:
    if value is None or time_base is None:
        return None
    return float(value * time_base)


def _video_span(container: av.container.InputContainer) -> tuple[float, float]:
    """Start and end (seconds) of the first video stream's picture: from the header, or —
    when the header says nothing — from the packets themselves."""
    vs = container.streams.video[0]
    tb = vs.time_base
    start = _seconds(vs.start_time, tb) or 0.0
    length = _seconds(vs.duration, tb)
    if length is None and container.duration:
        length = container.duration / av.time_base
    if length:
        return start, start + length
    end = start
    for packet in container.demux(vs):
        if packet.pts is not None and packet.time_base is not None:
            end = max(end, float((packet.pts + (packet.duration or 0)) * packet.time_base))
    container.seek(0)
    return start, end


def _timed(
    packets: Iterator[av.Packet], shift_s: float, is_video: bool
) -> Generator[tuple[float, bool, av.Packet]]:
    """(output time, is_video, packet) for the merge: decode order, on the output's clock."""
    for packet in packets:
        t = packet.dts if packet.dts is not None else packet.pts
        if t is None:
            continue  # the demuxer's end-of-stream marker
        tb = packet.time_base
        yield (float(t * tb) - shift_s if tb is not None else 0.0), is_video, packet


def add_driving_audio(result: Path, driving: Path, dest: Path) -> Remuxed | Skipped:
    """Write `dest` (an MP4): `result`'s video with `driving`'s sound; or say why not.

    Raises InputError with a clause (lower case, no full stop: the caller words the sentence)
    when either file cannot be read or the MP4 cannot be written, and a full disk's OSError as
    it is; the caller keeps the result as it came and deletes `dest`.
    """
    try:
        # Nothing is decoded to open them (decode=False): the picture is only copied, and
        # sound decodes all the same when it has to be re-encoded.
        with open_input(result, decode=False, metadata_errors="ignore") as rin:
            if not rin.streams.video:
                raise InputError("the result has no video track")
            if rin.streams.audio:
                return Skipped.RESULT_HAS_AUDIO
            try:
                din = open_input(driving, decode=False, metadata_errors="ignore")
            except MEDIA_ERRORS as exc:
                raise InputError(f"the driving clip cannot be read ({_why(exc)})") from None
            with din:
                if not din.streams.audio:
                    return Skipped.DRIVING_SILENT
                return _remux(rin, din, dest)
    except InputError:
        raise
    except MEDIA_ERRORS as exc:
        if is_disk_full(exc):
            raise  # not the files' fault: the caller says so in its own words
        # Mid-file damage in either file, or an MP4 that cannot hold the result's codec.
        raise InputError(
            f"the result and the driving clip's sound could not be combined ({_why(exc)})"
        ) from None


def _remux(
    rin: av.container.InputContainer, din: av.container.InputContainer, dest: Path
) -> Remuxed:
    vin = rin.streams.video[0]
    ain = din.streams.audio[0]
    r_start, r_end = _video_span(rin)
    # The driving clip's own picture start is the moment the result's first frame shows.
    d_start = 0.0
    if din.streams.video:
        dv = din.streams.video[0]
        d_start = _seconds(dv.start_time, dv.time_base) or 0.0
    a_origin = _seconds(ain.start_time, ain.time_base) or 0.0
    offset = d_start - r_start  # driving time minus output time
    with av.open(str(dest), "w", format="mp4", options={"movflags": "faststart"}) as out:
        vout = out.add_stream_from_template(vin)
        # AudioTrack measures its cut from the audio's own first sample.
        track = AudioTrack(out, ain, BROWSER_AUDIO, offset, (r_end + offset) - a_origin)
        video = _timed(rin.demux(vin), 0.0, True)
        audio = _timed(din.demux(ain), offset, False)
        # One pass over both files in time order, so the MP4 is interleaved as it is written.
        for _, is_video, packet in heapq.merge(video, audio, key=lambda item: item[0]):
            if is_video:
                packet.stream = vout
                out.mux(packet)
            elif track.wants(packet):
                track.mux(packet)
            elif track.done:
                audio.close()  # the rest of the driving clip is past the result's end
        track.flush()
    return Remuxed(
        audio_codec=ain.codec_context.name, copied=track.copy, duration_s=r_end - r_start
    )


def _why(exc: BaseException) -> str:
    if isinstance(exc, av.FFmpegError):
        return exc.strerror or type(exc).__name__
    return str(exc) or type(exc).__name__

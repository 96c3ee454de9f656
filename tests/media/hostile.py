"""Hostile media for the memory, duration and special-file tests: small files whose headers
promise something huge, absurd or contradictory. Every generator stays cheap in memory except
huge_h264, which is meant to be run in a child process (see its docstring)."""

from __future__ import annotations

import struct
import zlib
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from tests import mediagen

_PNG_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}  # PNG colour type → samples per pixel


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def zero_png(path: Path, width: int, height: int, colour_type: int = 6) -> Path:
    """A valid all-zero PNG (colour type 6 = RGBA), compressed row by row so the test process
    never holds the decoded size: 7999×8000 RGBA is ~249 KB on disk, 256 MB decoded."""
    comp = zlib.compressobj(9)
    row = b"\x00" * (1 + width * _PNG_CHANNELS[colour_type])  # filter byte + samples
    idat = b"".join(comp.compress(row) for _ in range(height)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    Path(path).write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )
    return Path(path)


def huge_h264(path: Path, width: int, height: int) -> Path:
    """A real one-frame H.264 MP4 of width×height (a flat grey frame: ~200 KB at 8192²).
    Encoding it takes x264 ~450 MB at 8192², so call it in a child process."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "ultrafast", "tune": "zerolatency"}
        frame = av.VideoFrame(width, height, "yuv420p")
        for plane in frame.planes:
            plane.update(bytes(plane.buffer_size))
        frame.pts = 0
        out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return Path(path)


def sparse_clip(path: Path, times_s: list[float], size: tuple[int, int] = (64, 64)) -> Path:
    """An H.264 MP4 with one frame at each of `times_s` (e.g. 3 frames over 10 hours)."""
    tb = Fraction(1, 1000)
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.time_base = tb
        stream.codec_context.time_base = tb
        for i, t in enumerate(times_s):
            rgb = np.full((size[1], size[0], 3), 60 * i % 256, np.uint8)
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts, frame.time_base = round(t * 1000), tb
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return Path(path)


def set_mkv_duration(path: Path, seconds: float) -> Path:
    """Rewrite the Segment Info Duration of a Matroska file FFmpeg wrote (an 8-byte float in
    milliseconds, by default) in place: NaN, negative, 136 years — any float goes."""
    data = bytearray(Path(path).read_bytes())
    at = data.find(b"\x44\x89\x88")  # Duration element, 8-byte payload
    if at < 0:
        raise ValueError(f"{path} has no 8-byte Matroska Duration element")
    struct.pack_into(">d", data, at + 3, seconds * 1000.0)
    Path(path).write_bytes(data)
    return Path(path)


def mkv_clip(path: Path, seconds: float = 1.0, header_s: float | None = None) -> Path:
    """A small Matroska clip with a face (mediagen), its header length set to header_s."""
    mediagen.make_video(path, size=(160, 90), seconds=seconds, container_format="matroska")
    return set_mkv_duration(path, header_s) if header_s is not None else Path(path)


def mp4_unknown_duration(path: Path) -> Path:
    """A small MP4 whose track header (mdhd) says all-ones: "duration unknown" in ISO BMFF
    (read as 0xFFFFFFFF seconds, it would be 136 years)."""
    mediagen.make_video(path, size=(160, 90), seconds=1.0)
    data = bytearray(Path(path).read_bytes())
    at = data.find(b"mdhd") + 4  # version/flags, then ctime, mtime, timescale, duration
    if data[at] != 0:
        raise ValueError("expected a version 0 mdhd")
    struct.pack_into(">I", data, at + 16, 0xFFFFFFFF)
    Path(path).write_bytes(data)
    return Path(path)


ONE_YEAR_S = 365.25 * 86400

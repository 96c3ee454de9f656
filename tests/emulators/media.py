"""Tiny, valid media generated once per process (nothing binary is committed)."""

from __future__ import annotations

import io
from functools import lru_cache

import av
import numpy as np
from PIL import Image


@lru_cache(maxsize=4)
def tiny_mp4(width: int = 160, height: int = 90, frames: int = 12, fps: int = 12) -> bytes:
    """A short H.264/MP4 clip (16:9 by default) that real decoders and probes accept."""
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "35"}
        ys, xs = np.mgrid[0:height, 0:width]
        for i in range(frames):
            # A moving gradient, so frames differ and the stream is not degenerate.
            img = np.stack(
                [
                    (xs * 255 // width + i * 20) % 256,
                    ys * 255 // height,
                    np.full_like(xs, (i * 40) % 256),
                ],
                axis=-1,
            ).astype(np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buf.getvalue()


@lru_cache(maxsize=4)
def tiny_png(width: int = 160, height: int = 90) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (200, 120, 80)).save(buf, format="PNG")
    return buf.getvalue()

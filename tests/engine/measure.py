"""Measurements on decoded video for the engine's tests and benchmark."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np


@dataclass(frozen=True)
class VideoFacts:
    codec: str
    pix_fmt: str
    width: int
    height: int
    fps: Fraction
    frames: int  # counted by decoding, not read from the header
    audio_codec: str | None
    audio_seconds: float


def facts(path: Path) -> VideoFacts:
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        codec, pix_fmt = v.codec_context.name, v.codec_context.pix_fmt
        width, height, fps = v.codec_context.width, v.codec_context.height, v.average_rate
        frames = sum(1 for _ in c.decode(video=0))
    audio_codec, audio_seconds = None, 0.0
    with av.open(str(path)) as c:
        if c.streams.audio:
            a = c.streams.audio[0]
            audio_codec = a.codec_context.name
            audio_seconds = sum(f.samples for f in c.decode(audio=0)) / a.codec_context.sample_rate
    return VideoFacts(codec, pix_fmt, width, height, fps, frames, audio_codec, audio_seconds)


def gray_frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="gray") for f in c.decode(video=0)]


def rgb_frames(path: Path, picks: set[int] | None = None) -> dict[int, np.ndarray]:
    """Frames by index (all, or `picks`: decoding stops after the last one)."""
    out = {}
    last = max(picks) if picks else None
    with av.open(str(path)) as c:
        for i, f in enumerate(c.decode(video=0)):
            if picks is None or i in picks:
                out[i] = f.to_ndarray(format="rgb24")
            if last is not None and i >= last:
                break
    return out


def mouth_opening(
    frames: list[np.ndarray], mouth: tuple[float, float], photo_side: float
) -> np.ndarray:
    """Per frame, how far the chin has moved down relative to the nose since frame 0, in
    pixels, measured with Farneback optical flow (independent of the engine's DIS).
    `photo_side`: the 512-px astronaut photograph's side at this video's scale."""
    f = min(1.0, 300 / photo_side)
    small = [cv2.resize(x, None, fx=f, fy=f, interpolation=cv2.INTER_AREA) for x in frames]
    mx, my, side = mouth[0] * f, mouth[1] * f, photo_side * f
    r = int(side * 0.3)
    x0, y0 = max(0, int(mx - r)), max(0, int(my - r))
    crops = [x[y0 : y0 + 2 * r, x0 : x0 + 2 * r] for x in small]
    cy, cx = int(my) - y0, int(mx) - x0
    half_w = int(0.05 * side)
    chin = (slice(cy + int(0.03 * side), cy + int(0.1 * side)), slice(cx - half_w, cx + half_w))
    nose = (slice(cy - int(0.15 * side), cy - int(0.07 * side)), slice(cx - half_w, cx + half_w))
    out = []
    for crop in crops:
        flow = cv2.calcOpticalFlowFarneback(crops[0], crop, None, 0.5, 3, 9, 3, 5, 1.1, 0)
        out.append(float(np.median(flow[chin][..., 1]) - np.median(flow[nose][..., 1])) / f)
    return np.array(out)


def pearson(a: np.ndarray | list[float], b: np.ndarray | list[float]) -> float:
    return float(np.corrcoef(np.asarray(a, float), np.asarray(b, float))[0, 1])

"""Generated test media with a real face (scikit-image's astronaut photograph).

The driving clip opens and closes the astronaut's mouth by a known amount per frame (a smooth
warp of the jaw) while the head drifts a little, with a sine-tone audio track; the character
picture is the same face at another scale and place on a textured background. Also used by
bench/bench_engine.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from pathlib import Path

import av
import cv2
import numpy as np
from skimage import data as skdata

# In the 512×512 astronaut photograph: the mouth's centre and half width.
MOUTH = (225.0, 145.0)
MOUTH_HALF_W = 24.0
# A head-and-shoulders square of the photograph (x, y, side), for close-up framing.
CLOSEUP = (75, 0, 300)
WHOLE = (0, 0, 512)


@lru_cache(maxsize=1)
def astronaut() -> np.ndarray:
    img = skdata.astronaut()
    img.setflags(write=False)
    return img


def background(size: tuple[int, int], seed: int = 1) -> np.ndarray:
    """Textured backdrop: any stray change to it shows in a pixel difference."""
    w, h = size
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 256, (h // 8 + 1, w // 8 + 1, 3), dtype=np.uint8)
    tex = cv2.resize(noise, (w, h), interpolation=cv2.INTER_CUBIC)
    ramp = np.linspace(40, 160, w, dtype=np.float32)[None, :, None]
    return np.clip(tex * 0.5 + ramp, 0, 255).astype(np.uint8)


def opening(i: int, fps: float, period_s: float = 1.0) -> float:
    """How far the mouth is open at frame i, 0..1; closed on frame 0 (the neutral frame)."""
    return 0.5 - 0.5 * math.cos(2 * math.pi * i / (fps * period_s))


def _mouth_maps(amount: float, amp_px: float) -> tuple[np.ndarray, np.ndarray]:
    """Backward maps that drop the lower lip and jaw by amount·amp_px (512-px units)."""
    h, w = astronaut().shape[:2]
    xs = np.arange(w, dtype=np.float32)[None, :]
    ys = np.arange(h, dtype=np.float32)[:, None]
    cx, cy = MOUTH
    gx = np.exp(-(((xs - cx) / (MOUTH_HALF_W * 1.3)) ** 2))
    # everything below the lip line moves down, fading out toward the neck
    below = 1 / (1 + np.exp(-(ys - cy) / 2.0))
    fade = np.exp(-np.clip(ys - cy, 0, None) / 60.0)
    dy = amount * amp_px * gx * below * fade
    map_x = np.broadcast_to(xs, (h, w)).astype(np.float32)
    map_y = (ys - dy).astype(np.float32)
    return map_x, map_y


def driving_frame(
    i: int,
    size: tuple[int, int],
    fps: float,
    *,
    amp_px: float = 9.0,
    head_px: float = 7.0,
    face: bool = True,
    rng: np.random.Generator | None = None,
    source: tuple = WHOLE,
) -> np.ndarray:
    """Frame i: the photo (its `source` square) fills the frame's height, centred."""
    w, h = size
    frame = background(size, seed=7).copy()
    if face:
        mx, my = _mouth_maps(opening(i, fps), amp_px)
        face_img = cv2.remap(astronaut(), mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        sx, sy, sside = source
        face_img = face_img[sy : sy + sside, sx : sx + sside]
        side = h
        scaled = cv2.resize(face_img, (side, side), interpolation=cv2.INTER_AREA)
        # a slow head drift, head_px photo pixels at most
        px = head_px * h / sside
        dx = px * math.sin(2 * math.pi * i / (fps * 2.7))
        dy = 0.5 * px * math.sin(2 * math.pi * i / (fps * 3.1))
        x0 = (w - side) // 2
        m = np.float32([[1, 0, x0 + dx], [0, 1, dy]])
        cv2.warpAffine(scaled, m, (w, h), dst=frame, borderMode=cv2.BORDER_TRANSPARENT)
    if rng is not None:  # sensor noise, so flow sees a camera, not a slideshow
        frame = cv2.add(frame, rng.integers(0, 4, frame.shape, dtype=np.uint8))
    return frame


def make_driving_clip(
    path: Path,
    *,
    size: tuple[int, int] = (384, 216),
    fps: int = 24,
    seconds: float = 2.0,
    audio: str | None = "aac",
    face: bool = True,
    amp_px: float = 9.0,
    head_px: float = 7.0,
    source: tuple = WHOLE,
    preset: str = "ultrafast",
) -> list[float]:
    """Write a clip (H.264; `audio` names the sine track's codec, None for none) and return
    each frame's mouth opening. Without head drift the motion repeats every second, so those
    frames are drawn once and reused: long clips stay cheap to make."""
    n = round(fps * seconds)
    rng = np.random.default_rng(3)
    cache: dict[int, np.ndarray] = {}
    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264", rate=fps)
        v.width, v.height = size
        v.pix_fmt = "yuv420p"
        v.options = {"preset": preset, "crf": "18"}
        a = out.add_stream(audio, rate=24000) if audio else None
        for i in range(n):
            key = i % fps if head_px == 0 else i
            rgb = cache.get(key)
            if rgb is None:
                rgb = driving_frame(
                    i, size, fps, amp_px=amp_px, head_px=head_px, face=face, rng=rng, source=source
                )
                if head_px == 0:
                    cache[key] = rgb
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = i
            out.mux(v.encode(frame))
        out.mux(v.encode(None))
        if a is not None:
            _write_tone(out, a, seconds)
    return [opening(i, fps) for i in range(n)]


def _write_tone(out: av.container.OutputContainer, stream: av.AudioStream, seconds: float) -> None:
    rate = stream.codec_context.sample_rate
    t = np.arange(round(rate * seconds), dtype=np.float32) / rate
    tone = (0.2 * np.sin(2 * math.pi * 440 * t)).astype(np.float32)
    chunk = stream.codec_context.frame_size or 1024
    for k in range(0, len(tone), chunk):
        piece = tone[None, k : k + chunk]
        if piece.shape[1] < chunk and stream.codec_context.frame_size:
            piece = np.pad(piece, ((0, 0), (0, chunk - piece.shape[1])))
        frame = av.AudioFrame.from_ndarray(piece, format="fltp", layout="mono")
        frame.sample_rate = rate
        frame.pts = k
        frame.time_base = Fraction(1, rate)
        out.mux(stream.encode(frame))
    out.mux(stream.encode(None))


@dataclass(frozen=True)
class Character:
    path: Path
    size: tuple[int, int]
    mouth: tuple[float, float]  # in the picture's pixels
    face_side: float  # the whole 512-px photo's side at the picture's scale


def make_character(
    path: Path,
    *,
    size: tuple[int, int] = (480, 270),
    face_side: int = 200,
    at: tuple[int, int] | None = None,
    face: bool = True,
    mirror: bool = False,
    source: tuple = WHOLE,
) -> Character:
    """The photo's `source` square scaled to face_side px at `at` (default: centred)."""
    w, h = size
    pic = background(size, seed=11)
    x0, y0 = at if at is not None else ((w - face_side) // 2, (h - face_side) // 2)
    sx, sy, sside = source
    if face:
        img = astronaut()[sy : sy + sside, sx : sx + sside]
        img = img[:, ::-1] if mirror else img
        scaled = cv2.resize(
            np.ascontiguousarray(img), (face_side, face_side), interpolation=cv2.INTER_AREA
        )
        pic[y0 : y0 + face_side, x0 : x0 + face_side] = scaled
    cv2.imwrite(str(path), cv2.cvtColor(pic, cv2.COLOR_RGB2BGR))
    s = face_side / sside
    mx = MOUTH[0] - sx
    mx = (sside - mx) if mirror else mx
    return Character(path, size, (x0 + mx * s, y0 + (MOUTH[1] - sy) * s), face_side * 512 / sside)

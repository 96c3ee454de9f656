"""A driving performance with a real photographed face, for the motion-fidelity tests.

scikit-image's astronaut photograph (see tests/engine/media_gen.py) is warped per frame: the
jaw opens and closes in irregular bumps, both eyes blink (lids pressed together), the brows
rise twice and the head rolls and drifts. None of it repeats on a short period, so a clip
shifted in time no longer lines up with itself. Variants give the "result" side of the sanity
checks: delayed, mouth frozen, a still picture, no face, another resolution.

    make_performance(tmp / "drive.mp4")                              # 640×360, 5 s, 24 fps
    make_performance(tmp / "late.mp4", delay_s=0.5)                  # 0.5 s behind
    make_performance(tmp / "mute.mp4", mouth=False)                  # the mouth never moves
    make_performance(tmp / "stare.mp4", blinks=False)                # the eyes never blink
    make_performance(tmp / "still.mp4", still=True)                  # frame 0 throughout
    make_performance(tmp / "empty.mp4", face=False)                  # background only
    make_performance(tmp / "far.mp4", zoom=0.6, shift=(0.2, 0.1))    # smaller, off-centre
    reencode(tmp / "drive.mp4", tmp / "small.mp4", (320, 180))
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

import av
import cv2
import numpy as np

from tests.engine.media_gen import CLOSEUP, _mouth_maps, _write_tone, astronaut, background

# In the 512×512 photograph: the centre of each eye's opening (subject's right eye first) and
# the brows' middle; found with the landmark model once and fixed here.
EYES = ((203.5, 100.5), (246.5, 102.5))
EYE_HALF_W = 13.0
BROW_Y, EYE_TOP_Y = 86.0, 96.0
FACE_CENTRE = (225.0, 120.0)

# (centre s, half width s, amount 0..1) bumps of each motion
MOUTH_BUMPS = (
    (0.6, 0.3, 1.0),
    (1.45, 0.2, 0.6),
    (2.2, 0.35, 0.9),
    (3.3, 0.25, 1.0),
    (4.3, 0.3, 0.7),
)
BLINKS = ((1.0, 0.13, 1.0), (2.75, 0.13, 1.0), (3.85, 0.15, 1.0))
BROW_BUMPS = ((1.8, 0.4, 1.0), (3.6, 0.3, 0.8))


def _bumps(t: float, bumps: tuple[tuple[float, float, float], ...]) -> float:
    total = 0.0
    for centre, half, amount in bumps:
        x = (t - centre) / half
        if abs(x) < 1:
            total += amount * (0.5 + 0.5 * math.cos(math.pi * x))
    return min(1.0, total)


def roll_deg(t: float) -> float:
    return 7.0 * math.sin(2 * math.pi * t / 2.3) + 2.0 * math.sin(2 * math.pi * t / 0.9 + 1.0)


def _eye_dy(amount: float, amp_px: float) -> np.ndarray:
    """Backward vertical offsets that press each eye's lids together (amount 1: shut)."""
    h, w = astronaut().shape[:2]
    xs = np.arange(w, dtype=np.float32)[None, :]
    ys = np.arange(h, dtype=np.float32)[:, None]
    dy = np.zeros((h, w), np.float32)
    for cx, cy in EYES:
        gx = np.exp(-(((xs - cx) / EYE_HALF_W) ** 2) * 1.5)
        d = ys - cy
        # either side of the eye's middle line samples from further out: the lids meet there
        dy += amount * amp_px * gx * np.tanh(d / 1.0) * np.exp(-((d / 9.0) ** 2))
    return dy


def _brow_dy(amount: float, amp_px: float) -> np.ndarray:
    """Backward offsets lifting the brows and forehead, fading out before the eyelids."""
    h, w = astronaut().shape[:2]
    xs = np.arange(w, dtype=np.float32)[None, :]
    ys = np.arange(h, dtype=np.float32)[:, None]
    gx = np.exp(-(((xs - FACE_CENTRE[0]) / 48.0) ** 2))
    ramp = np.clip((EYE_TOP_Y - ys) / (EYE_TOP_Y - BROW_Y), 0.0, 1.0)
    fade = np.exp(-((np.clip(BROW_Y - ys, 0, None) / 30.0) ** 2))
    return amount * amp_px * gx * ramp * fade


@lru_cache(maxsize=1)
def _fields() -> tuple[np.ndarray, ...]:
    """Backward maps of the close-up square at rest, and each motion's offsets at full amount
    (every motion is linear in its amount, so a frame only scales and adds them)."""
    sx, sy, sside = CLOSEUP
    region = np.s_[sy : sy + sside, sx : sx + sside]
    map_x, rest_y = _mouth_maps(0.0, 14.0)
    _, open_y = _mouth_maps(1.0, 14.0)
    fields = (map_x, rest_y, open_y - rest_y, _eye_dy(1.0, 7.0), _brow_dy(1.0, 7.0))
    return tuple(np.ascontiguousarray(f[region], dtype=np.float32) for f in fields)


def face_image(t: float, *, mouth: bool = True, blinks: bool = True) -> np.ndarray:
    """The photograph's close-up square as the performer shows it at time t."""
    map_x, rest_y, jaw, lids, brows = _fields()
    map_y = rest_y + _bumps(t, BROW_BUMPS) * brows
    if blinks:
        map_y += _bumps(t, BLINKS) * lids
    if mouth:
        map_y += _bumps(t, MOUTH_BUMPS) * jaw
    return cv2.remap(astronaut(), map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


@lru_cache(maxsize=4)
def _backdrop(size: tuple[int, int]) -> np.ndarray:
    img = background(size, seed=7)
    img.setflags(write=False)
    return img


def frame_at(
    t: float,
    size: tuple[int, int],
    *,
    mouth: bool = True,
    blinks: bool = True,
    face: bool = True,
    zoom: float = 1.0,
    shift: tuple[float, float] = (0.0, 0.0),
) -> np.ndarray:
    """The whole frame at time t: the photo's close-up square fills `zoom` of the frame's
    height, centred, then moved by `shift` (shares of the frame's width and height)."""
    w, h = size
    frame = _backdrop(size).copy()
    if not face:
        return frame
    sx, sy, sside = CLOSEUP
    img = face_image(t, mouth=mouth, blinks=blinks)
    scale = zoom * h / sside
    px = 6.0 * scale  # head drift, photo pixels
    dx = px * math.sin(2 * math.pi * t / 2.7)
    dy = 0.5 * px * math.sin(2 * math.pi * t / 3.1 + 0.5)
    # scale the square to the frame's height, centred; turn it about the face's centre
    src = np.array([FACE_CENTRE[0] - sx, FACE_CENTRE[1] - sy])
    side = sside * scale
    dst = src * scale + ((w - side) / 2 + shift[0] * w + dx, (h - side) / 2 + shift[1] * h + dy)
    a = math.radians(roll_deg(t))
    rot = scale * np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    m = np.hstack([rot, (dst - rot @ src)[:, None]]).astype(np.float32)
    cv2.warpAffine(img, m, (w, h), dst=frame, borderMode=cv2.BORDER_TRANSPARENT)
    return frame


def make_performance(
    path: Path,
    *,
    size: tuple[int, int] = (640, 360),
    fps: int = 24,
    seconds: float = 5.0,
    delay_s: float = 0.0,
    mouth: bool = True,
    blinks: bool = True,
    still: bool = False,
    face: bool = True,
    zoom: float = 1.0,
    shift: tuple[float, float] = (0.0, 0.0),
    audio: bool = False,
) -> Path:
    """Write the clip (H.264; with `audio`, an AAC tone as long as the clip). With delay_s the
    performance starts that much later (its first frame held meanwhile), so the clip ends that
    much early in the performance."""
    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264", rate=fps)
        v.width, v.height = size
        v.pix_fmt = "yuv420p"
        v.options = {"preset": "ultrafast", "crf": "18"}
        a = out.add_stream("aac", rate=24000) if audio else None
        held: np.ndarray | None = None
        for i in range(round(fps * seconds)):
            t = 0.0 if still else max(0.0, i / fps - delay_s)
            if t == 0.0 and held is not None:
                rgb = held
            else:
                rgb = frame_at(
                    t, size, mouth=mouth, blinks=blinks, face=face, zoom=zoom, shift=shift
                )
                held = rgb if t == 0.0 else None
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = i
            out.mux(v.encode(frame))
        out.mux(v.encode(None))
        if a is not None:
            _write_tone(out, a, seconds)
    return path


def reencode(src: Path, dest: Path, size: tuple[int, int]) -> Path:
    """The same clip scaled to `size` and encoded again (another generation of compression)."""
    with av.open(str(src)) as inp, av.open(str(dest), "w") as out:
        vin = inp.streams.video[0]
        v = out.add_stream("libx264", rate=vin.average_rate)
        v.width, v.height = size
        v.pix_fmt = "yuv420p"
        v.options = {"preset": "ultrafast", "crf": "23"}
        for frame in inp.decode(vin):
            small = frame.reformat(width=size[0], height=size[1], format="yuv420p")
            small.pts, small.time_base = frame.pts, frame.time_base
            out.mux(v.encode(small))
        out.mux(v.encode(None))
    return dest

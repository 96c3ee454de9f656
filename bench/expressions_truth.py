"""A driving clip whose expressions are known, and the characters it drives (issue 15).

The performer is scikit-image's astronaut photograph animated by tests/mediagen.py's warps
(jaw, eyelids, brows; the same fields the fidelity tests use) plus three more made here: a
wink (one eye's lid field alone), a smile (mouth corners pulled up and out) and a yaw turn
(the face treated as a paraboloid with a nose bump, turned about a vertical axis); the whole
face also rolls and drifts. Every signal is logged per frame beside the clip
(`<clip>.truth.json`), so a result can be scored against what was really performed.

Sides are the IMAGE's: "eye_left" is the eye on the left of the picture (the subject's right),
which is what a reenactment that moves pixels moves, and what dlib's 68 points name 36–41.

    clip = make_clip(OUT / "drive_1280x720.mp4", (1280, 720))   # → Clip(path, truth)
    chars = make_characters(OUT / "characters")                   # name → path

Characters: `hopper_glasses` (matplotlib's Grace Hopper photograph with glasses drawn on:
another real person with a rigid accessory), `cartoon` (the same photograph flattened into
a few colours with ink lines and enlarged eyes), `mirror_recolour` (the astronaut mirrored,
hue-turned, smaller, on another backdrop) — all 1280×720 — and `square512` (the 512×512
astronaut photograph as it is).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from fractions import Fraction
from functools import cache
from pathlib import Path

import av
import cv2
import numpy as np

from tests.mediagen import (
    CLOSEUP,
    EYES,
    FACE_CENTRE,
    MOUTH,
    MOUTH_HALF_W,
    _bumps,
    _fields,
    astronaut,
    background,
)

FPS = 24
SECONDS = 10.0
ZOOM = 0.95  # the close-up square's share of the frame height

# (centre s, half width s, amount 0..1) — apart enough that each has frames of its own
JAW = ((1.0, 0.3, 1.0), (1.8, 0.2, 0.6), (4.5, 0.25, 0.9), (6.8, 0.25, 1.0), (9.2, 0.3, 0.8))
BLINKS = ((2.5, 0.13, 1.0), (5.6, 0.13, 1.0), (8.3, 0.15, 1.0))
WINKS = ((3.4, 0.22, 1.0), (7.6, 0.22, 1.0))  # the image-left eye only
BROWS = ((4.0, 0.35, 1.0), (6.2, 0.3, 0.8))
SMILES = ((5.1, 0.35, 1.0), (8.8, 0.3, 0.8))
YAW_DEG, YAW_PERIOD_S = 10.0, 4.7
ROLL_DEG, ROLL_PERIOD_S = 6.0, 3.3

SIGNALS = ("jaw", "eye_left", "eye_right", "brows", "smile", "yaw", "roll")


def truth_at(t: float) -> dict[str, float]:
    """What is performed at time t: amounts 0..1 (eye_*: how far that eye is shut), degrees
    for yaw (+: the nose toward the image's right) and roll (+: clockwise on screen)."""
    blink = _bumps(t, BLINKS)
    return {
        "jaw": _bumps(t, JAW),
        "eye_left": min(1.0, blink + _bumps(t, WINKS)),
        "eye_right": blink,
        "brows": _bumps(t, BROWS),
        "smile": _bumps(t, SMILES),
        "yaw": YAW_DEG * math.sin(2 * math.pi * t / YAW_PERIOD_S),
        "roll": ROLL_DEG * math.sin(2 * math.pi * t / ROLL_PERIOD_S),
    }


@cache
def _extra_fields() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """On the close-up square: the image-left eye's share of mediagen's lid field, and the
    smile's backward offsets (dx, dy) at full amount; the yaw's depth map (photo px)."""
    sx, sy, side = CLOSEUP
    _, _, _, lids, _ = _fields()
    xs = np.arange(side, dtype=np.float32)[None, :] + sx
    ys = np.arange(side, dtype=np.float32)[:, None] + sy
    between = (EYES[0][0] + EYES[1][0]) / 2
    left_lid = lids * (xs < between)
    # smile: each corner moves up 5 px and out 4 px (backward: sample from below and inside)
    dx = np.zeros((side, side), np.float32)
    dy = np.zeros((side, side), np.float32)
    for sign in (-1, 1):
        cx, cy = MOUTH[0] + sign * MOUTH_HALF_W, MOUTH[1]
        g = np.exp(-(((xs - cx) / 11.0) ** 2 + ((ys - cy) / 9.0) ** 2))
        dx += -sign * 4.0 * g
        dy += 5.0 * g
    # yaw: a paraboloid over the face's ellipse, plus the nose
    fx, fy = FACE_CENTRE
    a, b = 52.0, 72.0
    r2 = ((xs - fx) / a) ** 2 + ((ys - fy - 8) / b) ** 2
    depth = a * np.clip(1 - r2, 0, None) + 16.0 * np.exp(
        -(((xs - fx) / 7) ** 2 + ((ys - 128) / 12) ** 2)
    )
    weight = np.clip((1.8 - np.sqrt(r2)) / 0.8, 0, 1).astype(np.float32)  # 1 on the face
    return left_lid, dx, dy, depth.astype(np.float32), weight


def face_image(truth: dict[str, float]) -> np.ndarray:
    """The close-up square showing `truth` (all but roll, which turns the whole square)."""
    map_x, rest_y, jaw, lids, brows = _fields()
    left_lid, smile_dx, smile_dy, depth, weight = _extra_fields()
    right_lid = lids - left_lid
    mx = map_x + truth["smile"] * smile_dx
    my = (
        rest_y
        + truth["jaw"] * jaw
        + truth["eye_left"] * left_lid
        + truth["eye_right"] * right_lid
        + truth["brows"] * brows
        + truth["smile"] * smile_dy
    )
    theta = math.radians(truth["yaw"])
    if theta:
        # forward: x' = x + w·((x − cx)(cos θ − 1) + z sin θ); inverted by fixed-point steps
        sx = CLOSEUP[0]
        xs = np.arange(mx.shape[1], dtype=np.float32)[None, :] + sx
        cx = FACE_CENTRE[0]
        src = np.broadcast_to(xs, mx.shape).astype(np.float32)
        rows = np.ascontiguousarray(
            np.broadcast_to(np.arange(mx.shape[0], dtype=np.float32)[:, None], mx.shape)
        )
        for _ in range(4):
            col = np.clip(src - sx, 0, mx.shape[1] - 1).astype(np.float32)
            z = cv2.remap(depth, col, rows, cv2.INTER_LINEAR)
            w = cv2.remap(weight, col, rows, cv2.INTER_LINEAR)
            src = xs - w * ((src - cx) * (math.cos(theta) - 1) + z * math.sin(theta))
        col = (src - sx).astype(np.float32)
        mx = cv2.remap(mx, col, rows, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        my = cv2.remap(my, col, rows, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return cv2.remap(astronaut(), mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


@cache
def _backdrop(size: tuple[int, int]) -> np.ndarray:
    img = background(size, seed=7)
    img.setflags(write=False)
    return img


def frame(t: float, size: tuple[int, int]) -> np.ndarray:
    """The whole frame at time t: the close-up square fills ZOOM of the height, centred,
    rolled about the face's centre and drifting a little."""
    w, h = size
    truth = truth_at(t)
    out = _backdrop(size).copy()
    sx, sy, side = CLOSEUP
    scale = ZOOM * h / side
    px = 4.0 * scale
    dx = px * math.sin(2 * math.pi * t / 2.7)
    dy = 0.5 * px * math.sin(2 * math.pi * t / 3.1 + 0.5)
    src = np.array([FACE_CENTRE[0] - sx, FACE_CENTRE[1] - sy])
    dst = src * scale + ((w - side * scale) / 2 + dx, (h - side * scale) / 2 + dy)
    a = math.radians(truth["roll"])
    rot = scale * np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    m = np.hstack([rot, (dst - rot @ src)[:, None]]).astype(np.float32)
    cv2.warpAffine(face_image(truth), m, (w, h), dst=out, borderMode=cv2.BORDER_TRANSPARENT)
    return out


@dataclass(frozen=True)
class Clip:
    path: Path
    truth: dict[str, np.ndarray]  # SIGNALS → one value per frame
    fps: float


def truth_path(clip: Path) -> Path:
    return clip.with_suffix(".truth.json")


def load_truth(clip: Path) -> Clip:
    data = json.loads(truth_path(clip).read_text())
    signals = {k: np.asarray(v, np.float64) for k, v in data["signals"].items()}
    return Clip(clip, signals, float(data["fps"]))


def make_clip(path: Path, size: tuple[int, int], seconds: float = SECONDS) -> Clip:
    """Write the clip (H.264 High, x264 veryfast CRF 18, `FPS`) and its truth; reuse both
    when they exist for the same size and length."""
    path = Path(path)
    frames = round(FPS * seconds)
    if path.exists() and truth_path(path).exists():
        clip = load_truth(path)
        if len(clip.truth["jaw"]) == frames:
            return clip
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_suffix(".part.mp4")
    with av.open(str(part), "w") as out:
        v = out.add_stream("libx264", rate=FPS)
        v.width, v.height = size
        v.pix_fmt = "yuv420p"
        v.options = {"preset": "veryfast", "crf": "18", "profile": "high"}
        rng = np.random.default_rng(3)
        for i in range(frames):
            rgb = cv2.add(frame(i / FPS, size), rng.integers(0, 3, (size[1], size[0], 3), np.uint8))
            f = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            f.pts, f.time_base = i, Fraction(1, FPS)
            out.mux(v.encode(f))
        out.mux(v.encode(None))
    part.replace(path)
    signals = {k: [round(truth_at(i / FPS)[k], 5) for i in range(frames)] for k in SIGNALS}
    events = {
        "jaw": JAW,
        "blink": BLINKS,
        "wink_left": WINKS,
        "brows": BROWS,
        "smile": SMILES,
    }
    truth_path(path).write_text(
        json.dumps(
            {
                "fps": FPS,
                "size": list(size),
                "frames": frames,
                "units": "amounts 0..1 (eye_*: shut), yaw and roll in degrees; image sides",
                "events": events,
                "signals": signals,
            }
        )
    )
    return load_truth(path)


# ------------------------------------------------------------------ characters


def hopper() -> np.ndarray:
    """matplotlib's Grace Hopper photograph (512×600 RGB)."""
    import matplotlib.cbook
    from PIL import Image

    with Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)) as im:
        return np.asarray(im.convert("RGB"))


# Grace Hopper's eyes (centres of dlib's 36–41 and 42–47 in the 512×600 photograph) and the
# face outline at eye height (dlib's 0 and 16), measured once.
_HOPPER_EYES = ((224.0, 192.0), (305.0, 189.0))
_HOPPER_TEMPLES = ((183.0, 200.0), (352.0, 196.0))


def draw_glasses(img: np.ndarray) -> np.ndarray:
    """Thin dark oval frames with faintly tinted lenses, a bridge and the arms: rigid, and
    something a warp that bends the eye region visibly bends."""
    out = img.copy()
    (lx, ly), (rx, ry) = _HOPPER_EYES
    iod = math.hypot(rx - lx, ry - ly)
    axes = (round(0.4 * iod), round(0.3 * iod))
    ink = (45, 40, 38)
    thick = max(2, round(0.035 * iod))
    drop = round(0.05 * iod)
    lens = np.zeros(out.shape[:2], np.uint8)
    for cx, cy in _HOPPER_EYES:
        cv2.ellipse(lens, (round(cx), round(cy) + drop), axes, 0, 0, 360, 255, -1)
    tint = np.array((190, 215, 235), np.float32)
    k = (lens > 0)[..., None]
    out = np.where(k, (0.85 * out + 0.15 * tint).astype(np.uint8), out)
    for cx, cy in _HOPPER_EYES:
        cv2.ellipse(out, (round(cx), round(cy) + drop), axes, 0, 0, 360, ink, thick, cv2.LINE_AA)
    y = round((ly + ry) / 2) + drop - axes[1] // 3
    cv2.line(out, (round(lx) + axes[0], y), (round(rx) - axes[0], y), ink, thick, cv2.LINE_AA)
    for (tx, ty), edge in zip(_HOPPER_TEMPLES, (lx - axes[0], rx + axes[0]), strict=True):
        cv2.line(out, (round(edge), y), (round(tx), round(ty)), ink, thick, cv2.LINE_AA)
    return out


def cartoon(img: np.ndarray) -> np.ndarray:
    """Flat colours (repeated bilateral smoothing, posterised), ink edges, bigger eyes."""
    out = img.copy()
    # enlarge each eye by 1.3 with a smooth local magnifier
    h, w = out.shape[:2]
    xs = np.arange(w, dtype=np.float32)[None, :]
    ys = np.arange(h, dtype=np.float32)[:, None]
    mx = np.broadcast_to(xs, (h, w)).astype(np.float32).copy()
    my = np.broadcast_to(ys, (h, w)).astype(np.float32).copy()
    for cx, cy in _HOPPER_EYES:
        d2 = ((xs - cx) ** 2 + (ys - cy) ** 2) / 30.0**2
        k = 1 - 0.3 * np.exp(-d2)
        mx += (xs - cx) * (k - 1)
        my += (ys - cy) * (k - 1)
    out = cv2.remap(out, mx, my, cv2.INTER_LINEAR)
    for _ in range(4):
        out = cv2.bilateralFilter(out, 9, 40, 7)
    out = (out // 36 * 36 + 18).astype(np.uint8)
    gray = cv2.medianBlur(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), 5)
    edges = cv2.adaptiveThreshold(gray, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY, 9, 6)
    edges = cv2.remap(edges, mx, my, cv2.INTER_NEAREST)
    return np.where((edges == 0)[..., None], (out * 0.25).astype(np.uint8), out)


def _place(
    photo: np.ndarray, size: tuple[int, int], height: float, cx: float, seed: int
) -> np.ndarray:
    """`photo` scaled to `height` of the picture, centred at `cx` of its width, on a backdrop."""
    w, h = size
    pic = background(size, seed=seed).copy()
    s = height * h / photo.shape[0]
    ph, pw = round(photo.shape[0] * s), round(photo.shape[1] * s)
    scaled = cv2.resize(photo, (pw, ph), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)
    x0, y0 = round(cx * w - pw / 2), h - ph
    pic[y0 : y0 + ph, max(0, x0) : x0 + pw] = scaled[:, max(0, -x0) : min(pw, w - x0)]
    return pic


def make_characters(folder: Path) -> dict[str, Path]:
    """The characters as PNG files in `folder` (made once, reused)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    size = (1280, 720)

    def astro_recoloured() -> np.ndarray:
        hsv = cv2.cvtColor(astronaut()[:, ::-1], cv2.COLOR_RGB2HSV)
        hsv[..., 0] = (hsv[..., 0].astype(np.int32) + 20) % 180
        return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)

    makers = {
        "hopper_glasses": lambda: _place(draw_glasses(hopper()), size, 0.95, 0.46, 11),
        "cartoon": lambda: _place(cartoon(hopper()), size, 0.9, 0.55, 5),
        "mirror_recolour": lambda: _place(astro_recoloured(), size, 1.0, 0.5, 13),
        "square512": lambda: np.asarray(astronaut()),
    }
    paths = {}
    for name, make in makers.items():
        p = folder / f"{name}.png"
        if not p.exists():
            cv2.imwrite(str(p), cv2.cvtColor(make(), cv2.COLOR_RGB2BGR))
        paths[name] = p
    return paths


def shifted(path: Path, dx: float, dy: float) -> Path:
    """A copy of the character `path` moved by a fraction of a pixel (made once, beside it):
    the same picture to the eye, a fresh draw of the scorer's and the encoder's noise."""
    out = path.with_name(f"{path.stem}.shift{dx:+.2f}{dy:+.2f}.png")
    if not out.exists():
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        m = np.float32([[1, 0, dx], [0, 1, dy]])
        size = (img.shape[1], img.shape[0])
        moved = cv2.warpAffine(img, m, size, flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
        cv2.imwrite(str(out), moved)
    return out

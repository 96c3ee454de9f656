"""Test media generated on the fly (no binaries in the repo): the one generator module of the
tests and the benchmarks. Every generator writes a new file and returns its path (or what the
caller measures against). Sizes are small by default so a session's media is made in seconds;
pass bigger sizes for benchmarks.

The face is scikit-image's astronaut photograph (public domain, NASA), which OpenCV's frontal
face Haar cascade and the landmark model both find.

Clips and stills for the checks, fixes, CLI and UI (`size` is the DISPLAY size, what a viewer
sees after rotation/EXIF orientation; the face sways a little each frame like a performer):

    make_video(tmp / "drive.mp4", size=(320, 180), seconds=2, audio=True)   # 16:9, a face
    make_video(tmp / "phone.mp4", size=(180, 320), rotation=90)  # stored 320x180, shown 180x320
    make_video(tmp / "empty.mp4", face=False)                     # moving shapes, no face
    make_video(tmp / "cut.mp4", seconds=4, cut_at=2.0)            # a hard scene cut at 2 s
    make_image(tmp / "char.png", size=(640, 360))                 # a face on a background
    make_image(tmp / "rot.jpg", size=(360, 640), exif_orientation=6)

The local engine's inputs, with a known motion: the driving clip opens and closes the mouth by
a known amount per frame (a smooth warp of the jaw) while the head drifts, with a sine-tone
track; the character is the same face at another scale and place on a textured background:

    openings = make_driving_clip(tmp / "drive.mp4", seconds=2.0)   # per-frame mouth opening
    character = make_character(tmp / "character.png")              # where its mouth is

A performance for the motion-fidelity tests: the jaw opens and closes in irregular bumps, both
eyes blink (lids pressed together), the brows rise twice and the head rolls and drifts. None of
it repeats on a short period, so a clip shifted in time no longer lines up with itself.
Variants give the "result" side of the sanity checks:

    make_performance(tmp / "drive.mp4")                              # 640×360, 5 s, 24 fps
    make_performance(tmp / "late.mp4", delay_s=0.5)                  # 0.5 s behind
    make_performance(tmp / "mute.mp4", mouth=False)                  # the mouth never moves
    make_performance(tmp / "stare.mp4", blinks=False)                # the eyes never blink
    make_performance(tmp / "still.mp4", still=True)                  # frame 0 throughout
    make_performance(tmp / "empty.mp4", face=False)                  # background only
    make_performance(tmp / "far.mp4", zoom=0.6, shift=(0.2, 0.1))    # smaller, off-centre
    reencode(tmp / "drive.mp4", tmp / "small.mp4", (320, 180))

Where sound lands against the picture (remux and alignment tests): beeps at known times after
the first video frame, optionally with the picture starting after the sound, or PCM sound:

    make_beep_clip(tmp / "take.mp4", beeps_s=(1.0, 2.5))
    make_beep_clip(tmp / "late.mp4", video_start_s=0.5)     # the sound starts 0.5 s first
    make_beep_clip(tmp / "cam.mov", audio="pcm_s16le")       # a camera's PCM, needs AAC

Bad and hostile files: small files whose bytes are wrong, or whose headers promise something
huge, absurd or contradictory (every one cheap in memory except huge_h264, meant for a child
process):

    make_bad_corpus(tmp / "bad")    # {name: path} — zero bytes, truncated mp4, html.mp4, ...
    make_weird_name_clip(tmp)       # a valid clip behind a `..` hop and a non-ASCII name
    zero_png, huge_h264, sparse_clip, set_mkv_duration, mkv_clip, mp4_unknown_duration
"""

from __future__ import annotations

import io
import math
import struct
import zlib
from dataclasses import dataclass
from fractions import Fraction
from functools import cache, lru_cache
from pathlib import Path

import av
import cv2
import numpy as np
from PIL import Image

# ------------------------------------------------------------------ shared parts

# In the 512×512 astronaut photograph: the mouth's centre and half width.
MOUTH = (225.0, 145.0)
MOUTH_HALF_W = 24.0
# A head-and-shoulders square of the photograph (x, y, side), for close-up framing.
CLOSEUP = (75, 0, 300)
WHOLE = (0, 0, 512)
# Head and shoulders for make_video/make_image: rows 20..260, cols 120..330.
_FACE_CROP = (20, 260, 120, 330)


@lru_cache(maxsize=1)
def astronaut() -> np.ndarray:
    """The 512×512 RGB photograph (read-only)."""
    from skimage import data  # dev dependency; only needed to generate media

    img = data.astronaut()
    img.setflags(write=False)
    return img


@cache
def face_sprite() -> np.ndarray:
    """RGB head-and-shoulders crop (240x210) of the astronaut photograph."""
    top, bottom, left, right = _FACE_CROP
    return np.ascontiguousarray(astronaut()[top:bottom, left:right])


def background(size: tuple[int, int], seed: int = 1) -> np.ndarray:
    """Textured backdrop: any stray change to it shows in a pixel difference."""
    w, h = size
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 256, (h // 8 + 1, w // 8 + 1, 3), dtype=np.uint8)
    tex = cv2.resize(noise, (w, h), interpolation=cv2.INTER_CUBIC)
    ramp = np.linspace(40, 160, w, dtype=np.float32)[None, :, None]
    return np.clip(tex * 0.5 + ramp, 0, 255).astype(np.uint8)


def _gradient(w: int, h: int, scheme: int = 0) -> np.ndarray:
    """A smooth two-colour gradient (encodes small, contains nothing face-like)."""
    palettes = [((40, 60, 90), (150, 170, 200)), ((160, 60, 30), (250, 220, 120))]
    a, b = (np.array(c, np.float32) for c in palettes[scheme % len(palettes)])
    ys = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
    xs = np.linspace(0.0, 1.0, w, dtype=np.float32)[None, :, None]
    t = 0.6 * ys + 0.4 * xs
    return (a * (1 - t) + b * t).astype(np.uint8)


def _h264(
    out: av.container.OutputContainer, size: tuple[int, int], rate: int | Fraction, **options: str
) -> av.VideoStream:
    """A yuv420p libx264 stream of `size` (w, h) at `rate` with x264 `options`."""
    stream = out.add_stream("libx264", rate=rate)
    stream.width, stream.height = size
    stream.pix_fmt = "yuv420p"
    stream.options = options
    return stream


def _write_tone(
    out: av.container.OutputContainer, stream: av.AudioStream, seconds: float, *, pad: bool
) -> None:
    """A 440 Hz sine (mono, amplitude 0.2) of `seconds` into `stream`, in chunks of the
    codec's frame size; `pad` fills the last chunk with silence to a whole frame."""
    rate = stream.codec_context.sample_rate
    t = np.arange(round(rate * seconds), dtype=np.float32) / rate
    _write_samples(out, stream, (0.2 * np.sin(2 * math.pi * 440 * t)).astype(np.float32), pad=pad)


def _write_samples(
    out: av.container.OutputContainer, stream: av.AudioStream, tone: np.ndarray, *, pad: bool
) -> None:
    """Mono float samples into `stream` (see _write_tone), then the encoder's flush."""
    rate = stream.codec_context.sample_rate
    chunk = stream.codec_context.frame_size or 1024
    for k in range(0, len(tone), chunk):
        piece = tone[None, k : k + chunk]
        if pad and piece.shape[1] < chunk and stream.codec_context.frame_size:
            piece = np.pad(piece, ((0, 0), (0, chunk - piece.shape[1])))
        frame = av.AudioFrame.from_ndarray(piece, format="fltp", layout="mono")
        frame.sample_rate = rate
        frame.pts = k
        frame.time_base = Fraction(1, rate)
        out.mux(stream.encode(frame))
    out.mux(stream.encode(None))


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


# ------------------------------------------------------------------ clips and stills


def _resized_sprite(height: int) -> np.ndarray:
    sprite = face_sprite()
    width = max(1, round(sprite.shape[1] * height / sprite.shape[0]))
    img = Image.fromarray(sprite).resize((width, height), Image.Resampling.BILINEAR)
    return np.asarray(img)


def _paste(canvas: np.ndarray, sprite: np.ndarray, cx: float, cy: float) -> None:
    h, w = sprite.shape[:2]
    H, W = canvas.shape[:2]
    x0, y0 = round(cx - w / 2), round(cy - h / 2)
    sx0, sy0 = max(0, -x0), max(0, -y0)
    x0c, y0c = max(0, x0), max(0, y0)
    x1c, y1c = min(W, x0 + w), min(H, y0 + h)
    if x1c > x0c and y1c > y0c:
        canvas[y0c:y1c, x0c:x1c] = sprite[sy0 : sy0 + (y1c - y0c), sx0 : sx0 + (x1c - x0c)]


class _Scene:
    """Frames of a generated clip in display orientation, made cheaply from cached parts."""

    def __init__(
        self,
        size: tuple[int, int],
        *,
        face: bool,
        faces: int,
        face_scale: float,
        face_pos: tuple[float, float],
    ) -> None:
        self.w, self.h = size
        self.face = face
        self.faces = faces
        self.face_pos = face_pos
        self.bg = [_gradient(self.w, self.h, 0), _gradient(self.w, self.h, 1)]
        sprite_h = max(8, round(min(self.h, self.w * 240 / 210) * face_scale))
        self.sprite = _resized_sprite(sprite_h) if face else None

    def frame(self, t: float, scheme: int = 0) -> np.ndarray:
        img = self.bg[scheme].copy()
        if self.sprite is not None:
            # A slow sway and nod, a few percent of the frame: like a performer, not a cut.
            dx = 0.02 * self.w * math.sin(2 * math.pi * 0.5 * t)
            dy = 0.01 * self.h * math.sin(2 * math.pi * 0.7 * t)
            if self.faces == 1:
                centres = [self.face_pos]
            else:
                centres = [((i + 0.5) / self.faces, self.face_pos[1]) for i in range(self.faces)]
            for fx, fy in centres:
                _paste(img, self.sprite, fx * self.w + dx, fy * self.h + dy)
        else:
            # Something moving so the clip is not a still, but nothing face-like.
            r = max(4, self.h // 8)
            cx = int((0.2 + 0.6 * ((t * 0.3) % 1.0)) * self.w)
            cy = self.h // 2
            img[max(0, cy - r) : cy + r, max(0, cx - r) : cx + r] = (230, 230, 230)
        return img


def make_video(
    path: Path,
    *,
    size: tuple[int, int] = (320, 180),
    seconds: float = 2.0,
    fps: int = 10,
    audio: bool = False,
    face: bool = True,
    faces: int = 1,
    face_scale: float = 0.8,
    face_pos: tuple[float, float] = (0.5, 0.5),
    rotation: int = 0,
    cut_at: float | None = None,
    gop_seconds: float = 2.0,
    codec: str = "libx264",
    preset: str = "ultrafast",
    crf: int | None = None,
    grain: int = 0,
    container_format: str | None = None,
) -> Path:
    """An H.264 MP4 (by default) of `seconds` at `fps`, `size` = display (width, height).

    face_scale: sprite height as a fraction of the frame height (0.1 → a too-small face).
    faces: how many people side by side. face_pos: centre of the face as fractions of w, h.
    rotation: 0/90/180/270, stored as a display matrix the way phones do; the pixels are
    stored rotated so that a player honouring the matrix shows `size` upright.
    cut_at: time of a hard scene cut (the background changes completely).
    audio: a mono AAC 440 Hz tone.
    grain: amplitude of film grain added to every frame (e.g. 5 with crf=21 gives a phone-like
    ~30 Mb/s at 1080p, for benchmarks that need big files); 0 keeps files tiny.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    scene = _Scene(size, face=face, faces=faces, face_scale=face_scale, face_pos=face_pos)
    k = (rotation // 90) % 4
    stored_w, stored_h = (size[1], size[0]) if k % 2 else size
    n_frames = max(1, round(seconds * fps))
    with av.open(str(path), "w", format=container_format) as out:
        if codec == "libx264":
            options = {"preset": preset, "g": str(max(1, round(gop_seconds * fps)))}
            if crf is not None:
                options["crf"] = str(crf)
            vs = _h264(out, (stored_w, stored_h), fps, **options)
        else:
            vs = out.add_stream(codec, rate=fps)
            vs.width, vs.height = stored_w, stored_h
            vs.pix_fmt = "yuv420p"
        noise = []
        if grain:
            rng = np.random.default_rng(1)
            shape = (stored_h, stored_w, 1)
            noise = [rng.integers(-grain, grain + 1, shape, dtype=np.int16) for _ in range(8)]
        if k:
            vs.set_display_rotation(90 * k)
        astream = None
        if audio:
            astream = out.add_stream("aac", rate=22050, layout="mono")
        for i in range(n_frames):
            t = i / fps
            scheme = 1 if cut_at is not None and t >= cut_at else 0
            img = scene.frame(t, scheme)
            if k:
                # The display rotates stored pixels counter-clockwise by the matrix angle.
                img = np.ascontiguousarray(np.rot90(img, -k))
            if noise:
                img = np.clip(img + noise[i % len(noise)], 0, 255).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = i
            frame.time_base = Fraction(1, fps)
            out.mux(vs.encode(frame))
        out.mux(vs.encode())
        if astream is not None:
            _write_tone(out, astream, seconds, pad=False)
    return path


def make_image(
    path: Path,
    *,
    size: tuple[int, int] = (640, 360),
    face: bool = True,
    faces: int = 1,
    face_scale: float = 0.8,
    face_pos: tuple[float, float] = (0.5, 0.5),
    exif_orientation: int | None = None,
    fmt: str | None = None,
) -> Path:
    """A still (PNG/JPEG/WebP/GIF by suffix or `fmt`), `size` = display (width, height).

    exif_orientation: 1..8; the pixels are stored transposed so that a viewer applying the
    EXIF tag (JPEG/WebP/PNG eXIf) shows `size` upright — like a phone photo.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    scene = _Scene(size, face=face, faces=faces, face_scale=face_scale, face_pos=face_pos)
    img = Image.fromarray(scene.frame(0.0))
    kwargs: dict[str, object] = {}
    if exif_orientation and exif_orientation != 1:
        # Store the inverse of what the orientation tag will do on display.
        inverse = {
            2: Image.Transpose.FLIP_LEFT_RIGHT,
            3: Image.Transpose.ROTATE_180,
            4: Image.Transpose.FLIP_TOP_BOTTOM,
            5: Image.Transpose.TRANSPOSE,
            6: Image.Transpose.ROTATE_90,
            7: Image.Transpose.TRANSVERSE,
            8: Image.Transpose.ROTATE_270,
        }[exif_orientation]
        img = img.transpose(inverse)
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        kwargs["exif"] = exif.tobytes()
    img.save(path, format=fmt, **kwargs)
    return path


# ------------------------------------------------------------------ the engine's inputs


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
        v = _h264(out, size, fps, preset=preset, crf="18")
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
            _write_tone(out, a, seconds, pad=True)
    return [opening(i, fps) for i in range(n)]


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


# ------------------------------------------------------------------ the fidelity performance

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
        v = _h264(out, size, fps, preset="ultrafast", crf="18")
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
            _write_tone(out, a, seconds, pad=True)
    return path


def reencode(src: Path, dest: Path, size: tuple[int, int]) -> Path:
    """The same clip scaled to `size` and encoded again (another generation of compression)."""
    with av.open(str(src)) as inp, av.open(str(dest), "w") as out:
        vin = inp.streams.video[0]
        v = _h264(out, size, vin.average_rate, preset="ultrafast", crf="23")
        for frame in inp.decode(vin):
            small = frame.reformat(width=size[0], height=size[1], format="yuv420p")
            small.pts, small.time_base = frame.pts, frame.time_base
            out.mux(v.encode(small))
        out.mux(v.encode(None))
    return dest


def make_beep_clip(
    path: Path,
    *,
    seconds: float = 3.0,
    beeps_s: tuple[float, ...] = (1.0,),
    video_start_s: float = 0.0,
    audio: str | None = "aac",
    size: tuple[int, int] = (160, 90),
    fps: int = 24,
) -> Path:
    """A plain moving-gradient clip whose sound is silence broken by 50 ms 1 kHz beeps at
    `beeps_s` (seconds after the first video frame): where sound lands against the picture
    can be measured. The audio starts at 0 and the picture `video_start_s` later (a camera
    whose sound starts first); `audio` names the codec (None: no sound at all)."""
    w, h = size
    with av.open(str(path), "w") as out:
        v = _h264(out, size, fps, preset="ultrafast", crf="30")
        a = out.add_stream(audio, rate=24000) if audio else None
        first = round(video_start_s * fps)
        for i in range(round(fps * seconds)):
            img = np.empty((h, w, 3), np.uint8)
            img[..., 0] = (np.arange(w)[None, :] * 255 // w + 8 * i) % 256
            img[..., 1] = np.arange(h)[:, None] * 255 // h
            img[..., 2] = 90
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = first + i
            out.mux(v.encode(frame))
        out.mux(v.encode(None))
        if a is not None:
            rate = a.codec_context.sample_rate
            signal = np.zeros(round(rate * (video_start_s + seconds)), np.float32)
            burst = np.arange(round(rate * 0.05), dtype=np.float32) / rate
            for b in beeps_s:
                k = round((video_start_s + b) * rate)
                piece = signal[k : k + len(burst)]
                piece[:] = 0.5 * np.sin(2 * math.pi * 1000 * burst[: len(piece)])
            _write_samples(out, a, signal, pad=True)
    return path


# ------------------------------------------------------------------ bad and hostile files

ONE_YEAR_S = 365.25 * 86400
_PNG_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}  # PNG colour type → samples per pixel


def png_bomb(width: int = 60000, height: int = 60000) -> bytes:
    """A valid-looking PNG whose header declares width x height (a decompression bomb)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


def make_bad_corpus(directory: Path) -> dict[str, Path]:
    """The issue's bad files, each as a fresh file. Names → paths:

    zero_bytes, truncated_mp4, html_as_mp4, png_as_mp4, random_bytes, gif, png_bomb,
    weird_name (garbage behind a path with a `../` hop and a non-ASCII, dotted file name).
    See make_weird_name_clip for a valid clip behind such a path.
    """
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}

    p = d / "zero.mp4"
    p.write_bytes(b"")
    out["zero_bytes"] = p

    good = make_video(d / "whole.mp4", size=(160, 90), seconds=1.0)
    data = good.read_bytes()
    p = d / "truncated.mp4"
    p.write_bytes(data[: len(data) // 3])
    out["truncated_mp4"] = p
    good.unlink()

    p = d / "page.mp4"
    p.write_text(
        "<!DOCTYPE html>\n<html><head><title>403 Forbidden</title></head>"
        "<body><h1>Forbidden</h1><p>Signature expired.</p></body></html>\n"
    )
    out["html_as_mp4"] = p

    p = d / "picture.mp4"
    buf = io.BytesIO()
    Image.new("RGB", (64, 36), (10, 120, 200)).save(buf, format="PNG")
    p.write_bytes(buf.getvalue())
    out["png_as_mp4"] = p

    p = d / "noise.mp4"
    p.write_bytes(np.random.default_rng(7).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    out["random_bytes"] = p

    p = d / "anim.gif"
    frames = [Image.new("RGB", (64, 36), (i * 40, 80, 160)) for i in range(4)]
    frames[0].save(p, save_all=True, append_images=frames[1:], duration=100, loop=0)
    out["gif"] = p

    p = d / "bomb.png"
    p.write_bytes(png_bomb())
    out["png_bomb"] = p

    # `/` cannot be part of a file name, so the `../` travels in the path the user types:
    # <directory>/sub/../..étude ünïcødé 視頻.mp4 (a real file, reached through a `..` hop).
    (d / "sub").mkdir(exist_ok=True)
    p = d / "sub" / ".." / "..étude ünïcødé 視頻 (bad).mp4"
    p.write_bytes(np.random.default_rng(11).integers(0, 256, 2048, dtype=np.uint8).tobytes())
    out["weird_name"] = p
    return out


def make_weird_name_clip(directory: Path) -> Path:
    """A VALID clip reached through a `..` hop with a non-ASCII, dotted file name."""
    d = Path(directory)
    (d / "sub").mkdir(parents=True, exist_ok=True)
    return make_video(d / "sub" / ".." / "..étude ünïcødé 視頻.mp4", size=(160, 90), seconds=1.0)


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
        stream = _h264(out, (width, height), 10, preset="ultrafast", tune="zerolatency")
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
    """A small Matroska clip with a face, its header length set to header_s."""
    make_video(path, size=(160, 90), seconds=seconds, container_format="matroska")
    return set_mkv_duration(path, header_s) if header_s is not None else Path(path)


def mp4_unknown_duration(path: Path) -> Path:
    """A small MP4 whose track header (mdhd) says all-ones: "duration unknown" in ISO BMFF
    (read as 0xFFFFFFFF seconds, it would be 136 years)."""
    make_video(path, size=(160, 90), seconds=1.0)
    data = bytearray(Path(path).read_bytes())
    at = data.find(b"mdhd") + 4  # version/flags, then ctime, mtime, timescale, duration
    if data[at] != 0:
        raise ValueError("expected a version 0 mdhd")
    struct.pack_into(">I", data, at + 16, 0xFFFFFFFF)
    Path(path).write_bytes(data)
    return Path(path)

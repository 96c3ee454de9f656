"""Test media generated on the fly (no binaries in the repo). Shared by every helper's tests.

All generators write a new file and return its path. Sizes are tiny by default so a whole
session's media is made in a few seconds; pass bigger sizes for benchmarks.

    from tests.mediagen import make_video, make_image, make_bad_corpus

    make_video(tmp / "drive.mp4", size=(320, 180), seconds=2, audio=True)   # 16:9, a face
    make_video(tmp / "phone.mp4", size=(180, 320), rotation=90)  # stored 320x180, shown 180x320
    make_video(tmp / "empty.mp4", face=False)                     # moving shapes, no face
    make_video(tmp / "cut.mp4", seconds=4, cut_at=2.0)            # a hard scene cut at 2 s
    make_image(tmp / "char.png", size=(640, 360))                 # a face on a background
    make_image(tmp / "rot.jpg", size=(360, 640), exif_orientation=6)
    make_bad_corpus(tmp / "bad")    # {name: path} — zero bytes, truncated mp4, html.mp4, ...

`size` is always the DISPLAY size (what a viewer sees, after rotation/EXIF orientation).
The face is the astronaut photograph from scikit-image (public domain, NASA), which OpenCV's
frontal-face Haar cascade detects; videos move it a little each frame like a real performer.
"""

from __future__ import annotations

import io
import math
import struct
import zlib
from fractions import Fraction
from functools import cache
from pathlib import Path

import av
import numpy as np
from PIL import Image

# Head and shoulders of skimage.data.astronaut(): rows 20..260, cols 120..330 of 512x512.
_FACE_CROP = (20, 260, 120, 330)


@cache
def face_sprite() -> np.ndarray:
    """RGB head-and-shoulders crop (240x210) of the astronaut photograph."""
    from skimage import data  # dev dependency; only needed to generate media

    top, bottom, left, right = _FACE_CROP
    return np.ascontiguousarray(data.astronaut()[top:bottom, left:right])


def _background(w: int, h: int, scheme: int = 0) -> np.ndarray:
    """A smooth two-colour gradient (encodes small, contains nothing face-like)."""
    palettes = [((40, 60, 90), (150, 170, 200)), ((160, 60, 30), (250, 220, 120))]
    a, b = (np.array(c, np.float32) for c in palettes[scheme % len(palettes)])
    ys = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
    xs = np.linspace(0.0, 1.0, w, dtype=np.float32)[None, :, None]
    t = 0.6 * ys + 0.4 * xs
    return (a * (1 - t) + b * t).astype(np.uint8)


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
        self.bg = [_background(self.w, self.h, 0), _background(self.w, self.h, 1)]
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
        vs = out.add_stream(codec, rate=fps)
        vs.width, vs.height = stored_w, stored_h
        vs.pix_fmt = "yuv420p"
        if codec == "libx264":
            vs.options = {"preset": preset, "g": str(max(1, round(gop_seconds * fps)))}
            if crf is not None:
                vs.options = {**vs.options, "crf": str(crf)}
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
            for packet in vs.encode(frame):
                out.mux(packet)
        for packet in vs.encode():
            out.mux(packet)
        if astream is not None:
            _write_tone(out, astream, seconds)
    return path


def _write_tone(out: av.container.OutputContainer, stream: av.AudioStream, seconds: float) -> None:
    rate = 22050
    total = int(seconds * rate)
    spf = 1024
    for start in range(0, total, spf):
        n = min(spf, total - start)
        t = (np.arange(start, start + n, dtype=np.float32)) / rate
        samples = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None, :]
        frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
        frame.sample_rate = rate
        frame.pts = start
        frame.time_base = Fraction(1, rate)
        for packet in stream.encode(frame):
            out.mux(packet)
    for packet in stream.encode():
        out.mux(packet)


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


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


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

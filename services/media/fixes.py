"""One-click fixes. Each writes a NEW file (never the user's) and returns its path.

Videos are decoded once, turned upright (phone rotation applied to the pixels), changed
frame by frame with numpy/OpenCV, and encoded to H.264 yuv420p MP4 with the moov atom in
front (faststart) so browsers start playing at once. Audio is kept: copied when MP4 can
carry it, re-encoded to AAC otherwise.
"""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
from PIL import Image

from services.errors import InputError
from services.face import search as face_search
from services.media import faces as face_mod
from services.media.encode import H264Writer
from services.media.faces import Box
from services.media.fix_ids import ASPECT_FIXES, FixId
from services.media.frames import pick_times, samples
from services.media.metadata import MediaInfo, Opened, display_name, open_media

TRIM_SECONDS = 30.0
# Crop/pad outputs are capped at 720p: the providers render at 1280:720 anyway, and a
# smaller file stays under their upload / data-URI size caps (16–32 MB).
MAX_FIX_SIDE = 1280
# superfast: ~2x veryfast's speed for slightly bigger files; these are inputs for a provider,
# not masters. CRF 20 keeps the face detail the provider has to read.
X264_PRESET = "superfast"
X264_CRF = 20
# Audio decoders whose packets are copied as they are; others become AAC. These are a
# provider's inputs, not browser playback (the engine copies services.media.encode's
# BROWSER_AUDIO). PyAV names MP3's decoder "mp3float", so MP3 is re-encoded here.
COPYABLE_AUDIO = frozenset({"aac", "mp3", "alac"})
ASPECT_16_9 = 16 / 9

# A decoded frame as its three 4:2:0 planes: Y full size, U and V half size each way.
# Working on planes skips two colour conversions per frame compared with RGB.
Planes = tuple[np.ndarray, np.ndarray, np.ndarray]
PlanesFn = Callable[[Planes], Planes]


def apply_fix(path: Path | str, fix: FixId | str, out_dir: Path | str) -> Path:
    """Apply fix `fix` (a FixId or its value) to `path`; write the result in `out_dir`.

    Raises InputError with a sentence when the file cannot be read or the fix does not
    apply (trimming an image, say).
    """
    try:
        fix = FixId(fix)
    except ValueError:
        raise InputError(f"Unknown fix '{fix}'. Choose one of: {', '.join(FixId)}.") from None
    path = Path(path)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with open_media(path, image_max_side=None) as opened:
        info = opened.info
        if info.kind == "image":
            if fix not in ASPECT_FIXES:
                raise InputError(
                    f"{display_name(path)} is an image; only videos can be "
                    f"{'trimmed' if fix == FixId.TRIM_30S else 'converted to MP4'}."
                )
            return _fix_image(opened, fix, out_dir)
        centre = _face_centre(opened) if fix == FixId.CROP_16_9 else None
        geo = _Geometry.of(opened)
        if centre is not None:  # display pixels → the square-pixel frame the crop cuts
            centre = (centre[0] * geo.width / info.width, centre[1] * geo.height / info.height)
    return _fix_video(path, fix, out_dir, geo, centre)


# ------------------------------------------------------------------ geometry


def output_suffix(info: MediaInfo) -> str:
    """The extension apply_fix gives its result: MP4 for a video; an image keeps JPEG, or
    becomes PNG."""
    if info.kind == "video":
        return ".mp4"
    return ".jpg" if info.container == "jpeg" else ".png"


def _output_name(path: Path, fix: FixId, ext: str) -> str:
    stem = re.sub(r"[^\w\-]+", "_", path.stem, flags=re.UNICODE).strip("._")[:60] or "media"
    st = path.stat()
    tag = hashlib.sha256(f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()
    return f"{stem}.{fix}.{tag[:8]}{ext}"


def _even(n: float) -> int:
    return max(2, 2 * round(n / 2))


def crop_box(width: int, height: int, centre: tuple[float, float] | None) -> Box[int]:
    """The largest 16:9 window (even sides) inside width×height, centred on `centre`."""
    if width / height > ASPECT_16_9:
        h = height - height % 2
        w = min(width - width % 2, _even(h * ASPECT_16_9))
    else:
        w = width - width % 2
        # Pick the even height whose ratio is nearest 16:9 (matters for tiny frames).
        h = min(
            (_even(w / ASPECT_16_9 - 2), _even(w / ASPECT_16_9), _even(w / ASPECT_16_9 + 2)),
            key=lambda c: abs(w / c - ASPECT_16_9),
        )
        h = min(h, height - height % 2)
    cx, cy = centre if centre else (width / 2, height / 2)
    x = int(np.clip(round(cx - w / 2), 0, width - w))
    y = int(np.clip(round(cy - h / 2), 0, height - h))
    return Box(x - x % 2, y - y % 2, w, h)


def _fit(w: int, h: int, limit: int = MAX_FIX_SIDE) -> tuple[int, int]:
    scale = min(1.0, limit / max(w, h))
    return _even(w * scale), _even(h * scale)


def pad_size(width: int, height: int) -> tuple[int, int]:
    """Canvas for padding width×height to 16:9 (before the size cap)."""
    if width / height < ASPECT_16_9:
        return _even(height * ASPECT_16_9), _even(height)
    return _even(width), _even(width / ASPECT_16_9)


def fix_output_size(fix: FixId, width: int, height: int, kind: str = "video") -> tuple[int, int]:
    """The size `apply_fix` will produce from an upright width×height file, known before
    any pixel is touched (a crop's window size does not depend on where the face is)."""
    if fix == FixId.CROP_16_9:
        box = crop_box(width, height, None)
        return _fit(box.w, box.h) if kind == "video" else (box.w, box.h)
    if fix == FixId.PAD_16_9:
        canvas = pad_size(width, height)
        return _fit(*canvas) if kind == "video" else canvas
    return (_even(width), _even(height)) if kind == "video" else (width, height)


def fix_label(fix: FixId, width: int, height: int, kind: str = "video") -> str:
    """A fix's button label with what it will produce: "Crop to 16:9 → 360×202"."""
    if fix not in ASPECT_FIXES:
        return fix.label
    w, h = fix_output_size(fix, width, height, kind)
    return f"{fix.label} → {w}×{h}"


def _face_centre(opened: Opened) -> tuple[float, float] | None:
    """Median centre of the largest face over a few frames, in display pixels."""
    frames = samples(opened, pick_times(opened, 5), 480)
    centres = []
    for s in frames:
        boxes = face_search.detect(s.rgb)
        if boxes:
            x, y, w, h = face_mod.scale_box(boxes[0], s.scale)
            centres.append((x + w / 2, y + h / 2))
    if not centres:
        return None
    arr = np.array(centres)
    return float(np.median(arr[:, 0])), float(np.median(arr[:, 1]))


def _blurred_fill(plane: np.ndarray, out_w: int, out_h: int, dim: bool) -> np.ndarray:
    """A plane scaled to cover the canvas, blurred (and for luma dimmed): the padding."""
    # Everything happens at 1/8 of the canvas and is scaled up last: a blur hides the
    # difference, and the cost per frame drops ~10x. Striding first keeps the shrink cheap.
    step = max(1, min(plane.shape[0], plane.shape[1]) // 64)
    src = plane[::step, ::step]
    h, w = src.shape[:2]
    cw, ch = max(2, round(out_w / 8)), max(2, round(out_h / 8))
    scale = max(cw / w, ch / h)
    sw, sh = max(cw, round(w * scale)), max(ch, round(h * scale))
    small = cv2.resize(src, (sw, sh), interpolation=cv2.INTER_LINEAR)
    x0, y0 = (sw - cw) // 2, (sh - ch) // 2
    small = cv2.GaussianBlur(small[y0 : y0 + ch, x0 : x0 + cw], (0, 0), sigmaX=3)
    if dim:
        small = cv2.convertScaleAbs(small, alpha=0.625)
    return cv2.resize(small, (out_w, out_h), interpolation=cv2.INTER_LINEAR)


def _pad_plane(plane: np.ndarray, out_w: int, out_h: int, dim: bool) -> np.ndarray:
    h, w = plane.shape[:2]
    scale = min(out_w / w, out_h / h)
    fw, fh = max(1, round(w * scale)), max(1, round(h * scale))
    fg = plane if (fw, fh) == (w, h) else _resize(plane, fw, fh)
    canvas = _blurred_fill(plane, out_w, out_h, dim)
    x, y = (out_w - fw) // 2, (out_h - fh) // 2
    canvas[y : y + fh, x : x + fw] = fg
    return canvas


def _pad_frame(rgb: np.ndarray, out_w: int, out_h: int) -> np.ndarray:
    return _pad_plane(rgb, out_w, out_h, dim=True)


def _resize(plane: np.ndarray, w: int, h: int) -> np.ndarray:
    if plane.shape[1] == w and plane.shape[0] == h:
        return plane
    # Area averaging only pays off (against aliasing) when shrinking more than 2x; above
    # that, bilinear looks the same at a fifth of the cost.
    shrink = min(w / plane.shape[1], h / plane.shape[0])
    interp = cv2.INTER_AREA if shrink < 0.5 else cv2.INTER_LINEAR
    return cv2.resize(plane, (w, h), interpolation=interp)


def _crop_planes(box: Box[int], out: tuple[int, int]) -> PlanesFn:
    ow, oh = out

    def fn(planes: Planes) -> Planes:
        y, u, v = planes
        b = box
        y = _resize(y[b.y : b.y + b.h, b.x : b.x + b.w], ow, oh)
        cu = (slice(b.y // 2, (b.y + b.h) // 2), slice(b.x // 2, (b.x + b.w) // 2))
        return y, _resize(u[cu], ow // 2, oh // 2), _resize(v[cu], ow // 2, oh // 2)

    return fn


def _pad_planes(out: tuple[int, int]) -> PlanesFn:
    ow, oh = out

    def fn(planes: Planes) -> Planes:
        y, u, v = planes
        return (
            _pad_plane(y, ow, oh, dim=True),
            _pad_plane(u, ow // 2, oh // 2, dim=False),
            _pad_plane(v, ow // 2, oh // 2, dim=False),
        )

    return fn


def to_planes(frame: av.VideoFrame, rotation_ccw: int) -> Planes:
    """Upright Y, U, V planes of a decoded frame (any pixel format, even size)."""
    w, h = frame.width, frame.height
    flat = frame.to_ndarray(format="yuv420p").reshape(-1)
    q = (w // 2) * (h // 2)
    y = flat[: w * h].reshape(h, w)
    u = flat[w * h : w * h + q].reshape(h // 2, w // 2)
    v = flat[w * h + q : w * h + 2 * q].reshape(h // 2, w // 2)
    if rotation_ccw:
        k = rotation_ccw // 90
        y, u, v = (np.rot90(p, k) for p in (y, u, v))
    return y, u, v


def from_planes(planes: Planes) -> av.VideoFrame:
    y, u, v = planes
    h, w = y.shape
    flat = np.concatenate([np.ascontiguousarray(p).reshape(-1) for p in (y, u, v)])
    return av.VideoFrame.from_ndarray(flat.reshape(h * 3 // 2, w), format="yuv420p")


# ------------------------------------------------------------------ images


def _fix_image(opened: Opened, fix: FixId, out_dir: Path) -> Path:
    assert opened.image is not None
    img = opened.image
    img = img.convert("RGBA").convert("RGB") if "A" in img.getbands() else img.convert("RGB")
    rgb = np.asarray(img)
    h, w = rgb.shape[:2]
    if fix == FixId.CROP_16_9:
        box = crop_box(w, h, _image_face_centre(rgb))
        result = rgb[box.y : box.y + box.h, box.x : box.x + box.w]
    else:
        out_w, out_h = pad_size(w, h)
        result = _pad_frame(rgb, out_w, out_h)
    ext = output_suffix(opened.info)
    jpeg = ext == ".jpg"
    dest = out_dir / _output_name(opened.path, fix, ext)
    tmp = out_dir / f".{uuid.uuid4().hex}.part{ext}"
    try:
        out = Image.fromarray(np.ascontiguousarray(result))
        if jpeg:
            out.save(tmp, format="JPEG", quality=95)
        else:
            out.save(tmp, format="PNG")
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def _image_face_centre(rgb: np.ndarray) -> tuple[float, float] | None:
    h, w = rgb.shape[:2]
    scale = min(1.0, 640 / max(w, h))
    small = (
        cv2.resize(
            rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA
        )
        if scale < 1
        else rgb
    )
    boxes = face_search.detect(small)
    if not boxes:
        return None
    x, y, bw, bh = face_mod.scale_box(boxes[0], 1 / scale)
    return x + bw / 2, y + bh / 2


# ------------------------------------------------------------------ videos


@dataclass(frozen=True)
class _Geometry:
    rotation_ccw: int
    stored: tuple[int, int]  # decoded frame size
    square: tuple[int, int]  # stored size with square pixels and even sides
    width: int  # upright size after rotation
    height: int

    @classmethod
    def of(cls, opened: Opened) -> _Geometry:
        assert opened.first_frame is not None
        fw, fh = opened.first_frame.width, opened.first_frame.height
        sw = max(2, int(fw * opened.sar) // 2 * 2)
        sh = max(2, fh // 2 * 2)
        w, h = (sh, sw) if opened.rotation_ccw % 180 else (sw, sh)
        return cls(opened.rotation_ccw, (fw, fh), (sw, sh), w, h)


def _fix_video(
    path: Path, fix: FixId, out_dir: Path, geo: _Geometry, centre: tuple[float, float] | None
) -> Path:
    dest = out_dir / _output_name(path, fix, ".mp4")
    tmp = out_dir / f".{uuid.uuid4().hex}.part.mp4"
    try:
        _reencode(path, tmp, fix, geo, centre)
        os.replace(tmp, dest)
    except (av.FFmpegError, ValueError) as exc:
        raise InputError(
            f"{display_name(path)} could not be converted ({fix}); the video may be damaged."
        ) from exc
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def _planes_fn(
    fix: FixId, geo: _Geometry, centre: tuple[float, float] | None
) -> tuple[tuple[int, int], PlanesFn | None]:
    """Output size and the per-frame change (None: the picture passes through)."""
    w, h = geo.width, geo.height
    if fix == FixId.CROP_16_9:
        box = crop_box(w, h, centre)
        size = _fit(box.w, box.h)
        return size, _crop_planes(box, size)
    if fix == FixId.PAD_16_9:
        size = _fit(*pad_size(w, h))
        return size, _pad_planes(size)
    return (w, h), None


def _reencode(
    src_path: Path, dst: Path, fix: FixId, geo: _Geometry, centre: tuple[float, float] | None
) -> None:
    out_size, fn = _planes_fn(fix, geo, centre)
    reformat = geo.square != geo.stored  # odd sides or non-square pixels
    by_planes = fn is not None or geo.rotation_ccw != 0 or reformat
    max_t = TRIM_SECONDS if fix == FixId.TRIM_30S else None
    with av.open(str(src_path), metadata_errors="ignore") as src:
        vin = src.streams.video[0]
        vin.thread_type = "AUTO"
        ain = src.streams.audio[0] if src.streams.audio else None
        rate = vin.average_rate or vin.guessed_rate or Fraction(25, 1)
        vstart = vin.start_time or 0
        tb = vin.time_base
        if tb is None:  # every demuxer sets one; without it no frame has a time
            raise ValueError("the video track states no time base")

        out = H264Writer(
            dst,
            out_size,
            rate,
            preset=X264_PRESET,
            crf=X264_CRF,
            audio=ain,
            copy_audio=COPYABLE_AUDIO,
            audio_end_s=max_t,
        )
        last_pts: int | None = None

        def emit(frame: av.VideoFrame) -> bool:
            nonlocal last_pts
            if frame.pts is None or (last_pts is not None and frame.pts <= last_pts):
                return True  # a duplicate or timeless frame would break the muxer
            if max_t is not None and float((frame.pts - vstart) * tb) >= max_t - 1e-6:
                return False
            if by_planes:
                src_frame = frame
                if reformat:
                    sw, sh = geo.square
                    src_frame = frame.reformat(width=sw, height=sh, format="yuv420p")
                planes = to_planes(src_frame, geo.rotation_ccw)
                new = from_planes(fn(planes) if fn else planes)
            else:
                new = frame  # the encoder converts other pixel formats to yuv420p
                # Let x264 place keyframes; the source's frame types mean nothing here.
                new.pict_type = av.video.frame.PictureType.NONE
            new.pts = frame.pts
            new.time_base = tb
            last_pts = frame.pts
            out.write(new)
            return True

        try:
            video_open = True
            # Demux both streams in file order so audio and video interleave as they came;
            # demux ends with an empty packet per stream, which flushes the decoders.
            for packet in src.demux(*([vin] + ([ain] if ain is not None else []))):
                if packet.stream is ain:
                    out.mux_audio(packet)
                elif video_open:
                    for frame in packet.decode():
                        assert isinstance(frame, av.VideoFrame)  # a video packet's frames
                        if not emit(frame):
                            video_open = False
                            break
                if not video_open and out.audio_done:
                    break
            out.finish()
        except BaseException:
            out.abort()
            raise

"""What a media file is, read from its headers: never by decoding every frame.

Videos go through PyAV (container index + one keyframe for the display matrix); images
through Pillow, with the declared size checked before a single pixel is decoded.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Literal

import av
from PIL import Image, ImageOps, UnidentifiedImageError
from pydantic import BaseModel

from services.errors import InputError
from services.media.sniff import SNIFF_BYTES, Sniffed, sniff

# Beyond this the file is refused before decoding: a 60000x60000 PNG header is a bomb.
MAX_IMAGE_PIXELS = 64_000_000
MAX_VIDEO_SIDE = 8192

VIDEO_EXTS = {".mp4", ".m4v", ".mov", ".webm", ".mkv", ".avi"}
IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff"}

# EXIF orientation → clockwise degrees a viewer turns the stored pixels.
_EXIF_ROTATION = {1: 0, 2: 0, 3: 180, 4: 180, 5: 90, 6: 90, 7: 270, 8: 270}


class MediaInfo(BaseModel):
    """Facts about one file. width/height are as displayed (rotation / EXIF applied)."""

    kind: Literal["video", "image"]
    container: str  # "mp4", "mov", "webm", "png", "jpeg", ...
    codec: str  # "h264", "hevc", "png", "jpeg", ...
    width: int
    height: int
    rotation: int = 0  # clockwise degrees applied for display: 0, 90, 180, 270
    display_aspect: float
    fps: float | None = None
    duration_s: float | None = None
    frame_count: int | None = None
    has_audio: bool = False
    audio_codec: str | None = None
    pixel_format: str | None = None
    size_bytes: int
    mime: str
    animated: bool = False  # an image with several frames (GIF, APNG)

    @property
    def aspect_label(self) -> str:
        """'16:9'-style label of the nearest common shape, for sentences."""
        return aspect_label(self.display_aspect)


_COMMON_ASPECTS = {
    "16:9": 16 / 9,
    "9:16": 9 / 16,
    "4:3": 4 / 3,
    "3:4": 3 / 4,
    "1:1": 1.0,
    "21:9": 21 / 9,
    "3:2": 3 / 2,
    "2:3": 2 / 3,
    "5:4": 5 / 4,
    "4:5": 4 / 5,
}


def aspect_label(aspect: float) -> str:
    best = min(_COMMON_ASPECTS.items(), key=lambda kv: abs(kv[1] - aspect) / kv[1])
    if abs(best[1] - aspect) / best[1] <= 0.02:
        return best[0]
    return f"{aspect:.2f}:1"


def display_name(path: Path) -> str:
    """The file name as it may appear in a sentence (no control characters, quoted)."""
    name = "".join(ch if ch.isprintable() else "?" for ch in Path(path).name)
    return f"'{name}'"


@dataclass
class Opened:
    """An open media file: its facts plus what is needed to read a few frames cheaply."""

    path: Path
    info: MediaInfo
    container: av.container.InputContainer | None = None
    stream: av.VideoStream | None = None
    rotation_ccw: int = 0  # PyAV's display-matrix angle (counter-clockwise)
    sar: float = 1.0  # sample (pixel) aspect ratio of the stored frames
    first_frame: av.VideoFrame | None = None  # the first keyframe, as stored (videos)
    image: Image.Image | None = None  # display-oriented, possibly reduced by draft()
    keyframes: list[float] = field(default_factory=list)  # seconds, from the index


def probe(path: Path) -> MediaInfo:
    """Facts about `path`; raise InputError with a sentence if it is not usable media."""
    with open_media(path) as opened:
        return opened.info


@contextlib.contextmanager
def open_media(path: Path, *, image_max_side: int | None = 1024) -> Iterator[Opened]:
    """Open `path` for probing and sampling; close it afterwards.

    image_max_side lets JPEG decoding skip detail the checks never look at (draft mode).
    """
    path = Path(path)
    name = display_name(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise InputError(f"The file {name} does not exist. Check the path.") from None
    except OSError as exc:
        raise InputError(f"The file {name} cannot be read ({exc.strerror}).") from exc
    if not path.is_file():
        raise InputError(f"{name} is not a file. Give a video or image file.")
    if size == 0:
        raise InputError(f"The file {name} is empty (0 bytes); it may not have finished saving.")
    try:
        with path.open("rb") as fh:
            head = fh.read(SNIFF_BYTES)
    except OSError as exc:
        raise InputError(f"The file {name} cannot be read ({exc.strerror}).") from exc

    found = sniff(head)
    ext = path.suffix.lower()
    if found.kind == "html":
        raise InputError(
            f"{name} is a web page (HTML) saved under a media name, not a video or image. "
            "Download the file itself rather than the page that shows it."
        )
    if found.kind in ("text", "unknown"):
        raise InputError(
            f"{name} is not a video or image this app can read (its content is "
            f"{'text' if found.kind == 'text' else 'unrecognised'}). It may be damaged or "
            "mislabelled."
        )
    if ext in VIDEO_EXTS and found.kind == "image":
        raise InputError(
            f"{name} is named like a video ({ext}) but is {found.describe()}. Rename it to "
            f"{found.ext} or use the real video."
        )
    if ext in IMAGE_EXTS and found.kind == "video":
        raise InputError(
            f"{name} is named like an image ({ext}) but is a video. Rename it to {found.ext}."
        )

    if found.kind == "image":
        yield _open_image(path, name, size, found, image_max_side)
        return
    opened = _open_video(path, name, size, found)
    try:
        yield opened
    finally:
        if opened.container is not None:
            opened.container.close()


# ------------------------------------------------------------------ images


def _open_image(path: Path, name: str, size: int, found: Sniffed, max_side: int | None) -> Opened:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(path)
            w, h = img.size
            if w * h > MAX_IMAGE_PIXELS:
                raise Image.DecompressionBombError("too many pixels")
            fmt = (img.format or found.ext.lstrip(".")).lower()
            n_frames = getattr(img, "n_frames", 1)
            orientation = int(img.getexif().get(0x0112, 1) or 1)
            if max_side and fmt == "jpeg":
                img.draft("RGB", (max_side, max_side))
            img.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        w, h = _declared_size(path)
        raise InputError(
            f"{name} declares {w}×{h} pixels ({w * h / 1e6:.0f} megapixels), more than can be "
            f"opened safely (limit {MAX_IMAGE_PIXELS // 1_000_000} megapixels). Resize it and "
            "try again."
        ) from None
    except UnidentifiedImageError as exc:
        raise InputError(
            f"{name} is {found.describe()}, a format this app cannot read. Export it as JPEG "
            "or PNG and try again."
        ) from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise InputError(
            f"{name} looks like {found.describe()} but cannot be decoded; it is probably "
            "damaged or incomplete."
        ) from exc

    rotation = _EXIF_ROTATION.get(orientation, 0)
    if rotation % 180:
        w, h = h, w
    upright = ImageOps.exif_transpose(img) if orientation != 1 else img
    info = MediaInfo(
        kind="image",
        container=fmt,
        codec=fmt,
        width=w,
        height=h,
        rotation=rotation,
        display_aspect=w / h,
        frame_count=n_frames,
        size_bytes=size,
        mime=found.mime,
        pixel_format=img.mode,
        animated=n_frames > 1,
    )
    return Opened(path=path, info=info, image=upright)


def _declared_size(path: Path) -> tuple[int, int]:
    """Width/height from the header without Pillow's bomb guard (header only, no pixels)."""
    saved = Image.MAX_IMAGE_PIXELS
    try:
        Image.MAX_IMAGE_PIXELS = None  # only to read the header; never decoded
        with Image.open(path) as img:
            return img.size
    except Exception:  # the sentence still helps without exact numbers
        return (0, 0)
    finally:
        Image.MAX_IMAGE_PIXELS = saved


# ------------------------------------------------------------------ videos


def _damaged(name: str) -> InputError:
    return InputError(
        f"{name} is damaged or incomplete: the video cannot be read. It may have been cut off "
        "while downloading or copying; get the file again."
    )


def _open_video(path: Path, name: str, size: int, found: Sniffed) -> Opened:
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except (av.FFmpegError, OSError, UnicodeDecodeError, ValueError):
        raise _damaged(name) from None
    try:
        return _read_video(container, path, name, size, found)
    except BaseException:
        container.close()
        raise


def _read_video(
    container: av.container.InputContainer, path: Path, name: str, size: int, found: Sniffed
) -> Opened:
    if not container.streams.video:
        raise InputError(f"{name} has no video track (it may be audio only).")
    vs = container.streams.video[0]
    cc = vs.codec_context
    stored_w, stored_h = cc.width, cc.height
    if not stored_w or not stored_h:
        raise _damaged(name)
    if max(stored_w, stored_h) > MAX_VIDEO_SIDE:
        raise InputError(
            f"{name} is {stored_w}×{stored_h} pixels, larger than this app handles "
            f"({MAX_VIDEO_SIDE} pixels on a side). Export a smaller version."
        )
    tb = vs.time_base or Fraction(1, 1)
    if vs.duration:
        duration = float(vs.duration * tb)
    elif container.duration:
        duration = container.duration / av.time_base
    else:
        duration = 0.0
    rate = vs.average_rate or vs.guessed_rate or vs.base_rate
    fps = float(rate) if rate else None

    entries = vs.index_entries
    keyframes: list[float] = []
    frames_indexed = len(entries) if entries is not None else 0
    if frames_indexed:
        end = 0
        start = vs.start_time or 0
        for e in entries:
            end = max(end, e.pos + e.size)
            if e.is_keyframe:
                keyframes.append(max(0.0, float((e.timestamp - start) * tb)))
        if end > size:
            pct = 100 * size / end
            raise InputError(
                f"{name} is incomplete: it holds only {pct:.0f}% of the video its header "
                "describes. It was probably cut off while downloading or copying; get the "
                "file again."
            )
    frame_count = vs.frames or frames_indexed or (round(duration * fps) if fps else None)

    # One keyframe tells the display matrix (phone rotation) and proves the stream decodes.
    cc.skip_frame = "NONKEY"
    # Only single keyframes are ever decoded here: decoder threads would add latency and a
    # set of 1080p buffers per thread (tens of MB) for no speed.
    cc.thread_count = 1
    first = None
    try:
        for frame in container.decode(vs):
            first = frame
            break
    except (av.FFmpegError, ValueError):
        raise _damaged(name) from None
    if first is None:
        raise _damaged(name)
    # Phones write multiples of 90; anything else is snapped rather than trusted.
    ccw = (90 * round((first.rotation or 0) / 90)) % 360
    rotation = (-ccw) % 360

    sar = vs.sample_aspect_ratio
    sar_f = float(sar) if sar and sar > 0 else 1.0
    w_disp, h_disp = stored_w * sar_f, stored_h
    width, height = (stored_h, stored_w) if rotation % 180 else (stored_w, stored_h)
    aspect = (h_disp / w_disp) if rotation % 180 else (w_disp / h_disp)

    audio = container.streams.audio[0] if container.streams.audio else None
    fmt_name = found.ext.lstrip(".") or (container.format.name.split(",")[0])
    info = MediaInfo(
        kind="video",
        container=fmt_name,
        codec=cc.name,
        width=width,
        height=height,
        rotation=rotation,
        display_aspect=aspect,
        fps=fps,
        duration_s=round(duration, 3),
        frame_count=frame_count,
        has_audio=audio is not None,
        audio_codec=audio.codec_context.name if audio is not None else None,
        pixel_format=cc.format.name if cc.format else None,
        size_bytes=size,
        mime=found.mime,
    )
    return Opened(
        path=path,
        info=info,
        container=container,
        stream=vs,
        rotation_ccw=ccw,
        sar=sar_f,
        first_frame=first,
        keyframes=keyframes,
    )

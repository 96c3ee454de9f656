"""What a media file is, read from its headers: never by decoding every frame.

Videos go through PyAV (container index + one keyframe for the display matrix); images
through Pillow. Before a single pixel is decoded, the path must be a regular file and the
memory the decode would take (from the declared size and pixel format) must fit
DECODE_BUDGET.
"""

from __future__ import annotations

import contextlib
import errno
import math
import os
import stat
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import av
from PIL import Image, ImageMode, ImageOps, UnidentifiedImageError
from pydantic import BaseModel

from services.errors import InputError
from services.media.sniff import IMAGE_EXTS, SNIFF_BYTES, VIDEO_EXTS, Sniffed, sniff

# Beyond this the file is refused before decoding: a 60000x60000 PNG header is a bomb.
MAX_IMAGE_PIXELS = 64_000_000
MAX_VIDEO_SIDE = 8192
# The most memory opening one file may spend on decoded pixels, decided from its header
# before decoding. Several checks run at once inside the server, so this is per check, not
# per process. 8K UHD fits: a 7680×4320 RGBA still is 127 MiB in Pillow, an 8-bit 4:2:0
# frame of that size 95 MiB with the decoder's second buffer. Images larger than the checks
# need are shrunk right after decoding, so this is also the peak.
DECODE_BUDGET = 128 * 2**20
# Measured cost of decoding beyond the picture's own Pillow buffer: Pillow's WebP decoding
# goes through libwebp's canvas and a bytes copy first (4000×4000 RGB: 247 MB for 61 MiB).
_IMAGE_DECODE_FACTOR = {"webp": 4}
# Measured: probing a 4K or 8K H.264 clip costs twice one decoded frame (the frame and the
# decoder's pool), whatever the clip's length.
_VIDEO_DECODE_FACTOR = 2
# Pixel formats are known from the header in practice; when one is not, assume a frame as
# heavy as 8-bit 4:4:4 or 10-bit 4:2:0 rather than the lightest.
_UNKNOWN_FORMAT_BITS = 24

# A header length beyond this cannot be a clip anyone animates a face with: a day-long take
# would be tens of gigabytes. (Checks treat it as a broken header, not as a long clip.)
MAX_PLAUSIBLE_DURATION_S = 24 * 3600.0
# Fewer frames than this per second on average is a slideshow, not a performance.
MIN_MEAN_FPS = 1.0

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
    # Seconds the clip plays: the header's length, or the frames' own span when the header
    # gives none or an impossible one; None when nothing trustworthy says.
    duration_s: float | None = None
    # The length the header states (None: it states none). Kept apart from duration_s so a
    # broken header is reported as such instead of as a length.
    header_duration_s: float | None = None
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


# ------------------------------------------------------------------ special files


def stat_regular_file(path: Path) -> os.stat_result:
    """The file's stat if it is a regular file (symlinks followed); otherwise InputError with
    what it is. Nothing is opened: opening a FIFO blocks until a writer comes, and opening a
    device can have effects of its own."""
    name = display_name(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise InputError(_missing_sentence(path, name)) from None
    except ValueError:  # a NUL byte: no file can be named so
        raise InputError(f"The file {name} does not exist: its name holds a NUL byte.") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise InputError(
                f"{name} is a link that leads back to itself (a loop of links), not a file. "
                "Give the video or image file itself."
            ) from None
        if exc.errno == errno.ENOTDIR:
            raise InputError(f"The file {name} does not exist. Check the path.") from None
        raise InputError(f"The file {name} cannot be read ({exc.strerror}).") from exc
    mode = st.st_mode
    if stat.S_ISREG(mode):
        return st
    if stat.S_ISDIR(mode):
        what = "it is a folder. Give a video or image file inside it"
    elif stat.S_ISFIFO(mode):
        what = (
            "it is a pipe (FIFO), and reading it would never end. Save the video or image "
            "to a file and give that"
        )
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        what = "it is a device. Give a video or image file"
    elif stat.S_ISSOCK(mode):
        what = "it is a socket. Give a video or image file"
    else:
        what = "Give a video or image file"
    raise InputError(f"{name} is not a file: {what}.")


def _missing_sentence(path: Path, name: str) -> str:
    try:
        if stat.S_ISLNK(os.lstat(path).st_mode):
            target = "".join(ch if ch.isprintable() else "?" for ch in os.readlink(path))
            return f"{name} is a link to '{target[-200:]}', which does not exist. Check the path."
    except OSError:
        pass
    return f"The file {name} does not exist. Check the path."


def _read_head(path: Path, name: str, expected: os.stat_result) -> bytes:
    """The first bytes, from the very file that was stat'ed: O_NONBLOCK so a FIFO swapped in
    meanwhile cannot block the open, and the open file is checked to be the same one."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise InputError(f"The file {name} cannot be read ({exc.strerror}).") from exc
    with os.fdopen(fd, "rb", buffering=0) as fh:
        now = os.fstat(fd)
        if not stat.S_ISREG(now.st_mode) or (now.st_dev, now.st_ino) != (
            expected.st_dev,
            expected.st_ino,
        ):
            raise InputError(f"{name} changed while it was being opened; try again.")
        try:
            return fh.read(SNIFF_BYTES) or b""
        except OSError as exc:
            raise InputError(f"The file {name} cannot be read ({exc.strerror}).") from exc


# ------------------------------------------------------------------ memory budget


def image_decode_bytes(mode: str, size: tuple[int, int], fmt: str = "") -> int:
    """Bytes Pillow needs to decode an image of this mode and size. Pillow stores every 8-bit
    multi-band mode (RGB too) four bytes a pixel, single-band ones at their sample width."""
    try:
        desc = ImageMode.getmode(mode)
        per_pixel = 4 if len(desc.bands) > 1 else max(1, int(desc.typestr[2:]))
    except (KeyError, ValueError):
        per_pixel = 4
    return size[0] * size[1] * per_pixel * _IMAGE_DECODE_FACTOR.get(fmt, 1)


def video_decode_bytes(width: int, height: int, pix_fmt: av.VideoFormat | None) -> int:
    """Bytes decoding one frame of this size and pixel format takes (frame + decoder pool):
    width × height × 1.5 for 8-bit 4:2:0, twice."""
    bits = pix_fmt.padded_bits_per_pixel if pix_fmt is not None else _UNKNOWN_FORMAT_BITS
    return width * height * max(bits, 8) // 8 * _VIDEO_DECODE_FACTOR


def _megabytes(n: int) -> str:
    return f"{n / 1e9:,.1f} GB" if n >= 10**10 else f"{n / 1e6:,.0f} MB"


def too_large(
    name: str, width: int, height: int, need: int, *, max_side: int | None = None
) -> InputError:
    """The sentence for a picture refused before decoding: what it would cost, and the size
    (same shape) that would be accepted."""
    scale = min(
        math.sqrt(DECODE_BUDGET / max(need, 1)),
        math.sqrt(MAX_IMAGE_PIXELS / max(width * height, 1)),
        (max_side or math.inf) / max(width, height, 1),
    )
    fit_w, fit_h = max(1, math.floor(width * scale)), max(1, math.floor(height * scale))
    return InputError(
        f"{name} declares {width}×{height} pixels, which would take {_megabytes(need)} of "
        f"memory to decode: too large to open safely. Resize it to at most {fit_w}×{fit_h} "
        "pixels and try again."
    )


def check_frame_size(name: str, width: int, height: int, pix_fmt: av.VideoFormat | None) -> None:
    """Refuse a video whose frames cannot be decoded within DECODE_BUDGET (before decoding)."""
    need = video_decode_bytes(width, height, pix_fmt)
    if need > DECODE_BUDGET:
        raise too_large(name, width, height, need, max_side=MAX_VIDEO_SIDE)
    if max(width, height) > MAX_VIDEO_SIDE:
        raise InputError(
            f"{name} is {width}×{height} pixels, larger than this app handles "
            f"({MAX_VIDEO_SIDE} pixels on a side). Export a smaller version."
        )


# ------------------------------------------------------------------ durations


def human_duration(seconds: float) -> str:
    """'1.5 s', '12 minutes', '10 hours', '5 days', '136 years' (sign kept)."""
    if not math.isfinite(seconds):
        return f"{seconds} seconds"
    a = abs(seconds)
    if a < 120:
        return f"{seconds:.1f} s"
    for unit, size, upto in (
        ("minutes", 60.0, 2 * 3600.0),
        ("hours", 3600.0, 3 * 86400.0),
        ("days", 86400.0, 2 * 365.25 * 86400.0),
    ):
        if a < upto:
            return f"{seconds / size:,.0f} {unit}"
    return f"{seconds / (365.25 * 86400):,.0f} years"


def plausible_duration(seconds: float) -> bool:
    return math.isfinite(seconds) and 0 <= seconds <= MAX_PLAUSIBLE_DURATION_S


def header_duration_sentence(name: str, header_s: float, frames_s: float | None = None) -> str:
    """For a header length that cannot be right (negative, not a number, beyond a day)."""
    said = f"The header of {name} says it lasts {human_duration(header_s)}"
    if frames_s is not None and plausible_duration(frames_s):
        return (
            f"{said}, but its frames span {human_duration(frames_s)}: the header is broken. "
            "Re-export the video."
        )
    return f"{said}, which cannot be right: re-export the video."


def sparse_frames_sentence(name: str, frames: int, seconds: float) -> str:
    return (
        f"{name} has {frames:,} frame{'s' if frames != 1 else ''} spread over "
        f"{human_duration(seconds)}: that is a slideshow, not a performance. Re-export it at "
        "24–30 frames per second."
    )


def too_sparse(frames: int | None, seconds: float | None, fps: float | None) -> bool:
    """Fewer than MIN_MEAN_FPS frames a second on average (by count, else by stated rate)."""
    if seconds is None or not math.isfinite(seconds) or seconds < 1.0:
        return False  # a still shorter than a second is judged by the length checks
    if frames:
        return frames / seconds < MIN_MEAN_FPS
    return fps is not None and fps < MIN_MEAN_FPS


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
    image: Image.Image | None = None  # display-oriented, at most image_max_side a side
    keyframes: list[float] = field(default_factory=list)  # seconds, from the index


def probe(path: Path) -> MediaInfo:
    """Facts about `path`; raise InputError with a sentence if it is not usable media."""
    with open_media(path) as opened:
        return opened.info


@contextlib.contextmanager
def open_media(path: Path, *, image_max_side: int | None = 1024) -> Iterator[Opened]:
    """Open `path` for probing and sampling; close it afterwards.

    image_max_side: images are kept no larger than this once decoded (JPEGs are decoded
    smaller to begin with, in draft mode); None keeps the full size, within DECODE_BUDGET.
    """
    path = Path(path)
    name = display_name(path)
    st = stat_regular_file(path)
    size = st.st_size
    if size == 0:
        raise InputError(f"The file {name} is empty (0 bytes); it may not have finished saving.")
    head = _read_head(path, name, st)

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
    img: Image.Image | None = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(path)  # the header only; pixels are decoded by load()
            w, h = img.size
            if w * h > MAX_IMAGE_PIXELS:
                raise Image.DecompressionBombError("too many pixels")
            fmt = (img.format or found.ext.lstrip(".")).lower()
            mode = img.mode
            n_frames = getattr(img, "n_frames", 1)
            if fmt == "jpeg":
                _draft_jpeg(img, max_side)
            need = image_decode_bytes(img.mode, img.size, fmt)
            if need > DECODE_BUDGET:
                raise too_large(name, w, h, image_decode_bytes(mode, (w, h), fmt))
            # Only after the budget check: a PNG may keep its EXIF after the pixels, so
            # Pillow decodes the whole image to find it.
            orientation = int(img.getexif().get(0x0112, 1) or 1)
            img.load()
            if max_side and max(img.size) > max_side:
                img = _shrink(img, max_side)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        _close(img)
        w, h, mode = _declared_size(path)
        fmt = found.ext.lstrip(".")
        raise too_large(name, w, h, image_decode_bytes(mode, (w, h), fmt)) from None
    except UnidentifiedImageError as exc:
        _close(img)
        raise InputError(
            f"{name} is {found.describe()}, a format this app cannot read. Export it as JPEG "
            "or PNG and try again."
        ) from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        _close(img)
        raise InputError(
            f"{name} looks like {found.describe()} but cannot be decoded; it is probably "
            "damaged or incomplete."
        ) from exc
    except BaseException:
        _close(img)
        raise

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
        pixel_format=mode,
        animated=n_frames > 1,
    )
    return Opened(path=path, info=info, image=upright)


# Modes Image.reduce() averages correctly; palette indices, for one, must not be averaged.
_REDUCIBLE = frozenset({"L", "LA", "RGB", "RGBA", "RGBX", "CMYK", "YCbCr", "I", "F"})
_BAND_ROWS = 256


def _shrink(img: Image.Image, max_side: int) -> Image.Image:
    """`img` at most max_side a side; the full-size one is closed. Box-averaged band by band
    of rows: a whole-image reduce() or resize() of RGBA first makes a full-size premultiplied
    copy, and a palette image a full-size RGB one, doubling the peak the budget allowed."""
    w, h = img.size
    factor = max(w, h) // max_side
    if factor >= 2:
        rows = factor * max(1, _BAND_ROWS // factor)  # whole blocks, so bands join seamlessly
        out: Image.Image | None = None
        for y in range(0, h, rows):
            part = _reducible(img.crop((0, y, w, min(h, y + rows)))).reduce(factor)
            if out is None:
                out = Image.new(part.mode, (-(-w // factor), -(-h // factor)))
            out.paste(part, (0, y // factor))
        assert out is not None
        out.info = dict(img.info)  # EXIF orientation is applied afterwards
        img.close()
        img = out
    if max(img.size) > max_side:
        img.thumbnail((max_side, max_side), Image.Resampling.BILINEAR)
    return img


def _reducible(band: Image.Image) -> Image.Image:
    if band.mode in _REDUCIBLE:
        return band
    if band.mode.startswith("I;16"):
        return band.convert("I")
    if band.mode == "1":
        return band.convert("L")
    return band.convert("RGBA")  # P, PA and the rare others


def _draft_jpeg(img: Image.Image, max_side: int | None) -> None:
    """Let libjpeg decode at 1/2, 1/4 or 1/8 scale: no larger than max_side needs, and small
    enough for DECODE_BUDGET even when the full size is wanted (fixes)."""
    w, h = img.size
    factor = 1
    while factor < 8 and image_decode_bytes("RGB", (w // factor, h // factor)) > DECODE_BUDGET:
        factor *= 2
    # draft() picks the largest scale whose result still covers the requested box.
    box = (max(1, w // factor), max(1, h // factor))
    if max_side:
        box = (min(box[0], max_side), min(box[1], max_side))
    if box != (w, h):
        img.draft("RGB", box)


def check_image_size(path: Path) -> None:
    """Refuse, from the header alone, an image whose full decode would not fit DECODE_BUDGET
    (for readers that decode at full size, like the local engine). Anything that is not an
    image is left for the reader to word."""
    path = Path(path)
    stat_regular_file(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                w, h, mode, fmt = *img.size, img.mode, (img.format or "").lower()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        w, h, mode = _declared_size(path)
        fmt = ""
    except Exception:
        return
    need = image_decode_bytes(mode, (w, h), fmt)
    if w * h > MAX_IMAGE_PIXELS or need > DECODE_BUDGET:
        raise too_large(display_name(path), w, h, need)


def _close(img: Image.Image | None) -> None:
    if img is not None:
        img.close()


def _declared_size(path: Path) -> tuple[int, int, str]:
    """Width, height and mode from the header without Pillow's bomb guard (no pixels)."""
    saved = Image.MAX_IMAGE_PIXELS
    try:
        Image.MAX_IMAGE_PIXELS = None  # only to read the header; never decoded
        with Image.open(path) as img:
            return (*img.size, img.mode)
    except Exception:  # the sentence still helps without exact numbers
        return (0, 0, "RGB")
    finally:
        Image.MAX_IMAGE_PIXELS = saved


# ------------------------------------------------------------------ videos


def _damaged(name: str) -> InputError:
    return InputError(
        f"{name} is damaged or incomplete: the video cannot be read. It may have been cut off "
        "while downloading or copying; get the file again."
    )


def stated_duration(stream: av.VideoStream, container: av.container.InputContainer) -> float | None:
    """Seconds the header states (the stream's own length, else the container's); None when
    it states none. Not judged here: it may be negative or absurd."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / av.time_base
    return None


# av.open() already decodes a frame or two to learn a stream's parameters (H.264's frame
# delay, for one), at full size, before any header can be checked: its decoders get this
# limit, the budget's worth of pixels at 24 bits each. Larger frames are simply not decoded
# there; the size and pixel format still come from the header, for check_frame_size.
_OPEN_MAX_PIXELS = DECODE_BUDGET * 8 // (_VIDEO_DECODE_FACTOR * _UNKNOWN_FORMAT_BITS)


def open_input(path: Path, *, decode: bool = True, **kwargs: Any) -> av.container.InputContainer:
    """av.open for reading a local file: absolute path (a relative name such as 'pipe:0' or
    'http:x' would be read as a protocol) and the decoding limit above; decode=False lets
    FFmpeg decode nothing at all while it reads the header."""
    options = {"max_pixels": str(_OPEN_MAX_PIXELS)} if decode else {"skip_frame": "all"}
    return av.open(str(Path(path).absolute()), "r", options=options, **kwargs)


def declared_frame(
    path: Path, container: av.container.InputContainer
) -> tuple[int, int, av.VideoFormat | None]:
    """Width, height and pixel format of the first video stream, as the header declares.

    A frame beyond open_input's limit can make a decoder refuse to open inside av.open, and
    FFmpeg then forgets the size: the header is read again with decoding switched off.
    """
    cc = container.streams.video[0].codec_context
    if cc.width and cc.height:
        return cc.width, cc.height, cc.format
    try:
        with open_input(path, decode=False, metadata_errors="ignore") as bare:
            if bare.streams.video:
                again = bare.streams.video[0].codec_context
                return again.width, again.height, again.format or cc.format
    except (av.FFmpegError, OSError, UnicodeDecodeError, ValueError):
        pass
    return 0, 0, None


def _open_video(path: Path, name: str, size: int, found: Sniffed) -> Opened:
    try:
        container = open_input(path, metadata_errors="ignore")
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
    stored_w, stored_h, pix_fmt = declared_frame(path, container)
    if not stored_w or not stored_h:
        raise _damaged(name)
    check_frame_size(name, stored_w, stored_h, pix_fmt)
    tb = vs.time_base or Fraction(1, 1)
    header_s = stated_duration(vs, container)
    rate = vs.average_rate or vs.guessed_rate or vs.base_rate
    fps = float(rate) if rate else None

    entries = vs.index_entries
    keyframes: list[float] = []
    frames_indexed = len(entries) if entries is not None else 0
    first_ts = last_ts = 0
    if frames_indexed:
        end = 0
        start = vs.start_time or 0
        first_ts = min(e.timestamp for e in entries)
        last_ts = max(e.timestamp for e in entries)
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
    frames_s = None
    # Only an index of every frame (MP4/MOV) tells how long the frames last; Matroska's
    # lists keyframes only.
    if vs.frames and frames_indexed == vs.frames and frames_indexed >= 2:
        n = frames_indexed
        frames_s = float((last_ts - first_ts) * tb) * n / (n - 1)
    if header_s is not None and plausible_duration(header_s):
        duration: float | None = header_s
    else:
        duration = frames_s
    frame_count = vs.frames or (round(duration * fps) if duration and fps else None)

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
        duration_s=round(duration, 3) if duration is not None else None,
        header_duration_s=header_s,
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

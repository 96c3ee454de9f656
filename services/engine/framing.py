"""Output geometry and the character picture: size caps, face crops, and I420 conversion."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from services.engine.config import FramingConfig
from services.errors import InputError
from services.media.faces import Box


@dataclass(frozen=True)
class Square:
    """An axis-aligned square in image pixels (may reach past the image's edges)."""

    cx: float
    cy: float
    side: float

    @property
    def x0(self) -> float:
        return self.cx - self.side / 2

    @property
    def y0(self) -> float:
        return self.cy - self.side / 2


def face_square(box: Box[float], factor: float, drop: float) -> Square:
    """A square `factor` face-box sides wide around `box`, its centre dropped by `drop` box
    heights (see FramingConfig)."""
    side = factor * max(box.w, box.h)
    return Square(box.cx, box.cy + drop * box.h, side)


def _even_floor(v: float) -> int:
    return max(2, math.floor(v / 2) * 2)


def output_size(
    width: int, height: int, ratio: str | None, framing: FramingConfig
) -> tuple[int, int]:
    """Even output dimensions following the picture (or the ratio option), never upscaled
    past the caps."""
    if ratio:
        tw, th = (int(p) for p in ratio.split(":"))
        s = min(1.0, framing.ratio_cap_long / max(tw, th))
        return _even_floor(tw * s), _even_floor(th * s)
    long_side, short_side = max(width, height), min(width, height)
    s = min(1.0, framing.cap_long / long_side, framing.cap_short / short_side)
    return _even_floor(width * s), _even_floor(height * s)


def load_picture(path: str | Path, min_side: int) -> np.ndarray:
    """RGB pixels of an image file, upright (EXIF orientation applied), at least `min_side`
    pixels on each side."""
    try:
        with Image.open(path) as im:
            rgb = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    except FileNotFoundError:
        raise InputError(f"The character image {path} does not exist.") from None
    except Image.DecompressionBombError:
        raise InputError(
            f"The character image {Path(path).name} claims to be enormous; "
            "use an ordinary PNG or JPEG."
        ) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise InputError(
            f"The character image {Path(path).name} could not be read; use a PNG or JPEG."
        ) from None
    if min(rgb.shape[:2]) < min_side:
        raise InputError(
            f"The character image is too small ({rgb.shape[1]}×{rgb.shape[0]}); "
            f"use one at least {min_side} pixels on each side."
        )
    return rgb


def fit_cover(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Scale to cover `size` (w, h) and crop the centre: the output's exact pixels."""
    h, w = rgb.shape[:2]
    tw, th = size
    s = max(tw / w, th / h)
    sw, sh = max(tw, round(w * s)), max(th, round(h * s))
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC
    scaled = cv2.resize(rgb, (sw, sh), interpolation=interp) if (sw, sh) != (w, h) else rgb
    x0, y0 = (sw - tw) // 2, (sh - th) // 2
    return np.ascontiguousarray(scaled[y0 : y0 + th, x0 : x0 + tw])


def rgb_to_i420(rgb: np.ndarray) -> np.ndarray:
    """BT.709 limited-range I420 as one (h*3/2, w) array, matching the tags the encoder writes."""
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
    out = frame.reformat(format="yuv420p", dst_colorspace="ITU709", dst_color_range="MPEG")
    return np.ascontiguousarray(out.to_ndarray())

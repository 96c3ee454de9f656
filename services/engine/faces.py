"""Face finding with OpenCV's bundled Haar cascade (ships inside the wheel; nothing to download)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

# Detection runs on downscaled copies, coarse first: the cascade's cost grows with pixels,
# and most faces worth animating are found at the small size (~30 ms); smaller faces get a
# second look at twice the size.
_DETECT_SIDES = (320, 640)
_MIN_FACE_PX = 24


@dataclass(frozen=True)
class Box:
    x: float
    y: float
    w: float
    h: float

    @property
    def cx(self) -> float:
        return self.x + self.w / 2

    @property
    def cy(self) -> float:
        return self.y + self.h / 2


@lru_cache(maxsize=1)
def _cascade() -> cv2.CascadeClassifier:
    path = cv2.data.haarcascades + "haarcascade_frontalface_default.xml"
    cascade = cv2.CascadeClassifier(path)
    if cascade.empty():  # a broken OpenCV install, not a user error
        raise RuntimeError(f"OpenCV face cascade missing at {path}")
    return cascade


def find_face(gray: np.ndarray) -> Box | None:
    """The largest frontal face in a grayscale image, in that image's pixels, or None."""
    h, w = gray.shape[:2]
    for side in _DETECT_SIDES:
        scale = min(1.0, side / max(h, w))
        small = gray
        if scale < 1.0:
            size = (round(w * scale), round(h * scale))
            small = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
        small = cv2.equalizeHist(np.ascontiguousarray(small))
        found = _cascade().detectMultiScale(
            small, scaleFactor=1.1, minNeighbors=5, minSize=(_MIN_FACE_PX, _MIN_FACE_PX)
        )
        if len(found):
            x, y, bw, bh = max(found, key=lambda r: int(r[2]) * int(r[3]))
            return Box(x / scale, y / scale, bw / scale, bh / scale)
        if scale == 1.0:
            break  # already looked at every pixel
    return None

"""Face finding with OpenCV's bundled Haar cascade (ships inside the wheel; nothing to download)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

# Detection runs on a downscaled copy: the cascade's cost grows with pixels, and a face
# that matters for performance transfer is never tiny.
_DETECT_MAX_SIDE = 480
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
    scale = min(1.0, _DETECT_MAX_SIDE / max(h, w))
    small = gray
    if scale < 1.0:
        small = cv2.resize(gray, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    small = cv2.equalizeHist(np.ascontiguousarray(small))
    found = _cascade().detectMultiScale(
        small, scaleFactor=1.1, minNeighbors=5, minSize=(_MIN_FACE_PX, _MIN_FACE_PX)
    )
    if len(found) == 0:
        return None
    x, y, bw, bh = max(found, key=lambda r: int(r[2]) * int(r[3]))
    return Box(x / scale, y / scale, bw / scale, bh / scale)

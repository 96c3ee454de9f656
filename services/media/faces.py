"""Frontal faces with OpenCV's bundled Haar cascade (opencv-python-headless 4.x ships it)."""

from __future__ import annotations

from functools import cache

import cv2
import numpy as np

Box = tuple[int, int, int, int]  # x, y, w, h

# The cascade was trained on 24x24 windows: smaller faces cannot be found at this scale.
MIN_FACE_PX = 24
# 15% between window sizes: half the work of OpenCV's usual 10%, and a face visible enough
# to animate is still found at one of the scales.
SCALE_STEP = 1.15


@cache
def _cascade() -> cv2.CascadeClassifier:
    path = cv2.data.haarcascades + "haarcascade_frontalface_default.xml"
    cascade = cv2.CascadeClassifier(path)
    if cascade.empty():  # a broken OpenCV install; say so instead of finding "no face"
        raise RuntimeError(f"OpenCV's face cascade could not be loaded from {path}")
    return cascade


def detect(rgb: np.ndarray, scale_step: float = SCALE_STEP) -> list[Box]:
    """Faces in an RGB frame, largest first, in that frame's pixel coordinates."""
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    gray = cv2.equalizeHist(gray)
    found = _cascade().detectMultiScale(
        gray, scaleFactor=scale_step, minNeighbors=5, minSize=(MIN_FACE_PX, MIN_FACE_PX)
    )
    boxes = [tuple(int(v) for v in b) for b in (found if len(found) else [])]
    return sorted(boxes, key=lambda b: b[2] * b[3], reverse=True)  # type: ignore[return-value]


def scale_box(box: Box, factor: float) -> Box:
    x, y, w, h = box
    return (round(x * factor), round(y * factor), round(w * factor), round(h * factor))

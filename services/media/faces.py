"""Frontal faces with OpenCV's bundled Haar cascade (opencv-python-headless 4.x ships it;
nothing to download): the raw cascade, whose boxes are proposals. It also fires on
face-like texture (beside a 512-px portrait's model shuttle its false box was the largest),
so nothing counts or places faces with it directly: services.face.landmarks `Landmarker.faces`
confirms each box with the landmark model, and services.face.search gives the media checks,
fixes, thumbnails and the engine that answer. It lives there because the landmark module
builds on this one.
"""

from __future__ import annotations

import importlib
import threading
from functools import cache
from typing import Generic, NamedTuple, TypeVar

import cv2
import numpy as np

# The cascade was trained on 24x24 windows: smaller faces cannot be found at this scale.
MIN_FACE_PX = 24
# 15% between window sizes: half the work of OpenCV's usual 10%, and a face visible enough
# to animate is still found at one of the scales.
SCALE_STEP = 1.15

N = TypeVar("N", int, float)


class Box(NamedTuple, Generic[N]):
    """An axis-aligned rectangle in image pixels, (x, y) its top-left corner: a face found,
    or a window cut from a frame. A tuple, so it unpacks as x, y, w, h; `Box[int]` counts
    whole pixels, `Box[float]` was scaled from another image's."""

    x: N
    y: N
    w: N
    h: N

    @property
    def cx(self) -> float:
        return self.x + self.w / 2

    @property
    def cy(self) -> float:
        return self.y + self.h / 2


# One classifier serves every thread, one call at a time: sharing it between concurrent calls
# on images of different sizes gives wrong boxes or raises (its buffers are per object), and a
# call already runs on every core, so a classifier per thread (~10 ms to load) would gain nothing.
_cascade_lock = threading.Lock()


@cache
def _cascade() -> cv2.CascadeClassifier:
    # The wheel's cascades folder, found by module name rather than as `cv2.data`: cv2's
    # loader swaps sys.modules["cv2"] for its native module mid-import, so a thread importing
    # cv2 while another does can bind that native module, which has every function but not
    # the package's Python parts (seen in the app: the warm-up thread and a page's first run;
    # every face search then failed and valid uploads read as damaged).
    path = importlib.import_module("cv2.data").haarcascades + "haarcascade_frontalface_default.xml"
    cascade = cv2.CascadeClassifier(path)
    if cascade.empty():  # a broken OpenCV install; say so instead of finding "no face"
        raise RuntimeError(f"OpenCV's face cascade could not be loaded from {path}")
    return cascade


def detect_gray(gray: np.ndarray, scale_step: float = SCALE_STEP) -> list[Box[int]]:
    """Faces in a grey image, largest first, in that image's pixels."""
    gray = cv2.equalizeHist(np.ascontiguousarray(gray))
    with _cascade_lock:
        found = _cascade().detectMultiScale(
            gray, scaleFactor=scale_step, minNeighbors=5, minSize=(MIN_FACE_PX, MIN_FACE_PX)
        )
    boxes = [Box(int(x), int(y), int(w), int(h)) for x, y, w, h in found]
    # sorted() is stable, so of equally large faces the cascade's first comes first
    return sorted(boxes, key=lambda b: b.w * b.h, reverse=True)


def detect(rgb: np.ndarray, scale_step: float = SCALE_STEP) -> list[Box[int]]:
    """Faces in an RGB frame, largest first, in that frame's pixel coordinates."""
    return detect_gray(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), scale_step)


def scale_box(box: Box[int], factor: float) -> Box[int]:
    """`box` in an image `factor` times the size, rounded to whole pixels."""
    x, y, w, h = box
    return Box(round(x * factor), round(y * factor), round(w * factor), round(h * factor))

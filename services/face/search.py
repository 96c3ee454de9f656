"""Faces that are faces, for everything that counts or places them: the media checks, fixes
and thumbnails (`detect`) and the local engine's flow fallback (`find_face`).

Both answer `Landmarker.faces` (services.face.landmarks): OpenCV's Haar cascade proposes boxes
and the landmark model confirms each (a false box beside the face, which the cascade can rank
largest, is dropped). Boxes stay the cascade's, largest first, in the same pixels as before, so
callers compare their heights with a frame's as they did.

Why here and not in services.media.faces: the landmark module builds on that raw cascade, so
the cascade cannot import the model; this module sits above both. The media callers share a
few Landmarkers (an interpreter is not thread-safe; the model bytes load once per process):
each call takes an idle one or builds one (~6 ms after the first), and gives it back.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import numpy as np

from services.face.landmarks import Image, Landmarker
from services.media.faces import SCALE_STEP, Box

_idle: list[Landmarker] = []
_idle_lock = threading.Lock()


def detect(rgb: np.ndarray, scale_step: float = SCALE_STEP) -> list[Box[int]]:
    """The faces in an RGB frame, largest first, in its pixels (searched at its own size)."""
    with _landmarker() as landmarker:
        found = landmarker.faces(rgb, sides=(max(rgb.shape[:2]),), scale_step=scale_step)
    return [f.box for f in found]


def find_face(image: Image, landmarker: Landmarker, scale_step: float) -> Box[float] | None:
    """The largest face in `image`, searched on the landmarker's `detect_sides` copies, or
    None. The engine passes its own landmarker (its presence threshold, its thread)."""
    found = landmarker.faces(image, scale_step=scale_step)
    if not found:
        return None
    x, y, w, h = found[0].box
    return Box(float(x), float(y), float(w), float(h))


@contextlib.contextmanager
def _landmarker() -> Iterator[Landmarker]:
    with _idle_lock:
        landmarker = _idle.pop() if _idle else None
    if landmarker is None:
        landmarker = Landmarker()
    try:
        yield landmarker
    finally:
        with _idle_lock:
            _idle.append(landmarker)

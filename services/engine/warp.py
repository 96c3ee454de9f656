"""The character side: retarget a driving motion field to the character's face and warp it.

Only the face crop of the picture is ever touched. Inside it the field is faded to zero by a
feathered elliptical weight before the crop's edge, so the warp is continuous (nothing tears)
and every pixel outside the crop stays the character's own.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from services.engine.framing import Square

# The weight is 1 inside this radius and 0 beyond the outer one; radii are fractions of the
# crop's half side, measured from its centre.
_FULL_RADIUS = 0.55
_ZERO_RADIUS = 0.95


def _smoothstep(t: np.ndarray) -> np.ndarray:
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3 - 2 * t)


class _Plane:
    """One plane's region of interest with its precomputed grid, weight and field sampling."""

    def __init__(
        self,
        src: np.ndarray,
        dst: np.ndarray,
        roi: tuple[int, int, int, int],
        step: int,
        square: Square,
        res: int,
    ) -> None:
        x0, y0, x1, y1 = roi
        self.src, self.dst_roi = src, dst[y0:y1, x0:x1]
        self.size = (x1 - x0, y1 - y0)
        # plane pixel centres in full-resolution edge coordinates (pixel i spans [i, i+1));
        # a chroma sample sits in the middle of its 2×2 luma block
        off = 0.5 * step
        xs = np.arange(x0, x1, dtype=np.float32) * step + off
        ys = np.arange(y0, y1, dtype=np.float32) * step + off
        u = (xs - square.cx) / (square.side / 2)
        v = (ys - square.cy) / (square.side / 2)
        radius = np.sqrt(u[None, :] ** 2 + v[:, None] ** 2)
        weight = _smoothstep((_ZERO_RADIUS - radius) / (_ZERO_RADIUS - _FULL_RADIUS))
        # field (flow px) → this plane's px, faded by the weight
        self.gain = (weight * (square.side / res / step)).astype(np.float32)[..., None]
        grid = np.empty((y1 - y0, x1 - x0, 2), np.float32)
        grid[..., 0] = np.arange(x0, x1, dtype=np.float32)[None, :]
        grid[..., 1] = np.arange(y0, y1, dtype=np.float32)[:, None]
        self.grid = grid
        k = res / square.side
        # plane pixel → field pixel (inverse map for warpAffine)
        self.to_field = np.float32(
            [
                [step * k, 0, (x0 * step + off - square.x0) * k - 0.5],
                [0, step * k, (y0 * step + off - square.y0) * k - 0.5],
            ]
        )

    def warp(self, field: np.ndarray) -> None:
        m = cv2.warpAffine(
            field,
            self.to_field,
            self.size,
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REPLICATE,
        )
        np.multiply(m, self.gain, out=m)
        np.add(m, self.grid, out=m)
        self.dst_roi[...] = cv2.remap(
            self.src, m, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )


class FaceWarper:
    """Holds the output frame (I420); `apply` rewrites only the face crop in it."""

    def __init__(self, i420: np.ndarray, size: tuple[int, int], square: Square, res: int) -> None:
        w, h = size
        self._src = i420.copy()
        self.frame = i420.copy()
        x0 = max(0, math.floor(square.x0 / 2) * 2)
        y0 = max(0, math.floor(square.y0 / 2) * 2)
        x1 = min(w, math.ceil((square.x0 + square.side) / 2) * 2)
        y1 = min(h, math.ceil((square.y0 + square.side) / 2) * 2)
        self.roi = (x0, y0, x1, y1)
        half = (x0 // 2, y0 // 2, x1 // 2, y1 // 2)
        self._planes = [
            _Plane(
                _plane(self._src, w, h, i),
                _plane(self.frame, w, h, i),
                self.roi if i == 0 else half,
                1 if i == 0 else 2,
                square,
                res,
            )
            for i in range(3)
        ]

    def apply(self, field: np.ndarray) -> np.ndarray:
        for p in self._planes:
            p.warp(field)
        return self.frame


def _plane(i420: np.ndarray, w: int, h: int, index: int) -> np.ndarray:
    """A view of plane `index` (Y, U, V) of an (h*3/2, w) I420 array."""
    flat = i420.reshape(-1)
    if index == 0:
        return flat[: w * h].reshape(h, w)
    q = (w // 2) * (h // 2)
    start = w * h + (index - 1) * q
    return flat[start : start + q].reshape(h // 2, w // 2)

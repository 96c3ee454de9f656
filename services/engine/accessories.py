"""Rigid accessories: a pair of glasses in the character picture moves with the head only.

The face warp bends everything between its nodes, and glasses sit exactly where it bends
most: between the lids (which close) and the brows (which rise). So the frames are found once
in the picture and, each frame, laid back over the warped face moved by the head's similarity
alone: brows rise behind them, lids close inside the lenses, the frames stay straight.

Finding them: thin dark structures (a black-hat filter a little wider than a frame's bar)
around the eyes, not the eyes or brows themselves, kept only where a connected structure
encircles an eye's middle and spans most of the eye — a rim. Hair at the temples, wrinkles
and lashes do not go round the eye; a face without glasses gets no layer.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from services.face.regions import (
    BROWS,
    LEFT_EYE_CORNERS,
    LEFT_LID_PAIRS,
    RIGHT_EYE_CORNERS,
    RIGHT_LID_PAIRS,
)

# black-hat kernel side and darkness threshold (luma levels) for a frame's bar
_BAR_IOD = 0.2
_DARK = 50
# a rim's bounding box spans at least this much of the eye's width (corner to corner)
_RIM_SPAN = 1.1
# the fill's grain: detail finer than this blur (px) is taken from the mirrored skin
_GRAIN_SIGMA = 2.0


class GlassesLayer:
    """Where the frames are in the picture: a weight per pixel of `box`."""

    def __init__(self, mask: np.ndarray, box: tuple[int, int, int, int]) -> None:
        self._mask, self._box = mask, box

    @property
    def mask(self) -> np.ndarray:
        """Weight per picture pixel (luma resolution) inside `box` (x0, y0, x1, y1)."""
        return self._mask

    @property
    def box(self) -> tuple[int, int, int, int]:
        return self._box


def find_glasses(gray: np.ndarray, points: np.ndarray, iod: float) -> GlassesLayer | None:
    """The glasses in a picture (luma, its face's 468 landmarks as (x, y)), or None."""
    h, w = gray.shape
    xy = points[:, :2].astype(np.float64)
    eyes = []
    for corners in (RIGHT_EYE_CORNERS, LEFT_EYE_CORNERS):
        a, b = xy[corners[0]], xy[corners[1]]
        eyes.append(((a + b) / 2, float(np.linalg.norm(a - b))))
    # the band looked at: round both eyes, from above the brows to well below the eyes
    lo = xy[[c for cs in (RIGHT_EYE_CORNERS, LEFT_EYE_CORNERS) for c in cs]].min(axis=0)
    hi = xy[[c for cs in (RIGHT_EYE_CORNERS, LEFT_EYE_CORNERS) for c in cs]].max(axis=0)
    brow_top = float(xy[list(BROWS), 1].min())
    x0 = max(0, math.floor(lo[0] - 0.45 * iod))
    x1 = min(w, math.ceil(hi[0] + 0.45 * iod))
    y0 = max(0, math.floor(brow_top))
    y1 = min(h, math.ceil(hi[1] + 0.55 * iod))
    if x1 - x0 < 8 or y1 - y0 < 8:
        return None
    roi = np.ascontiguousarray(gray[y0:y1, x0:x1])
    k = max(3, round(_BAR_IOD * iod) | 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    dark = cv2.morphologyEx(roi, cv2.MORPH_BLACKHAT, kernel) > _DARK
    # not the eyes (lid contours, widened) nor the brows
    keep_out: np.ndarray = np.zeros(roi.shape, np.uint8)
    off = np.array([x0, y0], np.float64)
    for pairs in (RIGHT_LID_PAIRS, LEFT_LID_PAIRS):
        ring = [p[0] for p in pairs] + [p[1] for p in reversed(pairs)]
        poly = np.rint(xy[ring] - off).astype(np.int32)
        cv2.fillPoly(keep_out, [poly], 1)
    grow = max(1, round(0.08 * iod))
    keep_out = cv2.dilate(
        keep_out, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1,) * 2)
    )
    eyes_out = keep_out.copy()
    half = len(BROWS) // 2
    for brow in (BROWS[:half], BROWS[half:]):
        line = np.rint(xy[list(brow)] - off).astype(np.int32)
        cv2.polylines(keep_out, [line], True, 1, max(1, round(0.08 * iod)))
    found = dark & (keep_out == 0)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(found.astype(np.uint8), connectivity=8)
    rims = np.zeros(n, bool)
    for centre, width in eyes:
        cx, cy = centre - off
        for i in range(1, n):
            bx, by, bw, bh = stats[i, :4]
            if bx <= cx <= bx + bw and by <= cy <= by + bh and bw >= _RIM_SPAN * width:
                rims[i] = True
    if not rims.any():
        return None
    # the whole frame: the dark structures joined to a rim, also where a bar crosses a brow
    # (the brow was kept out only so that it could not pass for a rim)
    joined = (dark & (eyes_out == 0)).astype(np.uint8)
    _, whole = cv2.connectedComponents(joined, connectivity=8)
    keep = np.unique(whole[rims[labels]])
    mask: np.ndarray = (np.isin(whole, keep[keep > 0])).astype(np.uint8) * 255
    mask = cv2.dilate(mask, np.ones((3, 3), np.uint8))
    weight = cv2.GaussianBlur(mask.astype(np.float32) / 255, (3, 3), 0)
    return GlassesLayer(weight, (x0, y0, x1, y1))


def without(i420: np.ndarray, size: tuple[int, int], layer: GlassesLayer) -> np.ndarray:
    """The I420 picture with the frames painted out: what the face warp bends, so no piece of
    a frame is dragged along by a lid or a brow. The fill shows where a brow rises off a bar
    or a lid moves inside a rim, so it is skin with its grain (`_fill`), not a smooth smear."""
    w, h = size
    out = i420.copy()
    x0, y0, x1, y1 = layer.box
    # only where the frames are laid back at full weight: none of the fill shows round them
    hole: np.ndarray = (layer.mask > 0.5).astype(np.uint8)
    y = out[:h].reshape(h, w)
    y[y0:y1, x0:x1] = _fill(y[y0:y1, x0:x1], hole)
    q = (w // 2) * (h // 2)
    flat = out.reshape(-1)
    cx0, cy0, cx1, cy1 = x0 // 2, y0 // 2, -(-x1 // 2), -(-y1 // 2)
    small = cv2.resize(hole, (cx1 - cx0, cy1 - cy0), interpolation=cv2.INTER_NEAREST)
    for k in range(2):
        plane = flat[w * h + k * q : w * h + (k + 1) * q].reshape(h // 2, w // 2)
        plane[cy0:cy1, cx0:cx1] = _fill(plane[cy0:cy1, cx0:cx1], small)
    return out


def _fill(plane: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """`plane` with its `hole` pixels filled: a smooth inpainting's shading plus the fine
    grain of what lies beside the hole, mirrored across each run of hole pixels along the
    rows and along the columns, each half of the run from its own edge. The two mirrors are
    mixed by how short their runs are (a bar is crossed along the columns, a rim's side
    along the rows). What a mirror would fetch from another hole comes from the smooth
    inpainting."""
    base = cv2.inpaint(np.ascontiguousarray(plane), hole, 3, cv2.INPAINT_TELEA).astype(np.float32)
    detail = base - cv2.GaussianBlur(base, (0, 0), _GRAIN_SIGMA)
    acc = np.zeros(plane.shape, np.float32)
    weight = np.zeros(plane.shape, np.float32)
    for axis in (0, 1):
        img = detail if axis == 1 else detail.T
        mask = hole if axis == 1 else hole.T
        got = np.zeros(img.shape, np.float32)
        run_len = np.zeros(img.shape, np.float32)
        n = img.shape[1]
        for r in np.flatnonzero(mask.any(axis=1)):
            line = np.concatenate(([0], mask[r].astype(np.int8), [0]))
            starts = np.flatnonzero(np.diff(line) == 1)
            ends = np.flatnonzero(np.diff(line) == -1)
            for a, b in zip(starts, ends, strict=True):
                k = np.arange(a, b)
                src = np.where(k - a < b - k, 2 * a - 1 - k, 2 * b - 1 - k)
                got[r, a:b] = img[r, np.clip(src, 0, n - 1)]
                run_len[r, a:b] = b - a
        if axis == 0:
            got, run_len = got.T, run_len.T
        wt = np.where(run_len > 0, 1.0 / np.maximum(run_len, 1.0) ** 2, 0.0).astype(np.float32)
        acc += wt * got
        weight += wt
    # only the grain is mirrored: mirrored whole, a lash or a lid line beside a thin rim
    # would be carried across it into the hole
    filled = base + np.where(weight > 0, acc / np.maximum(weight, 1e-9), 0.0)
    return np.where(hole > 0, np.clip(np.rint(filled), 0, 255), plane).astype(plane.dtype)

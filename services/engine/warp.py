"""The character side: retarget a driving motion field to the character's face and warp it.

The field lives on the face crop's grid (crop = `crop_factor` face boxes, the same framing as
the driving crop, which is what retargets motion from one face to the other). It is applied in
a wider region (`warp_factor` boxes; both in config.FramingConfig): with full strength over the
face (config.WarpConfig) — so the head moves as one piece — then faded to zero by a smooth
band before the region's edge. The warp is therefore continuous (nothing tears) and every
pixel outside the region stays the character's own.

Per plane the work is two OpenCV calls: the sampling map is built at flow resolution as
absolute coordinates (identity + weighted field), upsampled to the plane's region with one
warpAffine — bilinear interpolation reproduces the identity part exactly, because it is
affine — then cv2.remap samples the character. No full-size arithmetic in numpy.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from services.engine.config import WarpConfig
from services.engine.framing import Square


def _smoothstep(t: np.ndarray) -> np.ndarray:
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3 - 2 * t)


def face_weight(u: np.ndarray, v: np.ndarray, config: WarpConfig) -> np.ndarray:
    """Motion strength at crop-relative offsets (u, v) (fractions of the crop side): 1 inside
    the face ellipse, 0 beyond the fade circle, smooth along every ray between them."""
    ax, ay = config.face_axes
    d_in = np.sqrt((u / ax) ** 2 + (v / ay) ** 2)
    d_out = np.sqrt(u**2 + v**2) / config.fade_radius
    with np.errstate(divide="ignore", invalid="ignore"):
        along = (d_in - 1) / (d_in / d_out - 1)  # 0 at the ellipse, 1 at the circle
    along = np.where(d_in <= 1, 0.0, np.nan_to_num(along, nan=0.0))
    return _smoothstep(1 - along)


class _Plane:
    """One plane's region: where the padded flow grid lies in it, and how to sample it."""

    def __init__(
        self,
        src: np.ndarray,
        dst: np.ndarray,
        roi: tuple[int, int, int, int],
        step: int,
        crop: Square,
        res: int,
        pad: int,
    ) -> None:
        x0, y0, x1, y1 = roi
        self.src, self.dst_roi = src, dst[y0:y1, x0:x1]
        self.roi, self.step = roi, step
        self.size = (x1 - x0, y1 - y0)
        k = res / crop.side  # flow px per full-res px
        # Grid cell i (flow pixel p = i - pad) has its centre at full-res edge coordinate
        # crop.x0 + (p + 0.5) / k; in this plane's index coordinates, (that - step/2) / step.
        idx = np.arange(res + 2 * pad, dtype=np.float64) - pad
        gx = (crop.x0 + (idx + 0.5) / k - step / 2) / step
        gy = (crop.y0 + (idx + 0.5) / k - step / 2) / step
        self.identity = np.empty((idx.size, idx.size, 2), np.float32)
        self.identity[..., 0] = gx[None, :]
        self.identity[..., 1] = gy[:, None]
        # region pixel (j, i) → grid coordinates (an inverse map for warpAffine)
        a = step * k
        self.to_grid = np.array(
            [
                [a, 0, ((x0 + 0.5) * step - crop.x0) * k - 0.5 + pad],
                [0, a, ((y0 + 0.5) * step - crop.y0) * k - 0.5 + pad],
            ],
            dtype=np.float32,
        )
        self.scale = float(1 / (k * step))  # flow px → this plane's px

    def paint(
        self, weight: np.ndarray, box: tuple[int, int, int, int], amount: float, target: int
    ) -> None:
        """Pull this plane toward `target` by amount·weight inside grid box `box`."""
        a, cx, cy = float(self.to_grid[0, 0]), float(self.to_grid[0, 2]), float(self.to_grid[1, 2])
        gx, gy, gw, gh = box
        w, h = self.size
        # region pixels whose grid position falls in the box (one cell of margin)
        x0 = max(0, math.floor((gx - 1 - cx) / a))
        y0 = max(0, math.floor((gy - 1 - cy) / a))
        x1 = min(w, math.ceil((gx + gw + 1 - cx) / a))
        y1 = min(h, math.ceil((gy + gh + 1 - cy) / a))
        if x1 <= x0 or y1 <= y0:
            return
        m = np.array([[a, 0, cx + a * x0], [0, a, cy + a * y0]], np.float32)
        alpha = cv2.warpAffine(
            weight, m, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
        )
        roi = self.dst_roi[y0:y1, x0:x1]
        pix = roi.astype(np.float32)
        pix -= alpha * np.float32(amount) * (pix - np.float32(target))
        np.copyto(roi, pix, casting="unsafe")

    def overlay(
        self,
        source: np.ndarray,
        mask: np.ndarray,
        box: tuple[int, int, int, int],
        z: complex,
        t: complex,
    ) -> None:
        """Lay `source`'s pixels (this plane of another picture of the same size) in `box`
        (full-resolution x0, y0, x1, y1), weighted by `mask` (full resolution, the box's
        size), over the output moved by p ↦ z·p + t (full-resolution index coordinates);
        only inside this plane's region."""
        st = self.step
        bx0, by0 = box[0] // st, box[1] // st
        bx1, by1 = -(-box[2] // st), -(-box[3] // st)
        src = source[by0:by1, bx0:bx1]
        if src.size == 0:
            return
        weight = mask
        if st != 1 or mask.shape != src.shape:
            weight = cv2.resize(mask, (src.shape[1], src.shape[0]), interpolation=cv2.INTER_AREA)
        # the same similarity in this plane's index coordinates (sample centres move with
        # the plane's step)
        c = 0.5 + 0.5j
        shift = (z * (c * st - c) + t + c) / st - c
        b0 = complex(bx0, by0)
        h, w = src.shape
        corners = z * (b0 + np.array([0, w, h * 1j, w + h * 1j])) + shift
        rx0, ry0, rx1, ry1 = self.roi
        ox0 = max(rx0, math.floor(corners.real.min()))
        oy0 = max(ry0, math.floor(corners.imag.min()))
        ox1 = min(rx1, math.ceil(corners.real.max()) + 1)
        oy1 = min(ry1, math.ceil(corners.imag.max()) + 1)
        if ox1 <= ox0 or oy1 <= oy0:
            return
        move = z * b0 + shift - complex(ox0, oy0)
        m = np.array([[z.real, -z.imag, move.real], [z.imag, z.real, move.imag]], np.float32)
        size = (ox1 - ox0, oy1 - oy0)
        # past the box the source goes on as its edge: zeros there would bleed into the
        # edge as a dark, green line wherever the mask reaches the box's edge
        moved = cv2.warpAffine(
            src, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
        alpha = cv2.warpAffine(weight, m, size, flags=cv2.INTER_LINEAR)
        out = self.dst_roi[oy0 - ry0 : oy1 - ry0, ox0 - rx0 : ox1 - rx0]
        pix = out.astype(np.float32)
        pix += alpha * (moved.astype(np.float32) - pix)
        np.copyto(out, pix + 0.5, casting="unsafe")

    def warp(self, weighted: np.ndarray) -> None:
        """`weighted`: the faded field on the padded grid, in flow px."""
        grid = cv2.scaleAdd(weighted, self.scale, self.identity)
        m = cv2.warpAffine(
            grid,
            self.to_grid,
            self.size,
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REPLICATE,
        )
        # The stub types map2 as a required array; OpenCV takes None when map1 holds (x, y) pairs.
        cv2.remap(  # type: ignore[call-overload]
            self.src, m, None, cv2.INTER_LINEAR, dst=self.dst_roi, borderMode=cv2.BORDER_REPLICATE
        )


class FaceWarper:
    """Holds the output frame (I420); `apply` rewrites only the warped region in it."""

    def __init__(
        self,
        i420: np.ndarray,
        size: tuple[int, int],
        crop: Square,
        region: Square,
        res: int,
        config: WarpConfig,
    ) -> None:
        w, h = size
        self._size = size
        self._src = i420.copy()
        self.frame = i420.copy()
        self._res = res
        x0 = max(0, math.floor(region.x0 / 2) * 2)
        y0 = max(0, math.floor(region.y0 / 2) * 2)
        x1 = min(w, math.ceil((region.x0 + region.side) / 2) * 2)
        y1 = min(h, math.ceil((region.y0 + region.side) / 2) * 2)
        self.roi = (x0, y0, x1, y1)
        # grid cells beyond the crop so the whole region falls strictly inside the grid (a
        # clamped border would bend the identity part of the map)
        k = res / crop.side
        reach = max(crop.x0 - x0, crop.y0 - y0, x1 - crop.x0 - crop.side, y1 - crop.y0 - crop.side)
        self._pad = pad = max(0, math.ceil(reach * k)) + 2
        half = (x0 // 2, y0 // 2, x1 // 2, y1 // 2)
        self._planes = [
            _Plane(
                _plane(self._src, w, h, i),
                _plane(self.frame, w, h, i),
                self.roi if i == 0 else half,
                1 if i == 0 else 2,
                crop,
                res,
                pad,
            )
            for i in range(3)
        ]
        offsets = ((np.arange(res + 2 * pad, dtype=np.float64) - pad) + 0.5) / res - 0.5
        weight = face_weight(offsets[None, :], offsets[:, None], config).astype(np.float32)
        self._weight = np.repeat(weight[..., None], 2, axis=2)
        self._padded = np.zeros_like(self._weight)

    @property
    def grid(self) -> tuple[int, int]:
        """(res, pad): the padded grid is res + 2·pad cells a side, cell i's centre at flow
        pixel i − pad of the crop."""
        return self._res, self._pad

    def apply(self, field: np.ndarray) -> np.ndarray:
        """Warp the character by `field` (res×res×2, flow px) and return the output frame."""
        p = self._pad
        cv2.copyMakeBorder(field, p, p, p, p, cv2.BORDER_REPLICATE, dst=self._padded)
        return self.remap(cv2.multiply(self._padded, self._weight))

    def remap(self, padded: np.ndarray) -> np.ndarray:
        """Warp the character by a field already on the padded grid, used as it is (the mesh
        path's map is zero at its own fixed border), and return the output frame."""
        for plane in self._planes:
            plane.warp(padded)
        return self.frame

    def overlay(
        self,
        source: np.ndarray,
        mask: np.ndarray,
        box: tuple[int, int, int, int],
        z: complex,
        t: complex,
    ) -> None:
        """Lay the pixels of `source` (an I420 picture of the output's size) in `box`,
        weighted by `mask`, over the output moved by the similarity p ↦ z·p + t (a rigid
        accessory following the head; see accessories.py)."""
        w, h = self._size
        for i, plane in enumerate(self._planes):
            plane.overlay(_plane(source, w, h, i), mask, box, z, t)

    def paint(self, weight: np.ndarray, dark: float, desaturate: float) -> None:
        """Darken the output where `weight` (padded grid, 0..1) says: luma toward black by
        `dark`, chroma toward grey by `desaturate` — only over the weight's bounding box."""
        x, y, w, h = cv2.boundingRect((weight > 0.01).astype(np.uint8))
        if w == 0 or h == 0:
            return
        for i, plane in enumerate(self._planes):
            plane.paint(weight, (x, y, w, h), dark if i == 0 else desaturate, 16 if i == 0 else 128)


def _plane(i420: np.ndarray, w: int, h: int, index: int) -> np.ndarray:
    """A view of plane `index` (Y, U, V) of an (h*3/2, w) I420 array."""
    flat = i420.reshape(-1)
    if index == 0:
        return flat[: w * h].reshape(h, w)
    q = (w // 2) * (h // 2)
    start = w * h + (index - 1) * q
    return flat[start : start + q].reshape(h // 2, w // 2)

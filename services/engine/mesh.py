"""The landmark path's character side: a fold-safe piecewise-affine map from retargeted
landmarks, on the warp grid (warp.py upsamples and applies it to the I420 planes).

Nodes (image px, complex numbers x + iy):

- the mesh's landmarks (retarget.POINTS), placed by the Retargeter;
- a mouth gap: two rows of nodes on the character's inner-lip midline, one riding with the
  upper lip and one with the lower. Between the rows lies only what is new when the mouth
  opens wider than the character's own (zero area in the picture): that band is painted dark.
  Whatever the character shows between its lips (teeth) stays attached to its lip, unstretched;
- a row under each brow riding with it (the brow hair can lie below the model's lower brow
  contour; left in the band that stretches, it would zig-zag);
- a rigid ring around each eye, kept below the brows (moves with the head only): a blink
  stretches only the lid skin inside it;
- a ring around the face (the outline pushed out, moves with the head only);
- a fixed border at the warped square's edge: nothing outside it changes.

The triangulation (Delaunay, OpenCV's Subdiv2D) is made once on a reference layout of the
character's nodes where the lips, the gap rows and the lids are pulled a little apart, so a
closed mouth or eye has the same triangles as an open one. Each frame every triangle must keep
its reference orientation — with a fixed convex border that is what makes a piecewise-affine
map fold-free — and a triangle that would flip pulls its nodes back toward the head-only pose,
just as far as needed (see `_unfold`).

The map itself: each triangle's backward affine map (output → picture), a triangle index per
grid cell (fillConvexPoly), one gather of a per-triangle table. ~3 ms per frame, independent
of the video size.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from services.engine.config import MeshConfig
from services.engine.framing import Square
from services.engine.retarget import INDEX, POINTS, Pose
from services.face.regions import (
    BROW_PAIRS,
    FACE_OVAL,
    INNER_LIP_PAIRS,
    LEFT_EYE_CORNERS,
    LEFT_LID_PAIRS,
    LIP_CORNERS_INNER,
    RIGHT_EYE_CORNERS,
    RIGHT_LID_PAIRS,
)

_SHIFT = 4  # fillConvexPoly's fractional bits
_BORDER_PER_SIDE = 4
_EYE_RING_NODES = 10
# how far apart the reference layout pulls lips, gap rows and lids (inter-ocular distances)
_REF_LIPS = 0.04
_REF_LIDS = 0.03
_MAX_UNFOLD_STEPS = 4
# the row under each brow, as a share of the brow's own height below its lower contour
_BROW_UNDER = 0.6
# the eye ring keeps at least this much (inter-ocular distances) above and below the lids
_LID_ROOM = 0.05
# ...and round every lid point at least this much (a lid near a corner, where the ring is low)
_RING_EDGE_ROOM = 0.03
# a triangle with less than this share of its picture area left is not drawn
_SQUEEZED = 0.03


def _area2(p: np.ndarray) -> np.ndarray:
    """Twice the signed areas of triangles (T, 3) of complex points (positive: clockwise on
    screen, i.e. counter-clockwise in x-right/y-down maths)."""
    a, b, c = p[:, 0], p[:, 1], p[:, 2]
    return ((b - a).conjugate() * (c - a)).imag


class FaceMesh:
    def __init__(
        self,
        neutral: np.ndarray,
        iod: float,
        region: Square,
        grid: tuple[int, int],
        config: MeshConfig,
    ) -> None:
        """`neutral`: the character's POINTS (complex, image px); `region`: the warped square
        (its edge is the fixed border); `grid`: (res, pad) of the warp grid over `region`."""
        self._cfg = config
        res, pad = grid
        self._k = res / region.side
        self._origin = complex(region.x0, region.y0)
        self._pad = pad
        self._size = res + 2 * pad
        eye_line = complex(
            neutral[INDEX[LEFT_EYE_CORNERS[0]]] - neutral[INDEX[RIGHT_EYE_CORNERS[0]]]
        )
        down = eye_line / max(abs(eye_line), 1e-9) * 1j
        self._down = down

        n_lm = len(POINTS)
        up_idx = np.array([INDEX[u] for u, _ in INNER_LIP_PAIRS])
        lo_idx = np.array([INDEX[lo] for _, lo in INNER_LIP_PAIRS])
        self._up_idx, self._lo_idx = up_idx, lo_idx
        mid = (neutral[up_idx] + neutral[lo_idx]) / 2
        self._mid_from_up = mid - neutral[up_idx]
        self._mid_from_lo = mid - neutral[lo_idx]
        n_gap = len(INNER_LIP_PAIRS)
        self._gap_a = np.arange(n_lm, n_lm + n_gap)
        self._gap_b = np.arange(n_lm + n_gap, n_lm + 2 * n_gap)

        # a row under each brow riding with it: the model's lower brow contour can sit on
        # the hair or above it, and hair left in the band that stretches would zig-zag
        self._brow_up = np.array([INDEX[u] for u, _ in BROW_PAIRS])
        self._brow_lo = np.array([INDEX[lo] for _, lo in BROW_PAIRS])
        under = neutral[self._brow_lo] + _BROW_UNDER * (
            neutral[self._brow_lo] - neutral[self._brow_up]
        )
        self._under_from_lo = under - neutral[self._brow_lo]
        rigid: list[np.ndarray] = []
        for corners, pairs in (
            (RIGHT_EYE_CORNERS, RIGHT_LID_PAIRS),
            (LEFT_EYE_CORNERS, LEFT_LID_PAIRS),
        ):
            outer, inner = (neutral[INDEX[c]] for c in corners)
            centre = (outer + inner) / 2
            half_w = abs(outer - inner) / 2 * config.eye_ring_x
            lids = np.array([neutral[INDEX[i]] for pair in pairs for i in pair])
            across = np.abs(((lids - centre) * down.conjugate()).real).max()
            half_h = across + config.eye_ring_margin * iod
            # ...but well below the brow: the band between them is what stretches
            above = ((centre - under) * down.conjugate()).real
            brow_side = np.abs(under - centre) < 2 * abs(outer - inner)
            if brow_side.any():
                room = 0.7 * float(above[brow_side].min())
                half_h = max(across + _LID_ROOM * iod, min(half_h, room))
            axis = eye_line / max(abs(eye_line), 1e-9)
            # ...and round every lid point, not only the highest: lids fitted to a drawn eye
            # reach out near the corners, where the oval is low
            rel = (lids - centre) * axis.conjugate()
            inner = math.cos(math.pi / _EYE_RING_NODES)  # the ring's sides cut inside the oval
            spread = np.sqrt(np.clip(1 - (rel.real / (inner * half_w)) ** 2, 0.1, 1.0))
            half_h = max(
                half_h, float(((np.abs(rel.imag) + _RING_EDGE_ROOM * iod) / (inner * spread)).max())
            )
            a = np.linspace(0, 2 * math.pi, _EYE_RING_NODES, endpoint=False)
            rigid.append(centre + axis * (half_w * np.cos(a) + 1j * half_h * np.sin(a)))
        oval = neutral[[INDEX[p] for p in FACE_OVAL]]
        centre = complex(oval.mean())
        rigid.append(centre + config.ring_factor * (oval[::2] - centre))
        rigid_nodes = np.concatenate(rigid)
        # the border, half a grid cell inside the warped square
        inset = 0.5 / self._k
        x0, y0 = region.x0 + inset, region.y0 + inset
        x1, y1 = region.x0 + region.side - inset, region.y0 + region.side - inset
        t = np.linspace(0, 1, _BORDER_PER_SIDE, endpoint=False)
        border = np.concatenate(
            [
                x0 + (x1 - x0) * t + 1j * y0,
                x1 + 1j * (y0 + (y1 - y0) * t),
                x1 - (x1 - x0) * t + 1j * y1,
                x0 + 1j * (y1 - (y1 - y0) * t),
            ]
        )
        rigid_end = n_lm + 2 * n_gap + len(rigid_nodes)
        self._border = slice(rigid_end, rigid_end + len(border))
        self._under = slice(self._border.stop, self._border.stop + len(under))
        src = np.concatenate([neutral, mid, mid, rigid_nodes, border, under])
        self._src = src

        # the reference layout: closed lips, gap rows and lids pulled apart just enough for
        # Delaunay to put triangles between them (an open pair is left as it is)
        ref = src.copy()
        for ups, los, gap in (
            (up_idx, lo_idx, _REF_LIPS),
            *(
                (
                    np.array([INDEX[u] for u, _ in pairs]),
                    np.array([INDEX[lo] for _, lo in pairs]),
                    _REF_LIDS,
                )
                for pairs in (RIGHT_LID_PAIRS, LEFT_LID_PAIRS)
            ),
        ):
            open_ = ((src[los] - src[ups]) * down.conjugate()).real
            push = np.maximum(0.0, gap * iod - open_) / 2 * down
            ref[ups] -= push
            ref[los] += push
        quarter = ((ref[lo_idx] - ref[up_idx]) * down.conjugate()).real / 4 * down
        ref[self._gap_a] = mid - quarter / 2
        ref[self._gap_b] = mid + quarter / 2
        tri = _delaunay(ref)
        flip = _area2(ref[tri]) < 0
        tri[flip] = tri[flip][:, ::-1]
        self._tri = tri
        self._ref_area = _area2(ref[tri])
        # the mouth's inside: triangles whose corners are all inner-lip or gap nodes
        mouth = np.zeros(len(src), bool)
        mouth[up_idx] = mouth[lo_idx] = True
        mouth[[INDEX[c] for c in LIP_CORNERS_INNER]] = True
        mouth[self._gap_a] = mouth[self._gap_b] = True
        self._mouth_tri = mouth[tri].all(axis=1)
        self._src_area2 = _area2(src[tri])
        self._src_area = np.abs(self._src_area2)
        self._g_src = self._to_grid(src)
        ys, xs = np.mgrid[0 : self._size, 0 : self._size]
        self._gx, self._gy = xs.astype(np.float32), ys.astype(np.float32)
        self._ids = np.empty((self._size, self._size), np.int32)

    def _to_grid(self, p: np.ndarray) -> np.ndarray:
        """Image px (index coordinates) → grid cell coordinates (cell i's centre at i)."""
        return (p + (0.5 + 0.5j) - self._origin) * self._k - (0.5 + 0.5j) + self._pad * (1 + 1j)

    def nodes(self, pose: Pose) -> np.ndarray:
        """Every node's place this frame (complex image px), fold-free."""
        head = pose.z * self._src + pose.t
        head[self._border] = self._src[self._border]
        dst = head.copy()
        dst[: len(POINTS)] = pose.points
        a = pose.points[self._up_idx] + pose.z * self._mid_from_up
        b = pose.points[self._lo_idx] + pose.z * self._mid_from_lo
        crossed = ((b - a) * self._down.conjugate()).real < 0
        a[crossed] = b[crossed] = (a[crossed] + b[crossed]) / 2
        dst[self._gap_a], dst[self._gap_b] = a, b
        dst[self._under] = pose.points[self._brow_lo] + pose.z * self._under_from_lo
        return self._unfold(dst, head)

    def _unfold(self, dst: np.ndarray, head: np.ndarray) -> np.ndarray:
        """Pull the nodes of triangles that would flip back toward the head-only pose (where
        every triangle is as in the picture), just far enough: each node moves to the
        largest share t of its expression at which its triangles keep their orientation.
        t changes continuously with the pose, so a face that nears a fold slows down
        rather than jumps. A collapsed triangle (a shut eye, a closed mouth) is allowed."""
        # a triangle already turned over in the picture (the reference layout differs from it
        # near closed lips) may stay as turned as it is there
        tol = np.minimum(-1e-3 * np.abs(self._ref_area), 1.2 * self._src_area2)
        tri = self._tri
        for _ in range(_MAX_UNFOLD_STEPS):
            bad = _area2(dst[tri]) < tol
            if not bad.any():
                return dst
            t = _safe_share(head[tri[bad]], dst[tri[bad]] - head[tri[bad]], tol[bad])
            share = np.ones(len(dst))
            np.minimum.at(share, tri[bad].ravel(), np.repeat(t, 3))
            dst = head + share * (dst - head)
        bad = _area2(dst[tri]) < tol
        if bad.any():  # what is left goes all the way back to the head's pose
            nodes = np.unique(tri[bad])
            dst[nodes] = head[nodes]
        if (_area2(dst[tri]) < tol).any():
            return self._src.copy()
        return dst

    def field(self, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """The backward map for node places `dst` as a displacement field (grid cells,
        (size, size, 2) float32: output cell q samples the picture at q + field(q)), and the
        mouth-interior paint weight per cell (None when nothing is painted)."""
        g = self._to_grid(dst)
        tri = self._tri
        p = g[tri]  # (T, 3)
        area = _area2(p)
        # A triangle squeezed to almost nothing (a shut eye's inside) is not drawn: drawn, its
        # edge line would sample what it squeezed (the iris, a dark dot between closed lids)
        good = area > 1e-6 + _SQUEEZED * self._src_area * self._k**2
        s = self._g_src[tri]
        # the backward affine of each triangle: solve [x y 1]·coef = src for its 3 corners
        d = np.stack([p.real, p.imag, np.ones_like(p.real)], axis=2)  # (T, 3, 3)
        d[~good] = np.eye(3)
        inv = np.linalg.inv(d)  # (T, 3, 3)
        cx = np.einsum("tij,tj->ti", inv, s.real)  # (T, 3): src x = cx·[x, y, 1]
        cy = np.einsum("tij,tj->ti", inv, s.imag)
        ids = self._ids
        ids.fill(-1)
        pts = np.stack([p.real, p.imag], axis=2) * (1 << _SHIFT)
        pts = np.rint(pts).astype(np.int32)
        for t in np.flatnonzero(good):
            cv2.fillConvexPoly(ids, pts[t], int(t), cv2.LINE_8, _SHIFT)
        # Per triangle: the backward affine map's coefficients, then the picture-side box each
        # of its cells samples inside (exact for cells inside the triangle; a sliver's huge
        # coefficients, or a cell its drawn edge covers just outside it, cannot fetch a pixel
        # from far away). The last row serves cells outside every triangle (index -1): they
        # map to themselves. One gather of the whole table per cell.
        table = np.empty((len(tri) + 1, 10), np.float32)
        table[:-1, 0:3], table[:-1, 3:6] = cx, cy
        table[:-1, 6], table[:-1, 7] = s.real.min(axis=1), s.real.max(axis=1)
        table[:-1, 8], table[:-1, 9] = s.imag.min(axis=1), s.imag.max(axis=1)
        table[-1] = (1, 0, 0, 0, 1, 0, -np.inf, np.inf, -np.inf, np.inf)
        g = table.take(ids, axis=0)
        gx, gy = self._gx, self._gy
        out = np.empty((self._size, self._size, 2), np.float32)
        for k, (c0, lo, grid) in enumerate(((0, 6, gx), (3, 8, gy))):
            v = g[..., c0] * gx
            v += g[..., c0 + 1] * gy
            v += g[..., c0 + 2]
            np.clip(v, g[..., lo], g[..., lo + 1], out=v)
            np.subtract(v, grid, out=out[..., k])
        paint: np.ndarray | None = None
        mouth = self._mouth_tri & good
        if mouth.any():
            new = np.zeros(len(tri) + 1, np.float32)
            dst_area = np.abs(area[mouth]) / self._k**2
            new[:-1][mouth] = np.clip(1 - self._src_area[mouth] / np.maximum(dst_area, 1e-9), 0, 1)
            if new.max() > 0.02:
                paint = cv2.GaussianBlur(new.take(ids), (3, 3), 0)
        return out, paint


def _safe_share(h: np.ndarray, d: np.ndarray, tol: np.ndarray) -> np.ndarray:
    """For triangles with corners h + t·d (T, 3), the largest t in [0, 1] up to which twice
    the signed area stays ≥ tol (it does at t = 0), with a little margin."""
    a, c = h[:, 1] - h[:, 0], h[:, 2] - h[:, 0]
    b, e = d[:, 1] - d[:, 0], d[:, 2] - d[:, 0]

    def cross(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        return (u.conjugate() * v).imag

    # area(t) = k0 + k1·t + k2·t²; the first t where it reaches tol
    k0, k1, k2 = cross(a, c) - tol, cross(a, e) + cross(b, c), cross(b, e)
    t = np.ones(len(h))
    with np.errstate(divide="ignore", invalid="ignore"):
        disc = np.sqrt(np.maximum(k1 * k1 - 4 * k2 * k0, 0.0))
        roots = np.stack([(-k1 - disc) / (2 * k2), (-k1 + disc) / (2 * k2), -k0 / k1], axis=1)
    quad = np.abs(k2) > 1e-12
    roots[quad, 2] = np.inf
    roots[~quad, :2] = np.inf
    roots[~np.isfinite(roots) | (roots <= 0)] = np.inf
    t = np.minimum(t, roots.min(axis=1) * 0.9)
    return np.where(k0 < 0, 0.0, t)


def _delaunay(points: np.ndarray) -> np.ndarray:
    """Delaunay triangles of complex points as (T, 3) node indices."""
    x0, y0 = float(points.real.min()) - 2, float(points.imag.min()) - 2
    x1, y1 = float(points.real.max()) + 2, float(points.imag.max()) + 2
    sub = cv2.Subdiv2D(
        (math.floor(x0), math.floor(y0), math.ceil(x1 - x0) + 1, math.ceil(y1 - y0) + 1)
    )
    for p in points:
        sub.insert((float(p.real), float(p.imag)))
    tris = np.asarray(sub.getTriangleList(), np.float64).reshape(-1, 3, 2)
    corners = tris[..., 0] + 1j * tris[..., 1]
    dist = np.abs(corners[..., None] - points[None, None, :].astype(np.complex64))
    nearest = dist.argmin(axis=2)
    ok = (dist.min(axis=2) < 1e-2).all(axis=1)
    tri = nearest[ok]
    distinct = (tri[:, 0] != tri[:, 1]) & (tri[:, 1] != tri[:, 2]) & (tri[:, 0] != tri[:, 2])
    return np.ascontiguousarray(tri[distinct])

"""What the character's and the driving face's eyes look like in pixels, apart from the
landmarks: the model's lid contour can miss an eye (glasses pull it down, a drawing is larger
than the model's idea of an eye) and blurs a wink into both eyes. Used by retarget.py.

- `eye_levels`: each eye's dark and light levels (a shut eye loses its dark iris);
- `iris_tops`: how high each eye's dark middle reaches (an upper lid below it leaves iris);
- `drawn_eye_reach`: how far a drawn eye reaches past each lid point.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from services.face.regions import (
    LEFT_EYE_CORNERS,
    LEFT_LID_PAIRS,
    RIGHT_EYE_CORNERS,
    RIGHT_LID_PAIRS,
)

_PATCH = (24, 12)  # eye patch, along and across the eye line


def eye_levels(luma: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Per eye (subject's right, left): the dark and light levels (20th and 80th
    percentiles of luma) of a patch spanning the eye corner to corner, half as tall."""
    out = np.empty((2, 2))
    w_px, h_px = _PATCH
    for k, (a, b) in enumerate((RIGHT_EYE_CORNERS, LEFT_EYE_CORNERS)):
        pa, pb = points[a, :2].astype(np.float64), points[b, :2].astype(np.float64)
        along = pb - pa
        width = float(np.hypot(*along)) or 1.0
        u = along / width
        v = np.array([-u[1], u[0]])
        # patch pixel (i, j) → image: pa + u·i·width/W + v·(j·0.5·width/H − 0.25·width)
        m = np.array(
            [
                [u[0] * width / w_px, v[0] * 0.5 * width / h_px, pa[0] - v[0] * 0.25 * width],
                [u[1] * width / w_px, v[1] * 0.5 * width / h_px, pa[1] - v[1] * 0.25 * width],
            ]
        )
        patch = cv2.warpAffine(
            luma,
            m,
            _PATCH,
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REPLICATE,
        )
        out[k] = np.percentile(patch, (20, 80))
    return out


_IRIS_PATCH = 48  # eye patch side for the iris's top: corner to corner, as tall


def iris_tops(luma: np.ndarray, points: np.ndarray, down: complex) -> np.ndarray:
    """Per eye (subject's right, left): how far above the corner line (shares of the eye's
    width, along `down`) the eye's dark middle (iris, lashes, upper lid line) reaches. The
    darkest spot of the blurred patch's middle is followed up its column while it stays
    darker than halfway to the patch's light level."""
    out = np.empty(2)
    n = _IRIS_PATCH
    dn = np.array([down.real, down.imag])
    for k, (a, b) in enumerate((RIGHT_EYE_CORNERS, LEFT_EYE_CORNERS)):
        pa, pb = points[a, :2].astype(np.float64), points[b, :2].astype(np.float64)
        width = float(np.hypot(*(pb - pa))) or 1.0
        u = (pb - pa) / width
        # patch pixel (i, j) → image: pa + u·i·width/n + down·(j/n − 0.5)·width
        m = np.array(
            [
                [u[0] * width / n, dn[0] * width / n, pa[0] - dn[0] * 0.5 * width],
                [u[1] * width / n, dn[1] * width / n, pa[1] - dn[1] * 0.5 * width],
            ]
        )
        patch = cv2.warpAffine(
            luma,
            m,
            (n, n),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REPLICATE,
        ).astype(np.float32)
        blurred = cv2.GaussianBlur(patch, (0, 0), 0.05 * n)
        lo, hi = round(0.2 * n), round(0.8 * n)
        middle = blurred[lo:hi, lo:hi]
        row, col = np.unravel_index(int(middle.argmin()), middle.shape)
        row, col = row + lo, col + lo
        level = (blurred[row, col] + float(np.percentile(patch, 80))) / 2
        top = row
        while top > 0 and blurred[top - 1, col] < level:
            top -= 1
        out[k] = 0.5 - top / n
    return out


def drawn_eye_reach(
    luma: np.ndarray,
    points: np.ndarray,
    lids: np.ndarray,
    down: complex,
    reach: float,
) -> tuple[np.ndarray, np.ndarray]:
    """How far the visible eye reaches past each lid, per eye (subject's right, left).

    `lids` (2, 2, n): per eye the upper and lower lid points as they stand (complex image px,
    ordered as the lid pairs). The eye is the picture's non-skin around its middle: pixels
    much darker than the skin round the eye (below halfway from the eye's own dark level) or
    much brighter (a highlight), joined to the part of them between the model's lids. From
    each lid point that part is followed outward along `down` (up for an upper lid, down for
    a lower one), through gaps of a pixel, for at most `reach` eye widths. Returns the
    distances (eye widths; 0 where the lid already lies on skin), shaped (2, 2, n), and per
    eye how much ink lies round it outside the lids (pixels as dark as the eye's darkest), as
    a share of the area between them: a drawn eye bigger than the model's contour leaves its
    ink outlines and much of its dark outside; a photograph only some lashes and shadows,
    which are lighter than its iris."""
    reaches = np.zeros(lids.shape)
    outside = np.zeros(2)
    for k, (pairs, corners) in enumerate(
        ((RIGHT_LID_PAIRS, RIGHT_EYE_CORNERS), (LEFT_LID_PAIRS, LEFT_EYE_CORNERS))
    ):
        a = complex(*points[corners[0], :2])
        b = complex(*points[corners[1], :2])
        width = abs(b - a) or 1.0
        # along the eye line toward the inner corner (square to `down`, so that the patch's
        # columns run along it)
        u = -1j * down * (1.0 if ((b - a) * (1j * down).conjugate()).real < 0 else -1.0)
        # patch pixel (i, j) → image: origin + u·i + down·j, 1 px per pixel, 1.6 widths along
        # (0.3 beyond each corner) and 1.4 down (0.8 above the corner line)
        side = (math.ceil(1.6 * width), math.ceil(1.4 * width))
        origin = a - 0.3 * width * u - 0.8 * width * down
        m = np.array(
            [
                [u.real, down.real, origin.real],
                [u.imag, down.imag, origin.imag],
            ]
        )
        patch = cv2.warpAffine(
            luma,
            m,
            side,
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REPLICATE,
        ).astype(np.float32)

        def at(z: np.ndarray, o: complex = origin, u: complex = u) -> np.ndarray:
            r = z - o
            return np.stack([(r * u.conjugate()).real, (r * down.conjugate()).real], axis=-1)

        model = points[[i for pair in pairs for i in pair], :2].astype(np.float64)
        model_c = at(model[:, 0] + 1j * model[:, 1])
        ring = np.concatenate([model_c[0::2], model_c[1::2][::-1]])
        eye = np.zeros(patch.shape, np.uint8)
        cv2.fillPoly(eye, [np.rint(ring).astype(np.int32)], 1)
        now = np.concatenate([at(lids[k, 0]), at(lids[k, 1])[::-1]])
        opening = np.zeros(patch.shape, np.uint8)
        cv2.fillPoly(opening, [np.rint(now).astype(np.int32)], 1)
        # what is looked at: an oval about the eye, as wide as the eye ring
        ys, xs = np.mgrid[0 : side[1], 0 : side[0]]
        around = ((xs - 0.8 * width) / (0.75 * width)) ** 2 + (
            (ys - 0.8 * width) / (0.55 * width)
        ) ** 2 < 1
        if not eye.any() or not (around & (opening == 0)).any():
            continue
        skin = float(np.percentile(patch[around & (opening == 0)], 75))
        dark = float(np.percentile(patch[eye > 0], 10))
        non_skin = (patch < (dark + skin) / 2) | (patch > (skin + 255) / 2)
        n, labels = cv2.connectedComponents((non_skin & around).astype(np.uint8), connectivity=8)
        held = np.bincount(labels[eye > 0], minlength=n)
        held[0] = 0
        if held.sum() == 0:
            continue
        # the eye's own pieces (a stray ink dot touching the contour is not the eye)
        shown = np.isin(labels, np.flatnonzero(held > 0.1 * held.sum()))
        # ink: as dark as the eye's own darkest (a photograph's lashes and shadows are not)
        inked = (patch < dark + 0.25 * (skin - dark)) & around & (opening == 0)
        outside[k] = float(inked.sum()) / max(1.0, float(opening.sum()))
        most = reach * width
        # below the eye a drawn lower outline is often apart from the iris (a lid rim
        # between): the lower lid follows any non-skin, across gaps of two pixels
        for row, step, found, gaps in ((0, -1, shown, 1), (1, 1, non_skin & around, 2)):
            for i, (x, y) in enumerate(at(lids[k, row])):
                col = min(side[0] - 1, max(0, round(x)))
                last, gap, j = 0.0, 0, 0
                while j <= most:
                    yy = round(y) + step * j
                    if not 0 <= yy < side[1]:
                        break
                    if found[yy, col]:
                        last, gap = float(j), 0
                    else:
                        gap += 1
                        if gap > gaps:
                            break
                    j += 1
                reaches[k, row, i] = last / width
    return reaches, outside

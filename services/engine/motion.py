"""The driving side: dense motion of the driving face relative to its neutral (first) frame.

Motion is measured on a small, fixed-size crop of the luma plane with DIS optical flow, so its
cost does not depend on the video's resolution. A rigid head translation is tracked separately
(the crop follows the head) so the flow only has to explain the small, non-rigid remainder;
that keeps DIS accurate and lets `expression_gain` scale expressions without scaling head moves.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from services.engine.framing import Square

# Flow resolution (pixels per crop side). The crop is two face widths, so the face spans
# ~80 px and a mouth ~25 px: enough for lips, eyes and brows; DIS costs ~3 ms per frame here.
FLOW_RES = 160
# Room around the crop for the head to wander before the tracked crop runs off the region
# that is downscaled each frame (border pixels are replicated past it).
_REGION_MARGIN = 0.35
# Where the rigid head motion is read: brows, eyes and nose move with the skull; the mouth and
# jaw do not, so they are left out. Fractions of the crop side (the face box is its middle half).
_RIGID_X = (0.32, 0.68)
_RIGID_Y = (0.24, 0.52)


class MotionTracker:
    def __init__(
        self,
        neutral_luma: np.ndarray,
        square: Square,
        *,
        expression_gain: float = 1.0,
        smoothing: float = 0.35,
    ) -> None:
        h, w = neutral_luma.shape[:2]
        margin = _REGION_MARGIN * square.side
        x0 = max(0, math.floor(square.x0 - margin))
        y0 = max(0, math.floor(square.y0 - margin))
        x1 = min(w, math.ceil(square.x0 + square.side + margin))
        y1 = min(h, math.ceil(square.y0 + square.side + margin))
        scale = FLOW_RES / square.side
        small_w = max(8, round((x1 - x0) * scale))
        small_h = max(8, round((y1 - y0) * scale))
        self._region = (x0, y0, x1, y1)
        self._small_size = (small_w, small_h)
        # the crop centre in the downscaled region's pixels (its own x/y scale after rounding)
        self._centre = (
            (square.cx - x0) * small_w / (x1 - x0) - 0.5,
            (square.cy - y0) * small_h / (y1 - y0) - 0.5,
        )
        self._gain = float(expression_gain)
        self._keep = float(smoothing)  # weight of the previous field: temporal smoothing
        self._head = np.zeros(2, np.float64)  # tracked head translation, flow pixels
        self._flow: np.ndarray | None = None  # last residual flow, DIS's starting point
        self._field: np.ndarray | None = None
        self._dis = cv2.DISOpticalFlow_create(cv2.DISOpticalFlow_PRESET_MEDIUM)
        r = FLOW_RES
        self._rigid = (
            slice(round(_RIGID_Y[0] * r), round(_RIGID_Y[1] * r)),
            slice(round(_RIGID_X[0] * r), round(_RIGID_X[1] * r)),
        )
        self._neutral = self._crop(neutral_luma, self._head)

    def _crop(self, luma: np.ndarray, shift: np.ndarray) -> np.ndarray:
        x0, y0, x1, y1 = self._region
        small = cv2.resize(luma[y0:y1, x0:x1], self._small_size, interpolation=cv2.INTER_AREA)
        centre = (self._centre[0] + float(shift[0]), self._centre[1] + float(shift[1]))
        return cv2.getRectSubPix(small, (FLOW_RES, FLOW_RES), centre)

    def step(self, luma: np.ndarray) -> np.ndarray:
        """The backward motion field for this frame, on the neutral crop's grid, in flow pixels:
        frame(q) ≈ neutral(q + field(q))."""
        crop = self._crop(luma, self._head)
        # crop(p) ≈ neutral(p + flow(p)), with crop(p) = frame(p + head)
        flow = self._dis.calc(crop, self._neutral, self._flow)
        self._flow = flow
        ry, rx = self._rigid
        residual = np.median(flow[ry, rx].reshape(-1, 2), axis=0)
        head_before = self._head.copy()
        self._head = head_before - residual
        expression = flow - residual.astype(np.float32)
        # frame(q) ≈ neutral(q - head + expression(q - head_before))
        shift = np.float32([[1, 0, -head_before[0]], [0, 1, -head_before[1]]])
        expression = cv2.warpAffine(
            expression,
            shift,
            (FLOW_RES, FLOW_RES),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REPLICATE,
        )
        field = expression * np.float32(self._gain)
        field -= self._head.astype(np.float32)
        if self._field is not None:
            field = cv2.addWeighted(field, 1 - self._keep, self._field, self._keep, 0.0)
        self._field = field
        return field

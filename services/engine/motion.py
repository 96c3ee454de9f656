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

from services.engine.config import MotionConfig
from services.engine.framing import Square


class MotionTracker:
    def __init__(
        self,
        neutral_luma: np.ndarray,
        square: Square,
        config: MotionConfig,
        *,
        expression_gain: float,
    ) -> None:
        h, w = neutral_luma.shape[:2]
        self._res = res = config.flow_res
        # Each frame, the region around the crop is shrunk by a whole factor with area
        # averaging (OpenCV's fast path for integer factors; no aliasing), then the crop is
        # resampled from it to `res` at the tracked head position (a factor below 2).
        self._n = n = max(1, math.floor(square.side / res))
        margin = config.region_margin * square.side
        x0 = max(0, math.floor(square.x0 - margin))
        y0 = max(0, math.floor(square.y0 - margin))
        x1 = min(w, math.ceil(square.x0 + square.side + margin))
        y1 = min(h, math.ceil(square.y0 + square.side + margin))
        x1, y1 = x0 + max(n, (x1 - x0) // n * n), y0 + max(n, (y1 - y0) // n * n)
        self._region = (x0, y0, x1, y1)
        self._small_size = ((x1 - x0) // n, (y1 - y0) // n)
        # crop pixel p (+ head shift t, flow px) ↔ small pixel (offset + p + t) · step, where
        # both have centres at edge coordinate + 0.5 (see warp.py for the same convention)
        k = res / square.side
        self._step = 1 / (k * n)
        self._offset = (
            ((square.x0 - x0) + 0.5 / k) / n - 0.5,
            ((square.y0 - y0) + 0.5 / k) / n - 0.5,
        )
        self._gain = float(expression_gain)
        self._keep = float(config.smoothing)  # weight of the previous field
        # bounds (flow px) that keep a bad frame from tearing the picture apart: the head
        # stays within the region read each frame
        self._max_head = config.region_margin * res
        self._max_field = config.max_field * res
        self._head = np.zeros(2, np.float64)  # tracked head translation, flow pixels
        self._flow: np.ndarray | None = None  # last residual flow, DIS's starting point
        self._field: np.ndarray | None = None
        self._dis = cv2.DISOpticalFlow.create(cv2.DISOpticalFlow_PRESET_MEDIUM)
        self._dis.setGradientDescentIterations(config.gradient_iterations)
        self._dis.setVariationalRefinementIterations(config.refinement_iterations)
        (x0r, x1r), (y0r, y1r) = config.rigid_x, config.rigid_y
        self._rigid = (
            slice(round(y0r * res), round(y1r * res)),
            slice(round(x0r * res), round(x1r * res)),
        )
        self._neutral = self._crop(neutral_luma, self._head)

    def _crop(self, luma: np.ndarray, shift: np.ndarray) -> np.ndarray:
        x0, y0, x1, y1 = self._region
        region = luma[y0:y1, x0:x1]
        small = region
        if self._n > 1:
            small = cv2.resize(region, self._small_size, interpolation=cv2.INTER_AREA)
        a = self._step
        m = np.array(
            [
                [a, 0, self._offset[0] + float(shift[0]) * a],
                [0, a, self._offset[1] + float(shift[1]) * a],
            ],
            dtype=np.float32,
        )
        return cv2.warpAffine(
            small,
            m,
            (self._res, self._res),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REPLICATE,
        )

    def step(self, luma: np.ndarray) -> np.ndarray:
        """The backward motion field for this frame, on the neutral crop's grid, in flow pixels:
        frame(q) ≈ neutral(q + field(q))."""
        crop = self._crop(luma, self._head)
        # crop(p) ≈ neutral(p + flow(p)), with crop(p) = frame(p + head)
        # The stub types `flow` as a required array; OpenCV takes None there (no initial flow).
        flow = self._dis.calc(crop, self._neutral, self._flow)  # type: ignore[arg-type]
        self._flow = flow
        ry, rx = self._rigid
        residual = np.median(flow[ry, rx].reshape(-1, 2), axis=0)
        head_before = self._head.copy()
        # a scene cut or a lost face makes nonsense flow: keep the head within the region
        # that is read each frame rather than chase it off-screen
        self._head = np.clip(head_before - residual, -self._max_head, self._max_head)
        # frame(q) ≈ neutral(q - head + expression(q - head_before))
        shift = np.array([[1, 0, -head_before[0]], [0, 1, -head_before[1]]], dtype=np.float32)
        expression = cv2.warpAffine(
            flow - residual.astype(np.float32),
            shift,
            (self._res, self._res),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REPLICATE,
        )
        field: np.ndarray = expression * np.float32(self._gain)
        field -= self._head.astype(np.float32)
        np.clip(field, -self._max_field, self._max_field, out=field)
        if self._field is not None:
            field = cv2.addWeighted(field, 1 - self._keep, self._field, self._keep, 0.0)
        self._field = field
        return field

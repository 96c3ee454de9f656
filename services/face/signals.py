"""What a face is doing in one frame, as numbers comparable across faces, sizes and framings.

Distances are measured in the face's own upright frame (turned by its roll) and divided by the
inter-ocular distance (eye centre to eye centre, in 3-D so a turned head does not shrink it);
roll is in degrees, yaw a share of half the face's width. Sides are the subject's own (see
services.face.landmarks).
"""

from __future__ import annotations

import math

import numpy as np

from services.face.landmarks import (
    LEFT_EYE_INNER,
    LEFT_EYE_OUTER,
    RIGHT_EYE_INNER,
    RIGHT_EYE_OUTER,
    Landmarks,
)
from services.face.regions import (
    CHEEK_LEFT,
    CHEEK_RIGHT,
    INNER_LIP_PAIRS,
    LEFT_BROW_PAIRS,
    LEFT_LID_PAIRS,
    NOSE_TIP,
    RIGHT_BROW_PAIRS,
    RIGHT_LID_PAIRS,
    middle,
)

NAMES = ("mouth", "eye_left", "eye_right", "brows", "roll", "yaw", "pitch")

# (upper, lower) pairs across the middle of the inner lips and of each eye's lids
_INNER_LIPS = middle(INNER_LIP_PAIRS)
_LEFT_LIDS = middle(LEFT_LID_PAIRS)
_RIGHT_LIDS = middle(RIGHT_LID_PAIRS)
# each brow's upper contour
_LEFT_BROW = tuple(upper for upper, _ in LEFT_BROW_PAIRS)
_RIGHT_BROW = tuple(upper for upper, _ in RIGHT_BROW_PAIRS)


def read(lm: Landmarks) -> np.ndarray:
    """The signals of NAMES, in that order, as float32."""
    p = lm.points.astype(np.float64)
    roll = lm.roll
    c, s = math.cos(roll), math.sin(roll)
    # upright face frame: u along the eye line (toward the subject's left), v downward
    u = p[:, 0] * c + p[:, 1] * s
    v = -p[:, 0] * s + p[:, 1] * c
    right_eye = (p[RIGHT_EYE_OUTER] + p[RIGHT_EYE_INNER]) / 2
    left_eye = (p[LEFT_EYE_OUTER] + p[LEFT_EYE_INNER]) / 2
    iod = float(np.linalg.norm(left_eye - right_eye)) or 1.0

    def gap(pairs: tuple[tuple[int, int], ...]) -> float:
        return float(np.mean([v[lo] - v[up] for up, lo in pairs])) / iod

    def eye_line_v(outer: int, inner: int) -> float:
        return (v[outer] + v[inner]) / 2

    right_brow = eye_line_v(RIGHT_EYE_OUTER, RIGHT_EYE_INNER) - v[list(_RIGHT_BROW)].mean()
    left_brow = eye_line_v(LEFT_EYE_OUTER, LEFT_EYE_INNER) - v[list(_LEFT_BROW)].mean()
    eyes_v = (
        eye_line_v(RIGHT_EYE_OUTER, RIGHT_EYE_INNER) + eye_line_v(LEFT_EYE_OUTER, LEFT_EYE_INNER)
    ) / 2
    half_width = (u[CHEEK_LEFT] - u[CHEEK_RIGHT]) / 2 or 1.0
    yaw = (u[NOSE_TIP] - (u[CHEEK_LEFT] + u[CHEEK_RIGHT]) / 2) / half_width
    return np.array(
        [
            gap(_INNER_LIPS),
            gap(_LEFT_LIDS),
            gap(_RIGHT_LIDS),
            (right_brow + left_brow) / 2 / iod,
            math.degrees(roll),
            # the nose tip's offset from the face outline's middle, in half face widths:
            # grows with the head's turn, and a jaw drop moves neither
            yaw,
            # the nose tip sits in front of the eyes, so a nod moves it across the eye line
            (v[NOSE_TIP] - eyes_v) / iod,
        ],
        np.float32,
    )

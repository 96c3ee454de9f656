"""Named regions of MediaPipe's canonical 468-point face mesh (services/face/landmarks.py):
the one definition the engine (retargeting, mesh, glasses) and the face signals (fidelity)
read. Sides are the subject's own: the subject's right eye shows on the image's left in an
unmirrored picture.
"""

from __future__ import annotations

from typing import TypeVar

from services.face.landmarks import (
    LEFT_EYE_INNER,
    LEFT_EYE_OUTER,
    RIGHT_EYE_INNER,
    RIGHT_EYE_OUTER,
)

FACE_OVAL = (
    10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
    152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
)  # fmt: skip
# the outline below the mouth corners' height: moves with the jaw
JAW = (361, 288, 397, 365, 379, 378, 400, 377, 152, 148, 176, 149, 150, 136, 172, 58, 132)
LIP_CORNERS_INNER = (78, 308)
LIP_CORNERS_OUTER = (61, 291)
# (upper, lower) pairs across the mouth, subject's right to left
INNER_LIP_PAIRS = (
    (191, 95), (80, 88), (81, 178), (82, 87), (13, 14), (312, 317), (311, 402), (310, 318),
    (415, 324),
)  # fmt: skip
OUTER_LIP_PAIRS = (
    (185, 146), (40, 91), (39, 181), (37, 84), (0, 17), (267, 314), (269, 405), (270, 321),
    (409, 375),
)  # fmt: skip
# (upper, lower) lid pairs from the outer corner inward, and the corners (outer, inner)
RIGHT_LID_PAIRS = ((246, 7), (161, 163), (160, 144), (159, 145), (158, 153), (157, 154), (173, 155))
LEFT_LID_PAIRS = (
    (466, 249),
    (388, 390),
    (387, 373),
    (386, 374),
    (385, 380),
    (384, 381),
    (398, 382),
)
RIGHT_EYE_CORNERS = (RIGHT_EYE_OUTER, RIGHT_EYE_INNER)
LEFT_EYE_CORNERS = (LEFT_EYE_OUTER, LEFT_EYE_INNER)
BROWS = (70, 63, 105, 66, 107, 55, 65, 52, 53, 46, 300, 293, 334, 296, 336, 285, 295, 282, 283, 276)
# (upper, lower) brow contour pairs, subject's right brow then left
RIGHT_BROW_PAIRS = ((70, 46), (63, 53), (105, 52), (66, 65), (107, 55))
LEFT_BROW_PAIRS = ((300, 276), (293, 283), (334, 282), (296, 295), (336, 285))
BROW_PAIRS = RIGHT_BROW_PAIRS + LEFT_BROW_PAIRS
NOSE = (168, 6, 197, 195, 5, 4, 1, 2, 98, 327)
CHEEKS = (50, 280, 205, 425, 187, 411, 117, 346)
NOSE_TIP = 1
# the face outline at eye height
CHEEK_RIGHT, CHEEK_LEFT = 234, 454

_P = TypeVar("_P")


def middle(pairs: tuple[_P, ...], n: int = 3) -> tuple[_P, ...]:
    """The `n` pairs around the middle of a row (a lid's or the lips' opening is read there:
    the corners barely open)."""
    mid = len(pairs) // 2
    return pairs[mid - n // 2 : mid + n // 2 + 1]

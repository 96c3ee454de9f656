"""The landmark path's driving side: where the character's face points go in each frame.

Per frame (positions as complex numbers x + iy; a similarity is z·p + t):

1. Head motion H: the similarity fit of the driving face's stable points (eye corners, nose
   bridge, temples; not the nose tip, which the model moves with the jaw) from its neutral
   (first) frame to this frame.
2. Expression E = H⁻¹(frame) − neutral: what moved on the face itself, in the neutral frame.
3. The two neutral faces are related by the similarity M (character ≈ M(driving)); the
   expression reaches the character as z_M·E, times a gain per region (the model
   under-reports lips, jaw and brows) and the intensity option.
4. Eyes are carried as openness, not as displacement: the driving lid gap against its neutral
   gap, from a calibrated "shut" reading, closes the character's lids toward a meeting line
   (eyes of different shapes blink alike; a narrow cartoon eye does not close past itself).
   Each eye's pixels are read too (`eye_levels`): the model blurs a wink into both eyes.
5. Head motion reaches the character as K = M·H·M⁻¹: the same roll and scale, the translation
   scaled by the faces' sizes, bounded.

Expression, eye and head parameters (inter-ocular units) are smoothed centred (filters.py):
`step` hands out each frame's pose `delay` frames after it took the frame, `finish` the rest.
Points the model does not report (the mesh's rings and mouth gap) are mesh.py's business.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from services.engine.config import RetargetConfig
from services.engine.eyes import drawn_eye_reach, eye_levels, iris_tops
from services.engine.filters import Centred
from services.face.landmarks import (
    LEFT_EYE_INNER,
    LEFT_EYE_OUTER,
    RIGHT_EYE_INNER,
    RIGHT_EYE_OUTER,
    Landmarks,
)
from services.face.regions import (
    BROWS,
    CHEEKS,
    FACE_OVAL,
    INNER_LIP_PAIRS,
    JAW,
    LEFT_EYE_CORNERS,
    LEFT_LID_PAIRS,
    LIP_CORNERS_INNER,
    LIP_CORNERS_OUTER,
    NOSE,
    OUTER_LIP_PAIRS,
    RIGHT_EYE_CORNERS,
    RIGHT_LID_PAIRS,
    middle,
)

# what the head's similarity is fitted on: points that move with the skull
STABLE = (
    RIGHT_EYE_OUTER,
    RIGHT_EYE_INNER,
    LEFT_EYE_INNER,
    LEFT_EYE_OUTER,
    168,
    6,
    127,
    356,
    234,
    454,
)


def _flat(pairs: tuple[tuple[int, int], ...]) -> tuple[int, ...]:
    return tuple(i for pair in pairs for i in pair)


# the landmarks the mesh is built on, in this order
POINTS: tuple[int, ...] = tuple(
    dict.fromkeys(
        FACE_OVAL
        + LIP_CORNERS_INNER
        + LIP_CORNERS_OUTER
        + _flat(INNER_LIP_PAIRS)
        + _flat(OUTER_LIP_PAIRS)
        + RIGHT_EYE_CORNERS
        + LEFT_EYE_CORNERS
        + _flat(RIGHT_LID_PAIRS)
        + _flat(LEFT_LID_PAIRS)
        + BROWS
        + NOSE
        + CHEEKS
    )
)
INDEX = {p: i for i, p in enumerate(POINTS)}
LIPS = LIP_CORNERS_INNER + LIP_CORNERS_OUTER + _flat(INNER_LIP_PAIRS) + _flat(OUTER_LIP_PAIRS)
# the mouth corners (inner, outer), the subject's right ones then the left
_CORNERS = (
    np.array([INDEX[LIP_CORNERS_INNER[0]], INDEX[LIP_CORNERS_OUTER[0]]]),
    np.array([INDEX[LIP_CORNERS_INNER[1]], INDEX[LIP_CORNERS_OUTER[1]]]),
)


def _complex(points: np.ndarray) -> np.ndarray:
    return points[:, 0].astype(np.float64) + 1j * points[:, 1].astype(np.float64)


def fit_similarity(src: np.ndarray, dst: np.ndarray) -> tuple[complex, complex]:
    """(z, t) minimising |z·src + t − dst|² (complex points; no reflection)."""
    ms, md = src.mean(), dst.mean()
    a, b = src - ms, dst - md
    z = complex(np.vdot(a, b) / max(float(np.vdot(a, a).real), 1e-12))
    return z, complex(md - z * ms)


def iod(lm: np.ndarray) -> float:
    """Inter-ocular distance (eye centre to eye centre) of complex landmarks (all 468)."""
    right = (lm[RIGHT_EYE_OUTER] + lm[RIGHT_EYE_INNER]) / 2
    left = (lm[LEFT_EYE_OUTER] + lm[LEFT_EYE_INNER]) / 2
    return max(abs(complex(left - right)), 1e-6)


def _mouth_width(c: np.ndarray) -> float:
    """The mouth's width (mean of the inner and outer corners) against the span of the outer
    eye corners, of complex landmarks (all 468). The inner eye corners move as the lids do."""
    widths = [abs(complex(c[b] - c[a])) for a, b in (LIP_CORNERS_INNER, LIP_CORNERS_OUTER)]
    return float(np.mean(widths)) / max(abs(complex(c[LEFT_EYE_OUTER] - c[RIGHT_EYE_OUTER])), 1e-6)


def _lid_gap(c: np.ndarray, pairs: tuple[tuple[int, int], ...], down: complex) -> float:
    """The mean upper→lower lid distance along `down` (a unit complex) of the middle pairs."""
    return float(np.mean([((c[lo] - c[up]) * down.conjugate()).real for up, lo in middle(pairs)]))


@dataclass(frozen=True)
class Pose:
    """Where the mesh's landmarks go this frame (`points`, image px as complex, ordered as
    POINTS) and the head's similarity on the character (p ↦ z·p + t)."""

    points: np.ndarray
    z: complex
    t: complex


class Retargeter:
    def __init__(
        self,
        driving: Landmarks,
        character: Landmarks,
        config: RetargetConfig,
        *,
        fps: float,
        expression_gain: float,
        character_luma: np.ndarray | None = None,
    ) -> None:
        """`character_luma`: the character picture's luma plane (glasses painted out, if
        any), to fit its lids to the eyes' pixels; without it the landmarks alone."""
        self._cfg = config
        d0 = _complex(driving.points)
        c0 = _complex(character.points)
        self._c_stable = c0[list(STABLE)]
        self._index = np.array(POINTS)
        half = len(BROWS) // 2  # the subject's right brow first
        self._lips = np.zeros(len(POINTS), bool)
        self._lips[[INDEX[p] for p in LIPS]] = True
        self._brow_idx = (
            np.array([INDEX[b] for b in BROWS[:half]]),
            np.array([INDEX[b] for b in BROWS[half:]]),
        )
        self._set_driving_neutral(d0)
        self._c0 = c0[list(POINTS)]
        self._c_down = self._down(c0)
        self._picture_points = character.points
        self._dilate_lids(config, character_luma, c0)
        # the character's face height (forehead to chin), for the head-motion bounds
        oval = c0[list(FACE_OVAL)]
        self._c_face = float(np.ptp(oval.imag)) or iod(c0) * 2.5
        # per-point gains on the expression deltas, across the face (along the eye line) and
        # along it (down the face). The model's under-reporting is made up along the face only:
        # sideways the deltas also carry the head's turn, which a gain would exaggerate.
        across, along = np.ones(len(POINTS)), np.ones(len(POINTS))
        for group, g, sideways in (
            (LIPS, config.lips_gain, True),
            (JAW, config.jaw_gain, False),
            (BROWS, config.brows_gain, False),
            (CHEEKS, 1.0, True),
        ):
            idx = [INDEX[p] for p in group]
            along[idx] = g * expression_gain
            across[idx] = expression_gain if sideways else 1.0
        self._gain_across, self._gain_along = across, along
        # ...except the mouth's widening, the corners' sideways motion apart from their common
        # shift (the head's turn): the model under-reports it as it does the lips' up and down
        # motion (a smile's corners move out a little over half as far as the pixels), so the
        # mouth is stretched along itself by what that part lacks of the lips' gain.
        self._widen = (config.lips_gain - 1) * expression_gain
        self._expression_gain = expression_gain
        # every measurement is smoothed centred (a causal filter's lag cost more than its
        # smoothing): brows move slowly and the model's brows are noisy, the most for them;
        # a blink lasts a few frames, the least for the lids
        brows = np.zeros(len(POINTS), bool)
        brows[[INDEX[b] for b in BROWS]] = True
        sigma = np.where(brows, config.brows_smooth_s, config.expression_smooth_s) * fps
        self._centred = Centred(
            np.concatenate(
                [
                    sigma,
                    sigma,
                    np.full(2, config.eyes_smooth_s * fps),
                    np.full(4, config.head_smooth_s * fps),
                ]
            )
        )
        # the last measurements: expression (real parts, imaginary), eye openness, head
        self._expr = np.zeros(2 * len(POINTS))
        self._eyes = np.ones(2)
        self._head = np.array([1.0, 0.0, 0.0, 0.0])
        self._fps = fps
        self._lost = 0
        self._seen = False  # a face was found (the look-ahead holds its frames)
        self._eye_ref: np.ndarray | None = None
        self.neutral = Pose(self._c0.copy(), 1 + 0j, 0j)

    def _dilate_lids(self, cfg: RetargetConfig, luma: np.ndarray | None, c0: np.ndarray) -> None:
        """Widen the character's eye openings a little before they are used. The model's lid
        contour can sit inside the visible eye (behind glasses, on a narrow or drawn eye); a
        lid that closed only to it would leave a sliver of iris showing above. Lids closing
        from just outside the eye sweep skin over all of it. With the picture's luma, an
        upper lid still below the top of the eye's dark middle (glasses can pull the model's
        eye contour down by a third of the iris) is raised to it, most in the eye's middle."""
        down = self._c_down
        self._meet = np.zeros(len(POINTS), np.complex128)
        tops = None if luma is None else iris_tops(luma, self._picture_points, down)
        sides = ((RIGHT_LID_PAIRS, RIGHT_EYE_CORNERS), (LEFT_LID_PAIRS, LEFT_EYE_CORNERS))
        for k, (pairs, corners) in enumerate(sides):
            for up, lo in pairs:
                iu, il = INDEX[up], INDEX[lo]
                gap = max(0.0, ((self._c0[il] - self._c0[iu]) * down.conjugate()).real)
                self._c0[iu] -= cfg.lid_widen_up * gap * down
                self._c0[il] += cfg.lid_widen_down * gap * down
                # where the lids meet stays on the model's own eye line: raised with the lid
                # below, it would bend the shut eye's lash line into a step
                cu, cl = self._c0[iu], self._c0[il]
                self._meet[iu] = cl + cfg.lid_meet * (cu - cl)
            if tops is None:
                continue
            a, b = c0[corners[0]], c0[corners[1]]
            width = abs(complex(b - a)) or 1.0
            along = (b - a) / width
            ups = np.array([INDEX[up] for up, _ in pairs])
            rel = self._c0[ups] - a
            # the lid's highest point against the dark middle's top; the whole lid rises by
            # the shortfall, tapered to nothing at the corners
            short = (
                tops[k] + cfg.lid_iris_margin + float((rel * down.conjugate()).real.min()) / width
            )
            if short <= cfg.lid_iris_slack:
                continue
            s = (rel * along.conjugate()).real / width  # 0 at the outer corner, 1 inner
            taper = np.clip(1 - (2 * s - 1) ** 2, 0.0, 1.0)
            self._c0[ups] -= min(short, cfg.lid_iris_raise_max) * taper * width * down
        if luma is not None:
            self._fit_drawn_eyes(cfg, luma, c0)

    def _fit_drawn_eyes(self, cfg: RetargetConfig, luma: np.ndarray, c0: np.ndarray) -> None:
        """A drawn or enlarged eye can reach well past the model's lids all round (its dark,
        its highlight, its ink outline): shut to the model's contour it still reads open. When
        the eyes leave ink outside their lids (`drawn_eye_reach`; a photograph's lashes and
        shadows are lighter), each lid point moves out to where the eye ends along its
        column, smoothed along the lid; the lids then close over all of it."""
        down = self._c_down
        sides = ((RIGHT_LID_PAIRS, RIGHT_EYE_CORNERS), (LEFT_LID_PAIRS, LEFT_EYE_CORNERS))
        rows = [[np.array([INDEX[p[r]] for p in pairs]) for r in (0, 1)] for pairs, _ in sides]
        lids = np.array([[self._c0[idx] for idx in eye] for eye in rows])
        reaches, outside = drawn_eye_reach(
            luma, self._picture_points, lids, down, cfg.lid_fit_reach
        )
        lo, hi = cfg.lid_fit_outside
        share = min(1.0, max(0.0, (float(outside.mean()) - lo) / (hi - lo)))
        if share <= 0:
            return
        for k, (_, corners) in enumerate(sides):
            width = abs(complex(c0[corners[1]] - c0[corners[0]])) or 1.0
            for row, sign in ((0, -1.0), (1, 1.0)):
                r = reaches[k, row]
                # a lid point that falls short of both neighbours would dent the shut lid
                near = np.convolve(np.pad(r, 1, mode="edge"), (0.25, 0.5, 0.25), "valid")
                r = np.maximum(r, near)
                r = np.where(r > 0, r + cfg.lid_fit_margin, 0.0)
                self._c0[rows[k][row]] += sign * share * r * width * down

    def _set_driving_neutral(self, d0: np.ndarray) -> None:
        self._d0 = d0
        self._d0_stable = d0[list(STABLE)]
        self._d_iod = iod(d0)
        # each brow point's place along the eye line (inter-ocular units, about the brow's
        # middle) and the least-squares fit of a line over it
        eye_line = -1j * self._down(d0)
        self._brow_u = np.zeros(len(POINTS))
        fits = []
        for brow in self._brow_idx:
            c = d0[self._index[brow]]
            u = ((c - c.mean()) * eye_line.conjugate()).real / self._d_iod
            self._brow_u[brow] = u
            fits.append(np.linalg.pinv(np.stack([np.ones_like(u), u], axis=1)))
        self._brow_fit = fits
        # each lip point's place along the mouth, -1 at the subject's right corner, 1 at the left
        mouth = d0[list(LIP_CORNERS_OUTER)]
        half = (mouth[1] - mouth[0]) / 2
        along = ((d0[self._index] - mouth.mean()) * half.conjugate()).real / max(
            abs(half) ** 2, 1e-9
        )
        self._lip_u = np.where(self._lips, np.clip(along, -1.0, 1.0), 0.0)
        self._d_width = _mouth_width(d0)
        self._d_span = abs(complex(d0[LEFT_EYE_OUTER] - d0[RIGHT_EYE_OUTER])) / self._d_iod
        # character ≈ M(driving), between the two neutral faces
        self._z_m, self._t_m = fit_similarity(self._d0_stable, self._c_stable)
        # the driving neutral's lid gaps, measured across its own eye line
        self._d_down = self._down(d0)
        self._d_gaps = (
            _lid_gap(d0, RIGHT_LID_PAIRS, self._d_down),
            _lid_gap(d0, LEFT_LID_PAIRS, self._d_down),
        )

    @staticmethod
    def _down(c: np.ndarray) -> complex:
        """The unit vector across the eye line, pointing down the face."""
        d = complex(c[LEFT_EYE_OUTER] - c[RIGHT_EYE_OUTER])
        return d / max(abs(d), 1e-9) * 1j

    @property
    def delay(self) -> int:
        """How many frames late `step` hands out each frame's pose (the brows' look-ahead)."""
        return self._centred.delay

    def step(self, found: Landmarks | None, luma: np.ndarray | None = None) -> list[Pose]:
        """Take this frame's face; the poses now ready, oldest first: one per frame, each
        `delay` frames late (none while the look-ahead fills; `finish` hands out the rest).
        `luma`, the frame's luma plane, lets the eyes be read from their pixels as well (see
        `_eyes_seen`). A frame without a face holds the last pose for a moment (a hand
        passing, a blur), then eases the expression back to neutral while the head stays
        where it was; the smoothing spreads the face's return over a few frames."""
        if found is None:
            if not self._seen:
                return [self.neutral]  # nothing held yet: no delay to keep
            self._lost += 1
            if self._lost > self._cfg.lost_hold_s * self._fps:
                share = math.exp(-1.0 / max(self._cfg.lost_ease_s * self._fps, 1e-6))
                self._expr *= share
                self._eyes = 1.0 + share * (self._eyes - 1.0)
            return self._ready()
        self._lost = 0
        cfg = self._cfg
        d = _complex(found.points)
        levels = None if luma is None else eye_levels(luma, found.points)
        if not self._seen:
            # the neutral is this first tracked frame: the search's first look at it (a
            # fresh detection) reads the lids and lips a little differently than tracking does
            self._set_driving_neutral(d)
            self._eye_ref = levels
        z_h, t_h = fit_similarity(self._d0_stable, d[list(STABLE)])
        # expression in the driving neutral's frame, in its inter-ocular units
        expr = ((d[self._index] - t_h) / z_h - self._d0[self._index]) / self._d_iod
        # the mouth's widening is read against the eyes' span, not the head's scale: that is
        # fitted on the temples too, which a turn of the head draws in more than the mouth
        eye_line = -1j * self._d_down
        side = (expr[_CORNERS[1]] - expr[_CORNERS[0]]) * eye_line.conjugate()
        widening = (_mouth_width(d) - self._d_width) * self._d_span / 2
        expr += (widening - float(np.mean(side.real)) / 2) * self._lip_u * eye_line
        openness = []
        for k, pairs in enumerate((RIGHT_LID_PAIRS, LEFT_LID_PAIRS)):
            gap = _lid_gap((d - t_h) / z_h, pairs, self._d_down) / max(self._d_gaps[k], 1e-6)
            openness.append((gap - cfg.eye_closed) / (1 - cfg.eye_closed))
        # the model lowers the brows of an eye that closes: give that back, so a blink does
        # not frown
        mouth = max(0.0, self._mouth_opening(expr))
        for brow, open_ in zip(self._brow_idx, openness, strict=True):
            expr[brow] -= cfg.brow_blink_coupling * min(1.0, max(0.0, 1 - open_)) * self._d_down
            expr[brow] += cfg.brow_jaw_coupling * mouth * self._d_down
        if levels is not None and self._eye_ref is not None:
            openness = self._eyes_seen(openness, levels, self._eye_ref)
        self._expr = np.concatenate([expr.real, expr.imag])
        self._eyes = np.array(openness)
        # head: rotation/scale and translation relative to the neutral
        self._head = np.array([z_h.real, z_h.imag, t_h.real / self._d_iod, t_h.imag / self._d_iod])
        self._seen = True
        return self._ready()

    def finish(self) -> list[Pose]:
        """The poses still held back by the look-ahead, oldest first."""
        return [self._compose_flat(v) for v in self._centred.flush()]

    def _ready(self) -> list[Pose]:
        """This frame's measurements into the look-ahead; the poses it lets out."""
        now = np.concatenate([self._expr, self._eyes, self._head])
        return [self._compose_flat(v) for v in self._centred(now)]

    def _compose_flat(self, v: np.ndarray) -> Pose:
        n = 2 * len(POINTS)
        return self._compose(v[:n], v[n : n + 2], v[n + 2 :])

    def _mouth_opening(self, expr: np.ndarray) -> float:
        """How much wider than neutral the inner lips stand apart (inter-ocular units, the
        middle pairs), from the expression deltas."""
        gaps = [
            ((expr[INDEX[lo]] - expr[INDEX[up]]) * self._d_down.conjugate()).real
            for up, lo in middle(INNER_LIP_PAIRS)
        ]
        return float(np.mean(gaps))

    def _compose(self, smooth: np.ndarray, eyes: np.ndarray, head: np.ndarray) -> Pose:
        """The character's pose from the smoothed expression (real parts, then imaginary),
        eye openness and head (z, t over the driving inter-ocular distance)."""
        cfg = self._cfg
        n = len(POINTS)
        expr = smooth[:n] + 1j * smooth[n:]
        openness = list(eyes)
        z_h = complex(head[0], head[1])
        t_h = complex(head[2], head[3]) * self._d_iod

        # expression onto the character (rotated and scaled into its frame), with gains
        # split along the driving face's own axes (its neutral may be rolled)
        down = self._d_down
        eye_line = -1j * down
        side = (expr * eye_line.conjugate()).real
        vert = (expr * down.conjugate()).real
        widening = float(np.mean(side[_CORNERS[1]] - side[_CORNERS[0]])) / 2
        across = side * self._gain_across + self._widen * widening * self._lip_u
        expr = across * eye_line + (vert * self._gain_along) * down
        # each brow moves as one piece (a lift and a tilt along it, one sideways shift): the
        # model's brow points wobble separately, which a gain turns into a zig-zag brow
        for brow, fit in zip(self._brow_idx, self._brow_fit, strict=True):
            lift = fit @ (vert[brow] * self._gain_along[brow])
            u = self._brow_u[brow]
            expr[brow] = (
                float(np.mean(side[brow] * self._gain_across[brow])) * eye_line
                + (lift[0] + lift[1] * u) * down
            )
        delta = self._z_m * expr * self._d_iod
        pts = self._c0 + delta
        self._place_lids(pts, openness)
        self._keep_lips_apart(pts)

        # head motion on the character: K = M·H·M⁻¹, bounded
        z_k = z_h
        scale = abs(z_k)
        s_lo, s_hi = 1 - cfg.max_scale, 1 + cfg.max_scale
        angle = math.atan2(z_k.imag, z_k.real)
        angle = max(-math.radians(cfg.max_roll_deg), min(math.radians(cfg.max_roll_deg), angle))
        z_k = min(s_hi, max(s_lo, scale)) * complex(math.cos(angle), math.sin(angle))
        # K(c) = z_h·(c − t_m) + z_m·t_h + t_m; bound the face centre's shift
        centre = complex(np.mean(self._c0))
        t_k = -z_k * self._t_m + self._z_m * t_h + self._t_m
        shift = z_k * centre + t_k - centre
        most = cfg.max_shift * self._c_face
        if abs(shift) > most:
            t_k -= shift * (1 - most / abs(shift))
        return Pose(z_k * pts + t_k, z_k, t_k)

    def _eyes_seen(self, openness: list[float], levels: np.ndarray, ref: np.ndarray) -> list[float]:
        """The model blurs the two eyes together: a wink reads as both eyes half shut. Their
        pixels do not: an open eye shows its dark iris, a shut one lid skin, so the darkest
        fifth of each eye's patch brightens as it closes (from the neutral's, toward the
        neutral patch's light level). When the pixels show one eye shut and the other open,
        they decide, a reading under `wink_shut` counting as shut; otherwise they can only
        close an eye further than the model says."""
        seen = [
            1.0 - min(1.0, max(0.0, (lv[0] - rf[0]) / max(rf[1] - rf[0], 10.0)))
            for lv, rf in zip(levels, ref, strict=True)
        ]
        if abs(seen[0] - seen[1]) > self._cfg.wink_split:
            shut = self._cfg.wink_shut
            return [max(0.0, (s - shut) / (1 - shut)) for s in seen]
        return [
            min(o, s + self._cfg.eye_pixels_margin) for o, s in zip(openness, seen, strict=True)
        ]

    def _place_lids(self, pts: np.ndarray, openness: list[float]) -> None:
        """Each lid pair set from the character's neutral lids by the driving openness: shut
        at 0 (lids meet `lid_meet` up from the lower lid), neutral at 1."""
        cfg = self._cfg
        g = self._expression_gain
        sides = ((RIGHT_LID_PAIRS, RIGHT_EYE_CORNERS), (LEFT_LID_PAIRS, LEFT_EYE_CORNERS))
        for (pairs, corners), open_ in zip(sides, openness, strict=True):
            r = 1 - g * (1 - float(open_))
            r = min(cfg.max_eye_open, max(0.0, r))
            # the eye as a whole follows its corners (a turn of the head shifts it)
            corner_idx = [INDEX[c] for c in corners]
            moved = complex(np.mean(pts[corner_idx] - self._c0[corner_idx]))
            for up, lo in pairs:
                iu, il = INDEX[up], INDEX[lo]
                cu, cl = self._c0[iu], self._c0[il]
                meet = self._meet[iu]
                pts[iu] = meet + r * (cu - meet) + moved
                pts[il] = meet + r * (cl - meet) + moved

    def _keep_lips_apart(self, pts: np.ndarray) -> None:
        """A lower lip above its upper lip would fold the mesh: meet in the middle instead."""
        down = self._c_down
        for up, lo in INNER_LIP_PAIRS:
            iu, il = INDEX[up], INDEX[lo]
            gap = ((pts[il] - pts[iu]) * down.conjugate()).real
            if gap < 0:
                mid = (pts[iu] + pts[il]) / 2
                pts[iu] = pts[il] = mid

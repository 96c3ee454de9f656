"""Motion fidelity, 0–100: how closely a result's face follows the driving clip's performance.

Both videos are read the same way, whoever made the result: sampled at ≤ 15 fps, one face
tracked with the offline landmark model (services.face), and per frame the signals of
services.face.signals (mouth opening, each eye's openness, brow height, head roll, yaw,
pitch), normalised by the face's inter-ocular distance. The result is resampled onto the
driving clip's timeline by timestamp from each file's start, and only the overlap is used.

Per signal: Pearson r between driving and result, and the amplitude ratio (std result / std
driving); its score is 100 · max(r, 0) · √min(ratio, 1/ratio) — in time with the driving clip
and as large. The score is the weighted mean of the signals' scores times the share of driving
frames in which the result shows a face. A signal's weight is its importance times how much
the driving clip exercises it (from its std, between a floor above the model's jitter on a
still face and a level at which the signal is fully exercised); one the driving clip does not
move is left out and reported as "not exercised". Weights depend only on the driving clip, so
every result of a run is weighed the same way.
"""

from __future__ import annotations

import math
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
from pydantic import BaseModel

from services.errors import InputError
from services.face import signals

NO_FACE_RESULT = "No face found in the result."
NO_FACE_DRIVING = "No face found in the driving clip."
TOO_SHORT = "The result and the driving clip overlap for less than a second; nothing to compare."
TOO_FEW_FACES = "The result shows a face in too few frames to compare its motion."
NOT_EXERCISED = "not exercised"
STILL_DRIVING = "The driving clip hardly moves the face, so there is no motion to compare."

SCORE_VERSION = 1
_MIN_OVERLAP_S = 1.0
_MIN_PAIRED = 8
# a result "does not move" in a signal when its std is this small a share of the driving's
_FLAT = 1e-3
# Haar searches (30–50 ms each) happen on a 320-px copy, and while no face is in sight at most
# this often: a faceless 10 s result costs 20 searches, not 150. Results are talking heads:
# a face under ~1/13 of the frame's long side is not looked for.
_DETECT_SIDES = (320,)
_SEARCH_EVERY_S = 0.5


@dataclass(frozen=True)
class _Spec:
    importance: float
    floor: float  # driving std at or below which the signal counts as not exercised
    full: float  # driving std from which the signal is fully exercised


# Floors sit at 2.5–3× the std the model's jitter gives a still, drifting, compressed face
# (mouth 0.006, eyes 0.004, brows 0.0034 inter-ocular; roll 0.16°; yaw 0.007; pitch 0.006);
# the model couples features a little (a talking, rolling face without blinks or brow raises
# reads eyes 0.007, brows 0.008), so those floors stay clear of that too.
# The mouth carries speech and most of an expression; the two eyes mostly blink together, so
# they share one eye's importance; head pose is three signals of one motion.
_SPECS: dict[str, _Spec] = {
    "mouth": _Spec(2.0, 0.015, 0.06),
    "eye_left": _Spec(0.75, 0.01, 0.04),
    "eye_right": _Spec(0.75, 0.01, 0.04),
    "brows": _Spec(1.0, 0.011, 0.035),
    "roll": _Spec(0.75, 0.4, 3.0),
    "yaw": _Spec(0.75, 0.02, 0.08),
    "pitch": _Spec(0.75, 0.016, 0.06),
}


class SignalScore(BaseModel):
    name: str
    r: float | None  # Pearson correlation, driving vs result
    amplitude: float | None  # std result / std driving
    score: float | None  # 0–100
    weight: float  # share of the total score, 0–1 (0: not exercised)
    note: str | None = None


class Fidelity(BaseModel):
    score: float | None
    reason: str | None = None  # why there is no score
    signals: list[SignalScore] = []
    frames: int = 0  # driving frames compared
    coverage: float | None = None  # share of them in which the result shows a face
    version: int = SCORE_VERSION


class FaceTrack:
    """One video's signals: `t` (n,) seconds from its first frame, `values` (n, len(names))
    float32 with NaN rows where no face was found. Cached as .npz; `load` refuses a file of
    another VERSION (the caller computes it again)."""

    VERSION: ClassVar[int] = 1

    def __init__(
        self, t: np.ndarray, values: np.ndarray, names: tuple[str, ...] = signals.NAMES
    ) -> None:
        self.t = np.asarray(t, np.float64).reshape(-1)
        self.values = np.asarray(values, np.float32).reshape(self.t.size, len(names))
        self.names = tuple(names)

    @property
    def found(self) -> np.ndarray:
        """Per frame: was a face found."""
        return np.logical_not(np.isnan(self.values).any(axis=1))

    def save(self, path: Path) -> None:
        with open(path, "wb") as f:  # a file object: numpy would append ".npz" to a name
            np.savez(
                f,
                version=np.int64(self.VERSION),
                t=self.t,
                values=self.values,
                names=np.array(self.names),
            )

    @classmethod
    def load(cls, path: Path) -> FaceTrack:
        try:
            with np.load(path, allow_pickle=False) as data:
                version = int(data["version"])
                t, values, names = data["t"], data["values"], tuple(str(n) for n in data["names"])
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            raise InputError(f"The face track {Path(path).name} could not be read.") from None
        if version != cls.VERSION or names != signals.NAMES:
            raise InputError(f"The face track {Path(path).name} was made by another version.")
        return cls(t, values, names)


def face_track(video: Path, *, max_fps: float = 15.0, label: str = "video") -> FaceTrack:
    """Track the face of `video` at ≤ max_fps. Raises InputError for an unreadable file."""
    from services.face.landmarks import Landmarker
    from services.face.video import sampled_frames

    landmarker = Landmarker(detect_sides=_DETECT_SIDES)
    times: list[float] = []
    rows: list[np.ndarray] = []
    missing = np.full(len(signals.NAMES), np.nan, np.float32)
    next_search = 0.0
    for frame in sampled_frames(video, max_fps, label=label):
        # a lost face is searched for again at once, then at most every _SEARCH_EVERY_S
        search = landmarker.tracking or frame.t >= next_search
        found = landmarker.track(frame.image, redetect=search)
        if found is None and search:
            next_search = frame.t + _SEARCH_EVERY_S
        times.append(frame.t)
        rows.append(signals.read(found) if found is not None else missing)
    return FaceTrack(np.array(times), np.array(rows).reshape(len(rows), len(signals.NAMES)))


def score_files(driving: Path, result: Path) -> Fidelity:
    return fidelity(
        face_track(driving, label="driving clip"), face_track(result, label="result video")
    )


def fidelity(driving: FaceTrack, result: FaceTrack) -> Fidelity:
    if driving.names != result.names:
        raise ValueError("face tracks with different signals cannot be compared")
    if not driving.found.any():
        return Fidelity(score=None, reason=NO_FACE_DRIVING)
    if not result.found.any():
        return Fidelity(score=None, reason=NO_FACE_RESULT)
    end = min(driving.t[-1], result.t[-1]) + 1e-6
    keep = driving.found & (driving.t <= end)
    t = driving.t[keep]
    if t.size < _MIN_PAIRED or t[-1] - t[0] < _MIN_OVERLAP_S:
        return Fidelity(score=None, reason=TOO_SHORT)
    drv = driving.values[keep].astype(np.float64)
    res = _resample(result, t)
    paired = ~np.isnan(res).any(axis=1)
    if not paired.any():
        return Fidelity(score=None, reason=NO_FACE_RESULT, frames=int(t.size), coverage=0.0)
    coverage = float(paired.mean())
    if paired.sum() < _MIN_PAIRED:
        return Fidelity(score=None, reason=TOO_FEW_FACES, frames=int(t.size), coverage=coverage)

    raw = [_exercise(name, drv[:, i]) for i, name in enumerate(driving.names)]
    total = sum(raw)
    rows: list[SignalScore] = []
    score = 0.0
    for i, name in enumerate(driving.names):
        if raw[i] == 0.0:
            rows.append(
                SignalScore(
                    name=name, r=None, amplitude=None, score=None, weight=0.0, note=NOT_EXERCISED
                )
            )
            continue
        weight = raw[i] / total
        corr, amplitude, value = _compare(drv[paired, i], res[paired, i])
        score += weight * value
        rows.append(
            SignalScore(
                name=name,
                r=_round(corr, 3),
                amplitude=_round(amplitude, 3),
                score=round(value, 1),
                weight=round(weight, 4),
                note=None if corr is not None else "the result does not move",
            )
        )
    frames, cov = int(t.size), round(coverage, 3)
    if total == 0:
        return Fidelity(score=None, reason=STILL_DRIVING, signals=rows, frames=frames, coverage=cov)
    return Fidelity(score=round(score * coverage, 1), signals=rows, frames=frames, coverage=cov)


def _exercise(name: str, values: np.ndarray) -> float:
    """Importance × how far the driving clip's motion in this signal is above the floor."""
    spec = _SPECS[name]
    motion = float(np.std(values))
    ramp = (motion - spec.floor) / (spec.full - spec.floor)
    return spec.importance * min(1.0, max(0.0, ramp))


def _compare(d: np.ndarray, r: np.ndarray) -> tuple[float | None, float | None, float]:
    """(Pearson r, amplitude ratio, score 0–100) of one signal; r is None for a flat result."""
    sd, sr = float(np.std(d)), float(np.std(r))
    amplitude = sr / sd
    if amplitude < _FLAT:
        return None, amplitude, 0.0
    corr = float(np.corrcoef(d, r)[0, 1])
    corr = corr if math.isfinite(corr) else 0.0
    return corr, amplitude, 100.0 * max(corr, 0.0) * math.sqrt(min(amplitude, 1.0 / amplitude))


def _resample(track: FaceTrack, t: np.ndarray) -> np.ndarray:
    """The track's values at times t, linear between its two neighbouring samples (NaN when
    either has no face); held flat before its first and after its last sample."""
    src_t, src = track.t, track.values.astype(np.float64)
    right = np.clip(np.searchsorted(src_t, t, side="left"), 0, src_t.size - 1)
    left = np.clip(right - 1, 0, src_t.size - 1)
    span = src_t[right] - src_t[left]
    with np.errstate(invalid="ignore", divide="ignore"):
        w = np.where(span > 0, (t - src_t[left]) / span, 1.0)
    w = np.clip(w, 0.0, 1.0)[:, None]
    mixed = src[left] * (1.0 - w) + src[right] * w
    # on a sample itself only that sample counts (a faceless neighbour must not blank it)
    mixed = np.where(w == 1.0, src[right], mixed)
    return np.where(w == 0.0, src[left], mixed)


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)

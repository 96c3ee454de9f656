"""Motion fidelity: the sanity cases that define the score, on generated clips of a real face,
and the combination rules on hand-made face tracks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from services.compare.fidelity import (
    NO_FACE_DRIVING,
    NO_FACE_RESULT,
    NOT_EXERCISED,
    STILL_DRIVING,
    TOO_SHORT,
    FaceTrack,
    Fidelity,
    SignalScore,
    face_track,
    fidelity,
    score_files,
)
from services.errors import InputError
from services.face import signals
from tests.mediagen import make_performance, reencode

EXERCISED = {"mouth", "eye_left", "eye_right", "brows", "roll"}  # what the performance moves


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("fidelity")
    made = {
        name: make_performance(d / f"{name}.mp4", **kw)
        for name, kw in {
            "drive": {},
            "late": {"delay_s": 0.5},
            "mute": {"mouth": False},
            "stare": {"blinks": False},
            "still": {"still": True},
            "empty": {"face": False},
            "far": {"zoom": 0.6, "shift": (0.2, 0.1)},
            "hd": {"size": (1280, 720)},
        }.items()
    }
    made["hd_small"] = reencode(made["hd"], d / "hd_small.mp4", (640, 360))
    return made


@pytest.fixture(scope="module")
def tracks(clips: dict[str, Path]) -> dict[str, FaceTrack]:
    return {name: face_track(path) for name, path in clips.items()}


def _by_name(result: Fidelity) -> dict[str, SignalScore]:
    return {s.name: s for s in result.signals}


def test_the_driving_clip_against_itself_scores_100(tracks: dict[str, FaceTrack]) -> None:
    result = fidelity(tracks["drive"], tracks["drive"])
    assert result.score is not None and result.score >= 97
    assert result.frames == 75 and result.coverage == 1.0 and result.reason is None
    rows = _by_name(result)
    assert {n for n, s in rows.items() if s.weight > 0} == EXERCISED
    for name in set(signals.NAMES) - EXERCISED:  # the head never turns or nods
        assert rows[name].note == NOT_EXERCISED and rows[name].score is None
    assert sum(s.weight for s in result.signals) == pytest.approx(1.0, abs=1e-3)
    # the mouth moves most, so it weighs most
    assert rows["mouth"].weight == max(s.weight for s in result.signals)


def test_a_performance_that_never_blinks_leaves_the_eyes_out(
    tracks: dict[str, FaceTrack],
) -> None:
    own = fidelity(tracks["stare"], tracks["stare"])
    rows = _by_name(own)
    for eye in ("eye_left", "eye_right"):  # the model's jitter must not count as motion
        assert rows[eye].weight == 0 and rows[eye].note == NOT_EXERCISED
    assert own.score is not None and own.score >= 97
    # a result that blinks anyway is not marked down for it
    blinking = fidelity(tracks["stare"], tracks["drive"]).score
    assert blinking is not None and blinking >= 85


def test_a_still_picture_of_the_face_scores_about_zero(tracks: dict[str, FaceTrack]) -> None:
    result = fidelity(tracks["drive"], tracks["still"])
    assert result.score is not None and result.score <= 10
    assert result.coverage == 1.0  # the face is there; it just does not move


def test_the_same_performance_half_a_second_late_scores_far_lower(
    tracks: dict[str, FaceTrack],
) -> None:
    own = fidelity(tracks["drive"], tracks["drive"]).score
    late = fidelity(tracks["drive"], tracks["late"]).score
    assert own is not None and late is not None
    assert late <= own - 20


def test_a_frozen_mouth_scores_far_lower_and_the_mouth_says_why(
    tracks: dict[str, FaceTrack],
) -> None:
    own = fidelity(tracks["drive"], tracks["drive"]).score
    result = fidelity(tracks["drive"], tracks["mute"])
    assert own is not None and result.score is not None
    assert result.score <= own - 20
    rows = _by_name(result)
    assert rows["mouth"].score is not None and rows["mouth"].score < 30
    assert rows["mouth"].amplitude is not None and rows["mouth"].amplitude < 0.3
    for name in EXERCISED - {"mouth"}:
        assert (rows[name].score or 0) >= 80, name


def test_a_result_without_a_face_has_no_score_but_a_reason(tracks: dict[str, FaceTrack]) -> None:
    result = fidelity(tracks["drive"], tracks["empty"])
    assert result.score is None and result.reason == NO_FACE_RESULT
    assert fidelity(tracks["empty"], tracks["drive"]).reason == NO_FACE_DRIVING


def test_another_resolution_and_framing_of_the_same_performance_scores_high(
    tracks: dict[str, FaceTrack],
) -> None:
    rescaled = fidelity(tracks["hd"], tracks["hd_small"])  # 1280×720 → 640×360, re-encoded
    assert rescaled.score is not None and rescaled.score >= 90
    reframed = fidelity(tracks["drive"], tracks["far"])  # the face smaller and off-centre
    assert reframed.score is not None and reframed.score >= 90


def test_score_files_reads_both_and_names_a_bad_file(
    clips: dict[str, Path], tmp_path: Path
) -> None:
    assert score_files(clips["drive"], clips["still"]).score is not None
    broken = tmp_path / "result.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 200)
    with pytest.raises(InputError, match=r"^The result video result\.mp4 "):
        score_files(clips["drive"], broken)
    with pytest.raises(InputError, match="driving clip"):
        score_files(tmp_path / "gone.mp4", clips["drive"])


def test_a_track_saved_and_loaded_scores_the_same(
    tracks: dict[str, FaceTrack], tmp_path: Path
) -> None:
    path = tmp_path / "drive.part.npz"
    tracks["drive"].save(path)
    assert path.is_file()  # saved under exactly that name (numpy adds nothing)
    loaded = FaceTrack.load(path)
    assert np.array_equal(loaded.t, tracks["drive"].t)
    assert np.array_equal(loaded.values, tracks["drive"].values, equal_nan=True)
    assert fidelity(loaded, tracks["mute"]) == fidelity(tracks["drive"], tracks["mute"])


def test_a_track_of_another_version_or_garbage_is_refused(tmp_path: Path) -> None:
    old = tmp_path / "old.npz"
    with open(old, "wb") as f:
        np.savez(
            f,
            version=np.int64(0),
            t=np.zeros(2),
            values=np.zeros((2, 7)),
            names=np.array(signals.NAMES),
        )
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"PK\x03\x04 not really a zip")
    for path in (old, junk, tmp_path / "missing.npz"):
        with pytest.raises(InputError):
            FaceTrack.load(path)


# ---- the combination rules, on hand-made tracks (no video) --------------------------------

FPS = 15.0


def _track(
    seconds: float = 6.0, fps: float = FPS, seed: int = 0, **moving: np.ndarray
) -> FaceTrack:
    """A face at rest (the model's jitter on every signal) plus the given motions."""
    t = np.arange(round(seconds * fps)) / fps
    rng = np.random.default_rng(seed)
    rest = {"mouth": 0.2, "eye_left": 0.15, "eye_right": 0.15, "brows": 0.33, "roll": 2.0,
            "yaw": 0.0, "pitch": 0.65}  # fmt: skip
    jitter = {"roll": 0.1}
    values = np.stack(
        [
            rest[n] + rng.normal(0, jitter.get(n, 0.002), t.size) + moving.get(n, lambda t: 0)(t)
            for n in signals.NAMES
        ],
        axis=1,
    )
    return FaceTrack(t, values)


def _talk(t: np.ndarray) -> np.ndarray:
    return 0.08 * np.clip(np.sin(2 * np.pi * t / 0.7) + np.sin(2 * np.pi * t / 1.9), 0, None)


def _nod(t: np.ndarray) -> np.ndarray:
    return 0.06 * np.sin(2 * np.pi * t / 2.3)


def test_only_what_the_driving_clip_moves_counts() -> None:
    driving = _track(mouth=_talk)
    result = fidelity(driving, _track(seed=1, mouth=_talk))
    rows = _by_name(result)
    assert rows["mouth"].weight == 1.0
    assert all(rows[n].note == NOT_EXERCISED for n in signals.NAMES if n != "mouth")
    assert result.score is not None and result.score >= 95


def test_a_driving_clip_that_never_moves_gives_no_score() -> None:
    result = fidelity(_track(), _track(seed=1, mouth=_talk))
    assert result.score is None and result.reason == STILL_DRIVING
    assert all(s.note == NOT_EXERCISED for s in result.signals)


def test_half_the_amplitude_costs_the_square_root() -> None:
    result = fidelity(_track(mouth=_talk), _track(seed=1, mouth=lambda t: _talk(t) / 2))
    mouth = _by_name(result)["mouth"]
    assert mouth.amplitude == pytest.approx(0.5, abs=0.03)
    assert mouth.score == pytest.approx(100 * 0.5**0.5, abs=3)


def test_frames_without_a_face_in_the_result_scale_the_score() -> None:
    driving = _track(mouth=_talk, pitch=_nod)
    whole = fidelity(driving, _track(seed=1, mouth=_talk, pitch=_nod))
    patchy = _track(seed=1, mouth=_talk, pitch=_nod)
    patchy.values[patchy.t >= 3.0] = np.nan  # the face is lost half-way through
    half = fidelity(driving, patchy)
    assert half.coverage == pytest.approx(0.5, abs=0.02)
    assert whole.score is not None and half.score is not None
    assert half.score == pytest.approx(whole.score * half.coverage, abs=2)


def test_a_result_at_another_frame_rate_is_resampled_by_time() -> None:
    driving = _track(mouth=_talk, pitch=_nod)
    result = fidelity(driving, _track(fps=24.0, seed=1, mouth=_talk, pitch=_nod))
    assert result.score is not None and result.score >= 95
    assert result.frames == driving.t.size


def test_only_the_overlap_is_compared() -> None:
    driving = _track(seconds=6.0, mouth=_talk)
    shorter = fidelity(driving, _track(seconds=3.0, seed=1, mouth=_talk))
    assert shorter.frames == 45  # driving samples up to the result's last one, at 2.93 s
    assert shorter.score is not None and shorter.score >= 95
    assert fidelity(driving, _track(seconds=0.5, mouth=_talk)).reason == TOO_SHORT

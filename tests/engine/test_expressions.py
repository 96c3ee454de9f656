"""The landmark path on a performance whose motion is known (tests/mediagen.make_performance:
jaw bumps, three blinks, two brow raises, head roll and drift), rendered for real onto the same
face mirrored, and read back with the landmark model and plain pixel statistics."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from services.engine.config import EngineConfig, FaceSearchConfig
from services.engine.framing import Square
from services.engine.mesh import FaceMesh, _area2
from services.engine.render import mesh_region, render
from services.engine.retarget import INDEX, POINTS, Pose, iod
from services.face import signals
from services.face.landmarks import Landmarker
from services.face.regions import INNER_LIP_PAIRS, RIGHT_EYE_CORNERS, RIGHT_LID_PAIRS
from services.face.video import sampled_frames
from services.models import TaskOptions
from tests.engine.measure import gray_frames, mouth_opening, pearson
from tests.mediagen import (
    BLINKS,
    BROW_BUMPS,
    CLOSEUP,
    MOUTH_BUMPS,
    Character,
    _bumps,
    make_character,
    make_performance,
    roll_deg,
)

FPS = 24
SIZE = (480, 270)
SECONDS = 4.5


@pytest.fixture(scope="module")
def performance(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_performance(
        tmp_path_factory.mktemp("perf") / "drive.mp4", size=SIZE, seconds=SECONDS, fps=FPS
    )


@pytest.fixture(scope="module")
def portrait(tmp_path_factory: pytest.TempPathFactory) -> Character:
    """The same photograph mirrored, its head as tall as the picture."""
    return make_character(
        tmp_path_factory.mktemp("portrait") / "char.png",
        size=SIZE,
        face_side=SIZE[1],
        mirror=True,
        source=CLOSEUP,
    )


def _render(performance: Path, portrait: Character, out: Path, level: int | None = None) -> Path:
    render(performance, portrait.path, out, TaskOptions(expression_intensity=level))
    return out


@pytest.fixture(scope="module")
def result(
    performance: Path, portrait: Character, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    return _render(performance, portrait, tmp_path_factory.mktemp("out") / "out.mp4")


def _signals(path: Path) -> np.ndarray:
    lm = Landmarker()
    rows = []
    for s in sampled_frames(path, 100):
        found = lm.track(s.image)
        assert found is not None, f"no face at {s.t:.2f} s"
        rows.append(signals.read(found))
    return np.array(rows)


def _truth(bumps: tuple[tuple[float, float, float], ...]) -> np.ndarray:
    return np.array([_bumps(i / FPS, bumps) for i in range(round(SECONDS * FPS))])


def test_the_result_blinks_when_the_driving_face_blinks(result: Path, performance: Path) -> None:
    truth = _truth(BLINKS)

    def shut_over_open(path: Path) -> float:
        eyes = _signals(path)[:, 1:3].mean(axis=1)
        return float(eyes[truth > 0.8].mean() / np.median(eyes[truth == 0]))

    # the model reads a shut eye as partly open (it rounds the lids), so the result's blink is
    # judged against the driving face's own reading: as deep, and visible at all
    driving, got = shut_over_open(performance), shut_over_open(result)
    assert got < 0.8
    assert got < driving + 0.1, (got, driving)
    eyes = _signals(result)[:, 1:3].mean(axis=1)
    assert pearson(eyes, -truth) > 0.7


def test_the_mouth_opens_dark_in_step_with_the_jaw(result: Path, portrait: Character) -> None:
    frames = gray_frames(result)
    mx, my = portrait.mouth
    ry, rx = round(0.025 * portrait.face_side), round(0.05 * portrait.face_side)
    box = np.s_[round(my) - ry : round(my) + ry, round(mx) - rx : round(mx) + rx]
    # the mouth's middle (the astronaut shows teeth there at rest) turns dark as it opens
    luma = np.array([float(f[box].mean()) for f in frames])
    truth = _truth(MOUTH_BUMPS)
    assert pearson(-luma, truth) > 0.8
    assert luma[truth > 0.9].mean() < luma[0] - 20, (luma[0], luma[truth > 0.9].mean())


def test_the_characters_own_teeth_stay_when_the_mouth_opens(
    result: Path, portrait: Character
) -> None:
    """The astronaut smiles with her teeth showing: the opening is new dark area between
    them, not teeth stretched into fangs or painted over."""
    frames = gray_frames(result)
    mx, my = portrait.mouth
    ry, rx = round(0.04 * portrait.face_side), round(0.06 * portrait.face_side)
    box = np.s_[round(my) - ry : round(my) + ry, round(mx) - rx : round(mx) + rx]
    teeth = np.array([int((f[box] > 170).sum()) for f in frames])
    dark = np.array([int((f[box] < 60).sum()) for f in frames])
    wide = _truth(MOUTH_BUMPS) > 0.9
    assert teeth[0] > 200  # the test looks at the teeth
    assert teeth[wide].min() > 0.5 * teeth[0]
    assert dark[wide].min() > dark[0] + 0.1 * teeth[0]


def test_the_brows_rise_with_the_driving_brows(result: Path) -> None:
    brows = _signals(result)[:, 3]
    truth = _truth(BROW_BUMPS)
    assert pearson(brows, truth) > 0.7
    assert brows[truth > 0.9].mean() > np.median(brows[truth == 0]) + 0.02  # inter-ocular units


def test_head_roll_is_transferred_the_right_way_round(result: Path) -> None:
    got = _signals(result)[:, 4]
    truth = [roll_deg(i / FPS) for i in range(len(got))]
    assert pearson(got, truth) > 0.9
    # the character is mirrored: its roll follows the driving head's, not the mirror image
    assert np.std(got) == pytest.approx(np.std(truth), rel=0.35)


def test_expression_intensity_scales_the_deltas(
    performance: Path, portrait: Character, tmp_path: Path
) -> None:
    mouth = {}
    for level in (1, 5):
        got = _signals(_render(performance, portrait, tmp_path / f"i{level}.mp4", level))
        mouth[level] = float(np.ptp(got[:, 0]))
    assert mouth[5] > 2 * mouth[1], mouth


def test_flow_fallback_when_the_model_finds_no_face(tmp_path: Path) -> None:
    """With the landmark model ruled out (as for a drawing it does not read), the dense-flow
    path still moves the mouth in step."""
    from tests.mediagen import make_driving_clip

    clip = tmp_path / "drive.mp4"
    openings = make_driving_clip(clip, seconds=1.0, fps=FPS)
    char = make_character(tmp_path / "c.png")
    no_model = replace(EngineConfig(), faces=FaceSearchConfig(landmark_presence=1.01))
    out = tmp_path / "out.mp4"
    render(clip, char.path, out, config=no_model)
    driven = mouth_opening(gray_frames(out), char.mouth, char.face_side)
    assert pearson(driven, openings) > 0.8


def test_the_mesh_never_folds(portrait: Character) -> None:
    """Wild poses (lips crossed, lids inverted, points flung about): every triangle keeps its
    orientation, so the map is one-to-one."""
    rgb = cv2.cvtColor(cv2.imread(str(portrait.path)), cv2.COLOR_BGR2RGB)
    face = Landmarker().detect(rgb)
    assert face is not None
    c = face.points[:, 0].astype(np.float64) + 1j * face.points[:, 1]
    neutral = c[list(POINTS)]
    region = mesh_region(face, 2.0)
    mesh = FaceMesh(neutral, iod(c), region, (128, 2), EngineConfig().mesh)
    rng = np.random.default_rng(5)
    scale = iod(c)
    for trial in range(40):
        pts = neutral + (rng.normal(size=len(POINTS)) + 1j * rng.normal(size=len(POINTS))) * (
            0.05 * scale * (1 + trial % 4)
        )
        for up, lo in INNER_LIP_PAIRS + RIGHT_LID_PAIRS:  # turn lips and lids inside out
            pts[INDEX[up]], pts[INDEX[lo]] = pts[INDEX[lo]], pts[INDEX[up]]
        angle = math.radians(rng.uniform(-20, 20))
        z = complex(math.cos(angle), math.sin(angle)) * rng.uniform(0.9, 1.1)
        centre = complex(neutral.mean())
        t = centre - z * centre + complex(*rng.uniform(-0.1, 0.1, 2)) * scale
        nodes = mesh.nodes(Pose(z * pts + t, z, t))
        area = _area2(nodes[mesh._tri])
        assert (area >= np.minimum(-1e-3 * np.abs(mesh._ref_area), 1.2 * mesh._src_area2)).all()
        field, _ = mesh.field(nodes)
        assert np.isfinite(field).all()
        # the fixed border: the grid's outer cells do not move
        assert np.abs(field[0]).max() < 1e-3 and np.abs(field[-1]).max() < 1e-3


def test_pixels_outside_the_warped_square_are_the_pictures(
    result: Path, portrait: Character
) -> None:
    rgb = cv2.cvtColor(cv2.imread(str(portrait.path)), cv2.COLOR_BGR2RGB)
    face = Landmarker().detect(rgb)
    assert face is not None
    sq: Square = mesh_region(face, EngineConfig().mesh.region_factor)
    frames = gray_frames(result)
    outside = np.ones(frames[0].shape, bool)
    x0, y0 = max(0, math.floor(sq.x0) - 2), max(0, math.floor(sq.y0) - 2)
    outside[y0 : math.ceil(sq.y0 + sq.side) + 2, x0 : math.ceil(sq.x0 + sq.side) + 2] = False
    assert outside.mean() > 0.2  # the test looks at something
    first = frames[0].astype(np.int16)
    for f in frames[1::6]:
        assert np.abs(f.astype(np.int16) - first)[outside].mean() < 0.5  # nothing there moves
    # and it is the picture itself (compression and colour conversion aside)
    pic = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.int16)
    assert np.abs(pic - first)[outside].mean() < 3


def _with_glasses(portrait: Character, path: Path) -> tuple[Path, np.ndarray]:
    """The portrait with black glasses drawn round its eyes, and where they were drawn."""
    rgb = cv2.cvtColor(cv2.imread(str(portrait.path)), cv2.COLOR_BGR2RGB)
    face = Landmarker().detect(rgb)
    assert face is not None
    p = face.points[:, :2].astype(np.float64)
    c = p[:, 0] + 1j * p[:, 1]
    d = iod(c)
    drawn = np.zeros(rgb.shape[:2], np.uint8)
    centres = [(p[a] + p[b]) / 2 for a, b in ((33, 133), (263, 362))]
    thick = max(2, round(0.06 * d))
    for cx, cy in centres:
        axes = (round(0.45 * d), round(0.3 * d))
        cv2.ellipse(drawn, (round(cx), round(cy)), axes, 0, 0, 360, 1, thick)
    (ax, ay), (bx, by) = centres
    cv2.line(drawn, (round(ax + 0.45 * d), round(ay)), (round(bx - 0.45 * d), round(by)), 1, thick)
    rgb[drawn > 0] = (35, 30, 30)
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path, drawn > 0


def test_glasses_are_found_and_only_where_there_are_some(
    portrait: Character, tmp_path: Path
) -> None:
    from services.engine.accessories import find_glasses

    def layer(path: Path):  # type: ignore[no-untyped-def]
        rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        face = Landmarker().detect(rgb)
        assert face is not None
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        c = face.points[:, 0].astype(np.float64) + 1j * face.points[:, 1]
        return find_glasses(gray, face.points, iod(c))

    assert layer(portrait.path) is None  # wrinkles, lashes, hair: no glasses
    path, drawn = _with_glasses(portrait, tmp_path / "glasses.png")
    found = layer(path)
    assert found is not None
    x0, y0, x1, y1 = found.box
    covered = np.zeros_like(drawn)
    covered[y0:y1, x0:x1] = found.mask > 0.5
    assert (covered & drawn).sum() > 0.8 * drawn.sum()


def test_glasses_stay_whole_while_the_face_moves_behind_them(
    performance: Path, portrait: Character, tmp_path: Path
) -> None:
    """The frames move with the head only: at the neutral pose they are the picture's own, and
    while the brows rise behind them they keep their shape (found again as one piece under
    the head's small drift and roll), not bent along with the brows."""
    path, drawn = _with_glasses(portrait, tmp_path / "glasses.png")
    out = tmp_path / "out.mp4"
    render(performance, path, out)
    frames = gray_frames(out)
    assert np.median(frames[0][drawn]) < 60  # frame 0: the drawn frames, in place
    ys, xs = np.nonzero(drawn)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    centre = ((x1 - x0) / 2, (y1 - y0) / 2)
    m = 10  # room for the head's drift

    def coverage(frame: np.ndarray) -> float:
        """The best share of the drawn frames found dark in `frame`, over the head's small
        shifts and rolls: 1 when they moved as one piece, less when bent or smeared."""
        dark = (frame[y0 - m : y1 + m, x0 - m : x1 + m] < 110).astype(np.float32)
        best = 0.0
        for angle in range(-12, 13):
            turn = cv2.getRotationMatrix2D(centre, angle, 1.0)
            shape = drawn[y0:y1, x0:x1].astype(np.float32)
            tmpl = cv2.warpAffine(shape, turn, (x1 - x0, y1 - y0))
            hit = cv2.matchTemplate(dark, tmpl, cv2.TM_CCORR).max() / tmpl.sum()
            best = max(best, float(hit))
        return best

    assert coverage(frames[0]) > 0.95
    # brows high: the top bars sit right under them (bent along, this reads ~0.73)
    for i in np.flatnonzero(_truth(BROW_BUMPS) > 0.9):
        assert coverage(frames[i]) > 0.82, i


# the subject's right eye's outline: outer corner, upper lid, inner corner, lower lid back
RIGHT_EYE_RING = [
    RIGHT_EYE_CORNERS[0],
    *(up for up, _ in RIGHT_LID_PAIRS),
    RIGHT_EYE_CORNERS[1],
    *(lo for _, lo in reversed(RIGHT_LID_PAIRS)),
]


def test_a_shut_eye_reads_brighter_in_its_pixels(portrait: Character) -> None:
    """The model blurs a wink into both eyes; the eye patches' dark level does not: cover one
    eye with lid-coloured skin and only that eye's level rises."""
    from services.engine.eyes import eye_levels

    rgb = cv2.cvtColor(cv2.imread(str(portrait.path)), cv2.COLOR_BGR2RGB)
    face = Landmarker().detect(rgb)
    assert face is not None
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    open_ = eye_levels(gray, face.points)
    shut = gray.copy()
    p = face.points[:, :2]
    poly = np.rint(p[RIGHT_EYE_RING]).astype(np.int32)
    skin = int(
        np.median(gray[int(p[9, 1]) - 3 : int(p[9, 1]) + 3, int(p[9, 0]) - 3 : int(p[9, 0]) + 3])
    )
    cv2.fillPoly(shut, [poly], skin)
    cv2.polylines(shut, [poly], True, skin, 3)
    closed = eye_levels(shut, face.points)
    assert closed[0, 0] > open_[0, 0] + 20  # the subject's right eye, covered
    assert abs(closed[1, 0] - open_[1, 0]) < 3  # the other, untouched


def test_a_wink_the_pixels_read_nearly_shut_shuts_the_characters_eye(
    portrait: Character,
) -> None:
    """A shut eye's patch keeps its lashes dark, so its pixels read it a little open; the
    model, blurring a wink into both eyes, reads neither shut. One eye painted to read 10 %
    open by its pixels (landmarks unchanged) shuts that eye of the character, lids meeting,
    while the other stays open."""
    from services.engine.config import RetargetConfig
    from services.engine.eyes import eye_levels
    from services.engine.retarget import Retargeter
    from services.face.regions import LEFT_LID_PAIRS

    rgb, face = _portrait_face(portrait)
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    ref = eye_levels(gray, face.points)
    dark, light = ref[0]
    winking = gray.copy()
    poly = np.rint(face.points[RIGHT_EYE_RING, :2]).astype(np.int32)
    lid = round(float(dark + 0.9 * (light - dark)))
    cv2.fillPoly(winking, [poly], lid)
    cv2.polylines(winking, [poly], True, lid, 3)
    seen = 1 - (eye_levels(winking, face.points)[0, 0] - dark) / (light - dark)
    cfg = RetargetConfig()
    assert 0.02 < seen < cfg.wink_shut  # the pixels read the eye a little open

    rt = Retargeter(face, face, cfg, fps=FPS, expression_gain=1.0)
    frames = [(face, gray)] + [(face, winking)] * 6
    poses = [p for f, luma in frames for p in rt.step(f, luma)] + rt.finish()

    def lid_gap(pose: Pose, pairs: tuple[tuple[int, int], ...]) -> float:
        return float(
            np.mean(
                [abs(complex(pose.points[INDEX[lo]] - pose.points[INDEX[up]])) for up, lo in pairs]
            )
        )

    for pairs, shut in ((RIGHT_LID_PAIRS, True), (LEFT_LID_PAIRS, False)):
        share = lid_gap(poses[-1], pairs) / lid_gap(rt.neutral, pairs)
        assert share < 0.02 if shut else share > 0.95, (pairs, share)


def _portrait_face(portrait: Character):  # type: ignore[no-untyped-def]
    rgb = cv2.cvtColor(cv2.imread(str(portrait.path)), cv2.COLOR_BGR2RGB)
    face = Landmarker().detect(rgb)
    assert face is not None
    return rgb, face


def test_a_lost_driving_face_eases_back_to_neutral(portrait: Character) -> None:
    """A mouth held open when the driving face is lost: held for a moment (a hand passing),
    then the expression eases back to neutral while the head stays turned; when the face
    comes back the pose goes on from there."""
    from services.engine.config import RetargetConfig
    from services.engine.retarget import Retargeter

    _, face = _portrait_face(portrait)
    cfg = RetargetConfig()
    rt = Retargeter(face, face, cfg, fps=FPS, expression_gain=1.0)
    up, lo = INDEX[13], INDEX[14]  # the inner lips' middle
    c = face.points[:, 0].astype(np.float64) + 1j * face.points[:, 1]
    turn = complex(math.cos(0.05), math.sin(0.05))
    centre = complex(c.mean())
    opened = face.points.copy()
    for i in (14, 17, 152, 87, 178, 317, 402):  # lower lip and chin down by a fifth of the eyes
        opened[i, 1] += 0.2 * iod(c)
    moved = opened.copy()
    z = centre + turn * (opened[:, 0] + 1j * opened[:, 1] - centre)
    moved[:, 0], moved[:, 1] = z.real, z.imag
    back_at = 1 + FPS + 2 * FPS
    frames = [face] + [replace(face, points=moved)] * FPS + [None] * (2 * FPS)
    frames += [replace(face, points=moved)] * FPS
    poses = [p for f in frames for p in rt.step(f)] + rt.finish()
    assert len(poses) == len(frames)  # one pose per frame, in order, the look-ahead included
    # the last few lost frames already see the face coming back (the look-ahead)
    held, lost, back = poses[FPS], poses[1 + FPS : back_at - rt.delay], poses[back_at:]

    def gap(pose: Pose) -> float:
        return abs(complex(pose.points[lo] - pose.points[up]))

    neutral_gap = gap(rt.neutral)
    assert gap(held) > neutral_gap + 0.15 * iod(c)
    assert gap(lost[2]) > gap(held) - 0.02 * iod(c)  # a few frames: still held
    assert gap(lost[-1]) < neutral_gap + 0.02 * iod(c)  # two seconds: back to neutral
    assert abs(lost[-1].z - held.z) < 1e-9  # the head stays turned
    gaps = np.array([gap(p) for p in lost])
    assert np.abs(np.diff(gaps)).max() < 0.05 * iod(c)  # eased, not dropped
    # found again: the mouth opens again over a few frames, from the eased state
    assert gap(lost[-1]) + 0.02 * iod(c) < gap(back[0]) < gap(held) - 0.02 * iod(c)
    reopen = np.diff([gap(p) for p in poses[back_at - rt.delay :]])
    assert reopen.max() < 0.5 * (gap(held) - gap(lost[-1]))  # over frames, not in one
    assert abs(gap(back[6]) - gap(held)) < 0.01 * iod(c)


def test_a_wider_mouth_widens_the_characters_but_a_turn_of_the_head_does_not(
    portrait: Character,
) -> None:
    """A smile pulls the mouth corners apart: the character's mouth widens by the same share
    of its own width, times the lips' gain (the model reads half of a smile's widening). A
    turn of the head moves the corners sideways too, and narrows the mouth in the picture
    as much as the eyes' span: that is no widening, and is not made more of."""
    from services.engine.config import RetargetConfig
    from services.engine.retarget import LIPS, STABLE, Retargeter, fit_similarity

    _, face = _portrait_face(portrait)
    cfg = RetargetConfig()
    c = face.points[:, 0].astype(np.float64) + 1j * face.points[:, 1]
    right, left = c[61], c[291]  # the outer corners, subject's right and left
    half = (left - right) / 2
    mid = (left + right) / 2
    smiling = face.points.copy()
    lips = list(LIPS)
    # every lip point 10 % further from the mouth's middle along the mouth
    along = ((c[lips] - mid) * half.conjugate()).real / abs(half) ** 2
    moved = c[lips] + 0.1 * along * half
    smiling[lips, 0], smiling[lips, 1] = moved.real, moved.imag
    # a turn of 12° about the vertical axis through the face's middle, seen from the front
    turn = math.radians(12)
    centre = face.points.mean(axis=0)
    turned = face.points.copy()
    x, z = face.points[:, 0] - centre[0], face.points[:, 2] - centre[2]
    turned[:, 0] = centre[0] + x * math.cos(turn) + z * math.sin(turn)
    turned[:, 2] = centre[2] - x * math.sin(turn) + z * math.cos(turn)

    def share(points: np.ndarray) -> float:
        """The mouth's width over the outer eye corners' span, against the picture's."""
        p = dict(zip(POINTS, points, strict=True))
        width = abs(p[291] - p[61]) / abs(p[263] - p[33])
        return width / (abs(left - right) / abs(c[263] - c[33])) - 1

    def held(frame: np.ndarray) -> Pose:
        rt = Retargeter(face, face, cfg, fps=FPS, expression_gain=1.0)
        frames = [face] + [replace(face, points=frame)] * FPS
        poses = [p for f in frames for p in rt.step(f)] + rt.finish()
        return poses[-1]

    assert share(held(face.points).points) == pytest.approx(0.0, abs=1e-9)
    assert share(held(smiling).points) == pytest.approx(0.1 * cfg.lips_gain, rel=0.15)
    assert abs(share(held(turned).points)) < 0.02
    # on the face (the head's motion taken out), the turn shifts the character's mouth
    # sideways just as far as the driving face's: not more
    d = turned[:, 0].astype(np.float64) + 1j * turned[:, 1]
    z_h, t_h = fit_similarity(c[list(STABLE)], d[list(STABLE)])
    drive_shift = ((d[13] - t_h) / z_h - c[13]).real
    got = held(turned)
    p = dict(zip(POINTS, (got.points - got.t) / got.z, strict=True))
    assert abs(drive_shift) > 0.03 * iod(c)
    assert (p[13] - c[13]).real == pytest.approx(drive_shift, abs=0.01 * iod(c))


def test_the_look_ahead_smooths_without_lag_or_losing_frames() -> None:
    """The centred smoother: each value comes out `delay` samples late, as many out as in,
    a step is smoothed symmetrically about where it happened (no lag), σ 0 passes through."""
    from services.engine.filters import Centred

    smoother = Centred(np.array([1.5, 0.0]))
    assert smoother.delay == 4
    steps = np.r_[np.zeros(20), np.ones(20)]
    out = []
    for k, x in enumerate(steps):
        ready = smoother(np.array([x, x]))
        assert len(ready) == (1 if k >= smoother.delay else 0)
        out += ready
    out += smoother.flush()
    smooth, passed = np.array(out).T
    assert len(out) == len(steps)
    assert np.array_equal(passed, steps)  # σ 0: the same values, in the same frames
    assert abs(smooth[19] + smooth[20] - 1.0) < 1e-9  # symmetric about the step: no lag
    assert 0.0 < smooth[17] < smooth[19] < 0.5 < smooth[20] < smooth[22] < 1.0
    assert smooth[:14].max() == 0.0 and smooth[26:].min() == 1.0


def test_lids_reach_over_the_whole_dark_eye(portrait: Character) -> None:
    """Where the model's upper lid sits inside the visible eye (glasses pull it down), the
    lid is raised to the top of the eye's dark middle, so a blink covers the whole iris; an
    eye the model already fits is left as it is."""
    from services.engine.config import RetargetConfig
    from services.engine.eyes import iris_tops
    from services.engine.retarget import Retargeter

    rgb, face = _portrait_face(portrait)
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    cfg = RetargetConfig()
    plain = Retargeter(face, face, cfg, fps=FPS, expression_gain=1.0)
    fitted = Retargeter(face, face, cfg, fps=FPS, expression_gain=1.0, character_luma=gray)
    c = face.points[:, 0].astype(np.float64) + 1j * face.points[:, 1]
    assert np.abs(fitted.neutral.points - plain.neutral.points).max() < 0.05 * iod(c)
    # the model's landmarks moved down by a third of the eye's height: the lid comes back up
    low = face.points.copy()
    eye = [p for pair in RIGHT_LID_PAIRS for p in pair]
    width = float(np.linalg.norm(face.points[33, :2] - face.points[133, :2]))
    low[eye, 1] += 0.12 * width
    lowered = replace(face, points=low)
    down = 1j  # an upright face
    before = iris_tops(gray, face.points, down)
    assert abs(iris_tops(gray, low, down)[0] - before[0]) < 0.1  # the pixels, not the marks
    plain = Retargeter(lowered, lowered, cfg, fps=FPS, expression_gain=1.0)
    fitted = Retargeter(lowered, lowered, cfg, fps=FPS, expression_gain=1.0, character_luma=gray)
    top = INDEX[159]  # the upper lid's middle
    raised = (plain.neutral.points[top] - fitted.neutral.points[top]).imag
    assert raised > 0.05 * width


def test_a_shut_drawn_eye_covers_all_of_it(portrait: Character) -> None:
    """A drawn eye bigger than the model's contour (a cartoon's enlarged eye: its dark and a
    highlight reach well past the lids): the lids are fitted out to it, so closing them sweeps
    skin over the whole eye. A photograph's own lids are left exactly as they were."""
    from services.engine.config import RetargetConfig
    from services.engine.retarget import Retargeter
    from services.face.regions import LEFT_LID_PAIRS

    rgb, face = _portrait_face(portrait)
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    cfg = RetargetConfig()
    kept = Retargeter(face, face, cfg, fps=FPS, expression_gain=1.0, character_luma=gray)
    unfitted = replace(cfg, lid_fit_reach=0.0)
    base = Retargeter(face, face, unfitted, fps=FPS, expression_gain=1.0, character_luma=gray)
    assert np.array_equal(kept.neutral.points, base.neutral.points)

    # the same face with eyes drawn over its own, twice as tall: dark, with a white highlight
    p = face.points[:, :2].astype(np.float64)
    drawn = gray.copy()
    eyes = np.zeros(gray.shape, np.uint8)
    for a, b in ((33, 133), (263, 362)):
        (cx, cy), width = (p[a] + p[b]) / 2, float(np.linalg.norm(p[a] - p[b]))
        axes = (round(0.55 * width), round(0.36 * width))
        cv2.ellipse(eyes, (round(cx), round(cy)), axes, 0, 0, 360, 1, -1)
        drawn[eyes > 0] = 25
        glint = (round(cx - 0.2 * width), round(cy - 0.2 * width))
        cv2.circle(drawn, glint, max(1, round(0.08 * width)), 250, -1)
    fitted = Retargeter(face, face, cfg, fps=FPS, expression_gain=1.0, character_luma=drawn)
    for pairs, eye in ((RIGHT_LID_PAIRS, 0), (LEFT_LID_PAIRS, 1)):
        ring = [INDEX[u] for u, _ in pairs] + [INDEX[lo] for _, lo in reversed(pairs)]
        # the corners do not move: only what lies between them is the lids' to cover
        corners = (33, 133) if eye == 0 else (263, 362)
        z = np.concatenate(
            [
                [complex(*p[corners[0]])],
                fitted.neutral.points[ring[:7]],
                [complex(*p[corners[1]])],
                fitted.neutral.points[ring[7:]],
            ]
        )
        opening = np.zeros(gray.shape, np.uint8)
        cv2.fillPoly(opening, [np.rint(np.stack([z.real, z.imag], 1)).astype(np.int32)], 1)
        half = eyes.copy()
        half[:, : round(p[list(corners), 0].min())] = 0
        half[:, round(p[list(corners), 0].max()) + 1 :] = 0
        covered = float((opening[half > 0] > 0).mean())
        assert covered > 0.9, (eye, covered)


def test_the_skin_under_painted_out_glasses_keeps_its_grain(
    portrait: Character, tmp_path: Path
) -> None:
    """What the frames covered shows when a brow rises off a bar: it is filled with the skin
    beside it, grain and all (a smooth inpainting read as a light smear), and close to the
    picture without glasses there."""
    from services.engine.accessories import find_glasses, without
    from services.engine.framing import rgb_to_i420

    clean = cv2.cvtColor(cv2.imread(str(portrait.path)), cv2.COLOR_BGR2RGB)
    path, drawn = _with_glasses(portrait, tmp_path / "glasses.png")
    rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    face = Landmarker().detect(rgb)
    assert face is not None
    h, w = rgb.shape[:2]
    i420 = rgb_to_i420(rgb)
    c = face.points[:, 0].astype(np.float64) + 1j * face.points[:, 1]
    layer = find_glasses(i420[:h], face.points, iod(c))
    assert layer is not None
    filled = without(i420, (w, h), layer)[:h].astype(np.float32)
    truth = rgb_to_i420(clean)[:h].astype(np.float32)
    inside = drawn & (cv2.dilate(drawn.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0)

    def grain(y: np.ndarray) -> float:
        """Fine texture: the spread of luma minus its own 5 px blur."""
        return float(np.std((y - cv2.GaussianBlur(y, (0, 0), 2.0))[inside]))

    smooth = cv2.inpaint(
        i420[:h].copy(), (drawn > 0).astype(np.uint8) * 255, 3, cv2.INPAINT_TELEA
    ).astype(np.float32)
    assert grain(filled) > 0.5 * grain(truth)
    assert grain(filled) > 1.5 * grain(smooth)
    # the shading is the smooth fill's (median error 5 levels here), the grain adds a little
    assert np.median(np.abs(filled - truth)[inside]) < 12

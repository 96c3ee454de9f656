"""The offline face landmarker on scikit-image's astronaut photograph (a real face)."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from services.face import signals
from services.face.landmarks import (
    LEFT_EYE_OUTER,
    N_POINTS,
    RIGHT_EYE_OUTER,
    Landmarker,
    Landmarks,
    Yuv420,
    model_bytes,
)
from tests.mediagen import astronaut, background

# Where the model puts the photograph's outer eye corners and inner lips (512-px photo),
# checked by eye on an overlay; the tests allow a few pixels either way.
RIGHT_EYE_CORNER = (194.0, 101.0)
LEFT_EYE_CORNER = (256.0, 103.0)
UPPER_LIP, LOWER_LIP = 13, 14


@pytest.fixture(scope="module")
def marker() -> Landmarker:
    return Landmarker()


def _scene(photo: np.ndarray, size: tuple[int, int], at: tuple[int, int]) -> np.ndarray:
    frame = background(size, seed=3).copy()
    h, w = photo.shape[:2]
    frame[at[1] : at[1] + h, at[0] : at[0] + w] = photo
    return frame


def _turned(angle_deg: float) -> np.ndarray:
    """The photograph turned about its face, clockwise on screen by angle_deg."""
    m = cv2.getRotationMatrix2D((225.0, 120.0), -angle_deg, 1.0)
    return cv2.warpAffine(astronaut(), m, (512, 512), borderMode=cv2.BORDER_REFLECT)


def test_the_model_ships_with_the_package_and_its_licence() -> None:
    from importlib import resources

    folder = resources.files("services.face") / "models"
    assert len(model_bytes()) == 1_242_398
    notice = (folder / "NOTICE").read_text()
    assert "Apache License, Version 2.0" in notice and "mediapipe-0.10.21" in notice
    assert "Apache License" in (folder / "LICENSE").read_text()


def test_detect_finds_the_photographs_face_where_it_is(marker: Landmarker) -> None:
    found = marker.detect(astronaut())
    assert found is not None
    assert found.points.shape == (N_POINTS, 3) and found.presence > 0.9
    assert np.hypot(*(found.points[RIGHT_EYE_OUTER, :2] - RIGHT_EYE_CORNER)) < 4
    assert np.hypot(*(found.points[LEFT_EYE_OUTER, :2] - LEFT_EYE_CORNER)) < 4
    # the mouth is below the eyes and slightly open (the astronaut smiles with her teeth)
    assert found.points[LOWER_LIP, 1] > found.points[UPPER_LIP, 1] > 130


def test_no_face_in_a_picture_without_one(marker: Landmarker) -> None:
    assert marker.detect(background((640, 360), seed=5)) is None


def test_points_follow_the_face_across_the_frame_and_its_scale(marker: Landmarker) -> None:
    photo = cv2.resize(astronaut(), (256, 256), interpolation=cv2.INTER_AREA)
    near = marker.detect(_scene(photo, (800, 450), (40, 30)))
    far = marker.detect(_scene(photo, (800, 450), (480, 170)))
    big = marker.detect(astronaut())
    assert near is not None and far is not None and big is not None
    shift = far.points[:, :2] - near.points[:, :2]
    assert np.allclose(np.median(shift, axis=0), (440, 140), atol=1.0)
    # the same face at half the size: the same shape, and the same normalised signals
    assert np.median(np.abs(near.points[:, :2] - (40, 30) - big.points[:, :2] / 2)) < 1.0
    assert np.allclose(signals.read(near)[:4], signals.read(big)[:4], atol=0.02)


def test_decoder_planes_give_the_same_points_as_rgb(marker: Landmarker) -> None:
    rgb = _scene(cv2.resize(astronaut(), (300, 300)), (640, 360), (170, 30))
    i420 = cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420)  # BT.601, video range
    h, w = rgb.shape[:2]
    u = i420[h : h + h // 4].reshape(h // 2, w // 2)
    v = i420[h + h // 4 :].reshape(h // 2, w // 2)
    planes = Yuv420(i420[:h], u, v, bt709=False, full_range=False)
    from_rgb, from_yuv = marker.detect(rgb), marker.detect(planes)
    assert from_rgb is not None and from_yuv is not None
    assert np.median(np.abs(from_rgb.points[:, :2] - from_yuv.points[:, :2])) < 0.7


def test_tracking_follows_a_head_rolling_past_what_haar_finds(marker: Landmarker) -> None:
    marker.reset()
    rolls = []
    for angle in range(0, 50, 5):
        found = marker.track(_turned(angle))
        assert found is not None, f"lost at {angle}°"
        rolls.append(math.degrees(found.roll))
    natural = rolls[0]  # the photograph's own eye line is not quite level
    assert np.allclose(np.array(rolls) - natural, np.arange(0, 50, 5), atol=2.0)
    assert marker.tracking
    # Haar alone does not find the face at 45°: the tracked crop is what kept it
    assert Landmarker().detect(_turned(45)) is None


def test_a_lost_face_is_searched_for_only_when_asked(marker: Landmarker) -> None:
    marker.reset()
    assert marker.track(astronaut()) is not None
    empty = background((512, 512), seed=9)
    assert marker.track(empty, redetect=False) is None and not marker.tracking
    assert marker.track(astronaut(), redetect=False) is None  # no search: stays lost
    found = marker.track(astronaut())
    assert isinstance(found, Landmarks) and marker.tracking


def test_signals_see_a_mouth_open_wider(marker: Landmarker) -> None:
    from tests.mediagen import _mouth_maps

    mx, my = _mouth_maps(1.0, 14.0)
    opened = cv2.remap(astronaut(), mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    rest, wide = marker.detect(astronaut()), marker.detect(opened)
    assert rest is not None and wide is not None
    mouth = signals.NAMES.index("mouth")
    assert signals.read(wide)[mouth] > signals.read(rest)[mouth] + 0.08

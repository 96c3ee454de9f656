"""The one face search (services.face.search, Landmarker.faces): the Haar cascade proposes
boxes, the landmark model confirms them. On the astronaut photograph the cascade also boxes
the model shuttle beside the face, larger than the face, at the engine's settings."""

from __future__ import annotations

import cv2
import numpy as np

from services.engine.config import FaceSearchConfig
from services.face import search
from services.face.landmarks import Landmarker, Yuv420
from services.media import faces
from tests.mediagen import astronaut, background

# Centres in the 512-px photograph: the face, and the shuttle the cascade mistakes for one.
FACE = (223.0, 115.0)
SHUTTLE = (349.0, 188.0)


def _centre(box: faces.Box[int] | faces.Box[float]) -> tuple[float, float]:
    return box.cx, box.cy


def _near(a: tuple[float, float], b: tuple[float, float], tol: float) -> bool:
    return abs(a[0] - b[0]) <= tol and abs(a[1] - b[1]) <= tol


def _engine_landmarker(threshold: float | None = None) -> Landmarker:
    cfg = FaceSearchConfig()
    return Landmarker(
        presence_threshold=cfg.landmark_presence if threshold is None else threshold,
        detect_sides=cfg.detect_sides,
    )


def test_the_engine_fallback_finds_the_face_not_the_larger_false_box() -> None:
    photo = np.ascontiguousarray(astronaut())
    step = FaceSearchConfig().scale_step
    # the premise: what the cascade alone proposes at the engine's settings (a presence no
    # crop reaches rules the model out), the shuttle first
    raw = _engine_landmarker(threshold=1.01).faces(photo, scale_step=step)
    assert [f.marks for f in raw] == [None, None]
    assert _near(_centre(raw[0].box), SHUTTLE, 12) and _near(_centre(raw[1].box), FACE, 12)

    box = search.find_face(photo, _engine_landmarker(), step)
    assert box is not None and _near(_centre(box), FACE, 8)
    assert 85 <= box.h <= 115  # the cascade's own box, as the flow fallback expects


def test_the_search_reads_decoder_planes_too() -> None:
    photo = np.ascontiguousarray(astronaut())
    i420 = cv2.cvtColor(photo, cv2.COLOR_RGB2YUV_I420)  # BT.601, video range
    u = i420[512:640].reshape(256, 256)
    v = i420[640:].reshape(256, 256)
    planes = Yuv420(i420[:512], u, v, bt709=False, full_range=False)
    box = search.find_face(planes, _engine_landmarker(), FaceSearchConfig().scale_step)
    assert box is not None and _near(_centre(box), FACE, 8)


def test_unconfirmed_boxes_stand_only_when_the_model_confirms_none() -> None:
    """A drawing the model does not read still has the cascade's face (the checks must not
    call it faceless, the engine animates it by flow); the engine's own landmarker decides."""
    photo = np.ascontiguousarray(astronaut())
    blind = _engine_landmarker(threshold=1.01)
    assert blind.detect(photo) is None  # no points without a confirmation
    box = search.find_face(photo, blind, FaceSearchConfig().scale_step)
    assert box is not None and _near(_centre(box), SHUTTLE, 12)  # the cascade's largest


def test_detect_keeps_faces_and_drops_false_boxes() -> None:
    small = cv2.resize(astronaut(), (480, 480), interpolation=cv2.INTER_AREA)
    thorough = 1.05  # the checks' close look, which boxes the shuttle too
    assert len(faces.detect(small, thorough)) == 2  # the premise
    found = search.detect(small, thorough)
    assert len(found) == 1
    k = 480 / 512
    assert _near(_centre(found[0]), (FACE[0] * k, FACE[1] * k), 8)
    assert all(isinstance(v, int) for v in found[0])  # whole pixels, as callers expect


def test_two_real_faces_count_two() -> None:
    """Two people side by side: both faces are confirmed, both shuttles dropped."""
    photo = np.ascontiguousarray(astronaut())
    pair = np.ascontiguousarray(np.concatenate([photo, photo], axis=1))
    assert len(faces.detect(pair, 1.05)) == 4  # the premise: two faces, two shuttles
    found = search.detect(pair, 1.05)
    centres = sorted(_centre(b) for b in found)
    assert len(centres) == 2
    assert _near(centres[0], FACE, 10) and _near(centres[1], (FACE[0] + 512, FACE[1]), 10)


def test_no_face_no_box() -> None:
    empty = background((640, 360), seed=5)
    assert search.detect(empty) == []
    assert search.find_face(empty, _engine_landmarker(), FaceSearchConfig().scale_step) is None

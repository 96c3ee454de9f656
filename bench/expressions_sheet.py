"""The before/after contact sheet of the expression bench: one row per expression (the frame
where the logged truth shows it most and the other expressions least), the driving clip's face
in the first column, then per character its before and after result (face crops).

    write(SHEET, before_dir, after_dir)   # after_dir None: the before results twice
"""

from __future__ import annotations

from pathlib import Path

import cv2
import expressions_measure as measure
import expressions_truth as truth
import numpy as np
from PIL import Image

from tests.engine.measure import rgb_frames

ROWS = ("neutral", "jaw", "blink", "brow", "yaw", "smile", "wink")
# (clip, character) pairs shown, left to right
PAIRS = (
    ("1280x720", "hopper_glasses"),
    ("1280x720", "cartoon"),
    ("1280x720", "mirror_recolour"),
    ("640x360", "square512"),
)
TILE = 104
LABEL_W, HEAD_H = 52, 30


def pickrgb_frames(t: dict[str, np.ndarray]) -> dict[str, int]:
    """Row → frame index, chosen from the truth signals."""
    blink = np.minimum(t["eye_left"], t["eye_right"])
    wink = t["eye_left"] - t["eye_right"]
    parts = {
        "jaw": t["jaw"],
        "blink": blink,
        "brow": t["brows"],
        "smile": t["smile"],
        "wink": wink,
        "yaw": np.abs(t["yaw"]) / truth.YAW_DEG,
    }
    picks = {"neutral": 0}
    for row in ROWS[1:]:
        others = sum(v for k, v in parts.items() if k not in (row, "yaw"))
        if row != "yaw":
            others = others + 0.3 * parts["yaw"]
        picks[row] = int(np.argmax(parts[row] - others))
    return picks


def _crop_box(points: np.ndarray) -> tuple[float, float, float]:
    """A square around a face's 68 points: centre and side (3.4 eye distances)."""
    iod = float(np.linalg.norm(points[42:48].mean(0) - points[36:42].mean(0)))
    cx, cy = points.mean(0)
    return float(cx), float(cy - 0.2 * iod), 3.4 * iod


def _tile(img: np.ndarray, box: tuple[float, float, float]) -> np.ndarray:
    cx, cy, side = box
    k = TILE / side
    m = np.float32([[k, 0, TILE / 2 - cx * k], [0, k, TILE / 2 - cy * k]])
    return cv2.warpAffine(img, m, (TILE, TILE), flags=cv2.INTER_AREA, borderValue=(255, 255, 255))


def _text(img: np.ndarray, s: str, xy: tuple[int, int], scale: float = 0.38) -> None:
    cv2.putText(img, s, xy, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1, cv2.LINE_AA)


def write(out: Path, before: Path, after: Path | None) -> Path:
    """The sheet as a palette PNG at `out`; pairs without a before result are left out."""
    from bench_expressions import OUT, clip_for  # the bench's clip folder and clip maker

    chars = truth.make_characters(OUT / "characters")
    clip = clip_for("1280x720")
    picks = pickrgb_frames(clip.truth)
    wanted = set(picks.values())
    driving = rgb_frames(clip.path, wanted)
    drv = measure.face_in(driving[0])
    if drv is None:
        raise SystemExit("dlib finds no face in the driving clip's first frame.")
    drv_pts = drv[0]
    columns = [("driving", [_tile(driving[picks[r]], _crop_box(drv_pts)) for r in ROWS])]
    for clip_name, char in PAIRS:
        b = before / f"{clip_name}_{char}.mp4"
        if not b.exists():
            continue
        a = (after / f"{clip_name}_{char}.mp4") if after is not None else b
        still = measure.still_face(chars[char])
        if still is None:
            continue
        box = _crop_box(still[0])
        for label, path in (("before", b), ("after" if after is not None else "after=before", a)):
            if not path.exists():
                continue
            got = rgb_frames(path, wanted)
            tiles = [
                _tile(got[picks[r]], box)
                if picks[r] in got
                else np.full((TILE, TILE, 3), 255, np.uint8)
                for r in ROWS
            ]
            short = char.replace("_", " ") + (" 360p" if clip_name == "640x360" else "")
            columns.append((f"{short}|{label}", tiles))
    width = LABEL_W + len(columns) * (TILE + 2)
    sheet = np.full((HEAD_H + len(ROWS) * (TILE + 2), width, 3), 255, np.uint8)
    for j, (label, tiles) in enumerate(columns):
        x = LABEL_W + j * (TILE + 2)
        top, _, bottom = label.partition("|")
        _text(sheet, top[:17], (x + 2, 12))
        _text(sheet, bottom, (x + 2, 25))
        for i, t in enumerate(tiles):
            y = HEAD_H + i * (TILE + 2)
            sheet[y : y + TILE, x : x + TILE] = t
    for i, row in enumerate(ROWS):
        _text(sheet, row, (4, HEAD_H + i * (TILE + 2) + TILE // 2 + 4), 0.42)
    Image.fromarray(sheet).quantize(colors=128).save(out, optimize=True)
    return out

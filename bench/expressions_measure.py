"""Expressions read from a video by a model the engine does not use: dlib's 68-point shape
predictor and its ResNet face embedding (both from `face-recognition-models`, run by
`dlib-bin`; the engine and services/face use MediaPipe's 468-point mesh, so scoring with that
would flatter an engine built on it).

Per frame (image sides; distances in the face's upright frame over the inter-ocular
distance): eye_left / eye_right openness (mean lid gap), brows (brow height over the eye
line), mouth (inner-lip gap), smile (mouth width), yaw (nose tip off the eyes' middle), roll
(eye line, degrees clockwise). Identity: the embedding distance of result frames to the
character still (< 0.6 = the same person by dlib's convention).

Tracking: the detector finds the first box; after that the box follows the landmarks (its
place and size relative to them fixed at the first frame) and the predictor runs twice per
frame (the second time on the box of its own first answer), so an answer depends on the
frame and not on how far the face moved since the last one. Signals get a running median
of three (a single frame where the predictor snaps to a wrong answer is dropped).

Anchoring: a shape that follows its own points keeps any slip it makes (behind thick drawn
glasses, shut eyes let dlib's whole 68-point shape drop a feature row, brows on the eyes, and
it stayed there for the rest of the clip). So every frame dlib's detector also looks for the
face near the tracked box, and the predictor runs on its box too; where the two shapes'
eyes disagree by more than 0.1 eye distances, the one whose eyes sit where they usually sit
in the detector's box wins (the median place over the frames where both agreed). The
detector's box alone is too coarse to place the eyes (±0.1 eye distances from frame to frame)
but not to tell a shape a feature row off; where both shapes agree nothing changes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import av
import numpy as np

INSTALL = (
    "The expression bench measures with dlib, which is not installed: run `make bench-setup` "
    "(or `.venv/bin/pip install -e '.[bench]'`)."
)

# in the names of cached readings: bump when the tracking changes what a video reads as
TRACKER = "anchored-px"

NAMES = ("eye_left", "eye_right", "brows", "mouth", "smile", "yaw", "roll")


class MissingModel(RuntimeError):
    pass


@cache
def _models() -> tuple[object, object, object]:
    try:
        import dlib
        import face_recognition_models as frm
        import matplotlib  # noqa: F401  (Grace Hopper's photograph, for a character)
    except ImportError as e:
        raise MissingModel(INSTALL) from e
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(frm.pose_predictor_model_location())
    encoder = dlib.face_recognition_model_v1(frm.face_recognition_model_location())
    return detector, predictor, encoder


def available() -> bool:
    try:
        _models()
    except MissingModel:
        return False
    return True


def signals_of(points: np.ndarray) -> np.ndarray:
    """NAMES for one face's 68 points (x, y)."""
    p = points.astype(np.float64)
    el, er = p[36:42].mean(0), p[42:48].mean(0)
    d = er - el
    iod = float(np.hypot(*d)) or 1.0
    roll = math.atan2(d[1], d[0])
    c, s = math.cos(roll), math.sin(roll)
    u = p[:, 0] * c + p[:, 1] * s
    v = -p[:, 0] * s + p[:, 1] * c

    def gap(pairs: tuple[tuple[int, int], ...]) -> float:
        return float(np.mean([v[lo] - v[up] for up, lo in pairs])) / iod

    eye_v = v[36:48].mean()
    return np.array(
        [
            gap(((37, 41), (38, 40))),
            gap(((43, 47), (44, 46))),
            (eye_v - v[17:27].mean()) / iod,
            gap(((61, 67), (62, 66), (63, 65))),
            (u[54] - u[48]) / iod,
            # the nose tip off the eyes' middle: the outline points move with hair and glasses
            (u[30] - (u[36:42].mean() + u[42:48].mean()) / 2) / iod,
            math.degrees(roll),
        ]
    )


@dataclass
class Track:
    """One video read by dlib: NAMES per frame (NaN where no face), frame times, jitter and
    identity distances (at the frames in `identity_at`)."""

    times: np.ndarray
    signals: np.ndarray  # (frames, len(NAMES))
    points: np.ndarray  # (frames, 68, 2), NaN where no face
    identity: dict[int, float] = field(default_factory=dict)
    size: tuple[int, int] = (0, 0)
    switched: int = 0  # frames where the detector's shape replaced the tracked one
    # per frame and eye (image-left, image-right): the mean luminance of the darkest and of
    # the brightest fifth of the eye's patch (eye_pixels); NaN where no face
    eye_px: np.ndarray = field(default_factory=lambda: np.zeros((0, 2, 2)))

    @property
    def found(self) -> float:
        return float(np.mean(~np.isnan(self.signals[:, 0]))) if len(self.signals) else 0.0

    def jitter(self) -> float:
        """Median over frames of the RMS second difference of the 68 points, in thousandths
        of the inter-ocular distance: noise a smooth motion at 24 fps hardly has."""
        p = self.points
        if len(p) < 3:
            return float("nan")
        acc = p[:-2] - 2 * p[1:-1] + p[2:]
        iod = np.linalg.norm(p[1:-1, 42:48].mean(1) - p[1:-1, 36:42].mean(1), axis=1)
        rms = np.sqrt(np.mean(np.sum(acc**2, axis=2), axis=1)) / iod
        return float(np.nanmedian(rms) * 1000) if np.isfinite(rms).any() else float("nan")


# Boxes the 68-point predictor is run on around the detected one (shifts and scales, shares
# of its side): their mean landmarks. One box flips between nearby answers on faces the
# predictor finds hard (wrinkles, glasses: up to 0.04 eye-distances on a still picture moved by
# half a pixel, and now and then a whole mouth 30 px off); the median of seven settles it.
_ENSEMBLE = (
    (0, 0, 0),
    (0.03, 0, 0),
    (-0.03, 0, 0),
    (0, 0.03, 0),
    (0, -0.03, 0),
    (0, 0, 0.05),
    (0, 0, -0.05),
)
_AGREE = 0.1  # eye distances: two shapes closer than this are the same answer
_FACE_PX = 150  # the predictor looks at the face scaled to about this box side


def _shape(img: np.ndarray, box: object) -> tuple[object, np.ndarray]:
    """The 68 points (image pixels) and a dlib shape of them for the embedding."""
    import cv2
    import dlib

    _, predictor, _ = _models()
    left, top, right, bottom = box.left(), box.top(), box.right(), box.bottom()  # type: ignore[attr-defined]
    side = max(1.0, float(right - left))
    k = min(1.0, _FACE_PX / side)
    h, w = img.shape[:2]
    cx, cy = (left + right) / 2, (top + bottom) / 2
    x0, y0 = max(0, int(cx - side)), max(0, int(cy - side))
    x1, y1 = min(w, int(cx + side)), min(h, int(cy + side))
    crop = np.ascontiguousarray(img[y0:y1, x0:x1])
    if k < 1:
        crop = cv2.resize(crop, None, fx=k, fy=k, interpolation=cv2.INTER_AREA)
    runs = []
    for dx, dy, ds in _ENSEMBLE:
        bx, by, half = (cx - x0 + dx * side) * k, (cy - y0 + dy * side) * k, side * k * (1 + ds) / 2
        r = dlib.rectangle(round(bx - half), round(by - half), round(bx + half), round(by + half))
        shape = predictor(crop, r)  # type: ignore[operator]
        runs.append([(q.x, q.y) for q in shape.parts()])
    pts = np.median(np.asarray(runs, np.float64), axis=0) / k + (x0, y0)
    full = dlib.full_object_detection(
        dlib.rectangle(left, top, right, bottom),
        [dlib.point(round(x), round(y)) for x, y in pts],
    )
    return full, pts


def _detect(img: np.ndarray) -> object | None:
    """The largest face's dlib box in the whole frame (looked for on a copy of at most
    640 px, upsampled once by the detector), in the frame's pixels."""
    import cv2
    import dlib

    detector, _, _ = _models()
    h, w = img.shape[:2]
    k = min(1.0, 640.0 / max(h, w))
    small = img if k == 1 else cv2.resize(img, None, fx=k, fy=k, interpolation=cv2.INTER_AREA)
    found = detector(np.ascontiguousarray(small), 1)  # type: ignore[operator]
    if not found:
        return None
    r = max(found, key=lambda b: b.area())
    return dlib.rectangle(
        round(r.left() / k), round(r.top() / k), round(r.right() / k), round(r.bottom() / k)
    )


def _iod(pts: np.ndarray) -> float:
    return float(np.linalg.norm(pts[42:48].mean(0) - pts[36:42].mean(0))) or 1.0


def _box_of(pts: np.ndarray, rel: tuple[float, float, float]) -> object:
    import dlib

    centre, iod = pts.mean(0), _iod(pts)
    half = rel[2] * iod / 2
    bx, by = centre[0] + rel[0] * iod, centre[1] + rel[1] * iod
    return dlib.rectangle(round(bx - half), round(by - half), round(bx + half), round(by + half))


def _plausible(pts: np.ndarray, prev: np.ndarray) -> bool:
    """Still the same face: eye distance within 25 % and the centre within one eye distance."""
    a, b = _iod(pts), _iod(prev)
    return 0.75 < a / b < 1.33 and float(np.linalg.norm(pts.mean(0) - prev.mean(0))) < b


_DETECT_SIDE = 120.0  # the tracked box is scaled to this side for the detector (window 80 px)


def _detect_near(img: np.ndarray, box: object) -> object | None:
    """dlib's detector on the region around `box` (three of its sides across, scaled so the
    box is _DETECT_SIDE px): the found box nearest it, in frame pixels, or None when there is
    none of about its place and size. ~10 ms, where the whole frame would take ~10×."""
    import cv2
    import dlib

    detector, _, _ = _models()
    left, top, right, bottom = box.left(), box.top(), box.right(), box.bottom()  # type: ignore[attr-defined]
    side = max(1.0, float(right - left))
    cx, cy = (left + right) / 2, (top + bottom) / 2
    h, w = img.shape[:2]
    x0, y0 = max(0, int(cx - 1.5 * side)), max(0, int(cy - 1.5 * side))
    x1, y1 = min(w, int(cx + 1.5 * side)), min(h, int(cy + 1.5 * side))
    if x1 - x0 < 8 or y1 - y0 < 8:
        return None
    k = _DETECT_SIDE / side
    crop = cv2.resize(
        np.ascontiguousarray(img[y0:y1, x0:x1]),
        None,
        fx=k,
        fy=k,
        interpolation=cv2.INTER_AREA if k < 1 else cv2.INTER_LINEAR,
    )
    best, best_d = None, 0.5 * side
    for b in detector(np.ascontiguousarray(crop), 0):  # type: ignore[operator]
        bs = (b.right() - b.left()) / k
        bx, by = (b.left() + b.right()) / 2 / k + x0, (b.top() + b.bottom()) / 2 / k + y0
        d = float(np.hypot(bx - cx, by - cy))
        if d < best_d and 0.7 < bs / side < 1.4:
            best, best_d = (bx, by, bs), d
    if best is None:
        return None
    bx, by, bs = best
    return dlib.rectangle(
        round(bx - bs / 2), round(by - bs / 2), round(bx + bs / 2), round(by + bs / 2)
    )


def _eyes_in(box: object, pts: np.ndarray) -> np.ndarray:
    """Both eye centres relative to the box's centre, in box sides (4 numbers)."""
    left, top, right, bottom = box.left(), box.top(), box.right(), box.bottom()  # type: ignore[attr-defined]
    side = max(1.0, float(right - left))
    centre = np.array([(left + right) / 2, (top + bottom) / 2])
    return np.concatenate([pts[36:42].mean(0) - centre, pts[42:48].mean(0) - centre]) / side


def _eye_shift(a: np.ndarray, b: np.ndarray) -> float:
    """How far apart two shapes' eyes are, in eye distances (the larger of the two eyes)."""
    iod = (_iod(a) + _iod(b)) / 2
    return (
        max(
            float(np.linalg.norm(a[36:42].mean(0) - b[36:42].mean(0))),
            float(np.linalg.norm(a[42:48].mean(0) - b[42:48].mean(0))),
        )
        / iod
    )


_EYE_PATCH = (32, 12)  # px: the patch spans the eye's corners across and 0.4 of that down


def eye_pixels(img: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Each eye's (image-left, image-right) darkest and brightest fifth, mean luminance 0..255,
    in a patch between dlib's corner points (36–39, 42–45): a cross-check of the lid points
    that does not rest on them — the iris and pupil leave the patch as the lids close, so its
    darkest fifth brightens. The corners hold still in a blink, and the patch stays inside
    glasses' rims."""
    import cv2

    w, h = _EYE_PATCH
    out = np.full((2, 2), np.nan)
    for e, (a, b) in enumerate(((36, 39), (42, 45))):
        p, q = pts[a].astype(np.float64), pts[b].astype(np.float64)
        across = q - p
        down = np.array([-across[1], across[0]]) * 0.4
        centre = (p + q) / 2
        src = np.float32(
            [
                centre - across / 2 - down / 2,
                centre + across / 2 - down / 2,
                centre - across / 2 + down / 2,
            ]
        )
        m = cv2.getAffineTransform(src, np.float32([[0, 0], [w, 0], [0, h]]))
        patch = cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_AREA)
        lum = np.sort(patch.astype(np.float64) @ np.array([0.299, 0.587, 0.114]), axis=None)
        fifth = max(1, lum.size // 5)
        out[e] = lum[:fifth].mean(), lum[-fifth:].mean()
    return out


def embedding(img: np.ndarray, shape: object) -> np.ndarray:
    _, _, encoder = _models()
    return np.array(encoder.compute_face_descriptor(img, shape))  # type: ignore[attr-defined]


def face_in(img: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """The largest face's 68 points and embedding in one RGB image, or None."""
    box = _detect(np.ascontiguousarray(img))
    if box is None:
        return None
    shape, pts = _shape(img, box)
    return pts, embedding(img, shape)


def still_face(path: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """The character still's 68 points and embedding, or None without a face."""
    from PIL import Image

    with Image.open(path) as im:
        return face_in(np.ascontiguousarray(np.asarray(im.convert("RGB"))))


def read_video(
    path: Path,
    *,
    every: int = 1,
    identity_of: np.ndarray | None = None,
    identity_every: int = 24,
    frames: set[int] | None = None,
    keep: dict[int, np.ndarray] | None = None,
) -> Track:
    """Track the face through `path` (every `every`-th frame); with `identity_of` (an
    embedding), the distance to it every `identity_every` frames. Frames listed in `frames`
    are copied into `keep` (for contact sheets)."""
    times, rows, pts_all, px_all, ident = [], [], [], [], {}
    prev: np.ndarray | None = None
    # After the first detection the box follows the landmarks: its centre and side relative to
    # their centroid and eye distance are fixed then. Re-detecting every frame instead makes the
    # box (and so the landmarks) hop between two answers on alternate frames.
    rel: tuple[float, float, float] | None = None
    # where the eyes sit in the detector's box, per frame where the tracked and the detected
    # shapes agreed (module docstring: anchoring)
    anchor: list[np.ndarray] = []
    switched = 0
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        stream.thread_type = "AUTO"
        size = (stream.codec_context.width, stream.codec_context.height)
        for i, f in enumerate(c.decode(stream)):
            if frames is not None and keep is not None and i in frames:
                keep[i] = f.to_ndarray(format="rgb24")
            if i % every:
                continue
            img = keep[i] if keep is not None and i in keep else f.to_ndarray(format="rgb24")
            t = float(f.time) if f.time is not None else i / float(stream.average_rate or 24)
            times.append(t)
            box = _box_of(prev, rel) if prev is not None and rel is not None else _detect(img)
            if box is None:
                prev = rel = None
                rows.append(np.full(len(NAMES), np.nan))
                pts_all.append(np.full((68, 2), np.nan))
                px_all.append(np.full((2, 2), np.nan))
                continue
            shape, pts = _shape(img, box)
            if rel is not None:
                # settle on this frame's own answer: the box from these landmarks, once more
                shape, pts = _shape(img, _box_of(pts, rel))
                found = _detect_near(img, box)
                if found is not None:
                    fshape, fpts = _shape(img, found)
                    fshape, fpts = _shape(img, _box_of(fpts, rel))
                    if _eye_shift(pts, fpts) < _AGREE:
                        anchor.append(_eyes_in(found, pts))
                    else:
                        usual = np.median(np.asarray(anchor), axis=0)
                        own = np.linalg.norm(_eyes_in(found, pts) - usual)
                        if np.linalg.norm(_eyes_in(found, fpts) - usual) < own:
                            shape, pts = fshape, fpts
                            switched += 1
            if rel is None:
                centre, iod = pts.mean(0), _iod(pts)
                cx, cy = (box.left() + box.right()) / 2, (box.top() + box.bottom()) / 2
                rel = (
                    (cx - centre[0]) / iod,
                    (cy - centre[1]) / iod,
                    (box.right() - box.left()) / iod,
                )
                anchor = [_eyes_in(box, pts)]
            elif not _plausible(pts, prev):
                prev = rel = None  # lost: detect again on the next frame
                rows.append(np.full(len(NAMES), np.nan))
                pts_all.append(np.full((68, 2), np.nan))
                px_all.append(np.full((2, 2), np.nan))
                continue
            prev = pts
            rows.append(signals_of(pts))
            pts_all.append(pts)
            px_all.append(eye_pixels(img, pts))
            if identity_of is not None and i % identity_every == 0:
                ident[i] = float(np.linalg.norm(embedding(img, shape) - identity_of))
    t0 = times[0] if times else 0.0
    return Track(
        np.asarray(times) - t0,
        median3(np.asarray(rows)),
        np.asarray(pts_all),
        ident,
        size,
        switched,
        np.asarray(px_all).reshape(-1, 2, 2),
    )


def median3(rows: np.ndarray) -> np.ndarray:
    """Each signal's running median of three samples (NaN-aware): a single frame where the
    predictor snaps to a wrong answer is dropped; a blink (≥ 5 frames at 24 fps) is kept."""
    if len(rows) < 3:
        return rows
    import warnings

    stack = np.stack([np.roll(rows, 1, axis=0), rows, np.roll(rows, -1, axis=0)])
    stack[0, 0], stack[2, -1] = rows[0], rows[-1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN windows stay NaN
        out = np.nanmedian(stack, axis=0)
    out[np.isnan(rows).all(axis=1)] = np.nan
    return out


def brow_flow(path: Path, pts0: np.ndarray, every: int = 1) -> np.ndarray:
    """Brow lift by pixels, per frame read (inter-ocular distances, up positive): a check of
    dlib's brow row that rests on no per-frame landmarks (dlib's brows slip onto thick glasses
    rims and read a jaw drop as a raise). Dense optical flow (OpenCV's DIS) from the first
    frame to each frame; the lift is how much further up the forehead just above both brows
    (from dlib's first-frame brow points to 0.3 eye distances above them) moved than the nose
    bridge (27–28, with a glasses' bridge a rigid part of the head). Averaging both brows
    cancels a roll about the face's middle."""
    import cv2

    p0 = pts0.astype(np.float64)
    iod = _iod(p0)
    across = p0[42:48].mean(0) - p0[36:42].mean(0)
    up = np.array([across[1], -across[0]]) / (np.linalg.norm(across) or 1.0)
    lo, hi = p0.min(0) - 0.8 * iod, p0.max(0) + 0.4 * iod
    x0, y0 = int(max(0, lo[0])), int(max(0, lo[1]))
    masks: list[np.ndarray] = []
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        stream.thread_type = "AUTO"
        w, h = stream.codec_context.width, stream.codec_context.height
        x1, y1 = int(min(w, hi[0])), int(min(h, hi[1]))
        off = np.array([x0, y0], np.float64)
        for brow in (p0[17:22], p0[22:27]):
            strip = np.concatenate([brow - 0.05 * iod * up, (brow + 0.15 * iod * up)[::-1]])
            m = np.zeros((y1 - y0, x1 - x0), np.uint8)
            cv2.fillPoly(m, [np.rint(strip - off).astype(np.int32)], 1)
            masks.append(m.astype(bool))
        bridge = np.zeros((y1 - y0, x1 - x0), np.uint8)
        half = 0.12 * iod * np.array([up[1], -up[0]])
        quad = np.array([p0[27] - half, p0[27] + half, p0[28] + half, p0[28] - half])
        cv2.fillPoly(bridge, [np.rint(quad - off).astype(np.int32)], 1)
        masks.append(bridge.astype(bool))
        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        ref: np.ndarray | None = None
        out = []
        for i, f in enumerate(c.decode(stream)):
            if i % every:
                continue
            luma = f.to_ndarray(format="gray")[y0:y1, x0:x1]
            if ref is None:
                ref = np.ascontiguousarray(luma)
            flow = dis.calc(ref, np.ascontiguousarray(luma), None)
            v = flow @ up  # each pixel's motion along "up"
            brows = (np.median(v[masks[0]]) + np.median(v[masks[1]])) / 2
            out.append((brows - np.median(v[masks[2]])) / iod)
    return np.asarray(out)


def eye_darkness(path: Path, every: int = 1) -> np.ndarray:
    """Each eye's openness by pixels, per frame read: its patch's darkest fifth (the iris and
    pupil leave it as the lids close) as a share of the first frame's contrast, 1 open,
    lower as it shuts (eye_pixels' patch). The patch sits between eye corners placed by the
    engine's 468-point model — corners only: they hold still in a blink, and that model keeps
    them on a face behind thick rims or drawn in ink, where dlib's lid points slip; the
    openness itself rests on no landmark. Subject's right eye (image-left), then left."""
    from services.face.landmarks import Landmarker

    corners = ((33, 133), (263, 362))  # image-left eye, image-right eye: outer, inner
    marker = Landmarker()
    out: list[np.ndarray] = []
    ref: np.ndarray | None = None
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        stream.thread_type = "AUTO"
        for i, f in enumerate(c.decode(stream)):
            if i % every:
                continue
            rgb = f.to_ndarray(format="rgb24")
            found = marker.track(rgb)
            if found is None:
                out.append(np.full(2, np.nan))
                continue
            p = found.points[:, :2]
            # eye_pixels takes dlib's 68-point layout: put the corners where it reads them
            pts = np.zeros((68, 2))
            pts[36], pts[39] = p[corners[0][0]], p[corners[0][1]]
            pts[42], pts[45] = p[corners[1][1]], p[corners[1][0]]
            px = eye_pixels(rgb, pts)
            if ref is None:
                ref = px
            contrast = np.maximum(ref[:, 1] - ref[:, 0], 10.0)
            out.append(1.0 - (px[:, 0] - ref[:, 0]) / contrast)
    return np.asarray(out)

"""468 face landmarks per frame, offline: MediaPipe's face mesh model run with LiteRT.

    lm = Landmarker()
    for image in frames:            # RGB uint8 (H, W, 3) or Yuv420 planes straight from a decoder
        found = lm.track(image)     # Landmarks | None (None: no face in this frame)

`detect` looks at one image on its own; `track` follows a face through consecutive frames
(the crop comes from the previous frame's landmarks; OpenCV's Haar cascade, from
services.media.faces, only proposes boxes for the first face and a lost one, each confirmed by
the model: `faces` is that search, the one definition of a face found). Points are in the
image's own pixels; indices are MediaPipe's canonical face mesh (e.g. 33/263 the outer eye
corners, 13/14 the inner lips, 1 the nose tip, 152 the chin).

The model (services/face/models/face_landmark.tflite, Apache-2.0, see NOTICE) expects a
square, upright 192×192 RGB crop in [0, 1] with the face in its middle two thirds; it answers
468 (x, y, z) points in crop pixels and a face-presence logit. Its bytes are read once per
process; each Landmarker owns an interpreter (they are not thread-safe) pinned to one thread.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from importlib import resources

import cv2
import numpy as np

from services.media.faces import SCALE_STEP, Box, detect_gray, scale_box

INPUT_SIZE = 192
N_POINTS = 468
PRESENCE_THRESHOLD = 0.5

# Canonical mesh indices the crop geometry needs. "Right"/"left" are the subject's own sides:
# the subject's right eye shows on the image's left in an unmirrored picture.
RIGHT_EYE_OUTER, RIGHT_EYE_INNER = 33, 133
LEFT_EYE_INNER, LEFT_EYE_OUTER = 362, 263

# Crop side over the landmarks' own box (forehead to chin), as MediaPipe's tracking uses.
_TRACK_MARGIN = 1.5
# A Haar box spans brows to mouth, centred near the nose: a little more margin, a little lower.
_HAAR_MARGIN = 1.7
_HAAR_DROP = 0.1
# Haar candidates (largest first) the model looks at per image: the cascade's largest box can be
# a false one beside the face (a 512-px portrait's model shuttle), and a look costs ~2 ms.
MAX_CANDIDATES = 4

_BT601 = (1.402, 0.344136, 0.714136, 1.772)
_BT709 = (1.5748, 0.187324, 0.468124, 1.8556)


@dataclass(frozen=True)
class Yuv420:
    """A decoded 8-bit 4:2:0 frame as its planes (views into the decoder's buffers are fine):
    cropping the planes skips the full-frame RGB conversion a decoder would otherwise do."""

    y: np.ndarray  # (H, W)
    u: np.ndarray  # (H/2, W/2), Cb
    v: np.ndarray  # (H/2, W/2), Cr
    bt709: bool = True
    full_range: bool = False

    @property
    def width(self) -> int:
        return int(self.y.shape[1])

    @property
    def height(self) -> int:
        return int(self.y.shape[0])


Image = np.ndarray | Yuv420


@dataclass(frozen=True)
class Roi:
    """The square the model looks at: centre and side in image pixels, turned by `angle`
    (radians, clockwise on screen) so a face rolled by that angle appears upright."""

    cx: float
    cy: float
    side: float
    angle: float = 0.0

    def crop_to_image(self) -> np.ndarray:
        """2×3 affine map from crop pixels (0..INPUT_SIZE) to image pixels."""
        k = self.side / INPUT_SIZE
        c, s = math.cos(self.angle) * k, math.sin(self.angle) * k
        h = INPUT_SIZE / 2
        return np.array(
            [[c, -s, self.cx - c * h + s * h], [s, c, self.cy - s * h - c * h]], np.float64
        )


@dataclass(frozen=True)
class Landmarks:
    """One face: `points` (468, 3) float32, x and y in image pixels, z relative depth in the
    same units (smaller = nearer the camera); `presence` the model's confidence, 0..1."""

    points: np.ndarray
    presence: float
    roi: Roi

    @property
    def roll(self) -> float:
        """The eye line's angle, radians, clockwise on screen (0 for an upright face)."""
        d = self.points[LEFT_EYE_OUTER, :2] - self.points[RIGHT_EYE_OUTER, :2]
        return math.atan2(float(d[1]), float(d[0]))

    def next_roi(self) -> Roi:
        """Where to look in the next frame: the landmarks' box in the face's own upright frame,
        enlarged by the tracking margin, turned by the face's roll."""
        angle = self.roll
        c, s = math.cos(angle), math.sin(angle)
        xy = self.points[:, :2].astype(np.float64)
        # coordinates along the eye line (u) and across it (v)
        u = xy[:, 0] * c + xy[:, 1] * s
        v = -xy[:, 0] * s + xy[:, 1] * c
        u0, u1, v0, v1 = u.min(), u.max(), v.min(), v.max()
        um, vm = (u0 + u1) / 2, (v0 + v1) / 2
        side = _TRACK_MARGIN * max(u1 - u0, v1 - v0)
        return Roi(um * c - vm * s, um * s + vm * c, float(side), angle)


@dataclass(frozen=True)
class Face:
    """A face the search found: the cascade's box, in the image's pixels, and the landmark
    model's points when it confirmed the box (None only when it confirmed no candidate at all,
    so the cascade's boxes stand: a drawing, or a face too small for the model to read)."""

    box: Box[int]
    marks: Landmarks | None


@cache
def model_bytes() -> bytes:
    """The model file's bytes, read once per process (works from a wheel or a zip too)."""
    return (resources.files(__package__) / "models" / "face_landmark.tflite").read_bytes()


class Landmarker:
    """Finds one face (the largest at that moment) and follows it through frames; not
    thread-safe, use one per stream. `presence_threshold` decides when a crop holds no face
    (MediaPipe uses 0.5).

    Finding a face with Haar costs 30–50 ms on a 320-px copy (four times that at 640) against
    about 2 ms per tracked frame or confirmed candidate. `detect_sides` are the copies' long
    sides, tried in turn until one shows a face the model confirms: with (320,) faces under
    ~1/13 of the frame's long side are not found.
    """

    def __init__(
        self,
        *,
        presence_threshold: float = PRESENCE_THRESHOLD,
        num_threads: int = 1,
        detect_sides: tuple[int, ...] = (320, 640),
    ) -> None:
        # imported here so listing or importing services.face costs nothing until it is used
        from ai_edge_litert.interpreter import Interpreter

        self.presence_threshold = presence_threshold
        self.detect_sides = detect_sides
        with _quiet_native_stderr():
            self._interp = Interpreter(model_content=model_bytes(), num_threads=num_threads)
            self._interp.allocate_tensors()
        detail = self._interp.get_input_details()[0]
        if tuple(detail["shape"]) != (1, INPUT_SIZE, INPUT_SIZE, 3):
            raise RuntimeError(f"Unexpected face landmark model input {detail['shape']}")
        self._input = detail["index"]
        outputs = {int(np.prod(d["shape"])): d["index"] for d in self._interp.get_output_details()}
        self._points_out, self._presence_out = outputs[N_POINTS * 3], outputs[1]
        self._last: Landmarks | None = None

    def reset(self) -> None:
        """Forget the tracked face (a new clip, or a cut)."""
        self._last = None

    def detect(self, image: Image) -> Landmarks | None:
        """The largest face the model confirms in one image, found from scratch, or None."""
        found = self.faces(image)
        return found[0].marks if found else None

    def faces(
        self,
        image: Image,
        *,
        sides: tuple[int, ...] | None = None,
        scale_step: float = SCALE_STEP,
    ) -> list[Face]:
        """Every face in one image, largest first: the Haar cascade proposes boxes on a copy
        whose long side is each of `sides` (default `detect_sides`) in turn, and a box counts
        once the model confirms a face in it (`confirm`; only the largest MAX_CANDIDATES are
        looked at, smaller boxes never count). The first copy with a confirmed face answers.

        When the model confirms none anywhere, the first copy's boxes are returned unconfirmed
        (marks None): the model does not read drawings or the smallest faces the cascade finds,
        and the media checks and the engine's flow fallback still need those.
        """
        gray = image.y if isinstance(image, Yuv420) else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        h, w = gray.shape[:2]
        unconfirmed: list[Face] = []
        for side in self.detect_sides if sides is None else sides:
            scale = min(1.0, side / max(h, w))
            small = gray
            if scale < 1.0:
                size = (max(1, round(w * scale)), max(1, round(h * scale)))
                small = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
            boxes = [scale_box(b, 1.0 / scale) for b in detect_gray(small, scale_step)]
            confirmed = [
                Face(box, marks)
                for box in boxes[:MAX_CANDIDATES]
                if (marks := self.confirm(image, box)) is not None
            ]
            if confirmed:
                return confirmed
            unconfirmed = unconfirmed or [Face(box, None) for box in boxes]
            if scale == 1.0:
                break  # every pixel already looked at
        return unconfirmed

    def confirm(self, image: Image, box: Box[int]) -> Landmarks | None:
        """The model's points for the face in a Haar box, or None if it sees none there: a
        first look framed by the box, then a second framed and turned by the first's points
        (the points to use), both at least `presence_threshold`."""
        x, y, w, h = box
        side = _HAAR_MARGIN * max(w, h)
        first = self.landmarks_in(image, Roi(x + w / 2, y + h / 2 + _HAAR_DROP * h, side))
        if first.presence < self.presence_threshold:
            return None
        found = self.landmarks_in(image, first.next_roi())
        return found if found.presence >= self.presence_threshold else None

    def track(self, image: Image, *, redetect: bool = True) -> Landmarks | None:
        """The face followed from the previous call's; re-found with `detect` when lost.
        With redetect=False a lost face stays lost (None, no Haar search): a caller that meets
        long faceless stretches throttles the searches that way."""
        if self._last is not None:
            found = self.landmarks_in(image, self._last.next_roi())
            if found.presence >= self.presence_threshold:
                self._last = found
                return found
        self._last = self.detect(image) if redetect else None
        return self._last

    @property
    def tracking(self) -> bool:
        """Whether a face is being followed (the next `track` starts from it)."""
        return self._last is not None

    def landmarks_in(self, image: Image, roi: Roi) -> Landmarks:
        """The model's answer for one crop, whatever its presence score."""
        a = roi.crop_to_image()
        self._interp.set_tensor(self._input, _crop(image, a)[None])
        self._interp.invoke()
        raw = self._interp.get_tensor(self._points_out).reshape(N_POINTS, 3)
        logit = float(self._interp.get_tensor(self._presence_out).reshape(-1)[0])
        points = np.empty((N_POINTS, 3), np.float32)
        points[:, :2] = raw[:, :2] @ a[:, :2].T + a[:, 2]
        points[:, 2] = raw[:, 2] * (roi.side / INPUT_SIZE)
        return Landmarks(points, 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, logit)))), roi)


def _crop(image: Image, a: np.ndarray) -> np.ndarray:
    """The model's input: (192, 192, 3) float32 RGB in [0, 1], sampled through map `a`."""
    if not isinstance(image, Yuv420):
        return _sample(image, a).astype(np.float32) * np.float32(1 / 255)
    half = a.copy()
    half[:, :2] *= 0.5  # chroma planes have half the resolution
    half[:, 2] = half[:, 2] * 0.5 - 0.25  # and their samples sit between two luma samples
    y = _sample(image.y, a).astype(np.float32)
    cb = _sample(image.u, half).astype(np.float32) - 128
    cr = _sample(image.v, half).astype(np.float32) - 128
    if not image.full_range:
        y = (y - 16) * np.float32(255 / 219)
        cb *= np.float32(255 / 224)
        cr *= np.float32(255 / 224)
    rv, gu, gv, bu = _BT709 if image.bt709 else _BT601
    rgb = np.stack([y + rv * cr, y - gu * cb - gv * cr, y + bu * cb], axis=-1)
    return np.clip(rgb * np.float32(1 / 255), 0.0, 1.0)


def _sample(plane: np.ndarray, a: np.ndarray) -> np.ndarray:
    """warpAffine through crop→image map `a`; a region much larger than the crop is first
    shrunk with area averaging, since bilinear sampling of it would alias (jittery points)."""
    k = math.hypot(a[0, 0], a[1, 0])  # image pixels per crop pixel
    if k >= 2.0:
        corners = np.array([[0, 0], [INPUT_SIZE, 0], [0, INPUT_SIZE], [INPUT_SIZE, INPUT_SIZE]])
        pts = corners @ a[:, :2].T + a[:, 2]
        h, w = plane.shape[:2]
        x0, y0 = (max(0, math.floor(v) - 1) for v in pts.min(axis=0))
        x1, y1 = min(w, math.ceil(pts[:, 0].max()) + 1), min(h, math.ceil(pts[:, 1].max()) + 1)
        if x1 - x0 >= 2 and y1 - y0 >= 2:
            f = 1.0 / k
            size = (max(1, round((x1 - x0) * f)), max(1, round((y1 - y0) * f)))
            region = cv2.resize(plane[y0:y1, x0:x1], size, interpolation=cv2.INTER_AREA)
            sx, sy = size[0] / (x1 - x0), size[1] / (y1 - y0)
            # resize maps pixel centres: x' = (x + 0.5)·s − 0.5
            a = np.array(
                [
                    [a[0, 0] * sx, a[0, 1] * sx, (a[0, 2] - x0 + 0.5) * sx - 0.5],
                    [a[1, 0] * sy, a[1, 1] * sy, (a[1, 2] - y0 + 0.5) * sy - 0.5],
                ]
            )
            plane = region
    return cv2.warpAffine(
        plane,
        a,
        (INPUT_SIZE, INPUT_SIZE),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
    )


@contextlib.contextmanager
def _quiet_native_stderr() -> Iterator[None]:
    """LiteRT's C++ runtime prints "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
    straight to file descriptor 2 — into the CLI's output and the server log — once per
    interpreter. Nothing else is written while one is built, so stderr is parked for it."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
            try:
                yield
            finally:
                os.dup2(saved, 2)
    finally:
        os.close(saved)

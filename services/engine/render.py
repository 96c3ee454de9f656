"""The whole job as one stream: decode → track → retarget and warp → encode, frame by frame.

Two ways to move the character, chosen once per job:

- landmarks (the normal path): the character's and the driving face's 468-point meshes
  (services.face.landmarks); retarget.py turns each driving frame into the character's
  landmark places, mesh.py into a fold-free piecewise-affine map and a mouth-interior paint;
- dense flow (the fallback when the landmark model finds no face in the character or at the
  start of the clip, e.g. a drawing it does not read): motion.py's DIS flow on a face crop.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np

from services.engine.accessories import find_glasses, without
from services.engine.config import DEFAULT_CONFIG, EngineConfig, RenderLimits
from services.engine.framing import (
    Square,
    face_square,
    fit_cover,
    load_picture,
    output_size,
    rgb_to_i420,
)
from services.engine.media import DrivingReader, result_writer
from services.engine.mesh import FaceMesh
from services.engine.motion import MotionTracker
from services.engine.retarget import Pose, Retargeter, iod
from services.engine.warp import FaceWarper
from services.errors import InputError
from services.face.landmarks import Image, Landmarker, Landmarks, Yuv420
from services.face.search import find_face
from services.face.video import frame_image
from services.media.faces import Box
from services.media.metadata import (
    MIN_MEAN_FPS,
    check_image_size,
    header_duration_sentence,
    human_duration,
    plausible_duration,
    sparse_frames_sentence,
    too_sparse,
)
from services.models import TaskOptions

ProgressFn = Callable[[int, int | None], None]


class Canceled(Exception):
    """The job was asked to stop."""


@dataclass(frozen=True)
class RenderResult:
    path: Path
    frames: int
    width: int
    height: int
    fps: float
    seconds: float


def _no_face_in_image() -> InputError:
    return InputError(
        "No face was found in the character image; use a picture with one clearly visible, "
        "front-facing face."
    )


def _no_face_in_video(name: str) -> InputError:
    return InputError(
        f"No face was found at the start of the driving video {name}; use a clip that opens "
        "on one clearly visible, front-facing face."
    )


def _too_long(name: str, limits: RenderLimits) -> str:
    return (
        f"The driving video {name} runs longer than the local engine renders "
        f"({limits.max_render_s:.0f} s, at most {limits.max_render_frames:,} frames); trim it."
    )


def _refuse_unbounded(reader: DrivingReader, name: str, limits: RenderLimits) -> None:
    """Refuse before the first frame a clip whose header makes the render absurd or long.
    Slower than MIN_MEAN_FPS is a slideshow, which would turn a few frames into hours."""
    fps = float(reader.fps)
    header = reader.duration_s
    if header is not None and not plausible_duration(header):
        raise InputError(header_duration_sentence(f"the driving video {name}", header))
    frames = reader.frames_total
    seconds = header if header is not None else (frames / fps if frames else None)
    if frames and seconds and too_sparse(frames, seconds, fps):
        raise InputError(sparse_frames_sentence(f"The driving video {name}", frames, seconds))
    if fps < MIN_MEAN_FPS:
        raise InputError(
            f"The driving video {name} says it runs at {fps:.2g} frames per second: a "
            "slideshow, not a performance. Re-export it at 24–30 frames per second."
        )
    if seconds is not None and seconds > limits.max_render_s:
        what = f"lasts {human_duration(seconds)}"
    elif frames and frames > limits.max_render_frames:
        what = f"has {frames:,} frames"
    else:
        return
    raise InputError(
        f"The driving video {name} {what}; the local engine renders at most "
        f"{limits.max_render_s:.0f} s ({limits.max_render_frames:,} frames). Trim it."
    )


def _luma(image: Image) -> np.ndarray:
    if isinstance(image, Yuv420):
        return image.y
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


def mesh_region(face: Landmarks, factor: float) -> Square:
    """The square the landmark path warps: `factor` face sizes (the mesh's own extent,
    forehead to chin) around the face's middle."""
    xy = face.points[:, :2]
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    side = factor * float(max(hi - lo))
    return Square(float(lo[0] + hi[0]) / 2, float(lo[1] + hi[1]) / 2, side)


class _Driver:
    """Moves the character: one output frame (I420) per driving frame, in order, though a
    driver that looks ahead hands each out a few frames late (and the last ones from
    `finish`). Each frame must be written before the next is asked for (buffers are reused)."""

    def step(self, image: Image) -> Iterator[np.ndarray]:
        raise NotImplementedError

    def finish(self) -> Iterator[np.ndarray]:
        return iter(())


class _LandmarkDriver(_Driver):
    def __init__(
        self,
        neutral: Landmarks,
        character: Landmarks,
        i420: np.ndarray,
        size: tuple[int, int],
        landmarker: Landmarker,
        config: EngineConfig,
        *,
        fps: float,
        expression_gain: float,
    ) -> None:
        self._landmarker = landmarker
        self._cfg = config
        region = mesh_region(character, config.mesh.region_factor)
        # glasses are painted out of what is warped and laid back at the head's pose
        self._still = i420
        chars = character.points[:, 0] + 1j * character.points[:, 1]
        c_iod = iod(chars.astype(np.complex128))
        self._glasses = find_glasses(i420[: size[1]], character.points, c_iod)
        warped = i420 if self._glasses is None else without(i420, size, self._glasses)
        self._warper = FaceWarper(warped, size, region, region, config.mesh.grid_res, config.warp)
        self._retarget = Retargeter(
            neutral,
            character,
            config.retarget,
            fps=fps,
            expression_gain=expression_gain,
            character_luma=warped[: size[1]],
        )
        self._mesh = FaceMesh(
            self._retarget.neutral.points,
            c_iod,
            region,
            self._warper.grid,
            config.mesh,
        )
        self._lost = 0

    def step(self, image: Image) -> Iterator[np.ndarray]:
        # a lost face is looked for again only every few frames: Haar costs several frames
        refind = self._lost % self._cfg.retarget.refind_every == 0
        found = self._landmarker.track(image, redetect=refind)
        self._lost = 0 if found is not None else self._lost + 1
        for pose in self._retarget.step(found, _luma(image)):
            yield self._draw(pose)

    def finish(self) -> Iterator[np.ndarray]:
        for pose in self._retarget.finish():
            yield self._draw(pose)

    def _draw(self, pose: Pose) -> np.ndarray:
        field, paint = self._mesh.field(self._mesh.nodes(pose))
        frame = self._warper.remap(field)
        if self._glasses is not None:
            g = self._glasses
            self._warper.overlay(self._still, g.mask, g.box, pose.z, pose.t)
        if paint is not None:
            mesh = self._cfg.mesh
            self._warper.paint(paint, mesh.mouth_dark, mesh.mouth_desaturate)
        return frame


class _FlowDriver(_Driver):
    def __init__(
        self,
        neutral_luma: np.ndarray,
        box: Box[float],
        char_box: Box[float],
        i420: np.ndarray,
        size: tuple[int, int],
        config: EngineConfig,
        *,
        expression_gain: float,
    ) -> None:
        framing = config.framing
        square = face_square(box, framing.crop_factor, framing.crop_drop)
        self._tracker = MotionTracker(
            neutral_luma, square, config.motion, expression_gain=expression_gain
        )
        self._warper = FaceWarper(
            i420,
            size,
            face_square(char_box, framing.crop_factor, framing.crop_drop),
            face_square(char_box, framing.warp_factor, framing.crop_drop),
            config.motion.flow_res,
            config.warp,
        )

    def step(self, image: Image) -> Iterator[np.ndarray]:
        yield self._warper.apply(self._tracker.step(_luma(image)))


def render(
    video: str | Path,
    image: str | Path,
    out: str | Path,
    options: TaskOptions | None = None,
    *,
    progress: ProgressFn | None = None,
    canceled: Callable[[], bool] | None = None,
    config: EngineConfig = DEFAULT_CONFIG,
) -> RenderResult:
    """Render to `out` (an .mp4 path). Raises InputError with a sentence, or Canceled.

    Body control is not an option of this engine (it moves the face region only; the
    provider's capabilities leave it out, and the CLI says so when it is given)."""
    started = time.perf_counter()
    options = options or TaskOptions()
    framing, faces, limits = config.framing, config.faces, config.limits
    check_image_size(Path(image))  # from the header, before a full-size decode
    picture = load_picture(image, framing.min_side)
    size = output_size(picture.shape[1], picture.shape[0], options.ratio, framing)
    picture = fit_cover(picture, size)
    landmarker = Landmarker(
        presence_threshold=faces.landmark_presence, detect_sides=faces.detect_sides
    )
    char_marks = landmarker.detect(picture)
    char_box: Box[float] | None = None
    if char_marks is None:
        char_box = find_face(picture, landmarker, faces.scale_step)
        if char_box is None:
            raise _no_face_in_image()
    character = _Character(
        rgb_to_i420(picture),
        size,
        char_marks,
        char_box,
        fps=0.0,
        intensity=options.expression_intensity,
    )
    still = character.still

    with DrivingReader(video, convert=frame_image) as reader:
        name = Path(video).name
        _refuse_unbounded(reader, name, limits)
        fps = float(reader.fps)
        character.fps = fps
        most = min(limits.max_render_frames, math.ceil(limits.max_render_s * fps) + 1)
        total = reader.frames_total
        search_frames = max(1, round(faces.search_s * fps))
        # A clip shorter than the search window: the flow fallback must get its turn in it.
        window = min(search_frames, total) if total else search_frames
        writer = result_writer(out, size, reader, config.encoder)
        try:
            driver: _Driver | None = None
            n = 0
            for item in reader:
                if isinstance(item, av.Packet):
                    writer.mux_audio(item)
                    continue
                if driver is None:
                    if n >= search_frames:
                        raise _no_face_in_video(Path(video).name)
                    if n % faces.search_every == 0:
                        # the flow fallback only once the landmark model had its chance
                        flow_ok = char_marks is None or n >= (window - 1) // 2
                        driver = _start(item, character, landmarker, config, flow_ok=flow_ok)
                if n >= most:
                    raise InputError(_too_long(name, limits))
                for frame in [still] if driver is None else driver.step(item):
                    writer.write(frame)
                n += 1
                if progress is not None:
                    progress(n, total)
                if canceled is not None and canceled():
                    raise Canceled()
            if driver is None:
                raise _no_face_in_video(Path(video).name)
            for frame in driver.finish():
                writer.write(frame)
            writer.finish()
        except BaseException:
            writer.abort()
            Path(out).unlink(missing_ok=True)
            raise
    return RenderResult(Path(out), n, size[0], size[1], fps, time.perf_counter() - started)


@dataclass
class _Character:
    """The character picture as the drivers need it."""

    still: np.ndarray  # I420, output size
    size: tuple[int, int]
    marks: Landmarks | None
    box: Box[float] | None
    fps: float
    intensity: int | None


def _box_from(marks: Landmarks) -> Box[float]:
    """A Haar-like face box (brows to mouth, cheek to cheek) from landmarks, for the flow
    fallback: the cascade can prefer a false box beside the face (a 512 px portrait with a
    model shuttle did), the landmarks have already found the real one."""
    xy = marks.points[:, :2]
    w = 0.8 * float(np.ptp(xy[:, 0]))
    cx, cy = float(xy[1, 0]), float(xy[1, 1]) - 0.1 * w  # around the nose tip
    return Box(cx - w / 2, cy - w / 2, w, w)


def _start(
    image: Image,
    character: _Character,
    landmarker: Landmarker,
    config: EngineConfig,
    *,
    flow_ok: bool,
) -> _Driver | None:
    """The driver for a clip whose face is first seen in `image` (its neutral frame), or None
    if no face is there (yet): landmarks on both faces, else, when `flow_ok`, dense flow
    between face boxes."""
    faces = config.faces
    if character.marks is not None:
        neutral = landmarker.track(image)
        if neutral is not None:
            return _LandmarkDriver(
                neutral,
                character.marks,
                character.still,
                character.size,
                landmarker,
                config,
                fps=character.fps,
                expression_gain=config.retarget.gain(character.intensity),
            )
    if not flow_ok:
        return None
    luma = _luma(image)
    box = find_face(image, landmarker, faces.scale_step)
    if box is None:
        return None
    char_box = character.box
    if char_box is None:
        assert character.marks is not None  # render() found one or the other
        char_box = _box_from(character.marks)
    return _FlowDriver(
        luma,
        box,
        char_box,
        character.still,
        character.size,
        config,
        expression_gain=config.motion.gain(character.intensity),
    )

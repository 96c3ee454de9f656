"""The whole job as one stream: decode → track → retarget and warp → encode, frame by frame."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import av
import cv2

from services.engine.config import DEFAULT_CONFIG, EngineConfig, RenderLimits
from services.engine.framing import face_square, fit_cover, load_picture, output_size, rgb_to_i420
from services.engine.media import DrivingReader, result_writer
from services.engine.motion import MotionTracker
from services.engine.warp import FaceWarper
from services.errors import InputError
from services.media.faces import find_face
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
    """Render to `out` (an .mp4 path). Raises InputError with a sentence, or Canceled."""
    started = time.perf_counter()
    options = options or TaskOptions()
    framing, faces, limits = config.framing, config.faces, config.limits
    gain = config.motion.gain(options.expression_intensity)
    check_image_size(Path(image))  # from the header, before a full-size decode
    picture = load_picture(image, framing.min_side)
    size = output_size(picture.shape[1], picture.shape[0], options.ratio, framing)
    picture = fit_cover(picture, size)
    gray = cv2.cvtColor(picture, cv2.COLOR_RGB2GRAY)
    char_box = find_face(gray, faces.detect_sides, faces.scale_step)
    if char_box is None:
        raise _no_face_in_image()
    warper = FaceWarper(
        rgb_to_i420(picture),
        size,
        face_square(char_box, framing.crop_factor, framing.crop_drop),
        face_square(char_box, framing.warp_factor, framing.crop_drop),
        config.motion.flow_res,
        config.warp,
    )
    still = warper.frame.copy()

    with DrivingReader(video) as reader:
        name = Path(video).name
        _refuse_unbounded(reader, name, limits)
        fps = float(reader.fps)
        most = min(limits.max_render_frames, math.ceil(limits.max_render_s * fps) + 1)
        total = reader.frames_total
        search_frames = max(1, round(faces.search_s * fps))
        writer = result_writer(out, size, reader, config.encoder)
        try:
            tracker: MotionTracker | None = None
            n = 0
            for item in reader:
                if isinstance(item, av.Packet):
                    writer.mux_audio(item)
                    continue
                if tracker is None:
                    if n >= search_frames:
                        raise _no_face_in_video(Path(video).name)
                    box = None
                    if n % faces.search_every == 0:
                        box = find_face(item, faces.detect_sides, faces.scale_step)
                    if box is not None:
                        square = face_square(box, framing.crop_factor, framing.crop_drop)
                        tracker = MotionTracker(item, square, config.motion, expression_gain=gain)
                if n >= most:
                    raise InputError(_too_long(name, limits))
                frame = still if tracker is None else warper.apply(tracker.step(item))
                writer.write(frame)
                n += 1
                if progress is not None:
                    progress(n, total)
                if canceled is not None and canceled():
                    raise Canceled()
            if tracker is None:
                raise _no_face_in_video(Path(video).name)
            writer.finish()
        except BaseException:
            writer.abort()
            Path(out).unlink(missing_ok=True)
            raise
    return RenderResult(Path(out), n, size[0], size[1], fps, time.perf_counter() - started)

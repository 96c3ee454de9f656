"""The whole job as one stream: decode → track → retarget and warp → encode, frame by frame."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import av
import cv2

from services.engine.faces import find_face
from services.engine.framing import (
    WARP_FACTOR,
    face_square,
    fit_cover,
    load_picture,
    output_size,
    rgb_to_i420,
)
from services.engine.media import DrivingReader, ResultWriter
from services.engine.motion import FLOW_RES, MotionTracker
from services.engine.warp import FaceWarper
from services.errors import InputError
from services.models import TaskOptions

# Runway-style intensity 1–5, 3 = as performed.
EXPRESSION_GAIN = {1: 0.4, 2: 0.7, 3: 1.0, 4: 1.3, 5: 1.6}
# The neutral driving frame is the first one with a face, searched for this long.
_FACE_SEARCH_S = 2.0
_FACE_SEARCH_EVERY = 3  # frames between tries: the cascade costs far more than a frame

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


def render(
    video: str | Path,
    image: str | Path,
    out: str | Path,
    options: TaskOptions | None = None,
    *,
    progress: ProgressFn | None = None,
    canceled: Callable[[], bool] | None = None,
) -> RenderResult:
    """Render to `out` (an .mp4 path). Raises InputError with a sentence, or Canceled."""
    started = time.perf_counter()
    options = options or TaskOptions()
    gain = EXPRESSION_GAIN[options.expression_intensity or 3]
    picture = load_picture(image)
    size = output_size(picture.shape[1], picture.shape[0], options.ratio)
    picture = fit_cover(picture, size)
    char_box = find_face(cv2.cvtColor(picture, cv2.COLOR_RGB2GRAY))
    if char_box is None:
        raise _no_face_in_image()
    warper = FaceWarper(
        rgb_to_i420(picture),
        size,
        face_square(char_box),
        face_square(char_box, WARP_FACTOR),
        FLOW_RES,
    )
    still = warper.frame.copy()

    with DrivingReader(video) as reader:
        total = reader.frames_total
        search_frames = max(1, round(_FACE_SEARCH_S * float(reader.fps)))
        writer = ResultWriter(out, size, reader.fps, reader.audio, reader.video_start)
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
                    box = find_face(item) if n % _FACE_SEARCH_EVERY == 0 else None
                    if box is not None:
                        tracker = MotionTracker(item, face_square(box), expression_gain=gain)
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
        fps = float(reader.fps)
    return RenderResult(Path(out), n, size[0], size[1], fps, time.perf_counter() - started)

"""The whole job as one stream: decode → track → retarget and warp → encode, frame by frame."""

from __future__ import annotations

import math
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

# Runway-style intensity 1–5, 3 = as performed.
EXPRESSION_GAIN = {1: 0.4, 2: 0.7, 3: 1.0, 4: 1.3, 5: 1.6}
# The neutral driving frame is the first one with a face, searched for this long.
_FACE_SEARCH_S = 2.0
_FACE_SEARCH_EVERY = 3  # frames between tries: the cascade costs far more than a frame

# Behind the media checks, whatever a header claims or a file holds, a render stays bounded:
# at most this long (four times the 30 s providers accept; the engine runs at about twice
# real time, so about a minute of work) and this many frames (that length at 60 fps). Slower
# than MIN_MEAN_FPS is a slideshow, which would turn a few frames into hours of video.
MAX_RENDER_S = 120.0
MAX_RENDER_FRAMES = 7200

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


def _too_long(name: str) -> str:
    return (
        f"The driving video {name} runs longer than the local engine renders "
        f"({MAX_RENDER_S:.0f} s, at most {MAX_RENDER_FRAMES:,} frames); trim it."
    )


def _refuse_unbounded(reader: DrivingReader, name: str) -> None:
    """Refuse before the first frame a clip whose header makes the render absurd or long."""
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
    if seconds is not None and seconds > MAX_RENDER_S:
        what = f"lasts {human_duration(seconds)}"
    elif frames and frames > MAX_RENDER_FRAMES:
        what = f"has {frames:,} frames"
    else:
        return
    raise InputError(
        f"The driving video {name} {what}; the local engine renders at most "
        f"{MAX_RENDER_S:.0f} s ({MAX_RENDER_FRAMES:,} frames). Trim it."
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
    check_image_size(Path(image))  # from the header, before a full-size decode
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
        name = Path(video).name
        _refuse_unbounded(reader, name)
        most = min(MAX_RENDER_FRAMES, math.ceil(MAX_RENDER_S * float(reader.fps)) + 1)
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
                if n >= most:
                    raise InputError(_too_long(name))
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

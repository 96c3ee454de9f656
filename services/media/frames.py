"""A few frames of a file, upright and small, for the checks and the thumbnail.

Videos are sampled at keyframes only (seek + decode one frame with non-key frames skipped),
so the cost does not grow with the clip's length or GOP size.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np
from PIL import Image

from services.media.metadata import Opened


@dataclass(frozen=True)
class Sample:
    t: float  # seconds from the start
    rgb: np.ndarray  # H x W x 3, display orientation, downscaled
    scale: float  # display pixels per sample pixel


def _even(n: float) -> int:
    return max(2, round(n / 2) * 2)


def frame_to_rgb(
    frame: av.VideoFrame, rotation_ccw: int, max_side: int | None, sar: float = 1.0
) -> np.ndarray:
    """Upright RGB of a decoded frame (square pixels), longer side at most max_side."""
    w = frame.width * sar
    h = float(frame.height)
    scale = min(1.0, max_side / max(w, h)) if max_side else 1.0
    tw, th = _even(w * scale), _even(h * scale)
    if (tw, th) == (frame.width, frame.height):
        arr: np.ndarray = frame.to_ndarray(format="rgb24")
    else:
        small = frame.reformat(width=tw, height=th, format="rgb24", interpolation="AREA")
        arr = small.to_ndarray()
    if rotation_ccw:
        arr = np.ascontiguousarray(np.rot90(arr, rotation_ccw // 90))
    return arr


def pick_times(opened: Opened, n: int) -> list[float]:
    """Up to n sample times spread over the clip, snapped to distinct keyframes if known."""
    duration = opened.info.duration_s or 0.0
    if n <= 1 or duration <= 0:
        return [0.0]
    keys = sorted(set(opened.keyframes))
    if keys:
        if len(keys) <= n:
            return keys
        idx = np.linspace(0, len(keys) - 1, n).round().astype(int)
        return [keys[i] for i in dict.fromkeys(idx.tolist())]
    return [duration * i / n for i in range(n)]


def samples(opened: Opened, times: list[float], max_side: int) -> list[Sample]:
    """Upright frames near `times` (the keyframe at or before each), deduplicated."""
    if opened.info.kind == "image":
        return [image_sample(opened, max_side)]
    container, vs = opened.container, opened.stream
    assert container is not None and vs is not None and opened.first_frame is not None
    out: list[Sample] = []
    seen: set[int] = set()
    tb = vs.time_base or Fraction(1, 1)  # as metadata read the keyframe times
    start = vs.start_time or 0
    sar = opened.sar
    for t in times:
        frame: av.VideoFrame | None
        if t <= 0:
            frame = opened.first_frame
        else:
            frame = None
            try:
                container.seek(start + int(t / tb), stream=vs, backward=True, any_frame=False)
                for f in container.decode(vs):
                    frame = f
                    break
            except (av.FFmpegError, ValueError):
                frame = None
        if frame is None or frame.pts in seen:
            continue
        seen.add(frame.pts if frame.pts is not None else -len(seen) - 1)
        rgb = frame_to_rgb(frame, opened.rotation_ccw, max_side, sar)
        ft = float((frame.pts - start) * tb) if frame.pts is not None else t
        out.append(Sample(t=max(0.0, ft), rgb=rgb, scale=opened.info.width / rgb.shape[1]))
    if not out:
        rgb = frame_to_rgb(opened.first_frame, opened.rotation_ccw, max_side, sar)
        out.append(Sample(t=0.0, rgb=rgb, scale=opened.info.width / rgb.shape[1]))
    return out


def image_sample(opened: Opened, max_side: int) -> Sample:
    assert opened.image is not None
    img = opened.image
    if img.mode != "RGB":
        img = img.convert("RGBA").convert("RGB") if "A" in img.getbands() else img.convert("RGB")
    if max(img.size) > max_side:
        img = img.copy()
        img.thumbnail((max_side, max_side), Image.Resampling.BILINEAR)
    rgb = np.asarray(img)
    return Sample(t=0.0, rgb=rgb, scale=opened.info.width / rgb.shape[1])

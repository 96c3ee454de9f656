"""Every check a file must pass before anyone pays: generic ones and each provider's limits.

One call opens the file once, probes it, samples a handful of small upright keyframes and
runs all checks on them; each check yields ok / warn / fail, one sentence, and a fix id
where a one-click fix exists (see fixes.py).
"""

from __future__ import annotations

import itertools
import logging
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
from pydantic import BaseModel, Field, computed_field

from services.errors import InputError
from services.face import search as face_search
from services.media import faces as face_mod
from services.media.fix_ids import FixId
from services.media.frames import Sample, frame_to_rgb, image_sample, pick_times, samples
from services.media.metadata import (
    MIN_MEAN_FPS,
    MediaInfo,
    Opened,
    aspect_label,
    display_name,
    header_duration_sentence,
    human_duration,
    open_media,
    plausible_duration,
    sparse_frames_sentence,
    too_sparse,
)
from services.media.sniff import PROVIDER_IMAGE_FORMATS, article
from services.models import MediaRole, ProviderCapabilities, SizeCaps

log = logging.getLogger(__name__)

Status = Literal["ok", "warn", "fail"]
Source = Literal["upload", "url", "path"]

SAMPLE_COUNT = 5  # keyframes looked at for scene cuts
FACE_SAMPLES = 3  # of those, spread over the clip, searched for faces (the costly part)
ANALYSIS_SIDE = 480  # faces and cuts are judged on frames this small
SECOND_LOOK_SIDE = 960  # one larger look when no face shows at ANALYSIS_SIDE
FACE_MIN_HEIGHT = 0.10  # of the frame height: smaller faces animate poorly
MIN_SIDE_WARN = 240
MIN_SIDE_FAIL = 64
MAX_SIDE_WARN = 4096
FPS_LOW, FPS_HIGH = 15.0, 60.0
MIN_DURATION_S = 0.5
GOOD_VIDEO = {("mp4", "h264"), ("mov", "h264")}
GOOD_PIXELS = (None, "yuv420p", "yuvj420p")  # 4:2:0; None: the header does not say


class Check(BaseModel):
    id: str
    status: Status
    sentence: str
    fix: FixId | None = None  # the suggested one-click fix
    fixes: list[FixId] = Field(default_factory=list)  # every applicable fix, `fix` first
    # Per fix, a button label that says what it will produce ("Crop to 16:9 → 360×202").
    fix_labels: dict[FixId, str] = Field(default_factory=dict)
    provider: str | None = None  # set for checks that come from one provider's limits


class CheckReport(BaseModel):
    role: MediaRole | None = None  # what the file was checked as
    info: MediaInfo | None = None
    checks: list[Check] = Field(default_factory=list)
    # Faces on the representative (first) frame, x/y/w/h in display pixels of the file.
    faces: list[face_mod.Box[int]] = Field(default_factory=list)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def failed(self) -> bool:
        return any(c.status == "fail" for c in self.checks)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def warned(self) -> bool:
        return any(c.status == "warn" for c in self.checks)

    def failing(self) -> list[Check]:
        return [c for c in self.checks if c.status == "fail"]


def _check(
    id: str,
    status: Status,
    sentence: str,
    fixes: list[FixId] | None = None,
    provider: str | None = None,
) -> Check:
    fixes = fixes or []
    return Check(
        id=id,
        status=status,
        sentence=sentence,
        fix=fixes[0] if fixes else None,
        fixes=fixes,
        provider=provider,
    )


def unreadable_report(sentence: str, role: MediaRole | None = None) -> CheckReport:
    return CheckReport(role=role, checks=[_check("readable", "fail", sentence)])


def run_checks(
    path: Path | str,
    role: MediaRole,
    capabilities: list[ProviderCapabilities],
    *,
    source: Source = "path",
    name: str | None = None,
) -> CheckReport:
    """All checks of one file for one role against the given providers. Never raises for a
    bad file: it becomes a report with a failing `readable` check and the sentence.

    `name` is what the creator calls the file (the name the page shows beside the checks);
    sentences use it instead of the stored file's name, so both name the same file."""
    return check_file(path, MediaRole(role), capabilities, source=source, name=name)


def check_file(
    path: Path | str,
    role: MediaRole | None,
    capabilities: list[ProviderCapabilities],
    *,
    source: Source = "path",
    name: str | None = None,
) -> CheckReport:
    """run_checks, with role None meaning: an image is a character image, a video a
    driving video (what `reenact check` does)."""
    path = Path(path)
    stored, shown = display_name(path), sentence_name(path, name)
    try:
        with open_media(path) as opened:
            if role is None:
                role = (
                    MediaRole.CHARACTER_IMAGE
                    if opened.info.kind == "image"
                    else MediaRole.DRIVING_VIDEO
                )
            return _run(opened, role, capabilities, source, shown)
    except InputError as err:
        return unreadable_report(str(err).replace(stored, shown), role)
    except Exception:
        # A library choking on a hostile file must not become a traceback for the user;
        # the details go to the debug log for whoever investigates.
        log.debug("checks of %s failed", path, exc_info=True)
        return unreadable_report(
            f"{shown} could not be read as a video or image; it may be damaged.", role
        )


def sentence_name(path: Path | str, name: str | None = None) -> str:
    """How check sentences name a file: the creator's name for it when given (an upload's
    or link's own name, kept after a fix), else the file's; quoted, printable."""
    return display_name(Path(name) if name else Path(path))


# ------------------------------------------------------------------ the run


def _run(
    opened: Opened, role: MediaRole, caps: list[ProviderCapabilities], source: Source, name: str
) -> CheckReport:
    info = opened.info
    checks: list[Check] = []

    want = "image" if role is MediaRole.CHARACTER_IMAGE else "video"
    if info.kind != want:
        checks.append(
            _check(
                "role",
                "fail",
                f"{name} is {_a(info.kind)}, but the {role.value.replace('_', ' ')} must be "
                f"{_a(want)}.",
            )
        )
    checks.append(_format_check(info, name))
    checks.append(_resolution_check(info, name))
    if info.kind == "video":
        checks.extend(_timing_checks(info, name))

    times = pick_times(opened, SAMPLE_COUNT) if info.kind == "video" else [0.0]
    frames = samples(opened, times, ANALYSIS_SIDE)
    face_checks, rep_faces = _face_checks(opened, frames, role, name)
    checks.extend(face_checks)
    if role is MediaRole.DRIVING_VIDEO and info.kind == "video":
        checks.append(_cut_check(frames, name))

    # The shape that counts is the decoded, upright frame's (measured here, not taken from
    # the header): a file can lie about its pixel shape, and black bars hide another shape.
    h, w = frames[0].rgb.shape[:2]
    shape = Shape(measured=w / h, content=_content_aspect(frames))
    for cap in caps:
        checks.extend(_provider_checks(info, name, role, cap, source, shape))
    _label_fixes(checks, info)
    return CheckReport(role=role, info=info, checks=checks, faces=rep_faces)


def _label_fixes(checks: list[Check], info: MediaInfo) -> None:
    if not any(c.fixes for c in checks):
        return
    from services.media.fixes import fix_label  # PyAV/x264 code, only when a fix is offered

    for c in checks:
        c.fix_labels = {f: fix_label(f, info.width, info.height, info.kind) for f in c.fixes}


# ------------------------------------------------------------------ generic checks


def _a(kind: str) -> str:
    return "an image" if kind == "image" else "a video"


def browser_ready(info: MediaInfo) -> bool:
    """An H.264 MP4/MOV in 4:2:0 colour: a video every browser plays and every provider takes
    as it is (the format check's "ok"; anything else is offered Convert to H.264)."""
    pix_ok = info.pixel_format in GOOD_PIXELS
    return info.kind == "video" and (info.container, info.codec) in GOOD_VIDEO and pix_ok


def _format_check(info: MediaInfo, name: str) -> Check:
    if info.kind == "image":
        if info.container == "gif" or info.animated:
            what = f"an animated {info.container.upper()}" if info.animated else "a GIF"
            return _check(
                "format",
                "fail",
                f"{name} is {what}; providers take one still PNG, JPEG or WebP image. Export "
                "the frame you want as PNG or JPEG.",
            )
        if info.container not in PROVIDER_IMAGE_FORMATS:
            label = info.container.upper()
            return _check(
                "format",
                "fail",
                f"{name} is {article(label)} {label} image; providers take PNG, JPEG or "
                "WebP. Save it as PNG or JPEG.",
            )
        return _check("format", "ok", f"{info.container.upper()} image.")
    if browser_ready(info):
        audio = f", with {info.audio_codec} audio" if info.has_audio else ", no audio"
        return _check("format", "ok", f"{info.container.upper()} H.264 video{audio}.")
    detail = f"{info.codec} video in a {info.container.upper()} file"
    if info.pixel_format not in GOOD_PIXELS:
        detail += f" ({info.pixel_format} colour)"
    return _check(
        "format",
        "warn",
        f"{name} is {detail}, which some browsers and providers do not accept. Convert it "
        "to H.264 MP4.",
        [FixId.TRANSCODE_H264],
    )


def _resolution_check(info: MediaInfo, name: str) -> Check:
    short, long = sorted((info.width, info.height))
    size = f"{info.width}×{info.height}"
    if short < MIN_SIDE_FAIL:
        return _check(
            "resolution", "fail", f"{name} is only {size} pixels; use at least 240 pixels."
        )
    if short < MIN_SIDE_WARN:
        return _check(
            "resolution",
            "warn",
            f"{name} is {size}, a low resolution: the result may look blurry. 720p or more "
            "is best.",
        )
    if long > MAX_SIDE_WARN:
        return _check(
            "resolution",
            "warn",
            f"{name} is {size}; providers may refuse or shrink anything over 4096 pixels.",
        )
    return _check("resolution", "ok", f"{size} pixels ({info.aspect_label}).")


def _timing_checks(info: MediaInfo, name: str) -> list[Check]:
    out: list[Check] = []
    fps = info.fps
    duration = _duration_check(info, name)
    if not fps:
        out.append(_check("fps", "warn", f"The frame rate of {name} is unknown."))
    elif fps < MIN_MEAN_FPS:
        pass  # not a frame rate but a slideshow: the duration check says so
    elif fps < FPS_LOW:
        out.append(
            _check(
                "fps",
                "warn",
                f"{name} runs at {fps:.3g} frames per second; motion may look choppy "
                "(24–30 is best).",
            )
        )
    elif fps > FPS_HIGH + 0.5:
        out.append(
            _check(
                "fps",
                "warn",
                f"{name} runs at {fps:.3g} frames per second; providers may drop frames "
                "(24–30 is best).",
            )
        )
    else:
        out.append(_check("fps", "ok", f"{fps:.3g} frames per second."))
    out.append(duration)
    return out


def _duration_check(info: MediaInfo, name: str) -> Check:
    """The clip's length, or why it cannot be trusted: a header that states none or an
    impossible one, or frames too few for the time they span. Each of those fails: the
    providers (and the local engine) would read the same header."""
    header, d = info.header_duration_s, info.duration_s
    if header is None:
        span = f" (its frames span {human_duration(d)})" if d else ""
        return _check(
            "duration",
            "fail",
            f"The header of {name} does not say how long the video lasts{span}, so providers "
            "cannot tell either. Convert it to H.264 MP4, which writes a proper header.",
            [FixId.TRANSCODE_H264],
        )
    if not plausible_duration(header):
        return _check(
            "duration", "fail", header_duration_sentence(name, header, d), [FixId.TRANSCODE_H264]
        )
    d = d or 0.0
    if too_sparse(info.frame_count, d, info.fps):
        frames = info.frame_count or round(d * (info.fps or 0.0))
        return _check("duration", "fail", sparse_frames_sentence(name, frames, d))
    if d < MIN_DURATION_S:
        return _check(
            "duration", "fail", f"{name} lasts {d:.1f} s, too short to carry a performance."
        )
    return _check("duration", "ok", f"{d:.1f} seconds long.")


def _face_checks(
    opened: Opened, frames: list[Sample], role: MediaRole, name: str
) -> tuple[list[Check], list[face_mod.Box[int]]]:
    what = "the performer" if role is MediaRole.DRIVING_VIDEO else "the character"
    if len(frames) > FACE_SAMPLES:
        idx = np.linspace(0, len(frames) - 1, FACE_SAMPLES).round().astype(int)
        frames = [frames[i] for i in dict.fromkeys(idx.tolist())]
    per_frame = [face_search.detect(s.rgb) for s in frames]
    if not any(per_frame):
        # The quick search found nothing anywhere: search the same frames thoroughly before
        # concluding (rare, so the cost only falls on doubtful files).
        per_frame = [face_search.detect(s.rgb, scale_step=1.05) for s in frames]
    else:
        # A frame that missed while others found one face gets the thorough search too.
        per_frame = [
            b if len(b) == 1 else face_search.detect(s.rgb, scale_step=1.05)
            for b, s in zip(per_frame, frames, strict=True)
        ]
    counts = [min(len(b), 2) for b in per_frame]
    mode = Counter(counts).most_common(1)[0][0]
    rep = [face_mod.scale_box(b, frames[0].scale) for b in per_frame[0]]
    is_video = opened.info.kind == "video"
    where = "in the sampled frames" if is_video else ""

    if mode == 0:
        big = _second_look(opened)
        if big:
            boxes, scale = big
            h_frac = boxes[0][3] * scale / opened.info.height
            found = [face_mod.scale_box(b, scale) for b in boxes]
            if h_frac < FACE_MIN_HEIGHT:
                return [
                    _check(
                        "faces",
                        "warn",
                        f"The face of {what} in {name} is very small ({h_frac:.0%} of the frame "
                        "height); the animation will be poor. Move closer or crop to the face.",
                    )
                ], found
            return [
                _check(
                    "faces",
                    "warn",
                    f"A face was found in {name} only on a close look; make sure {what}'s face "
                    "is clearly visible, well lit and facing the camera.",
                )
            ], found
        return [
            _check(
                "faces",
                "fail",
                f"No face was found in {name}{' ' + where if where else ''}. Use "
                f"{'a clip' if is_video else 'an image'} where {what}'s face is clearly "
                "visible, facing the camera.",
            )
        ], rep
    if mode == 2:
        most = max(len(b) for b in per_frame)
        return [
            _check(
                "faces",
                "fail",
                f"{name} shows {most} faces; exactly one is needed so the provider knows "
                f"whose {'performance' if role is MediaRole.DRIVING_VIDEO else 'face'} to use. "
                "Crop to one person.",
            )
        ], rep

    out: list[Check] = []
    missing = [s.t for s, c in zip(frames, counts, strict=True) if c != 1]
    if missing and is_video:
        at = ", ".join(f"{t:.1f} s" for t in missing[:3])
        out.append(
            _check(
                "faces",
                "warn",
                f"One face was found in {name}, but not clearly at {at}; keep the face "
                "visible and facing the camera throughout.",
            )
        )
    else:
        out.append(_check("faces", "ok", "Exactly one face, clearly visible."))
    heights = [
        b[0][3] / s.rgb.shape[0] for b, s in zip(per_frame, frames, strict=True) if len(b) == 1
    ]
    h_frac = float(np.median(heights)) if heights else 0.0
    if h_frac < FACE_MIN_HEIGHT:
        out.append(
            _check(
                "face_size",
                "warn",
                f"The face in {name} is small ({h_frac:.0%} of the frame height); the result "
                "will show little expression. Move closer or crop to the face.",
            )
        )
    else:
        out.append(_check("face_size", "ok", f"The face fills {h_frac:.0%} of the height."))
    if not rep:
        first_good = next(
            (i for i, c in enumerate(counts) if c == 1), None
        )  # the UI's thumbnail shows a box even if frame 0 missed it
        if first_good is not None:
            rep = [face_mod.scale_box(per_frame[first_good][0], frames[first_good].scale)]
    return out, rep


def _second_look(opened: Opened) -> tuple[list[face_mod.Box[int]], float] | None:
    """Faces on one larger frame: tells 'too small to see at a glance' from 'none at all'."""
    info = opened.info
    if max(info.width, info.height) <= ANALYSIS_SIDE:
        return None
    if info.kind == "image":
        big = image_sample(opened, SECOND_LOOK_SIDE)
        rgb, scale = big.rgb, big.scale
    else:
        assert opened.first_frame is not None
        rgb = frame_to_rgb(opened.first_frame, opened.rotation_ccw, SECOND_LOOK_SIDE, opened.sar)
        scale = info.width / rgb.shape[1]
    boxes = face_search.detect(rgb, scale_step=1.05)  # the thorough search, on one frame only
    if len(boxes) != 1:
        return None
    return boxes, scale


def _signature(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    small = cv2.resize(rgb, (64, 36), interpolation=cv2.INTER_AREA)
    hsv = cv2.cvtColor(small, cv2.COLOR_RGB2HSV)
    hist = cv2.calcHist([hsv], [0, 1], None, [16, 8], [0, 180, 0, 256])
    cv2.normalize(hist, hist)
    gray = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY).astype(np.float32)
    return hist, gray


def _cut_check(frames: list[Sample], name: str) -> Check:
    cuts: list[float] = []
    sigs = [_signature(s.rgb) for s in frames]
    for (a, b), sample in zip(itertools.pairwise(sigs), frames[1:], strict=True):
        corr = cv2.compareHist(a[0], b[0], cv2.HISTCMP_CORREL)
        diff = float(np.mean(np.abs(a[1] - b[1])))
        # Both the colours and the picture must change: a performer moving changes neither
        # much, a new shot changes both.
        if corr < 0.5 and diff > 20:
            cuts.append(sample.t)
    if cuts:
        at = ", ".join(f"{t:.1f} s" for t in cuts[:3])
        return _check(
            "scene_cut",
            "warn",
            f"{name} seems to change shot (before {at}); a driving video should be one "
            "continuous shot of one performer, or the result will jump.",
        )
    return _check("scene_cut", "ok", "One continuous shot.")


@dataclass(frozen=True)
class Shape:
    measured: float  # width / height of the decoded upright frame
    content: float | None  # of the picture inside black bars, when there are bars


def _content_aspect(frames: list[Sample]) -> float | None:
    """Aspect of the picture inside black bars, if bars are present (None otherwise)."""
    x0 = y0 = math.inf
    x1 = y1 = 0.0
    h = w = 0
    for s in frames:
        gray = cv2.cvtColor(s.rgb, cv2.COLOR_RGB2GRAY)
        h, w = gray.shape
        pts = cv2.findNonZero((gray > 24).astype(np.uint8))
        if pts is None:
            continue
        x, y, bw, bh = cv2.boundingRect(pts)
        x0, y0, x1, y1 = min(x0, x), min(y0, y), max(x1, x + bw), max(y1, y + bh)
    if not h or x1 <= x0 or y1 <= y0:
        return None
    cw, ch = x1 - x0, y1 - y0
    if cw >= 0.96 * w and ch >= 0.96 * h:
        return None
    return cw / ch


# ------------------------------------------------------------------ provider checks


def parse_ratio(ratio: str) -> float:
    a, b = ratio.split(":")
    return int(a) / int(b)


def nearest_ratio(aspect: float, ratios: tuple[str, ...] | list[str]) -> str:
    """The allowed W:H ratio closest to `aspect` (compared on a log scale)."""
    return min(ratios, key=lambda r: abs(math.log(parse_ratio(r) / aspect)))


def _provider_checks(
    info: MediaInfo,
    name: str,
    role: MediaRole,
    cap: ProviderCapabilities,
    source: Source,
    shape: Shape,
) -> list[Check]:
    pid = cap.id
    out: list[Check] = []
    if role is MediaRole.CHARACTER_VIDEO and not cap.accepts_character_video:
        out.append(
            _check(
                "character_video",
                "fail",
                f"{cap.name} does not take a character video; give a character image instead.",
                provider=pid,
            )
        )
    if cap.required_aspect:
        out.append(_aspect_check(info, name, cap, shape))
    if cap.ratios and role is not MediaRole.DRIVING_VIDEO:
        chosen = nearest_ratio(info.display_aspect, cap.ratios)
        off = abs(math.log(parse_ratio(chosen) / info.display_aspect))
        if off > 0.05:
            out.append(
                _check(
                    "ratio",
                    "warn",
                    f"{cap.name} will render at {chosen}, the allowed ratio nearest this "
                    f"{info.aspect_label} {info.kind}; the picture will be cropped or padded to "
                    "fit.",
                    provider=pid,
                )
            )
        else:
            out.append(
                _check(
                    "ratio",
                    "ok",
                    f"{cap.name} will render at {chosen}, the allowed ratio nearest this "
                    f"{info.aspect_label} {info.kind}.",
                    provider=pid,
                )
            )
    if role is MediaRole.DRIVING_VIDEO and info.kind == "video":
        out.extend(_reference_checks(info, name, cap))
    out.append(_size_check(info, name, cap, source))
    return out


def _aspect_check(info: MediaInfo, name: str, cap: ProviderCapabilities, shape: Shape) -> Check:
    assert cap.required_aspect
    want = parse_ratio(cap.required_aspect)
    content_aspect = shape.content
    got = shape.measured
    off = abs(got - want) / want
    label = cap.required_aspect
    if off > cap.aspect_tolerance:
        lead = f"{cap.name} accepts {label} {info.kind}s only, and {name} is {aspect_label(got)} "
        lead += f"({info.width}×{info.height})."
        if label != "16:9":
            return _check(
                "aspect",
                "fail",
                f"{lead} Crop it to {label} around the face, or pad it to {label} with a "
                "blurred fill.",
                provider=cap.id,
            )
        return _check("aspect", "fail", *_aspect_fixes(lead, info), provider=cap.id)
    if content_aspect is not None and abs(content_aspect - want) / want > 0.1:
        return _check(
            "aspect",
            "warn",
            f"{name} is {label}, but the picture inside its black bars is "
            f"{aspect_label(content_aspect)}; {cap.name} will see the bars as part of the "
            "scene.",
            provider=cap.id,
        )
    return _check("aspect", "ok", f"{label}, as {cap.name} requires.", provider=cap.id)


def _aspect_fixes(lead: str, info: MediaInfo) -> tuple[str, list[FixId]]:
    """The sentence and the fixes for a 16:9-only provider, in the order to offer them: a
    crop that would leave fewer pixels than the resolution check asks for comes after the
    pad (which keeps every pixel), and the sentence says what each one produces."""
    from services.media.fixes import fix_output_size  # PyAV/x264 code, only when needed

    def made(fix: FixId) -> tuple[int, int]:
        return fix_output_size(fix, info.width, info.height, info.kind)

    (cw, ch), (pw, ph) = made(FixId.CROP_16_9), made(FixId.PAD_16_9)
    if min(cw, ch) < MIN_SIDE_WARN and min(pw, ph) > min(cw, ch):
        return (
            f"{lead} Pad it to 16:9 with a blurred fill (→ {pw}×{ph}); cropping it to 16:9 "
            f"would leave only {cw}×{ch}, below the {MIN_SIDE_WARN} pixels a clear result "
            "needs.",
            [FixId.PAD_16_9, FixId.CROP_16_9],
        )
    return (
        f"{lead} Crop it to 16:9 around the face (→ {cw}×{ch}), or pad it to 16:9 with a "
        f"blurred fill (→ {pw}×{ph}).",
        [FixId.CROP_16_9, FixId.PAD_16_9],
    )


def _reference_checks(info: MediaInfo, name: str, cap: ProviderCapabilities) -> list[Check]:
    lo, hi = cap.reference_min_s, cap.reference_max_s
    if (lo is None and hi is None) or info.duration_s is None:
        return []  # an unknown length already fails the duration check, with its reason
    d = info.duration_s
    span = f"{lo:g}–{hi:g} s" if lo is not None and hi is not None else ""
    if hi is not None and d > hi + 0.05:
        fixes = [FixId.TRIM_30S] if abs(hi - 30) < 1e-6 else []
        return [
            _check(
                "reference_duration",
                "fail",
                f"{name} lasts {d:.1f} s, but {cap.name} takes performances of "
                f"{span or f'at most {hi:g} s'}. Trim it to {hi:g} s.",
                fixes,
                provider=cap.id,
            )
        ]
    if lo is not None and d < lo - 0.05:
        return [
            _check(
                "reference_duration",
                "fail",
                f"{name} lasts {d:.1f} s, but {cap.name} needs at least {lo:g} s of "
                "performance. Record a longer take.",
                provider=cap.id,
            )
        ]
    return [
        _check(
            "reference_duration",
            "ok",
            f"{d:.1f} s, within {cap.name}'s {span or 'limit'}.",
            provider=cap.id,
        )
    ]


def _mb(n: int) -> str:
    return f"{n / 1_000_000:.0f} MB" if n >= 1_000_000 else f"{n / 1000:.0f} KB"


def _size_check(info: MediaInfo, name: str, cap: ProviderCapabilities, source: Source) -> Check:
    caps: SizeCaps = cap.size_caps
    size = info.size_bytes
    video = info.kind == "video"
    if source == "url":
        limit = caps.url_video if video else caps.url_image
        how = "by link"
    else:
        data_uri = caps.data_uri_video if video else caps.data_uri_image
        limits = [x for x in (data_uri, caps.upload_max) if x]
        limit = max(limits) if limits else None
        how = "as an upload"
        if caps.upload_min and size < caps.upload_min and not (data_uri and size <= data_uri):
            return _check(
                "size",
                "fail",
                f"{name} is only {size} bytes; {cap.name} needs at least {caps.upload_min}.",
                provider=cap.id,
            )
    if limit is not None and size > limit:
        return _check(
            "size",
            "fail",
            f"{name} is {_mb(size)}, more than the {_mb(limit)} {cap.name} accepts {how}. "
            f"Use a shorter or smaller {'clip' if video else 'image'}.",
            provider=cap.id,
        )
    if limit is None:
        return _check(
            "size", "ok", f"{_mb(size)}; {cap.name} states no size limit.", provider=cap.id
        )
    return _check(
        "size",
        "ok",
        f"{_mb(size)}, within the {_mb(limit)} {cap.name} accepts {how}.",
        provider=cap.id,
    )

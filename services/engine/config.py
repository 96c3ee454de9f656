"""The local engine's tuning in one frozen object, handed down from where a render starts.

`render()` takes an `EngineConfig` (the worker builds the default one) and passes each part
to the code that uses it; nothing reads a tuning knob from a module constant. The defaults
are the values the engine was tuned and measured with (bench/RESULTS.md). A test or a
benchmark that wants other values builds its own with `dataclasses.replace`, e.g.

    EngineConfig(limits=RenderLimits(max_render_s=1.0))

Kept free of OpenCV/PyAV imports: the worker reads it before its first state write.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class FramingConfig:
    """Output size and how the face crops frame a face box."""

    # Like the providers' outputs: 1280×720 for a 16:9 picture, 720×1280 for 9:16.
    cap_long: int = 1280
    cap_short: int = 720
    # An explicit ratio option names the output pixels; this only stops absurd values.
    ratio_cap_long: int = 1920
    # The character picture's smallest accepted side.
    min_side: int = 64
    # The face crop where motion is measured (and mapped between faces) is this many face-box
    # sides wide: the whole head with some room to move.
    crop_factor: float = 2.0
    # The character's warped region is wider still: the face keeps the full motion and the
    # band beyond it fades that motion out to nothing before the region's edge.
    warp_factor: float = 2.6
    # Haar boxes sit high on the face (brows to lower lip); the crop centre is nudged to the
    # chin by this share of the box height.
    crop_drop: float = 0.08


@dataclass(frozen=True)
class FaceSearchConfig:
    """Finding the character's face and the driving clip's neutral frame."""

    # Detection runs on downscaled copies, coarse first: the cascade's cost grows with
    # pixels, and most faces worth animating are found at the small size (~30 ms); smaller
    # faces get a second look at twice the size.
    detect_sides: tuple[int, ...] = (320, 640)
    # Window growth between the cascade's scales.
    scale_step: float = 1.1
    # The neutral driving frame is the first one with a face, searched for this long...
    search_s: float = 2.0
    # ...trying every this many frames: the cascade costs far more than a frame.
    search_every: int = 3
    # The landmark model's face-presence score from which its points are used (MediaPipe's
    # 0.5); below it, that face moves by dense flow instead (motion.py).
    landmark_presence: float = 0.5


@dataclass(frozen=True)
class MotionConfig:
    """The driving side: DIS optical flow on a small fixed crop (see motion.py)."""

    # Flow resolution (pixels per crop side). The crop is two face widths, so the face spans
    # ~80 px and a mouth ~25 px: enough for lips, eyes and brows; DIS costs ~3 ms per frame.
    flow_res: int = 160
    # Room around the crop (share of its side) for the head to wander before the tracked
    # crop runs off the region that is downscaled each frame.
    region_margin: float = 0.35
    # Where the rigid head motion is read: brows, eyes and nose move with the skull; the
    # mouth and jaw do not. Shares of the crop side (the face box is its middle half).
    rigid_x: tuple[float, float] = (0.32, 0.68)
    rigid_y: tuple[float, float] = (0.24, 0.52)
    # Bound on the field (share of flow_res) that keeps a bad frame from tearing the picture.
    max_field: float = 0.3
    # Weight of the previous frame's field: temporal smoothing.
    smoothing: float = 0.35
    # Fewer iterations than DIS's medium preset: the same accuracy on faces here (measured:
    # jaw motion r and amplitude unchanged) for ~1 ms less per frame.
    gradient_iterations: int = 12
    refinement_iterations: int = 3
    # Runway-style expression intensity 1–5 → gain on the non-rigid motion; 3 = as performed.
    expression_gains: tuple[float, float, float, float, float] = (0.4, 0.7, 1.0, 1.3, 1.6)

    def gain(self, intensity: int | None) -> float:
        return self.expression_gains[(intensity or 3) - 1]


@dataclass(frozen=True)
class WarpConfig:
    """The character side: where the motion applies (shares of the crop side)."""

    # Full strength inside an ellipse around the crop's centre covering brow to chin and
    # cheek to cheek (semi-axes; a face box is half the crop)...
    face_axes: tuple[float, float] = (0.36, 0.44)
    # ...faded to nothing at a circle just inside the warped region.
    fade_radius: float = 0.64


@dataclass(frozen=True)
class RetargetConfig:
    """The landmark path's driving side (see retarget.py): what counts as head motion, how
    much of the measured expression reaches the character, and jitter filtering."""

    # The 468-point model under-reports lips, jaw and brows by about half against the pixels
    # that moved (measured on a clip whose motion is known): gains on those regions' deltas.
    lips_gain: float = 1.8
    jaw_gain: float = 1.6
    brows_gain: float = 2.0
    # A shut eye still reads this share of its open lid gap (the model rounds the lids);
    # openness is measured from here (0) to the neutral frame's gap (1).
    eye_closed: float = 0.55
    # ...and lowers the brows by this much (inter-ocular distances) when an eye shuts; a
    # blink should not read as a frown.
    brow_blink_coupling: float = 0.07
    # ...and lifts the brows as the mouth opens: this much (inter-ocular distances) per
    # inter-ocular distance of lip opening is given back, so talking does not read as surprise.
    brow_jaw_coupling: float = 0.05
    # The character's eye openings are widened by these shares of their lid gap (up, down)
    # before closing them: the model's lid contour can sit inside the visible eye.
    lid_widen_up: float = 0.35
    lid_widen_down: float = 0.1
    # ...and an upper lid still below the top of the eye's dark middle in the picture is
    # raised to it (plus this margin, eye widths), by at most lid_iris_raise_max; a
    # shortfall up to lid_iris_slack is the model's and the reading's noise, left alone
    # (even a fifth of a pixel moved dlib's reading of a wink on a small face).
    lid_iris_margin: float = 0.0
    lid_iris_raise_max: float = 0.2
    lid_iris_slack: float = 0.04
    # A drawn or enlarged eye reaching past the model's lids all round (retarget.
    # drawn_eye_reach): each lid point moves out to where the eye ends along its column (at
    # most lid_fit_reach eye widths, plus lid_fit_margin). Only for drawn eyes: in full when
    # the ink round the eyes outside their lids (pixels as dark as the eye's darkest) covers
    # this share of the area between the lids, not at all below the first value (measured:
    # the cartoon 0.35, photographs 0.02-0.16, the one with drawn glasses included).
    lid_fit_reach: float = 0.3
    lid_fit_margin: float = 0.02
    lid_fit_outside: tuple[float, float] = (0.2, 0.3)
    # The eyes' pixels (retarget._eyes_seen): they decide alone when they show one eye this
    # much more shut than the other (a wink, which the model blurs into both eyes), else
    # they close an eye at most this much further than the model says.
    wink_split: float = 0.45
    # A shut eye's patch keeps its lashes and shut line dark, so its pixels read it a little
    # open (the driving clip's winking eye 0.13-0.15 at the peak, its blinks 0.07-0.11):
    # in a wink, this reading counts as shut.
    wink_shut: float = 0.15
    eye_pixels_margin: float = 0.2
    # Lids meet this far up from the lower lid (the upper lid travels most of the way).
    lid_meet: float = 0.4
    # Opening a little wider than neutral is allowed (a surprised look), no more.
    max_eye_open: float = 1.25
    # Jitter: every measurement is smoothed centred (filters.Centred; Gaussian, σ in
    # seconds), the render writing each frame ~2.5 σ of the largest after reading it. No
    # causal filter: its lag cost more than its smoothing gained. The brows' slow lift is
    # buried deepest in the model's noise: the most for them; a blink lasts a few frames:
    # the least for the lids.
    expression_smooth_s: float = 0.04
    brows_smooth_s: float = 0.0625
    eyes_smooth_s: float = 0.02
    head_smooth_s: float = 0.04
    # Bounds on the transferred head motion (shares of the face's size, and a ratio): the ring
    # that moves with the head stays inside the fixed border whatever a bad frame says.
    max_shift: float = 0.15
    max_scale: float = 0.15
    max_roll_deg: float = 30.0
    # A lost driving face holds the last pose this long, then its expression eases back to
    # neutral with this time constant (the head stays); the tracker looks again every
    # refind_every frames.
    lost_hold_s: float = 0.25
    lost_ease_s: float = 0.3
    refind_every: int = 8
    # Runway-style expression intensity 1–5 → gain on the expression deltas; 3 = as performed.
    expression_gains: tuple[float, float, float, float, float] = (0.4, 0.7, 1.0, 1.3, 1.6)

    def gain(self, intensity: int | None) -> float:
        return self.expression_gains[(intensity or 3) - 1]


@dataclass(frozen=True)
class MeshConfig:
    """The landmark path's character side (see mesh.py): where the piecewise-affine warp lies
    and how the mouth interior is painted."""

    # The warped square, in face heights (the landmarks' forehead-to-chin extent), around the
    # face: its edge is the fixed border, nothing outside it changes.
    region_factor: float = 2.0
    # Nodes moving with the head: the face outline pushed out by this factor about its centre.
    ring_factor: float = 1.3
    # Grid cells per region side where the map is computed (then upsampled per plane).
    grid_res: int = 192
    # A rigid ring around each eye (eye-corner half width × this, lid height + this share of
    # the inter-ocular distance above and below): lids move inside, frames of glasses that sit
    # around the eye stay straight.
    eye_ring_x: float = 1.45
    eye_ring_margin: float = 0.13
    # New mouth opening is painted dark: luma pulled this far toward black, chroma this far
    # toward grey (the stretched lip line underneath gives it a red tint and some texture).
    mouth_dark: float = 0.78
    mouth_desaturate: float = 0.45


@dataclass(frozen=True)
class EncoderConfig:
    """x264 for the result, on its own thread."""

    preset: str = "veryfast"
    crf: int = 20
    # Frames waiting for the encoder thread: enough to overlap, little memory.
    queue_depth: int = 4


@dataclass(frozen=True)
class RenderLimits:
    """Behind the media checks, whatever a header claims or a file holds, a render stays
    bounded: at most this long (four times the 30 s providers accept; the engine runs at
    about twice real time, so about a minute of work) and this many frames (that length at
    60 fps)."""

    max_render_s: float = 120.0
    max_render_frames: int = 7200


@dataclass(frozen=True)
class WorkerConfig:
    """The worker process's rhythm (state.json writes, slot waits)."""

    progress_every_s: float = 0.25
    slot_poll_s: float = 0.2
    heartbeat_every_s: float = 1.0


@dataclass(frozen=True)
class EngineConfig:
    framing: FramingConfig = field(default_factory=FramingConfig)
    faces: FaceSearchConfig = field(default_factory=FaceSearchConfig)
    motion: MotionConfig = field(default_factory=MotionConfig)
    warp: WarpConfig = field(default_factory=WarpConfig)
    retarget: RetargetConfig = field(default_factory=RetargetConfig)
    mesh: MeshConfig = field(default_factory=MeshConfig)
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    limits: RenderLimits = field(default_factory=RenderLimits)
    worker: WorkerConfig = field(default_factory=WorkerConfig)


DEFAULT_CONFIG = EngineConfig()

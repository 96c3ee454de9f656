"""Motion fidelity on this machine: CPU to score a 10 s 720p result, and where it goes.

    .venv/bin/python bench/bench_fidelity.py             # first run makes the clips
    .venv/bin/python bench/bench_fidelity.py --runs 5

Inputs are generated into bench/out/fidelity/ (git-ignored) and reused: the performance of
tests/mediagen.py (astronaut photograph: jaw, blinks, brows, head roll and drift),
looped to 10 s, as 1280×720 H.264 High (x264 veryfast CRF 23, B-frames, light grain so it
decodes like a real file): the driving clip at 30 fps, a result at 24 fps with the face
smaller and off-centre, and a 10 s 720p result with no face.

Target (issue 9): fidelity of a 10 s 720p result ≤ 2 s of CPU on one core. Everything is
pinned to one thread (decoder thread_count=1, LiteRT num_threads=1, cv2.setNumThreads(1)),
and CPU is time.process_time() of this process (all threads). Each figure is the median of
--runs repetitions after one warm-up (which is reported separately: imports, model load).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import av  # noqa: E402
import cv2  # noqa: E402
import numpy as np  # noqa: E402

from services.compare.fidelity import FaceTrack, face_track, fidelity  # noqa: E402
from services.face import signals  # noqa: E402
from services.face.landmarks import Landmarker  # noqa: E402
from services.face.video import sampled_frames  # noqa: E402
from tests.mediagen import frame_at  # noqa: E402

OUT = ROOT / "bench" / "out" / "fidelity"
SIZE = (1280, 720)
SECONDS = 10.0
LOOP_S = 5.0  # the generated performance's length; looped to fill 10 s


def _make(path: Path, fps: int, **kw: object) -> Path:
    if path.exists():
        return path
    rng = np.random.default_rng(1)
    part = path.with_suffix(".part.mp4")
    with av.open(str(part), "w") as out:
        v = out.add_stream("libx264", rate=fps)
        v.width, v.height = SIZE
        v.pix_fmt = "yuv420p"
        v.options = {"preset": "veryfast", "crf": "23", "profile": "high"}
        for i in range(round(fps * SECONDS)):
            rgb = frame_at((i / fps) % LOOP_S, SIZE, **kw)  # type: ignore[arg-type]
            grain = rng.integers(0, 6, rgb.shape, dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(cv2.add(rgb, grain), format="rgb24")
            frame.pts = i
            out.mux(v.encode(frame))
        out.mux(v.encode(None))
    part.rename(path)
    return path


def _cpu(fn: Callable[[], object], runs: int) -> tuple[float, float, object]:
    """(median CPU s, median wall s, last result) over `runs` calls."""
    cpu, wall, result = [], [], None
    for _ in range(runs):
        c, w = time.process_time(), time.perf_counter()
        result = fn()
        cpu.append(time.process_time() - c)
        wall.append(time.perf_counter() - w)
    return statistics.median(cpu), statistics.median(wall), result


def _decode_only(path: Path) -> int:
    return sum(1 for _ in sampled_frames(path, 15.0))


def _landmarks_only(frames: list) -> int:
    lm = Landmarker()
    return sum(lm.track(f.image) is not None for f in frames)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    OUT.mkdir(parents=True, exist_ok=True)
    driving = _make(OUT / "driving_720p30.mp4", 30)
    result = _make(OUT / "result_720p24.mp4", 24, zoom=0.75, shift=(0.1, 0.05))
    empty = _make(OUT / "noface_720p30.mp4", 30, face=False)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()}")

    c, w = time.process_time(), time.perf_counter()
    face_track(result)
    c, w = time.process_time() - c, time.perf_counter() - w
    print(
        f"warm-up (model + cascade load, first track of the result): {c:.2f} s CPU, {w:.2f} s wall"
    )

    cached = OUT / "driving.npz"
    face_track(driving).save(cached)

    rows: list[tuple[str, float, float]] = []

    def add(label: str, fn: Callable[[], object]) -> object:
        cpu, wall, out = _cpu(fn, args.runs)
        rows.append((label, cpu, wall))
        return out

    frames = list(sampled_frames(result, 15.0))
    add("decode + sample only, result 10 s 720p24 (240 frames → 150)", lambda: _decode_only(result))
    add(
        "decode + sample only, driving 10 s 720p30 (300 frames → 150)",
        lambda: _decode_only(driving),
    )
    add(
        f"landmarks only, {len(frames)} sampled result frames (tracked)",
        lambda: _landmarks_only(frames),
    )
    first = next(f for f in frames)
    found = Landmarker().detect(first.image)
    assert found is not None
    add("signals.read × 150", lambda: [signals.read(found) for _ in range(150)])
    track_r = add("face_track(result 10 s 720p24)", lambda: face_track(result))
    track_d = add("face_track(driving 10 s 720p30)", lambda: face_track(driving))
    add("FaceTrack.load(cached driving .npz)", lambda: FaceTrack.load(cached))
    add("fidelity(driving track, result track) only", lambda: fidelity(track_d, track_r))  # type: ignore[arg-type]
    score = add(
        "SCORE, cached driving: load + face_track(result) + fidelity",
        lambda: fidelity(FaceTrack.load(cached), face_track(result)),
    )
    add(
        "SCORE, both tracked: face_track × 2 + fidelity",
        lambda: fidelity(face_track(driving), face_track(result)),
    )
    none = add("face_track(no-face 10 s 720p30)", lambda: face_track(empty))

    print(f"\nmedian of {args.runs} (CPU = process_time, all threads; pinned to one thread)")
    for label, cpu, wall in rows:
        print(f"  {label:<66} {cpu:6.3f} s CPU {wall:6.3f} s wall")
    print(
        f"\nscore of the result: {score.score}  (coverage {score.coverage}, {score.frames} frames)"
    )  # type: ignore[attr-defined]
    for s in score.signals:  # type: ignore[attr-defined]
        figures = f"r={s.r} amplitude={s.amplitude} score={s.score} weight={s.weight}"
        print(f"  {s.name:<10} {figures} {s.note or ''}")
    found = int(none.found.sum())  # type: ignore[attr-defined]
    print(f"no-face result: faces found in {found} of {none.t.size} samples")  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()

"""What confirming faces costs the media checks (issue 15): each Haar box the landmark model
looks at before it counts. Prints figures.

    .venv/bin/python bench/bench_face_search.py                      # this checkout
    .venv/bin/python bench/bench_face_search.py --root /tmp/before   # another checkout's code

Inputs are generated into bench/out/faces/ (git-ignored) and reused: two 1280×720 10 s clips
(a face; no face) and three 512-px photographs (the astronaut; the same at 70% exposure, where
the cascade also boxes the model shuttle; two astronauts side by side). Per file: probe + the
generic checks (no provider), median wall and CPU ms of 7 warm runs. Per 480-px keyframe (the
checks' three face samples), with this checkout's code only: the raw cascade
(services.media.faces.detect) against the confirmed search (services.face.search.detect).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out" / "faces"


def inputs() -> dict[str, Path]:
    import numpy as np
    from PIL import Image

    from tests.mediagen import astronaut, make_video

    OUT.mkdir(parents=True, exist_ok=True)
    paths = {"take_720p.mp4": OUT / "take_720p.mp4", "noface_720p.mp4": OUT / "noface_720p.mp4"}
    if not paths["take_720p.mp4"].exists():
        make_video(paths["take_720p.mp4"], size=(1280, 720), seconds=10.0, fps=30)
    if not paths["noface_720p.mp4"].exists():
        make_video(paths["noface_720p.mp4"], size=(1280, 720), seconds=10.0, fps=30, face=False)
    photo = np.asarray(astronaut())
    pictures = {
        "astronaut.png": photo,
        "astronaut_70.png": (photo * 0.7).astype(np.uint8),
        "pair.png": np.concatenate([photo, photo], axis=1),
    }
    for name, rgb in pictures.items():
        paths[name] = OUT / name
        if not paths[name].exists():
            Image.fromarray(np.ascontiguousarray(rgb)).save(paths[name])
    return paths


def timed(fn: Callable[[], object], n: int = 7) -> tuple[float, float]:
    """Median wall and CPU ms of n calls after one warm call (CPU: this machine is shared)."""
    fn()
    walls, cpus = [], []
    for _ in range(n):
        t, c = time.perf_counter(), time.process_time()
        fn()
        walls.append((time.perf_counter() - t) * 1e3)
        cpus.append((time.process_time() - c) * 1e3)
    return statistics.median(walls), statistics.median(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="checkout whose services to time")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))  # tests.mediagen
    sys.path.insert(0, str(args.root.resolve()))  # services

    from services.media import faces as cascade
    from services.media import run_checks
    from services.media.frames import pick_times, samples
    from services.media.metadata import open_media
    from services.models import MediaRole

    try:
        from services.face import search
    except ImportError:
        search = None  # a checkout from before the confirmed search

    print(f"services from {args.root.resolve()}")
    for name, path in inputs().items():
        role = MediaRole.DRIVING_VIDEO if path.suffix == ".mp4" else MediaRole.CHARACTER_IMAGE
        wall, cpu = timed(lambda p=path, r=role: run_checks(p, r, []))  # type: ignore[misc]
        report = run_checks(path, role, [])
        faces = next(c for c in report.checks if c.id == "faces")
        line = f"{name}: checks {wall:.0f} ms wall / {cpu:.0f} ms CPU; faces {faces.status}"
        line += f" ({len(report.faces)} box(es))"
        if search is not None:
            with open_media(path, image_max_side=480) as opened:
                frames = samples(opened, pick_times(opened, 3), 480)
            raw = [timed(lambda f=f: cascade.detect(f.rgb))[1] for f in frames]
            confirmed = [timed(lambda f=f: search.detect(f.rgb))[1] for f in frames]
            per = statistics.median(c - r for c, r in zip(confirmed, raw, strict=True))
            line += (
                f"; per keyframe, CPU: cascade {statistics.median(raw):.1f} ms, "
                f"confirmed {statistics.median(confirmed):.1f} ms (+{per:.1f})"
            )
        print(line)


if __name__ == "__main__":
    main()

"""The comparison's side-by-side export on this machine: speed against real time, CPU, and
memory against clip length. Prints figures.

    .venv/bin/python bench/bench_export.py            # 10 s clips, 3 runs
    .venv/bin/python bench/bench_export.py --long     # also 30 s clips (memory flat in length)

Inputs are generated into bench/out/export/ (git-ignored) and reused: a 1280×720 30 fps
driving clip with AAC audio and three 1280×720 results — 24, 24 and 30 fps (as providers
return them), one of them half a second short — of the astronaut head-and-shoulders with a
little film grain and x264 veryfast, so decoding costs what a real result's would.

Target (issue 9, item 6): the driving clip + three 10 s 720p results → a 2×2 1280×720
side-by-side faster than real time on two cores. Each run is a fresh process (imports
included, as `reenact` or a page would pay them); CPU is that process's user + system time,
all threads; RSS growth is its peak RSS minus its RSS just before the export.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

OUT = ROOT / "bench" / "out" / "export"
SIZE = (1280, 720)

_CHILD = """
import json, resource, sys, time
from pathlib import Path
from services.compare.export import ExportTile, side_by_side

def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20

ref, out, *results = sys.argv[1:]
labels = ("Runway", "Act-Two", "Local engine")
tiles = [ExportTile(label=l, path=Path(p)) for l, p in zip(labels, results)]
before = rss_mb()
u0 = resource.getrusage(resource.RUSAGE_SELF)
t0 = time.perf_counter()
side_by_side(Path(ref), tiles, Path(out))
wall = time.perf_counter() - t0
u1 = resource.getrusage(resource.RUSAGE_SELF)
cpu = (u1.ru_utime - u0.ru_utime) + (u1.ru_stime - u0.ru_stime)
print(json.dumps({"wall": wall, "cpu": cpu, "rss_before": before,
                  "peak_growth": u1.ru_maxrss / 1024 - before}))
"""


def _clip(name: str, seconds: float, fps: int, audio: bool) -> Path:
    from tests.mediagen import make_video

    path = OUT / f"{name}_{seconds:g}s_{fps}fps.mp4"
    if not path.exists():
        t = time.perf_counter()
        make_video(
            path,
            size=SIZE,
            seconds=seconds,
            fps=fps,
            audio=audio,
            preset="veryfast",
            crf=23,
            grain=3,
            face_scale=0.85,
        )
        print(f"  made {path.name} in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    return path


def inputs(seconds: float) -> tuple[Path, list[Path]]:
    ref = _clip("driving", seconds, 30, audio=True)
    results = [
        _clip("result_a", seconds, 24, audio=False),
        _clip("result_b", seconds - 0.5, 24, audio=False),
        _clip("result_c", seconds, 30, audio=False),
    ]
    return ref, results


def run_once(ref: Path, results: list[Path], out: Path) -> dict[str, float]:
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(ref), str(out), *map(str, results)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def facts(path: Path) -> str:
    import av

    with av.open(str(path)) as c:
        v = c.streams.video[0]
        audio = ",".join(a.codec_context.name for a in c.streams.audio) or "none"
        duration = float(c.duration / av.time_base) if c.duration else 0.0
        return (
            f"{v.codec_context.name} {v.width}×{v.height} {v.codec_context.pix_fmt} "
            f"{float(v.average_rate):g} fps, {v.frames} frames, {duration:.2f} s, audio {audio}, "
            f"{path.stat().st_size / 1e6:.1f} MB"
        )


def bench(seconds: float, runs: int) -> None:
    ref, results = inputs(seconds)
    out = OUT / f"side_by_side_{seconds:g}s.mp4"
    figures = []
    for _ in range(runs):
        load = os.getloadavg()[0]
        got = run_once(ref, results, out)
        got["load"] = load
        figures.append(got)
        print(
            f"  {seconds:g} s: wall {got['wall']:.2f} s ({seconds / got['wall']:.2f}× real time), "
            f"CPU {got['cpu']:.2f} s ({got['cpu'] / got['wall']:.2f} cores), "
            f"peak RSS growth {got['peak_growth']:.0f} MB, load before {load:.1f}"
        )
    wall = statistics.median(f["wall"] for f in figures)
    cpu = statistics.median(f["cpu"] for f in figures)
    growth = max(f["peak_growth"] for f in figures)
    print(
        f"{seconds:g} s clips, median of {runs}: wall {wall:.2f} s = {seconds / wall:.2f}× real "
        f"time, CPU {cpu:.2f} s, peak RSS growth (max) {growth:.0f} MB"
    )
    print(f"  output: {facts(out)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--long", action="store_true", help="also 30 s clips")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    print(f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    bench(10.0, args.runs)
    if args.long:
        bench(30.0, args.runs)


if __name__ == "__main__":
    main()

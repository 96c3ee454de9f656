"""The local engine on this machine: speed of the whole job, memory against clip length, time
to first progress, and a side-by-side contact sheet. Prints figures.

    .venv/bin/python bench/bench_engine.py            # everything (first run makes the clips)
    .venv/bin/python bench/bench_engine.py --runs 5   # more repetitions of the speed run

Inputs are generated into bench/out/engine/ (git-ignored) and reused: a 16:9 1280×720 24 fps
H.264 High-profile (CABAC, deblocked) head-and-shoulders clip of the astronaut photograph
whose jaw opens and closes while the head drifts, with AAC audio (10 s for speed; 5 s and
30 s for memory), and a 1280×720 character picture (the same face mirrored, at another
scale, on another backdrop).

Targets (issues 5 and 15): ≥ 48 output frames/s at 1280×720 for the whole job (worker start,
decode, landmarks, retargeting, warp, encode, audio); peak RSS of a 30 s clip within 10 % of
a 5 s clip's; first progress within 1 s. Anchor: LivePortrait reports 12.8 ms/frame on an
RTX 4090 GPU. How well expressions transfer is bench/bench_expressions.py's business.

"Whole job" = LocalProvider.create() → polled (every 10 ms) until succeeded, so it includes
starting the worker process and its imports. The contact sheet goes to
bench/engine_contact_sheet.png.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from services.config import load_settings  # noqa: E402
from services.engine import jobs  # noqa: E402
from services.engine.render import render  # noqa: E402
from services.models import TaskOptions, TaskStatus  # noqa: E402
from services.providers.base import CreateRequest  # noqa: E402
from services.providers.local import LocalProvider  # noqa: E402
from tests.engine.measure import (  # noqa: E402
    facts,
    gray_frames,
    mouth_opening,
    pearson,
    rgb_frames,
)
from tests.mediagen import (  # noqa: E402
    CLOSEUP,
    MOUTH,
    make_character,
    make_driving_clip,
    opening,
)

OUT = ROOT / "bench" / "out" / "engine"
SHEET = ROOT / "bench" / "engine_contact_sheet.png"
SIZE = (1280, 720)
FPS = 24


def _clip(seconds: float, head: bool) -> Path:
    path = OUT / f"drive_720p_{seconds:g}s{'_head' if head else ''}_cabac.mp4"
    if not path.exists():
        t = time.perf_counter()
        make_driving_clip(
            path,
            size=SIZE,
            fps=FPS,
            seconds=seconds,
            source=CLOSEUP,
            head_px=7.0 if head else 0,
            preset="veryfast",  # CABAC and deblocking, as a phone or an editor would write
        )
        print(f"  made {path.name} in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    return path


def _character():
    return make_character(
        OUT / "character_720p.png", size=SIZE, face_side=640, mirror=True, source=CLOSEUP
    )


def _busy_jiffies() -> tuple[int, int]:
    """(busy, total) CPU jiffies of the whole machine so far, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def _own_cpu() -> float:
    me, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def whole_job(video: Path, image: Path, data: Path) -> dict[str, float]:
    """One job through the provider, timed from create() to the succeeded poll. Also how much
    CPU the worker spent, and how busy the rest of the machine was meanwhile (other programs
    on these two cores slow the job down)."""
    settings = load_settings(env={"REENACT_DATA_DIR": str(data)}, secrets={})
    provider = LocalProvider(settings)
    busy0, total0 = _busy_jiffies()
    own0 = _own_cpu()
    t0 = time.perf_counter()
    task_id = provider.create(CreateRequest(video=str(video), image=str(image)))
    first_progress = None
    while True:
        update = provider.poll(task_id)
        now = time.perf_counter() - t0
        if first_progress is None and (update.progress or 0) > 0:
            first_progress = now
        if update.status.terminal:
            break
        time.sleep(0.01)
    if update.status is not TaskStatus.SUCCEEDED:
        raise SystemExit(f"the job failed: {update.error}")
    for proc in list(LocalProvider._children.values()):
        proc.wait()  # so its CPU time is counted in RUSAGE_CHILDREN
    busy1, total1 = _busy_jiffies()
    cores = os.cpu_count() or 2
    machine_busy = (busy1 - busy0) / max(1, total1 - total0) * cores * now  # core-seconds
    own = _own_cpu() - own0
    state = jobs.read_state(jobs.job_dir(settings, task_id))
    assert state is not None
    return {
        "seconds": now,
        "frames": float(state.frames_done),
        "fps": state.frames_done / now,
        "first_progress_s": first_progress if first_progress is not None else now,
        "cpu_ms_per_frame": 1000 * own / state.frames_done,
        "others_cores": max(0.0, (machine_busy - own) / now),
        "result": str(jobs.job_dir(settings, task_id) / jobs.RESULT_FILE),
    }


def engine_only(video: Path, image: Path, out: Path) -> dict[str, float]:
    """The same render in this process (no worker start-up): wall and CPU per frame."""
    cpu0, t0 = time.process_time(), time.perf_counter()
    result = render(video, image, out)
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    return {"fps": result.frames / wall, "cpu_ms_per_frame": 1000 * cpu / result.frames}


def peak_rss_mb(video: Path, image: Path, data: Path) -> float:
    """Peak RSS of one worker process rendering `video` (its own rusage, via wait4)."""
    settings = load_settings(env={"REENACT_DATA_DIR": str(data)}, secrets={})
    folder = jobs.jobs_root(settings) / os.urandom(16).hex()
    folder.mkdir(parents=True)
    jobs.write_spec(
        folder,
        jobs.JobSpec(
            id=folder.name,
            video=str(video),
            image=str(image),
            options=TaskOptions(),
            created_at=time.time(),
        ),
    )
    # A small launcher process starts the worker and reads its rusage: Linux carries a
    # process's peak RSS across exec, so a worker forked straight from this (big) process
    # would report this process's size instead of its own.
    launcher = (
        "import os, subprocess, sys\n"
        "p = subprocess.Popen(sys.argv[1:])\n"
        "_, status, usage = os.wait4(p.pid, 0)\n"
        "print(status, usage.ru_maxrss)\n"
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            launcher,
            sys.executable,
            "-m",
            "services.engine.worker",
            str(folder),
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "REENACT_DATA_DIR": str(data)},
        capture_output=True,
        text=True,
        check=True,
    )
    status, maxrss_kib = (int(v) for v in proc.stdout.split())
    state = jobs.read_state(folder)
    if status != 0 or state is None or state.status is not TaskStatus.SUCCEEDED:
        raise SystemExit(f"the memory run failed: {state.error if state else status}")
    return maxrss_kib / 1024  # Linux reports KiB


def motion_check(result: Path, video: Path) -> tuple[float, float]:
    """Pearson r of the output's jaw drop against the driving clip's (first 4 s), and the
    ratio of their amplitudes after scaling by face size."""
    n = 4 * FPS
    char = _character()
    out = mouth_opening(gray_frames(result)[:n], char.mouth, char.face_side)
    s = SIZE[1] / CLOSEUP[2]
    drv_mouth = (
        (SIZE[0] - SIZE[1]) // 2 + (MOUTH[0] - CLOSEUP[0]) * s,
        (MOUTH[1] - CLOSEUP[1]) * s,
    )
    drv = mouth_opening(gray_frames(video)[:n], drv_mouth, 512 * s)
    amp = out.max() / (drv.max() * char.face_side / (512 * s))
    return pearson(out, [opening(i, FPS) for i in range(n)]), float(amp)


def contact_sheet(video: Path, result: Path, picks: list[int]) -> Path:
    """Driving | output face crops at a few moments, labelled; a small palette PNG."""

    drv, out = rgb_frames(video, set(picks)), rgb_frames(result, set(picks))
    x0, y0, side, tile = 360, 0, 600, 260  # the head in both 1280×720 frames
    rows = []
    for i in picks:
        pair = [
            cv2.resize(
                f[i][y0 : y0 + side, x0 : x0 + side], (tile, tile), interpolation=cv2.INTER_AREA
            )
            for f in (drv, out)
        ]
        label = f"t={i / FPS:.2f}s  jaw {opening(i, FPS):.0%}"
        cv2.putText(
            pair[0], label, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA
        )
        rows.append(np.hstack([pair[0], np.full((tile, 4, 3), 255, np.uint8), pair[1]]))
    sheet = np.vstack(rows)
    head = np.full((22, sheet.shape[1], 3), 255, np.uint8)
    cv2.putText(head, "driving", (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(
        head,
        "local engine output",
        (tile + 10, 16),
        cv2.FONT_HERSHEY_SIMPLEX,
        0.5,
        (0, 0, 0),
        1,
        cv2.LINE_AA,
    )
    Image.fromarray(np.vstack([head, sheet])).quantize(colors=96).save(SHEET, optimize=True)
    return SHEET


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="repetitions of the speed run")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    data = OUT / "data"

    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"load average at start {os.getloadavg()[0]:.2f}"
    )
    video, char = _clip(10, head=True), _character()
    info = facts(video)
    print(
        f"driving: {video.name} {info.width}x{info.height} {float(info.fps):g} fps, "
        f"{info.frames} frames; character: {char.size[0]}x{char.size[1]}"
    )

    runs = []
    for _ in range(args.runs):
        r = whole_job(video, char.path, data)
        runs.append(r)
        print(
            f"  run: {r['fps']:.1f} fps, first progress {r['first_progress_s'] * 1000:.0f} ms, "
            f"worker+bench {r['cpu_ms_per_frame']:.1f} CPU-ms/frame; other programs used "
            f"{r['others_cores']:.2f} of {os.cpu_count()} cores meanwhile"
        )
    fps = [r["fps"] for r in runs]
    first = [r["first_progress_s"] for r in runs]
    print(
        f"whole job (create → succeeded), {args.runs} runs: median {statistics.median(fps):.1f}"
        f" fps, best {max(fps):.1f}, worst {min(fps):.1f}  (target ≥ 48)"
    )
    print(
        f"  = {1000 / statistics.median(fps):.1f} ms per output frame; "
        f"median job time {statistics.median(r['seconds'] for r in runs):.2f} s "
        f"for {int(runs[0]['frames'])} frames"
    )
    print(
        f"first progress after create: median {statistics.median(first) * 1000:.0f} ms, "
        f"worst {max(first) * 1000:.0f} ms  (target ≤ 1000)"
    )

    eng = engine_only(video, char.path, OUT / "engine_only.mp4")
    print(
        f"in-process render (no worker start): {eng['fps']:.1f} fps, "
        f"CPU {eng['cpu_ms_per_frame']:.1f} ms per frame across threads"
    )

    out = facts(Path(runs[0]["result"]))
    print(
        f"output: {out.codec} {out.pix_fmt} {out.width}x{out.height} {float(out.fps):g} fps "
        f"{out.frames} frames, audio {out.audio_codec} {out.audio_seconds:.2f} s"
    )
    r, amp = motion_check(Path(runs[0]["result"]), video)
    print(
        f"motion: jaw-drop correlation with the driving clip r = {r:.3f}, "
        f"amplitude {amp:.0%} of the driving face's (scaled to the character)"
    )

    short, long = _clip(5, head=False), _clip(30, head=False)
    rss5 = peak_rss_mb(short, char.path, data)
    rss30 = peak_rss_mb(long, char.path, data)
    print(
        f"peak RSS of the worker: 5 s clip {rss5:.0f} MB, 30 s clip {rss30:.0f} MB "
        f"({(rss30 / rss5 - 1) * 100:+.1f} %, target within ±10 %)"
    )

    sheet = contact_sheet(video, Path(runs[0]["result"]), [0, 12, 36, 66])
    print(f"contact sheet: {sheet.relative_to(ROOT)} ({sheet.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()

"""Sound on a silent result (services/media/remux.py, services/archive.py add_sound) on this
machine. Prints figures.

    .venv/bin/python bench/bench_remux.py           # 9 runs of each
    .venv/bin/python bench/bench_remux.py --runs 21

Inputs are generated into bench/out/remux/ (git-ignored) and reused: a silent 30 s 1280×720
24 fps H.264 result (x264 veryfast with film grain: ~7 Mb/s, heavier than a provider's usual
result) and a light one (~0.25 Mb/s, a calm shot),
a 30 s 1280×720 30 fps driving clip with AAC sound, and the same sound as PCM in a MOV (a
camera's), which has to be re-encoded to AAC.

Target (issue 13): remux of a 30 s 720p result ≤ 100 ms. Timed in-process and warm (the
monitor's archiver is a long-lived thread; PyAV is imported once per process): `remux` is
add_driving_audio alone (the MP4 written, faststart included); `archive step` is what the
monitor pays after the download — the remux, fsync of the new file, the original kept by a
hard link, the renames, fsync of the folder.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

OUT = ROOT / "bench" / "out" / "remux"
TARGET_MS = 100.0


def _inputs() -> dict[str, Path]:
    from tests import mediagen

    OUT.mkdir(parents=True, exist_ok=True)
    made = {
        "result": OUT / "result-30s-720p.mp4",
        "light": OUT / "result-30s-720p-light.mp4",
        "driving": OUT / "driving-30s-720p-aac.mp4",
        "driving_pcm": OUT / "driving-30s-pcm.mov",
    }
    if not made["result"].exists():
        mediagen.make_video(
            made["result"], size=(1280, 720), seconds=30, fps=24, preset="veryfast", crf=20, grain=5
        )
    if not made["light"].exists():
        mediagen.make_video(
            made["light"], size=(1280, 720), seconds=30, fps=24, preset="veryfast", crf=23, grain=3
        )
    if not made["driving"].exists():
        mediagen.make_video(
            made["driving"], size=(1280, 720), seconds=30, fps=30, audio=True, grain=3
        )
    if not made["driving_pcm"].exists():
        mediagen.make_beep_clip(
            made["driving_pcm"], seconds=30.0, beeps_s=(1.0, 15.0), audio="pcm_s16le"
        )
    return made


def _measure(
    fn: Callable[[], object], runs: int, setup: Callable[[], object] = lambda: None
) -> str:
    """One warm-up, then `runs` timed calls (setup untimed): wall median/min/max, CPU median."""
    setup()
    fn()
    wall, cpu = [], []
    for _ in range(runs):
        setup()
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append((time.perf_counter() - w0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
    return (
        f"{statistics.median(wall):>6.1f}ms {min(wall):>6.1f}ms {max(wall):>6.1f}ms "
        f"{statistics.median(cpu):>6.1f}ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()

    from services.archive import ORIGINAL_NAME, RESULT_NAME, _remux
    from services.media.remux import add_driving_audio
    from services.models import Task

    files = _inputs()
    work = OUT / "work"
    work.mkdir(exist_ok=True)
    mb = {k: files[k].stat().st_size / 2**20 for k in ("result", "light")}
    print(f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(
        f"silent 30 s 1280×720 results: {mb['result']:.1f} MB and {mb['light']:.1f} MB; "
        f"{args.runs} runs each, after one warm-up; load average {os.getloadavg()[0]:.1f}"
    )
    print(f"{'what':<44} {'median':>8} {'min':>8} {'max':>8} {'CPU':>8}   target")

    dest = work / "out.mp4"
    for result, driving, label in (
        ("result", "driving", f"remux {mb['result']:.0f} MB, AAC copied"),
        ("light", "driving", f"remux {mb['light']:.1f} MB, AAC copied"),
        ("result", "driving_pcm", f"remux {mb['result']:.0f} MB, PCM → AAC"),
    ):

        def once(res: Path = files[result], src: Path = files[driving]) -> None:
            add_driving_audio(res, src, dest)

        mark = f"≤ {TARGET_MS:.0f} ms" if driving == "driving" else ""
        print(f"{label:<44} {_measure(once, args.runs)}   {mark}")

    task = Task(id="bench", provider="runway")
    folder = work / "task"

    def downloaded() -> None:
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        os.link(files["result"], folder / RESULT_NAME)  # as if just downloaded

    def archive_step() -> None:
        note = _remux(task, folder / RESULT_NAME, files["driving"], folder / ORIGINAL_NAME)
        assert note.added, note.sentence

    label = f"archive step {mb['result']:.0f} MB (+fsync, link, renames)"
    print(f"{label:<44} {_measure(archive_step, args.runs, downloaded)}")
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

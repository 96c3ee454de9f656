"""Media checks and fixes: how long they take on realistic inputs. Prints figures.

    .venv/bin/python bench/bench_media.py          # everything (first run generates ~1.1 GB)
    .venv/bin/python bench/bench_media.py --quick  # skip the 1 GB file

Inputs are generated into bench/out/ (git-ignored) and reused on later runs:
  - clip_1080p_30s.mp4   30 s 1920x1080 30 fps H.264 + AAC, 1 s GOP (phone-like)
  - clip_1080p_30s_gop8.mp4  the same with x264's default-ish 8 s GOP
  - big_1gb.mp4          ~1 GB: a grainy 10 s 1080p clip (~30 Mb/s) remuxed end to end (~5 min)
  - portrait_720p_30s.mp4  720x1280 30 s, for crop/pad/transcode
  - phone_720p_30s.mp4   the same stored landscape with a rotation matrix (transcode uprights)
  - wide_720p_45s.mp4    1280x720 45 s, trimmed to 30 s
Targets (issue 3): probe+checks ≤ 300 ms (30 s 1080p), ≤ 500 ms and RSS growth ≤ 50 MB (1 GB);
fixes faster than real time on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import av  # noqa: E402

from services.media import apply_fix, probe, run_checks  # noqa: E402
from services.models import MediaRole, ProviderCapabilities, SizeCaps  # noqa: E402
from tests.mediagen import make_video  # noqa: E402

OUT = ROOT / "bench" / "out"
GB = 1024**3

CAPS = [
    ProviderCapabilities(id="cometapi", name="CometAPI", required_aspect="16:9"),
    ProviderCapabilities(
        id="runway",
        name="Runway Act-Two",
        ratios=("1280:720", "720:1280", "960:960", "1104:832", "832:1104", "1584:672"),
        reference_min_s=3.0,
        reference_max_s=30.0,
        accepts_character_video=True,
        size_caps=SizeCaps(
            url_image=16 << 20,
            url_video=32 << 20,
            data_uri_image=5 << 20,
            data_uri_video=16 << 20,
            upload_min=512,
            upload_max=200 << 20,
        ),
    ),
]


def ensure(path: Path, make: Callable[[Path], object]) -> Path:
    if not path.exists():
        t = time.perf_counter()
        tmp = path.with_suffix(".tmp" + path.suffix)
        make(tmp)
        tmp.rename(path)
        print(f"  generated {path.name} in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    return path


def make_grainy_clip(path: Path) -> None:
    """10 s of 1080p performance with film grain: ~30 Mb/s, like a good phone."""
    make_video(
        path, size=(1920, 1080), seconds=10, fps=30, audio=True, gop_seconds=1.0,
        face_scale=0.6, grain=5, crf=21,
    )  # fmt: skip


def make_big(path: Path, target: int = GB) -> None:
    """Remux the noisy clip end to end (timestamps shifted) until the file reaches `target`."""
    seed = ensure(OUT / "grainy_1080p_10s.mp4", make_grainy_clip)
    per = seed.stat().st_size
    repeats = max(1, -(-target // per))
    with av.open(str(seed)) as src, av.open(str(path), "w", format="mp4") as out:
        ins = [src.streams.video[0], src.streams.audio[0]]
        outs = {s.index: out.add_stream_from_template(s) for s in ins}
        packets = [p for p in src.demux(*ins) if p.dts is not None]
        # One repeat's length per stream, from its first packet (AAC priming starts below
        # zero) to the end of its last, so the next repeat's timestamps strictly follow.
        span = {}
        for s in ins:
            own = [p for p in packets if p.stream_index == s.index]
            span[s.index] = max(p.pts + (p.duration or 0) for p in own) - min(
                min(p.pts for p in own), min(p.dts for p in own)
            )
        for r in range(repeats):
            for p in packets:
                q = av.Packet(bytes(p))
                q.pts = p.pts + r * span[p.stream_index]
                q.dts = p.dts + r * span[p.stream_index]
                q.duration = p.duration
                q.is_keyframe = p.is_keyframe
                q.time_base = p.time_base
                q.stream = outs[p.stream_index]
                out.mux(q)


def timed(fn: Callable[[], object], n: int) -> tuple[float, float, float]:
    """(first-call ms, median wall ms and median CPU ms of the next n-1 calls).

    CPU time is printed too because this machine is shared: wall time grows with other
    processes' load, CPU time does not.
    """
    t = time.perf_counter()
    fn()
    first = (time.perf_counter() - t) * 1e3
    walls, cpus = [], []
    for _ in range(n - 1):
        t, c = time.perf_counter(), time.process_time()
        fn()
        walls.append((time.perf_counter() - t) * 1e3)
        cpus.append((time.process_time() - c) * 1e3)
    return first, statistics.median(walls), statistics.median(cpus)


def bench_checks(path: Path, label: str) -> dict[str, float]:
    # Warm the libraries (import, cascade load) on another file so "cold" is per-file cold.
    run_checks(OUT / "warm.mp4", MediaRole.DRIVING_VIDEO, CAPS)
    probe_first, probe_med, probe_cpu = timed(lambda: probe(path), 7)
    first, med, cpu = timed(lambda: run_checks(path, MediaRole.DRIVING_VIDEO, CAPS), 7)
    report = run_checks(path, MediaRole.DRIVING_VIDEO, CAPS)
    print(
        f"{label}: probe {probe_med:.0f} ms wall / {probe_cpu:.0f} ms CPU "
        f"(first {probe_first:.0f}); probe+all checks {med:.0f} ms wall / {cpu:.0f} ms CPU "
        f"(first {first:.0f}); {len(report.checks)} checks, failed={report.failed}"
    )
    return {"probe_ms": probe_med, "checks_ms": med, "checks_cpu_ms": cpu, "checks_first_ms": first}


RSS_SCRIPT = """
import json, resource, sys, time
import psutil
from services.media import run_checks
from services.models import MediaRole
sys.path.insert(0, "bench")
from bench_media import CAPS
run_checks(sys.argv[2], MediaRole.DRIVING_VIDEO, CAPS)  # warm: imports, cascade
proc = psutil.Process()
io0 = proc.io_counters().read_chars
rss0 = proc.memory_info().rss
t, c = time.perf_counter(), time.process_time()
report = run_checks(sys.argv[1], MediaRole.DRIVING_VIDEO, CAPS)
ms = (time.perf_counter() - t) * 1e3
cpu_ms = (time.process_time() - c) * 1e3
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"ms": ms, "cpu_ms": cpu_ms, "rss_growth": proc.memory_info().rss - rss0,
                  "peak_growth": max(0, peak - rss0), "read": proc.io_counters().read_chars - io0,
                  "failed": report.failed, "duration": report.info.duration_s}))
"""


def bench_big(path: Path, runs: int = 3) -> dict[str, float]:
    """Each run in a fresh process, so the memory figures are this file's alone."""
    rows = []
    for _ in range(runs):
        res = subprocess.run(
            [sys.executable, "-c", RSS_SCRIPT, str(path), str(OUT / "warm.mp4")],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
    data = {
        "ms": statistics.median(r["ms"] for r in rows),
        "cpu_ms": statistics.median(r["cpu_ms"] for r in rows),
        "rss_growth": max(r["rss_growth"] for r in rows),
        "peak_growth": max(r["peak_growth"] for r in rows),
        "read": max(r["read"] for r in rows),
        "duration": rows[0]["duration"],
    }
    size = path.stat().st_size
    print(
        f"1 GB file ({size / GB:.2f} GiB, {data['duration']:.0f} s of 1080p): "
        f"probe+all checks {data['ms']:.0f} ms wall / {data['cpu_ms']:.0f} ms CPU (median of "
        f"{runs} fresh processes, after warm-up); RSS growth ≤ {data['rss_growth'] / 2**20:.1f} MB,"
        f" peak growth ≤ {data['peak_growth'] / 2**20:.1f} MB; read "
        f"{data['read'] / 2**20:.1f} MB of the file"
    )
    return data


def bench_fix(path: Path, fix: str, real_s: float) -> dict[str, float]:
    out_dir = OUT / "fixed"
    t, c = time.perf_counter(), time.process_time()
    out = apply_fix(path, fix, out_dir)
    dt, cpu = time.perf_counter() - t, time.process_time() - c
    info = probe(out)
    print(
        f"{fix:15s} {path.name}: {dt:5.1f} s wall ({cpu:5.1f} s CPU over all threads) for "
        f"{real_s:.0f} s of video = {real_s / dt:4.1f}x real time -> "
        f"{info.width}x{info.height} {info.duration_s:.1f} s audio={info.audio_codec}"
    )
    out.unlink()
    return {"seconds": dt, "cpu_seconds": cpu, "x_realtime": real_s / dt}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="skip the 1 GB file")
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    # Shared machine: the load says how much of the wall time was other people's work.
    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    results: dict[str, object] = {}

    ensure(OUT / "warm.mp4", lambda p: make_video(p, size=(320, 180), seconds=4.0))
    c1 = ensure(
        OUT / "clip_1080p_30s.mp4",
        lambda p: make_video(
            p, size=(1920, 1080), seconds=30, fps=30, audio=True, gop_seconds=1.0,
            face_scale=0.6,
        ),
    )  # fmt: skip
    c8 = ensure(
        OUT / "clip_1080p_30s_gop8.mp4",
        lambda p: make_video(
            p, size=(1920, 1080), seconds=30, fps=30, audio=True, gop_seconds=8.3,
            face_scale=0.6,
        ),
    )  # fmt: skip
    results["1080p_30s_gop1"] = bench_checks(c1, "30 s 1080p H.264 (1 s GOP)")
    results["1080p_30s_gop8"] = bench_checks(c8, "30 s 1080p H.264 (8 s GOP)")

    if not args.quick:
        big = ensure(OUT / "big_1gb.mp4", make_big)
        results["1gb"] = bench_big(big)

    portrait = ensure(
        OUT / "portrait_720p_30s.mp4",
        lambda p: make_video(p, size=(720, 1280), seconds=30, fps=30, audio=True,
                             gop_seconds=1.0, face_pos=(0.5, 0.35)),
    )  # fmt: skip
    phone = ensure(
        OUT / "phone_720p_30s.mp4",
        lambda p: make_video(p, size=(720, 1280), seconds=30, fps=30, audio=True,
                             gop_seconds=1.0, rotation=90),
    )  # fmt: skip
    wide45 = ensure(
        OUT / "wide_720p_45s.mp4",
        lambda p: make_video(p, size=(1280, 720), seconds=45, fps=30, audio=True,
                             gop_seconds=1.0),
    )  # fmt: skip
    results["crop_16_9"] = bench_fix(portrait, "crop_16_9", 30.0)
    results["pad_16_9"] = bench_fix(portrait, "pad_16_9", 30.0)
    results["trim_30s"] = bench_fix(wide45, "trim_30s", 30.0)
    results["transcode_h264"] = bench_fix(phone, "transcode_h264", 30.0)
    print(f"load average at end: {os.getloadavg()[0]:.1f}")
    print(json.dumps(results, default=float), file=sys.stderr)


if __name__ == "__main__":
    main()

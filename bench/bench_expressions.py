"""Expression transfer, scored against a known truth with an independent face model (issue 15).

    .venv/bin/python bench/bench_expressions.py --quick     # < 1 min: 640×360, one character
    .venv/bin/python bench/bench_expressions.py --engine    # render every pair, score
    .venv/bin/python bench/bench_expressions.py --engine --label before --engine-root DIR
    .venv/bin/python bench/bench_expressions.py --rescore --label before   # score again only
    .venv/bin/python bench/bench_expressions.py --result OUT.mp4 --character IMG [--clip 640x360]
    .venv/bin/python bench/bench_expressions.py --sheet [--after DIR]   # contact sheet PNG

The driving clip (bench/expressions_truth.py, made once into bench/out/expressions/): the
astronaut photograph animated with logged jaw, blinks, a wink, brow raises, smiles, yaw ±10°
and roll ±6°, 10 s at 24 fps, 1280×720 and 640×360. Characters: Grace Hopper with drawn-on
glasses, a cartoon of her, the astronaut mirrored and recoloured (all 1280×720) and the
512×512 astronaut photograph. `--engine` renders each pair with services.engine.render.render
(in a child process, from `--engine-root`, default this checkout) into
bench/out/expressions/<label>/ and scores it.

Scoring (bench/expressions_measure.py, dlib's 68 points + ResNet embedding, not the engine's
MediaPipe mesh): per signal, Pearson r and amplitude ratio (std result / std driving) against
the driving clip as dlib reads it; r against the logged truth and the truth gain (the result's
regression slope on the truth over the driving clip's: how much of the performed motion got
through, noise not counted); blinks seen (a blink counts when the result's eyes close at least
half as far as the driving clip's, below where they were just before and after; a wink
when the winking eye does and closes further than the other by at least half the driving
clip's difference); identity = median embedding distance of result frames to
the character still (< 0.6 = the same person; target ≤ 0.3); jitter = median RMS second
difference of the 68 points, ‰ of the eye distance (the driving clip's own is the floor).
Blinks and winks by pixels as well: each eye's darkest fifth between dlib's corner points at
each peak, as a share of the open eye's contrast (a cross-check that does not rest on dlib's
lid points, which do not see a lid shut behind thick glasses rims); a blink counts when the
result's eyes close at least half as far as the driving clip's. Brows by optical flow as well
(measure.brow_flow: the brows' lift against the nose bridge, from dense flow, no per-frame
landmarks), and eyes by pixels (measure.eye_darkness: each eye's darkest fifth between eye
corners placed by the engine's model, corners only), r and amplitude against the driving
clip's: dlib's brows and lids slip onto thick glasses rims and ink lines.
Needs the optional `bench` extra (`make bench-setup`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]  # services, tests.mediagen; the helpers here

import expressions_measure as measure  # noqa: E402
import expressions_truth as truth  # noqa: E402
import numpy as np  # noqa: E402

OUT = ROOT / "bench" / "out" / "expressions"
# the first draw is the character as made; the others moved by these fractions of a pixel
DRAW_SHIFTS = ((0.0, 0.0), (0.25, 0.0), (0.0, 0.25), (-0.25, 0.25), (0.25, -0.25))
SHEET = ROOT / "bench" / "expressions_contact_sheet.png"
CLIPS = {"1280x720": (1280, 720), "640x360": (640, 360)}
PAIRS = (
    ("1280x720", "hopper_glasses"),
    ("1280x720", "cartoon"),
    ("1280x720", "mirror_recolour"),
    ("1280x720", "square512"),
    ("640x360", "square512"),
)
QUICK_PAIRS = (("640x360", "hopper_glasses"),)

# signal → (how to read it from measure.NAMES columns, the truth it follows)
_COL = {n: i for i, n in enumerate(measure.NAMES)}
ROWS = ("eyes", "wink", "brows", "mouth", "smile", "yaw", "roll")
TARGETS = {
    "eyes": "r ≥ 0.7, blinks visible",
    "brows": "r ≥ 0.9, amp ≥ 0.6",
    "mouth": "r ≥ 0.9",
    "yaw": "r ≥ 0.9",
    "roll": "r ≥ 0.9",
}


def row_signal(name: str, s: np.ndarray) -> np.ndarray:
    if name == "eyes":
        return (s[:, _COL["eye_left"]] + s[:, _COL["eye_right"]]) / 2
    if name == "wink":
        return s[:, _COL["eye_left"]] - s[:, _COL["eye_right"]]
    return s[:, _COL[name]]


def row_truth(name: str, t: dict[str, np.ndarray]) -> np.ndarray:
    if name == "eyes":
        return -(t["eye_left"] + t["eye_right"]) / 2
    if name == "wink":
        return -(t["eye_left"] - t["eye_right"])
    return t["jaw" if name == "mouth" else name]


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    m = ~(np.isnan(a) | np.isnan(b))
    if m.sum() < 3 or np.std(a[m]) == 0 or np.std(b[m]) == 0:
        return float("nan")
    return float(np.corrcoef(a[m], b[m])[0, 1])


def _slope(y: np.ndarray, x: np.ndarray) -> float:
    m = ~(np.isnan(x) | np.isnan(y))
    if m.sum() < 3 or np.var(x[m]) == 0:
        return float("nan")
    return float(np.cov(x[m], y[m])[0, 1] / np.var(x[m], ddof=1))


def _on(track: measure.Track, times: np.ndarray, values: np.ndarray | None = None) -> np.ndarray:
    """The track's signals (or its other per-frame `values`) at `times` (nearest frame; NaN
    where it had no face or ended)."""
    values = track.signals if values is None else values
    if len(track.times) == len(times) and np.allclose(track.times, times, atol=1e-3):
        return values
    idx = np.clip(np.searchsorted(track.times, times), 0, len(track.times) - 1)
    prev = np.clip(idx - 1, 0, None)
    pick = np.where(np.abs(track.times[prev] - times) < np.abs(track.times[idx] - times), prev, idx)
    out = values[pick].astype(np.float64)
    out[times > track.times[-1] + 0.5 / 24] = np.nan
    return out


@dataclass
class Score:
    rows: dict[str, dict[str, float]]
    blinks_seen: int
    blinks: int
    winks_seen: int
    winks: int
    identity: float
    jitter: float
    jitter_driving: float
    found: float
    ceiling: dict[str, float] = field(default_factory=dict)
    switched: int = 0  # frames where the detector's shape replaced the tracked one
    # by pixels (closure): per blink, both eyes' mean; per wink, the winking eye's and the
    # winking minus the other; result then driving clip
    px_blinks: list[tuple[float, float]] = field(default_factory=list)
    px_winks: list[tuple[float, float, float, float]] = field(default_factory=list)
    # brows by optical flow (measure.brow_flow): r and amplitude vs the driving clip's, r vs
    # the truth
    px_brows: tuple[float, float, float] = (np.nan, np.nan, np.nan)
    # eyes by pixels (measure.eye_darkness, both eyes' mean): the same three figures
    px_eyes: tuple[float, float, float] = (np.nan, np.nan, np.nan)
    # with several draws (--draws): each row's r, lowest and highest over them
    spread: dict[str, tuple[float, float]] = field(default_factory=dict)
    draws: int = 1

    @property
    def px_blinks_seen(self) -> int:
        return sum(d > 0 and r >= 0.5 * d for r, d in self.px_blinks)

    @property
    def px_winks_seen(self) -> int:
        return sum(
            d > 0 and ds > 0 and r >= 0.5 * d and rs >= 0.5 * ds for r, rs, d, ds in self.px_winks
        )


def score(result: measure.Track, driving: measure.Track, clip: truth.Clip) -> Score:
    n = len(driving.times)
    t = {k: v[:n] for k, v in clip.truth.items()}
    if len(driving.times) != len(clip.truth["jaw"]):
        t = {
            k: np.interp(driving.times, np.arange(len(v)) / clip.fps, v)
            for k, v in clip.truth.items()
        }
    res = _on(result, driving.times)
    rows = {}
    for name in ROWS:
        r, d, tr = row_signal(name, res), row_signal(name, driving.signals), row_truth(name, t)
        m = ~(np.isnan(r) | np.isnan(d))
        rows[name] = {
            "r": _pearson(r, d),
            "amp": float(np.std(r[m]) / np.std(d[m])) if m.sum() > 2 and np.std(d[m]) else np.nan,
            "r_truth": _pearson(r, tr),
            "gain_truth": _slope(r, tr) / _slope(d, tr),
        }

    # blinks: at each blink's peak, how far the eyes closed below where they were just before
    # AND just after (a step — landmarks snapping onto a glasses rim — is not a blink); winks:
    # the same for the winking (image-left) eye, while the other stays under half that
    def dip(sig: np.ndarray, centre: float) -> float:
        k = int(np.argmin(np.abs(driving.times - centre)))
        before, after = sig[max(0, k - 10) : max(0, k - 5)], sig[k + 6 : k + 11]
        if not (np.isfinite(before).any() and np.isfinite(after).any()):
            return float("nan")
        level = min(np.nanmedian(before), np.nanmedian(after))
        return float(level - np.nanmin(sig[max(0, k - 2) : k + 3]))

    left, right = _COL["eye_left"], _COL["eye_right"]
    blinks = winks = 0
    for centre, _, _ in truth.BLINKS:
        d, r = (
            dip(row_signal("eyes", driving.signals), centre),
            dip(row_signal("eyes", res), centre),
        )
        blinks += bool(d > 0 and r >= 0.5 * d)
    for centre, _, _ in truth.WINKS:
        d, r = dip(driving.signals[:, left], centre), dip(res[:, left], centre)
        # dlib couples the eyes (the open one reads up to 3/4 of the shut one's dip), so the
        # one-sidedness is judged against the driving clip's own
        d_side = d - dip(driving.signals[:, right], centre)
        r_side = r - dip(res[:, right], centre)
        winks += bool(d > 0 and d_side > 0 and r >= 0.5 * d and r_side >= 0.5 * d_side)

    # the same peaks by pixels: how far each eye's darkest fifth brightened at the peak, as a
    # share of the open eye's contrast (brightest minus darkest fifth) 9–12 frames either side
    def closure(px: np.ndarray, eye: int, centre: float) -> float:
        if not len(px):
            return float("nan")
        k = int(np.argmin(np.abs(driving.times - centre)))
        around = np.r_[max(0, k - 12) : max(0, k - 8), k + 9 : k + 13]
        around = around[around < len(px)]
        dark, bright = np.nanmedian(px[around, eye, 0]), np.nanmedian(px[around, eye, 1])
        if not np.isfinite(dark) or bright <= dark:
            return float("nan")
        return float((np.nanmax(px[max(0, k - 2) : k + 3, eye, 0]) - dark) / (bright - dark))

    res_px = _on(result, driving.times, result.eye_px) if len(result.eye_px) else result.eye_px
    px_blinks = [
        tuple(
            (closure(px, 0, centre) + closure(px, 1, centre)) / 2 for px in (res_px, driving.eye_px)
        )
        for centre, _, _ in truth.BLINKS
    ]
    px_winks = []
    for centre, _, _ in truth.WINKS:
        (rl, rr), (dl, dr) = (
            (closure(px, 0, centre), closure(px, 1, centre)) for px in (res_px, driving.eye_px)
        )
        px_winks.append((rl, rl - rr, dl, dl - dr))
    ident = list(result.identity.values())
    return Score(
        rows,
        blinks,
        len(truth.BLINKS),
        winks,
        len(truth.WINKS),
        float(np.median(ident)) if ident else float("nan"),
        result.jitter(),
        driving.jitter(),
        result.found,
        px_blinks=px_blinks,  # type: ignore[arg-type]
        px_winks=px_winks,
    )


# ------------------------------------------------------------------ inputs and renders


def clip_for(name: str, quick: bool = False) -> truth.Clip:
    return truth.make_clip(OUT / f"drive_{name}.mp4", CLIPS[name])


def driving_track(clip: truth.Clip, every: int) -> measure.Track:
    """dlib's reading of the driving clip, cached beside it."""
    cache = clip.path.with_suffix(f".dlib{every}.{measure.TRACKER}.npz")
    if cache.exists() and cache.stat().st_mtime >= clip.path.stat().st_mtime:
        z = np.load(cache)
        return measure.Track(z["times"], z["signals"], z["points"], eye_px=z["eye_px"])
    track = measure.read_video(clip.path, every=every)
    np.savez(
        cache,
        times=track.times,
        signals=track.signals,
        points=track.points,
        eye_px=track.eye_px,
    )
    return track


def render_engine(clip: Path, image: Path, out: Path, engine_root: Path) -> float:
    """Render with services.engine.render from `engine_root` in a child process; wall s."""
    code = (
        "import sys, time\n"
        f"sys.path.insert(0, {str(engine_root)!r})\n"
        "from services.engine.render import render\n"
        "r = render(sys.argv[1], sys.argv[2], sys.argv[3])\n"
        "print(r.seconds)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(engine_root)}
    out.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [sys.executable, "-c", code, str(clip), str(image), str(out)],
        cwd=engine_root,
        env=env,
        capture_output=True,
        text=True,
    )
    if proc.returncode:
        raise SystemExit(f"the engine failed on {image.name}: {proc.stderr.strip()[-600:]}")
    return float(proc.stdout.split()[-1])


def noise_floor(image: Path) -> np.ndarray:
    """dlib's own noise on this character: the std of each of measure.NAMES over 48 frames
    of the still, each moved by a random half pixel and encoded like a result (cached)."""
    import av
    import cv2
    from PIL import Image

    cache = OUT / "floors" / f"{image.stem}.{measure.TRACKER}.json"
    if cache.exists() and cache.stat().st_mtime >= image.stat().st_mtime:
        return np.asarray(json.loads(cache.read_text()), np.float64)
    with Image.open(image) as im:
        rgb = np.asarray(im.convert("RGB"))
    h, w = rgb.shape[:2]
    video = OUT / "floors" / f"{image.stem}.mp4"
    video.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(5)
    with av.open(str(video), "w") as out:
        v = out.add_stream("libx264", rate=truth.FPS)
        v.width, v.height = w, h
        v.pix_fmt = "yuv420p"
        v.options = {"preset": "veryfast", "crf": "20"}
        for i in range(48):
            m = np.float32([[1, 0, rng.normal(0, 0.5)], [0, 1, rng.normal(0, 0.5)]])
            moved = cv2.warpAffine(rgb, m, (w, h), borderMode=cv2.BORDER_REFLECT)
            f = av.VideoFrame.from_ndarray(moved, format="rgb24")
            f.pts = i
            out.mux(v.encode(f))
        out.mux(v.encode(None))
    floor = np.nanstd(measure.read_video(video).signals, axis=0)
    cache.write_text(json.dumps(floor.tolist()))
    return floor


def ceilings(image: Path, driving: measure.Track) -> dict[str, float]:
    """Per row, the best r a perfect transfer could score on this character: the driving
    clip's motion (std) against dlib's noise on the still, r = 1/√(1 + (noise/motion)²)."""
    floor = noise_floor(image)[None, :]
    out = {}
    for name in ROWS:
        noise = float(row_signal(name, floor)[0])
        if name == "eyes":
            noise /= np.sqrt(2)  # the mean of two eyes' independent noise
        elif name == "wink":
            noise *= np.sqrt(2)
        motion = float(np.nanstd(row_signal(name, driving.signals)))
        out[name] = 1 / np.sqrt(1 + (noise / motion) ** 2) if motion else float("nan")
    return out


def yardstick(clip: truth.Clip, every: int) -> str:
    """How well dlib reads the driving clip itself: r against the truth, per row."""
    d = driving_track(clip, every)
    t = {k: np.interp(d.times, np.arange(len(v)) / clip.fps, v) for k, v in clip.truth.items()}
    parts = [f"{n} {_pearson(row_signal(n, d.signals), row_truth(n, t)):.2f}" for n in ROWS]
    return f"dlib on the {clip.path.name} clip vs its truth (r): " + ", ".join(parts)


def score_file(
    result: Path,
    image: Path,
    clip: truth.Clip,
    every: int,
    identity_every: int,
    ceiling_of: Path | None = None,
) -> Score:
    still = measure.still_face(image)
    if still is None:
        raise SystemExit(f"dlib finds no face in the character image {image}.")
    track = measure.read_video(
        result, every=every, identity_of=still[1], identity_every=identity_every
    )
    if track.found == 0:
        raise SystemExit(f"dlib finds no face in the result {result}.")
    driving = driving_track(clip, every)
    s = score(track, driving, clip)
    s.ceiling = ceilings(ceiling_of or image, driving)
    if np.isfinite(track.points[0]).all():
        mine = measure.brow_flow(result, track.points[0], every)
        theirs = measure.brow_flow(clip.path, driving.points[0], every)
        n = min(len(mine), len(theirs))
        t = np.interp(
            driving.times[:n], np.arange(len(clip.truth["brows"])) / clip.fps, clip.truth["brows"]
        )
        s.px_brows = (
            _pearson(mine[:n], theirs[:n]),
            float(np.std(mine[:n]) / np.std(theirs[:n])),
            _pearson(mine[:n], t),
        )
    mine = measure.eye_darkness(result, every).mean(axis=1)
    theirs = measure.eye_darkness(clip.path, every).mean(axis=1)
    n = min(len(mine), len(theirs))
    shut = (clip.truth["eye_left"] + clip.truth["eye_right"]) / 2
    t = np.interp(driving.times[:n], np.arange(len(shut)) / clip.fps, 1 - shut)
    m = np.isfinite(mine[:n]) & np.isfinite(theirs[:n])
    s.px_eyes = (
        _pearson(mine[:n], theirs[:n]),
        float(np.std(mine[:n][m]) / np.std(theirs[:n][m])) if m.sum() > 2 else float("nan"),
        _pearson(mine[:n], t),
    )
    s.switched = track.switched
    return s


def combine(scores: list[Score]) -> Score:
    """One pair's draws as one score: figures averaged (counts: the median), each row's r
    spread kept."""
    if len(scores) == 1:
        return scores[0]

    def mean(values: list[float]) -> float:
        return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")

    first = scores[0]
    rows = {
        name: {k: mean([s.rows[name][k] for s in scores]) for k in first.rows[name]}
        for name in first.rows
    }

    def median(values: list[int]) -> int:
        return int(np.median(values))

    return Score(
        rows,
        median([s.blinks_seen for s in scores]),
        first.blinks,
        median([s.winks_seen for s in scores]),
        first.winks,
        mean([s.identity for s in scores]),
        mean([s.jitter for s in scores]),
        first.jitter_driving,
        mean([s.found for s in scores]),
        first.ceiling,
        sum(s.switched for s in scores),
        [
            tuple(np.mean([s.px_blinks[k] for s in scores], axis=0))
            for k in range(len(first.px_blinks))
        ],  # type: ignore[misc]
        [
            tuple(np.mean([s.px_winks[k] for s in scores], axis=0))
            for k in range(len(first.px_winks))
        ],  # type: ignore[misc]
        tuple(np.mean([s.px_brows for s in scores], axis=0)),  # type: ignore[arg-type]
        tuple(np.mean([s.px_eyes for s in scores], axis=0)),  # type: ignore[arg-type]
        {
            name: (min(s.rows[name]["r"] for s in scores), max(s.rows[name]["r"] for s in scores))
            for name in first.rows
        },
        len(scores),
    )


# ------------------------------------------------------------------ printing


def _f(v: float, spec: str = ".2f") -> str:
    return "—" if v is None or (isinstance(v, float) and np.isnan(v)) else format(v, spec)


def print_score(title: str, s: Score) -> None:
    print(f"\n{title}")
    print(f"  {'signal':<7} {'r':>6} {'amp':>6} {'r·truth':>8} {'gain':>6} {'ceiling':>8}   target")
    for name in ROWS:
        v = s.rows[name]
        print(
            f"  {name:<7} {_f(v['r']):>6} {_f(v['amp']):>6} {_f(v['r_truth']):>8} "
            f"{_f(v['gain_truth']):>6} {_f(s.ceiling.get(name, np.nan)):>8}   "
            f"{TARGETS.get(name, '')}"
        )
    print(
        f"  blinks seen {s.blinks_seen}/{s.blinks}, winks {s.winks_seen}/{s.winks}; "
        f"identity {_f(s.identity, '.3f')} (target ≤ 0.3, < 0.6 same person); "
        f"jitter {_f(s.jitter, '.1f')} ‰ (driving {_f(s.jitter_driving, '.1f')}); "
        f"face found {s.found:.0%}; shape re-anchored on {s.switched} frames"
    )
    print(
        f"  by pixels: blinks seen {s.px_blinks_seen}/{s.blinks} (closure "
        + ", ".join(f"{_f(r)}" for r, _ in s.px_blinks)
        + "; driving "
        + ", ".join(f"{_f(d)}" for _, d in s.px_blinks)
        + f"), winks {s.px_winks_seen}/{s.winks} (winking eye "
        + ", ".join(f"{_f(r)} − other {_f(r - rs)}" for r, rs, _, _ in s.px_winks)
        + "; driving "
        + ", ".join(f"{_f(d)} − {_f(d - ds)}" for _, _, d, ds in s.px_winks)
        + f"), brows by optical flow r {_f(s.px_brows[0])} / amp {_f(s.px_brows[1])} "
        + f"(r·truth {_f(s.px_brows[2])}), eyes by pixels r {_f(s.px_eyes[0])} / amp "
        + f"{_f(s.px_eyes[1])} (r·truth {_f(s.px_eyes[2])})"
    )


def markdown(results: dict[str, Score]) -> str:
    names = list(results)
    draws = max(results[n].draws for n in names)
    what = f"mean of {draws} draws: " if draws > 1 else ""
    spread = " [lowest–highest r]" if draws > 1 else ""
    head = f"| {what}r / amp vs driving (ceiling r){spread} | " + " | ".join(names) + " | target |"
    lines = [head, "|---" * (len(names) + 2) + "|"]
    for row in ROWS:
        cells = [
            f"{_f(results[n].rows[row]['r'])} / {_f(results[n].rows[row]['amp'])} "
            f"({_f(results[n].ceiling.get(row, np.nan))})"
            + (
                f" [{_f(results[n].spread[row][0])}–{_f(results[n].spread[row][1])}]"
                if results[n].draws > 1
                else ""
            )
            for n in names
        ]
        lines.append(f"| {row} | " + " | ".join(cells) + f" | {TARGETS.get(row, '')} |")
    lines.append(
        "| blinks / winks seen | "
        + " | ".join(
            f"{results[n].blinks_seen}/{results[n].blinks}, "
            f"{results[n].winks_seen}/{results[n].winks}"
            for n in names
        )
        + " | all |"
    )
    lines.append(
        "| by pixels: blinks, winks seen (eye closure at the 3 blinks) | "
        + " | ".join(
            f"{results[n].px_blinks_seen}/{results[n].blinks}, "
            f"{results[n].px_winks_seen}/{results[n].winks} ("
            + " ".join(_f(r) for r, _ in results[n].px_blinks)
            + ")"
            for n in names
        )
        + " | all |"
    )
    lines.append(
        "| by pixels: eyes r / amp | "
        + " | ".join(f"{_f(results[n].px_eyes[0])} / {_f(results[n].px_eyes[1])}" for n in names)
        + " | |"
    )
    lines.append(
        "| by optical flow: brows r / amp | "
        + " | ".join(f"{_f(results[n].px_brows[0])} / {_f(results[n].px_brows[1])}" for n in names)
        + " | |"
    )
    lines.append(
        "| identity | " + " | ".join(_f(results[n].identity, ".3f") for n in names) + " | ≤ 0.3 |"
    )
    lines.append(
        "| jitter ‰ (driving) | "
        + " | ".join(
            f"{_f(results[n].jitter, '.1f')} ({_f(results[n].jitter_driving, '.1f')})"
            for n in names
        )
        + " | ≈ driving |"
    )
    return "\n".join(lines)


def _as_json(s: Score) -> dict[str, object]:
    return {
        "rows": s.rows,
        "blinks_seen": s.blinks_seen,
        "winks_seen": s.winks_seen,
        "blinks": s.blinks,
        "identity": s.identity,
        "jitter": s.jitter,
        "jitter_driving": s.jitter_driving,
        "found": s.found,
        "ceiling": s.ceiling,
        "switched": s.switched,
        "px_blinks": s.px_blinks,
        "px_winks": s.px_winks,
        "px_brows": s.px_brows,
        "px_eyes": s.px_eyes,
        "spread": s.spread,
        "draws": s.draws,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--result", type=Path, help="a result video to score")
    p.add_argument("--character", type=Path, help="the character still of --result")
    p.add_argument(
        "--clip", choices=sorted(CLIPS), default="1280x720", help="driving clip of --result"
    )
    p.add_argument(
        "--engine", action="store_true", help="render every pair with the local engine (default)"
    )
    p.add_argument("--engine-root", type=Path, default=ROOT, help="checkout whose engine renders")
    p.add_argument("--label", default="current", help="folder under bench/out/expressions/")
    p.add_argument(
        "--rescore", action="store_true", help="score the label's results again, no render"
    )
    p.add_argument(
        "--quick", action="store_true", help="640×360, one character, identity on 5 frames"
    )
    p.add_argument("--pairs", help="comma list of CLIP:CHARACTER, e.g. 640x360:square512")
    p.add_argument(
        "--draws",
        type=int,
        default=1,
        choices=range(1, len(DRAW_SHIFTS) + 1),
        help="render each pair this many times, the character moved by a quarter pixel "
        "each time after the first, and report the mean (dlib and the encoder's noise moves "
        "single renders' r by ±0.01, smile by ±0.1)",
    )
    p.add_argument("--sheet", action="store_true", help="write the contact sheet")
    p.add_argument("--before", type=Path, default=OUT / "before", help="before results folder")
    p.add_argument("--after", type=Path, help="after results folder (default: before twice)")
    args = p.parse_args()

    if not measure.available():
        raise SystemExit(measure.INSTALL)
    if args.sheet:
        import expressions_sheet

        path = expressions_sheet.write(SHEET, args.before, args.after)
        print(f"contact sheet: {path.relative_to(ROOT)} ({path.stat().st_size // 1024} KB)")
        return
    # every frame even when quick: a blink lasts ~6 frames, and on every 2nd one dlib's noise
    # on a hard face was enough to count a blink the result never made
    every = 1
    identity_every = 48 if args.quick else 12
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, load average "
        f"{os.getloadavg()[0]:.2f}; {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    )
    if args.result is not None:
        if args.character is None:
            raise SystemExit("--result needs --character (the still the result animates).")
        clip = clip_for(args.clip)
        s = score_file(args.result, args.character, clip, every, identity_every)
        print_score(f"{args.result.name} ← {args.character.name} (driving {args.clip})", s)
        return

    chars = truth.make_characters(OUT / "characters")
    pairs = QUICK_PAIRS if args.quick else PAIRS
    if args.pairs:
        pairs = tuple(tuple(x.split(":")) for x in args.pairs.split(","))  # type: ignore[misc]
    folder = OUT / args.label
    for name in dict.fromkeys(c for c, _ in pairs):
        print(yardstick(clip_for(name), every))
    results: dict[str, Score] = {}
    for clip_name, char in pairs:
        clip = clip_for(clip_name)
        frames = len(clip.truth["jaw"])
        draws = []
        for k, (dx, dy) in enumerate(DRAW_SHIFTS[: max(1, args.draws)]):
            image = chars[char] if k == 0 else truth.shifted(chars[char], dx, dy)
            tag = "" if k == 0 else f".draw{k}"
            out = folder / f"{clip_name}_{char}{tag}.mp4"
            rendered = ""
            if not args.rescore:
                took = render_engine(clip.path, image, out, args.engine_root.resolve())
                rendered = f"render {took:.1f} s ({frames / took:.0f} fps in-process), "
            elif not out.exists():
                raise SystemExit(f"--rescore: no result {out.relative_to(ROOT)} to score.")
            t1 = time.perf_counter()
            s = score_file(out, image, clip, every, identity_every, ceiling_of=chars[char])
            title = f"{clip_name} → {char}" + (f" (draw {k}: {dx:+.2f}, {dy:+.2f} px)" if k else "")
            print_score(f"{title}: {rendered}scored in {time.perf_counter() - t1:.1f} s", s)
            draws.append(s)
        results[f"{clip_name} → {char}"] = combine(draws)
        if len(draws) > 1:
            print_score(
                f"{clip_name} → {char}: mean of {len(draws)} draws",
                results[f"{clip_name} → {char}"],
            )
    print("\n" + markdown(results))
    (folder / "scores.json").write_text(
        json.dumps({k: _as_json(v) for k, v in results.items()}, indent=1, default=float)
    )


if __name__ == "__main__":
    main()

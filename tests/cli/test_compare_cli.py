"""A comparison from the command line, end to end: `reenact compare --wait` prints the numbers
(and puts them in its JSON), `export` writes the side-by-side video and the ZIP, `vote` and
`leaderboard` judge and rank — the installed script against the emulators and the local
engine."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path

import av

from tests.cli.support import run
from tests.emulators import RunwayEmulator


def _probe(path: Path) -> tuple[int, int, float, bool]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        duration = float(container.duration or 0) / av.time_base
        return stream.width, stream.height, duration, bool(container.streams.audio)


def test_compare_wait_prints_numbers_then_export_vote_and_leaderboard(
    env, data_dir, tmp_path, video, image, runway_emulator: RunwayEmulator
):
    env.update(runway_emulator.env())
    args = ["compare", "--providers", "local,runway", "--video", video, "--image", image]
    r = run([*args, "--wait", "--json"], env, timeout=180)
    assert r.code == 0, r.output
    docs = r.json()
    assert [d["provider"] for d in docs] == ["local", "runway"]  # the order chosen
    assert "FIDELITY" in r.stderr and "PROVIDER" in r.stderr  # the table, on stderr under --json
    for doc in docs:
        numbers = doc["numbers"]
        assert numbers["state"] == "succeeded" and numbers["task_id"] == doc["id"]
        width, height, duration, audio = _probe(Path(doc["result_path"]))
        # The table says what the archived file really is.
        assert (numbers["width"], numbers["height"]) == (width, height)
        assert abs(numbers["duration_s"] - duration) < 0.05
        assert numbers["has_audio"] is audio
        assert numbers["total_s"] is not None and numbers["total_s"] >= 0
        assert numbers["fidelity"] is not None or numbers["fidelity_note"]
    assert docs[0]["numbers"]["cost_usd"] == 0.0  # the local engine is free
    # What Runway reported on the finished task (25 credits at $0.01), not the estimate.
    assert docs[1]["numbers"]["cost_source"] == "reported"
    assert docs[1]["numbers"]["cost_usd"] == 0.25

    runs = {d["run_id"] for d in docs}
    (run_id,) = runs
    out = tmp_path / "exports"
    e = run(["export", run_id, "--out", str(out)], env, timeout=180)
    assert e.code == 0, e.output
    video_out, zip_out = out / f"{run_id}-side-by-side.mp4", out / f"{run_id}.zip"
    assert str(video_out.resolve()) in e.stdout and str(zip_out.resolve()) in e.stdout
    width, height, duration, audio = _probe(video_out)
    _, _, drive_s, drive_audio = _probe(Path(video))
    assert abs(duration - drive_s) < 0.3 and audio is drive_audio
    assert width > height  # reference + two results side by side
    with zipfile.ZipFile(zip_out) as z:
        names = z.namelist()
        assert "summary.csv" in names and "summary.json" in names
        assert [n for n in names if n.endswith(".mp4")] == ["01-local.mp4", "02-runway.mp4"]
        rows = list(csv.DictReader(io.StringIO(z.read("summary.csv").decode())))
        assert [row["provider"] for row in rows] == ["local", "runway"]
        assert json.loads(z.read("summary.json"))[1]["task_id"] == docs[1]["id"]

    bad = run(["vote", run_id, "--winner", "cometapi"], env)
    assert bad.code == 1 and "choose one of local, runway" in bad.stderr
    v = run(["vote", run_id, "--winner", "runway", "--note", "sharper", "--json"], env)
    assert v.code == 0, v.output
    assert v.json()["winner"] == "runway" and sorted(v.json()["contenders"]) == ["local", "runway"]
    board = run(["leaderboard", "--json"], env)
    assert board.code == 0, board.output
    ranked = board.json()
    assert [s["provider"] for s in ranked] == ["runway", "local"]
    assert ranked[0]["low"] <= ranked[0]["rating"] <= ranked[0]["high"]
    human = run(["leaderboard"], env)
    assert human.code == 0 and "runway" in human.stdout.splitlines()[1]


def test_export_of_an_unknown_run_is_a_sentence(env):
    r = run(["export", "nope", "--out", "x"], env)
    assert r.code == 1 and "No comparison run with id 'nope'" in r.stderr
    assert "Traceback" not in r.output


def test_leaderboard_without_votes_says_how_to_vote(env):
    r = run(["leaderboard"], env)
    assert r.code == 0 and "reenact vote" in r.stdout

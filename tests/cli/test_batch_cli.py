"""`reenact batch FILE.csv`, end to end: the installed script against the emulators and the
local engine — six rows across every provider that creates, one with a bad input (reported,
the others sent), resubmitted once (no duplicate creates), the ZIP and its CSV; the spending
cap; the confirmation at a terminal and in a script."""

from __future__ import annotations

import csv
import io
import json
import os
import pty
import shutil
import subprocess
import zipfile
from pathlib import Path

import av

from tests.cli.support import reenact_script, run
from tests.emulators import CometApiEmulator, LiangXinEmulator, RunwayEmulator
from tests.mediagen import make_image, make_video


def _takes(tmp_path: Path, inputs_dir: Path) -> Path:
    """A creator's folder: two takes (the second with sound), two characters, one damaged
    clip."""
    folder = tmp_path / "shoot"
    folder.mkdir()
    shutil.copyfile(inputs_dir / "drive.mp4", folder / "take1.mp4")
    make_video(
        folder / "take2.mp4", size=(320, 180), seconds=3.5, fps=8, face_pos=(0.45, 0.5), audio=True
    )
    shutil.copyfile(inputs_dir / "char.png", folder / "alice.png")
    make_image(folder / "bob.png", size=(480, 270))
    (folder / "broken.mp4").write_bytes(b"not a video, just text " * 64)
    return folder


def test_a_batch_of_six_rows_goes_once_and_its_zip_says_what_each_row_made(
    env: dict[str, str],
    tmp_path: Path,
    inputs_dir: Path,
    video_url: str,
    image_url: str,
    runway_emulator: RunwayEmulator,
    cometapi_emulator: CometApiEmulator,
    liangxin_emulator: LiangXinEmulator,
) -> None:
    for emu in (runway_emulator, cometapi_emulator, liangxin_emulator):
        env.update(emu.env())
    folder = _takes(tmp_path, inputs_dir)
    sheet = folder / "takes.csv"
    sheet.write_text(
        "video,image,providers,options\n"
        "take1.mp4,alice.png,local,intensity=4\n"
        "take2.mp4,alice.png,runway,seed=7\n"
        f"{video_url},{image_url},cometapi,\n"
        f"{video_url},{image_url},liangxin,intensity=2\n"
        "take2.mp4,bob.png,runway;local,\n"
        "broken.mp4,bob.png,runway,\n"
    )
    out = tmp_path / "delivered"
    # Run from another folder: paths in the CSV are read relative to the CSV's own folder.
    first = run(
        ["batch", str(sheet), "--yes", "--wait", "--out", str(out), "--json"],
        env,
        timeout=240,
        cwd=tmp_path,
    )
    assert first.code == 1, first.output  # a row was refused; the others went and finished
    doc = first.json()
    assert doc["counts"] == {"queued": 0, "running": 0, "done": 6, "failed": 0, "not_sent": 1}
    assert doc["settled"] is True
    assert "row 7: 'broken.mp4' is not a video or image this app can read" in first.stderr
    # Runway: 2 × 3.5 s × $0.05; CometAPI and LiangXin publish no price.
    assert "To send: 5 rows, 6 tasks · ≈ $0.36 + 2 tasks without a price" in first.stderr
    assert "Traceback" not in first.output
    creates = (
        runway_emulator.create_count,
        cometapi_emulator.create_count,
        liangxin_emulator.create_count,
    )
    assert creates == (2, 1, 1)
    by_row = {(t["row"], t["provider"]): t for t in doc["tasks"]}
    assert set(by_row) == {
        (2, "local"),
        (3, "runway"),
        (4, "cometapi"),
        (5, "liangxin"),
        (6, "runway"),
        (6, "local"),
    }
    # Each row's options went with its task.
    local = run(["status", by_row[(2, "local")]["id"], "--json"], env).json()
    assert local["options"]["expression_intensity"] == 4
    assert (
        run(["status", by_row[(3, "runway")]["id"], "--json"], env).json()["options"]["seed"] == 7
    )

    batch_id = doc["batch"]["id"]
    archive, table = out / f"batch-{batch_id}.zip", out / f"batch-{batch_id}.csv"
    with zipfile.ZipFile(archive) as z:
        videos = sorted(n for n in z.namelist() if n.endswith(".mp4"))
        inside = z.read("summary.csv")
        assert len(videos) == 6
        assert all(z.getinfo(n).file_size > 0 for n in videos)
        local_result = z.read(next(n for n in videos if "row2-local-take1-alice" in n))
        heard = {n: _has_audio(z.read(n), tmp_path / "probe.mp4") for n in videos}
    assert table.read_bytes() == inside
    rows = list(csv.DictReader(io.StringIO(inside.decode())))
    assert [r["row"] for r in rows] == ["2", "3", "4", "5", "6", "6", "7"]
    assert sorted(r["result_file"] for r in rows if r["result_file"]) == videos
    assert [r["status"] for r in rows].count("succeeded") == 6
    bad = rows[-1]
    assert (bad["video"], bad["image"], bad["status"], bad["task_id"]) == (
        "broken.mp4",
        "bob.png",
        "not sent",
        "",
    )
    assert "is not a video or image this app can read" in bad["error"]
    local_rows = [r for r in rows if r["provider"] == "local"]
    assert all(float(r["cost_usd"]) == 0 for r in local_rows)
    for r in rows[:-1]:
        assert r["task_id"] == by_row[(int(r["row"]), r["provider"])]["id"]
    # The ZIP holds the archived result, byte for byte: the version with the take's sound
    # (the emulators answer silent files; take1 has no sound to give).
    assert local_result == Path(by_row[(2, "local")]["result_path"]).read_bytes()
    assert {n for n, audio in heard.items() if audio} == {n for n in videos if "take2" in n}, heard

    # Sent again: nothing is created twice; the refused row is still reported.
    again = run(["batch", str(sheet), "--yes", "--json"], env, timeout=120)
    assert again.code == 1, again.output
    assert again.json()["batch"]["id"] == batch_id
    assert "sent before" in again.stderr and "nothing was sent again" in again.stderr
    assert (
        runway_emulator.create_count,
        cometapi_emulator.create_count,
        liangxin_emulator.create_count,
    ) == creates

    status = run(["batch-status", batch_id], env)
    assert status.code == 1, status.output  # the refused row
    assert f"Batch {batch_id} (takes.csv): 0 queued · 0 running · 6 done" in status.stdout
    export = run(["batch-export", batch_id, "--out", str(tmp_path / "again")], env)
    assert export.code == 0, export.output
    assert str((tmp_path / "again" / f"batch-{batch_id}.zip").resolve()) in export.stdout


def test_no_sound_keeps_a_batchs_silent_results_silent(
    env: dict[str, str], tmp_path: Path, inputs_dir: Path, runway_emulator: RunwayEmulator
) -> None:
    env.update(runway_emulator.env())
    folder = _takes(tmp_path, inputs_dir)
    (folder / "takes.csv").write_text("video,image,providers\ntake2.mp4,alice.png,runway\n")
    r = run(
        ["batch", str(folder / "takes.csv"), "--yes", "--wait", "--no-sound", "--json"],
        env,
        timeout=120,
    )
    assert r.code == 0, r.output
    (task,) = r.json()["tasks"]
    assert task["meta"]["add_sound"] is False
    assert _has_audio(Path(task["result_path"]).read_bytes(), tmp_path / "probe.mp4") is False


def test_waiting_gives_up_with_exit_3_and_the_batch_carries_on(
    env: dict[str, str], tmp_path: Path, inputs_dir: Path, runway_emulator: RunwayEmulator
) -> None:
    env.update(runway_emulator.env())
    runway_emulator.configure(polls_to_finish=10_000)  # still rendering when we give up
    folder = _takes(tmp_path, inputs_dir)
    (folder / "takes.csv").write_text("video,image,providers\ntake1.mp4,alice.png,runway\n")
    r = run(
        ["batch", str(folder / "takes.csv"), "--yes", "--wait", "--timeout", "1", "--json"],
        env,
        timeout=120,
    )
    assert r.code == 3, r.output
    doc = r.json()
    batch_id = doc["batch"]["id"]
    assert doc["settled"] is False and doc["counts"]["done"] == 0
    assert f"the batch carries on: reenact batch-status {batch_id} --wait" in r.stderr
    later = run(["batch-status", batch_id, "--json"], env)
    assert later.code == 0, later.output  # still running, nothing wrong
    assert later.json()["counts"]["done"] == 0 and runway_emulator.create_count == 1


def test_a_batch_over_the_cap_sends_nothing_and_says_what_is_left(
    env: dict[str, str], tmp_path: Path, inputs_dir: Path, runway_emulator: RunwayEmulator
) -> None:
    env.update(runway_emulator.env(), REENACT_RUNWAY_SPEND_CAP_DAY_USD="0.30")
    folder = _takes(tmp_path, inputs_dir)
    (folder / "takes.csv").write_text(
        "video,image,providers\ntake1.mp4,alice.png,local;runway\ntake2.mp4,bob.png,runway\n"
    )
    r = run(["batch", str(folder / "takes.csv"), "--yes"], env, timeout=120)
    assert r.code == 1, r.output
    assert "would add $0.38; $0.30 left." in r.stderr
    assert "Nothing in this batch was sent." in r.stderr
    assert runway_emulator.create_count == 0
    listed = run(["list", "--json"], env)
    assert listed.json() == []  # not even the free local row: the batch goes as a whole


def test_a_script_must_say_yes_and_a_person_is_asked_once(
    env: dict[str, str], tmp_path: Path, inputs_dir: Path, runway_emulator: RunwayEmulator
) -> None:
    env.update(runway_emulator.env())
    folder = _takes(tmp_path, inputs_dir)
    sheet = folder / "takes.csv"
    sheet.write_text("video,image,providers\ntake1.mp4,alice.png,runway\n")

    script = run(["batch", str(sheet)], env, timeout=120)
    assert script.code == 2, script.output
    assert "Nothing was sent: add --yes to send 1 task (≈ $0.20)" in script.stderr
    dry = run(["batch", str(sheet), "--dry-run", "--json"], env, timeout=120)
    assert dry.code == 0, dry.output
    assert dry.json()["to_send"] == {"2": ["runway"]} and dry.json()["total_usd"] == 0.2
    assert runway_emulator.create_count == 0

    assert _at_a_terminal(["batch", str(sheet)], env, answer=b"n\n")[0] == 1
    assert runway_emulator.create_count == 0
    code, said = _at_a_terminal(["batch", str(sheet)], env, answer=b"y\n")
    assert code == 0, said
    assert "Send 1 task (≈ $0.20)? [y/N]" in said
    assert runway_emulator.create_count == 1


def _has_audio(data: bytes, tmp: Path) -> bool:
    tmp.write_bytes(data)
    with av.open(str(tmp)) as container:
        return bool(container.streams.audio)


def _at_a_terminal(args: list[str], env: dict[str, str], *, answer: bytes) -> tuple[int, str]:
    """Run `reenact` with a pseudo-terminal as stdin (a person at the keyboard)."""
    leader, follower = pty.openpty()
    try:
        proc = subprocess.Popen(
            [reenact_script(), *args],
            env=env,
            stdin=follower,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        os.write(leader, answer)  # typed ahead: the terminal keeps it until it is read
        out, _ = proc.communicate(timeout=120)
    finally:
        os.close(follower)
        os.close(leader)
    return proc.returncode, out.decode()


def test_a_bad_csv_is_one_sentence_and_an_unknown_provider_flag_a_usage_error(
    env: dict[str, str], tmp_path: Path
) -> None:
    sheet = tmp_path / "takes.csv"
    sheet.write_text("clip,face\na.mp4,b.png\n")
    r = run(["batch", str(sheet), "--json"], env)
    assert r.code == 1 and "Unknown column “clip” in takes.csv" in r.stderr
    assert json.loads(r.stdout)["error"].startswith("Unknown column")
    sheet.write_text("video,image\na.mp4,b.png\n")
    r = run(["batch", str(sheet), "--providers", "nope"], env)
    assert r.code == 2 and "nope" in r.stderr and "Traceback" not in r.output
    r = run(["batch-status", "nope"], env)
    assert r.code == 1 and "No batch with id 'nope'" in r.stderr

"""The installed `reenact` console script, run as a subprocess against the emulators."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
from pathlib import Path

import pytest

from tests.cli.support import run, start, wait_for
from tests.emulators import (
    CometApiEmulator,
    LiangXinEmulator,
    MakevidEmulator,
    RunwayEmulator,
)

CONTRACT_FIELDS = {
    "id",
    "provider",
    "provider_task_id",
    "status",
    "progress",
    "error",
    "result_url",
    "result_path",
    "created_at",
    "updated_at",
}


def _assert_delivered(doc: dict, out: Path, data_dir: Path) -> None:
    assert doc["status"] == "succeeded", doc
    assert set(doc) >= CONTRACT_FIELDS
    archived = Path(doc["result_path"])
    assert archived.is_absolute() and archived.is_file()
    assert archived == data_dir.resolve() / "results" / doc["id"] / "result.mp4"
    assert not list(archived.parent.glob("*.part"))
    copy = out / f"{doc['id']}-{doc['provider']}.mp4"
    assert copy.read_bytes() == archived.read_bytes()
    assert copy.read_bytes()[4:8] == b"ftyp"


def test_submit_wait_out_runway_with_local_files(
    env, data_dir, tmp_path, video, image, runway_emulator: RunwayEmulator
):
    env.update(runway_emulator.env())
    out = tmp_path / "out"
    r = run(
        [
            "submit",
            "--provider",
            "runway",
            "--video",
            video,
            "--image",
            image,
            "--intensity",
            "4",
            "--seed",
            "7",
            "--wait",
            "--out",
            str(out),
            "--json",
        ],
        env,
    )
    assert r.code == 0, r.output
    doc = r.json()
    _assert_delivered(doc, out, data_dir)
    assert runway_emulator.stats()["creates"] == 1
    body = next(iter(runway_emulator.tasks.values())).body
    assert body["expressionIntensity"] == 4 and body["seed"] == 7
    # Progress went to stderr, one line per change (stderr is not a terminal here).
    assert "runway: succeeded 100%" in r.stderr
    assert "Traceback" not in r.output


def test_submit_wait_out_cometapi_with_urls(
    env, data_dir, tmp_path, video_url, image_url, cometapi_emulator: CometApiEmulator
):
    env.update(cometapi_emulator.env())
    out = tmp_path / "out"
    r = run(
        [
            "submit",
            "--provider",
            "cometapi",
            "--video",
            video_url,
            "--image",
            image_url,
            "--wait",
            "--out",
            str(out),
            "--json",
        ],
        env,
    )
    assert r.code == 0, r.output
    _assert_delivered(r.json(), out, data_dir)
    sent = next(iter(cometapi_emulator.tasks.values())).body
    assert sent["video"] == video_url and sent["image"] == image_url


def test_submit_wait_out_liangxin_with_urls(
    env, data_dir, tmp_path, video_url, image_url, liangxin_emulator: LiangXinEmulator
):
    env.update(liangxin_emulator.env())
    out = tmp_path / "out"
    r = run(
        [
            "submit",
            "--provider",
            "liangxin",
            "--video",
            video_url,
            "--image",
            image_url,
            "--body-control",
            "--ratio",
            "1280:720",
            "--wait",
            "--out",
            str(out),
            "--json",
        ],
        env,
    )
    assert r.code == 0, r.output
    _assert_delivered(r.json(), out, data_dir)
    sent = next(iter(liangxin_emulator.tasks.values())).body
    assert sent["input"]["reference"]["uri"] == video_url
    assert sent["input"]["body_control"] is True


def test_track_wait_out_makevid(env, data_dir, tmp_path, makevid_emulator: MakevidEmulator):
    env.update(makevid_emulator.env())
    ptid = makevid_emulator.add_task()
    out = tmp_path / "out"
    r = run(["track", "--provider", "makevid", ptid, "--wait", "--out", str(out), "--json"], env)
    assert r.code == 0, r.output
    doc = r.json()
    assert doc["provider_task_id"] == ptid
    _assert_delivered(doc, out, data_dir)
    # Tracking the same id again finds the same task instead of a second one.
    again = run(["track", "--provider", "makevid", ptid, "--json"], env)
    assert again.code == 0 and again.json()["id"] == doc["id"]


def test_track_unknown_makevid_id_fails_with_a_sentence(env, makevid_emulator):
    env.update(makevid_emulator.env())
    r = run(["track", "--provider", "makevid", "no-such-task", "--wait", "--json"], env)
    assert r.code == 1, r.output
    assert r.json()["status"] == "failed"
    assert "does not know this task" in r.stderr


def test_provider_failure_exits_1_with_the_providers_reason(
    env, video, image, runway_emulator: RunwayEmulator
):
    env.update(runway_emulator.env())
    runway_emulator.configure(fail_reason="Character image has no visible face", polls_to_finish=2)
    r = run(
        ["submit", "--provider", "runway", "--video", video, "--image", image, "--wait", "--json"],
        env,
    )
    assert r.code == 1, r.output
    doc = r.json()
    assert doc["status"] == "failed"
    assert "Character image has no visible face" in doc["error"]
    assert "Character image has no visible face" in r.stderr
    assert doc["result_path"] is None


def test_unknown_provider_exits_2(env, video, image):
    r = run(["submit", "--provider", "nope", "--video", video, "--image", image], env)
    assert r.code == 2
    assert "Unknown provider 'nope'" in r.stderr
    assert "runway" in r.stderr  # the choices are named
    assert "Traceback" not in r.output


def test_missing_key_exits_2_naming_the_variable(env, data_dir, video_url, image_url):
    r = run(
        ["submit", "--provider", "cometapi", "--video", video_url, "--image", image_url, "--json"],
        env,
    )
    assert r.code == 2
    assert "REENACT_COMETAPI_API_KEY" in r.stderr
    assert "REENACT_COMETAPI_API_KEY" in r.json()["error"]
    # Nothing was written for a submission that never started.
    listed = run(["list", "--json"], env)
    assert listed.code == 0 and listed.json() == []


def test_liangxin_without_base_url_names_the_variable(env, video_url, image_url):
    env["REENACT_LIANGXIN_API_KEY"] = "lx-some-key"
    r = run(["submit", "--provider", "liangxin", "--video", video_url, "--image", image_url], env)
    assert r.code == 2
    assert "REENACT_LIANGXIN_BASE_URL" in r.stderr


def test_wrong_key_exits_1_and_never_prints_the_key(
    env, data_dir, video, image, runway_emulator: RunwayEmulator
):
    env.update(runway_emulator.env())
    wrong = "key-WRONG-0123456789abcdef"
    env["REENACT_RUNWAY_API_KEY"] = wrong
    r = run(
        ["submit", "--provider", "runway", "--video", video, "--image", image, "--wait", "--json"],
        env,
    )
    assert r.code == 1, r.output
    assert "rejected the api key" in r.output.lower()
    assert wrong not in r.output
    assert r.json()["status"] == "failed"
    # Nor stored: the database file never saw it.
    db = data_dir / "reenact.db"
    with sqlite3.connect(db) as conn:
        dump = "\n".join(conn.iterdump())
    assert wrong not in dump


def test_wrong_key_while_tracking_stops_waiting_with_exit_1(env, runway_emulator):
    env.update(runway_emulator.env())
    env["REENACT_RUNWAY_API_KEY"] = "key-not-the-right-one"
    ptid = runway_emulator.add_task()
    r = run(["track", "--provider", "runway", ptid, "--wait", "--timeout", "20"], env)
    assert r.code == 1, r.output
    assert "rejected the api key" in r.output.lower()
    assert "key-not-the-right-one" not in r.output


def test_unreachable_base_url_is_a_sentence(env, video, image, tmp_path):
    import socket

    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env.update(REENACT_RUNWAY_API_KEY="key-x", REENACT_RUNWAY_BASE_URL=f"http://127.0.0.1:{port}")
    r = run(["submit", "--provider", "runway", "--video", video, "--image", image], env)
    assert r.code == 1, r.output
    assert "Could not reach Runway" in r.stderr
    assert "Traceback" not in r.output


def test_provider_answering_html_to_create_is_unknown_with_a_sentence(
    env, video, image, runway_emulator
):
    env.update(runway_emulator.env())
    runway_emulator.fault("html", route="create", times=None)
    r = run(["submit", "--provider", "runway", "--video", video, "--image", image], env)
    assert r.code == 1, r.output
    assert "web page" in r.stderr
    # HTTP 200 may mean accepted: the task is `unknown`, never re-sent on its own.
    assert "could not learn whether Runway accepted" in r.stderr
    assert runway_emulator.route_counts["create"] == 1
    assert "Traceback" not in r.output and "<html" not in r.output.lower()


def test_missing_input_file_is_rejected_with_exit_1(env, image, runway_emulator):
    env.update(runway_emulator.env())
    r = run(["submit", "--provider", "runway", "--video", "/nope/drive.mp4", "--image", image], env)
    assert r.code == 1
    assert "was not found" in r.stderr
    assert runway_emulator.stats()["creates"] == 0


def test_bad_option_is_a_usage_error(env, video, image, runway_emulator):
    env.update(runway_emulator.env())
    r = run(
        ["submit", "--provider", "runway", "--video", video, "--image", image, "--ratio", "wide"],
        env,
    )
    assert r.code == 2
    assert "--ratio" in r.stderr
    r = run(["submit", "--provider", "runway"], env)
    assert r.code == 2 and "--video" in r.stderr
    assert runway_emulator.stats()["creates"] == 0


def test_json_output_is_exactly_one_document_and_progress_is_on_stderr(
    env, video, image, runway_emulator
):
    env.update(runway_emulator.env())
    r = run(
        ["submit", "--provider", "runway", "--video", video, "--image", image, "--wait", "--json"],
        env,
    )
    assert r.code == 0, r.output
    decoder = json.JSONDecoder()
    doc, end = decoder.raw_decode(r.stdout)
    assert r.stdout[end:].strip() == "", "nothing but one JSON document on stdout"
    assert set(doc) >= CONTRACT_FIELDS
    assert doc["status"] == "succeeded" and doc["progress"] == 1.0
    assert doc["created_at"].endswith(("Z", "+00:00"))
    assert "queued" in r.stderr and "succeeded" in r.stderr

    listed = run(["list", "--json"], env)
    assert [t["id"] for t in listed.json()] == [doc["id"]]
    status = run(["status", doc["id"], "--json"], env)
    assert status.code == 0 and status.json()["result_path"] == doc["result_path"]


def test_timeout_exits_3_and_the_task_stays_tracked(env, video, image, runway_emulator):
    env.update(runway_emulator.env())
    runway_emulator.configure(seconds_to_finish=3600.0)
    r = run(
        [
            "submit",
            "--provider",
            "runway",
            "--video",
            video,
            "--image",
            image,
            "--wait",
            "--timeout",
            "0.5",
            "--json",
        ],
        env,
    )
    assert r.code == 3, r.output
    doc = r.json()
    assert doc["status"] in ("queued", "running")
    assert f"reenact status {doc['id']}" in r.stderr
    listed = run(["list", "--json"], env).json()
    assert [(t["id"], t["status"]) for t in listed] == [(doc["id"], doc["status"])]
    # Still tracked means still followed: the provider finishes, `status` catches up.
    runway_emulator.configure(seconds_to_finish=0.0)
    r = run(["status", doc["id"], "--json"], env)
    assert r.code == 0
    assert r.json()["status"] == "succeeded" and r.json()["result_path"]
    assert runway_emulator.stats()["creates"] == 1


def test_ctrl_c_while_waiting_exits_3_and_keeps_the_task(env, video, image, runway_emulator):
    env.update(runway_emulator.env())
    runway_emulator.configure(seconds_to_finish=3600.0)
    # A suite started in the background by a script runs with SIGINT ignored, and a child
    # inherits that; a user's Ctrl-C reaches a process whose SIGINT is at its default.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        proc = start(
            ["submit", "--provider", "runway", "--video", video, "--image", image, "--wait"], env
        )
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    try:
        wait_for(lambda: runway_emulator.stats()["polls"] >= 1, timeout=30, what="the first poll")
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 3, stderr
    assert "Stopped waiting; the task is still tracked: reenact status" in stderr
    assert "Traceback" not in stderr
    listed = run(["list", "--json"], env).json()
    assert len(listed) == 1 and listed[0]["status"] in ("queued", "running")


def test_download_copies_and_rearchives_when_the_file_is_gone(
    env, tmp_path, video, image, runway_emulator
):
    env.update(runway_emulator.env())
    r = run(
        ["submit", "--provider", "runway", "--video", video, "--image", image, "--wait", "--json"],
        env,
    )
    assert r.code == 0, r.output
    doc = r.json()
    out = tmp_path / "dl"
    d = run(["download", doc["id"], "--out", str(out)], env)
    assert d.code == 0, d.output
    copy = out / f"{doc['id']}-runway.mp4"
    assert d.stdout.strip() == str(copy.resolve())
    assert copy.read_bytes()[4:8] == b"ftyp"
    Path(doc["result_path"]).unlink()
    copy.unlink()
    d = run(["download", doc["id"], "--out", str(out)], env)
    assert d.code == 0, d.output
    assert Path(doc["result_path"]).is_file() and copy.is_file()


def test_download_of_an_unfinished_task_is_refused(env, video, image, runway_emulator):
    env.update(runway_emulator.env())
    runway_emulator.configure(seconds_to_finish=3600.0)
    doc = run(
        ["submit", "--provider", "runway", "--video", video, "--image", image, "--json"], env
    ).json()
    d = run(["download", doc["id"]], env)
    assert d.code == 1
    assert "no result to download yet" in d.stderr
    missing = run(["status", "doesnotexist"], env)
    assert missing.code == 1 and "No task with id" in missing.stderr


def test_compare_runs_two_providers_and_waits_for_both(
    env, data_dir, tmp_path, video_url, image_url, cometapi_emulator, liangxin_emulator
):
    env.update(cometapi_emulator.env())
    env.update(liangxin_emulator.env())
    out = tmp_path / "out"
    r = run(
        [
            "compare",
            "--providers",
            "cometapi,liangxin",
            "--video",
            video_url,
            "--image",
            image_url,
            "--wait",
            "--out",
            str(out),
            "--json",
        ],
        env,
    )
    assert r.code == 0, r.output
    docs = r.json()
    assert isinstance(docs, list) and {d["provider"] for d in docs} == {"cometapi", "liangxin"}
    for doc in docs:
        _assert_delivered(doc, out, data_dir)
    assert cometapi_emulator.stats()["creates"] == 1
    assert liangxin_emulator.stats()["creates"] == 1


def test_compare_with_one_unconfigured_provider_starts_nothing(
    env, video_url, image_url, cometapi_emulator
):
    env.update(cometapi_emulator.env())
    r = run(
        ["compare", "--providers", "cometapi,liangxin", "--video", video_url, "--image", image_url],
        env,
    )
    assert r.code == 2
    assert "REENACT_LIANGXIN_API_KEY" in r.stderr
    assert cometapi_emulator.stats()["creates"] == 0


def test_providers_lists_each_with_what_to_set(env, runway_emulator):
    env.update(runway_emulator.env())
    r = run(["providers", "--json"], env)
    assert r.code == 0, r.output
    infos = {p["id"]: p for p in r.json()}
    assert set(infos) == {"local", "runway", "cometapi", "liangxin", "makevid"}
    assert infos["runway"]["available"] is True
    assert infos["cometapi"]["available"] is False
    assert "REENACT_COMETAPI_API_KEY" in infos["cometapi"]["reason"]
    assert runway_emulator.key not in r.output
    human = run(["providers"], env)
    assert human.code == 0 and "REENACT_MAKEVID_API_KEY" in human.stdout


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_progress_bar_redraws_in_place_on_a_terminal(env, video, image, runway_emulator):
    import subprocess

    from tests.cli.support import reenact_script

    env.update(runway_emulator.env())
    master, slave = os.openpty()
    try:
        proc = subprocess.run(
            [
                reenact_script(),
                "submit",
                "--provider",
                "runway",
                "--video",
                video,
                "--image",
                image,
                "--wait",
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=slave,
            timeout=60,
        )
        os.close(slave)
        slave = -1
        chunks = []
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
    finally:
        if slave >= 0:
            os.close(slave)
        os.close(master)
    shown = b"".join(chunks).decode(errors="replace")
    assert proc.returncode == 0
    assert "\r\x1b[K" in shown and "[" + "#" * 24 + "] 100%" in shown
    assert "Task " in proc.stdout.decode()


def test_check_reports_every_check_and_exits_1_on_a_failure(env, tmp_path, video, image, image_url):
    from tests import mediagen

    good = run(["check", video, image_url, "--provider", "runway"], env)
    assert good.code == 0, good.output
    assert "driving video" in good.stdout and "character image" in good.stdout
    assert "Exactly one face" in good.stdout

    square = mediagen.make_video(tmp_path / "square.mp4", size=(180, 180), seconds=4.0)
    bad = run(["check", str(square), image, "--provider", "cometapi", "--json"], env)
    assert bad.code == 1, bad.output
    reports = bad.json()
    assert [r["input"] for r in reports] == [str(square), image]
    failing = [c for c in reports[0]["report"]["checks"] if c["status"] == "fail"]
    assert failing and failing[0]["provider"] == "cometapi"
    assert "16:9" in failing[0]["sentence"]
    assert all(c["status"] != "fail" for c in reports[1]["report"]["checks"])

    missing = run(["check", str(tmp_path / "nope.mp4")], env)
    assert missing.code == 1 and "Traceback" not in missing.output
    unknown = run(["check", video, "--provider", "nope"], env)
    assert unknown.code == 2 and "Unknown provider" in unknown.stderr


def test_submit_refuses_inputs_that_fail_the_providers_checks(
    env, tmp_path, image_url, file_server, cometapi_emulator
):
    from tests import mediagen

    env.update(cometapi_emulator.env())
    mediagen.make_video(file_server.root / "square.mp4", size=(180, 180), seconds=4.0)
    r = run(
        [
            "submit",
            "--provider",
            "cometapi",
            "--video",
            file_server.url("square.mp4"),
            "--image",
            image_url,
            "--json",
        ],
        env,
    )
    assert r.code == 1, r.output
    assert "Nothing was submitted" in r.stderr and "16:9" in r.stderr
    assert "error" in r.json()
    assert cometapi_emulator.stats()["creates"] == 0

"""The issue's "done when": `reenact submit --provider local ... --wait --out DIR` with no
key anywhere produces the video."""

from __future__ import annotations

from pathlib import Path

from tests.cli.support import base_env, run
from tests.engine.conftest import Clip
from tests.engine.measure import facts
from tests.mediagen import Character


def test_submit_wait_out_with_the_local_engine(
    tmp_path: Path, clip: Clip, character: Character
) -> None:
    env = base_env(tmp_path / "data")
    out = tmp_path / "out"
    res = run(
        [
            "submit",
            "--provider",
            "local",
            "--video",
            str(clip.path),
            "--image",
            str(character.path),
            "--intensity",
            "4",
            "--wait",
            "--out",
            str(out),
            "--json",
        ],
        env,
        timeout=120,
    )
    assert res.code == 0, res.output
    task = res.json()
    assert task["provider"] == "local" and task["status"] == "succeeded"
    assert task["progress"] == 1.0
    files = list(out.iterdir())
    assert len(files) == 1
    got = facts(files[0])
    assert (got.codec, got.frames, got.audio_codec) == ("h264", clip.frames, "aac")


def test_local_is_listed_as_available_without_any_key(tmp_path: Path) -> None:
    res = run(["providers", "--json"], base_env(tmp_path / "data"))
    assert res.code == 0, res.output
    rows = res.json()
    local = next(r for r in rows if r.get("id") == "local")
    assert local["available"] is True, local

"""`reenact fix`: the Create page's fixes from the installed script, on real generated clips
(portrait, 4:3, 45 s), with the checks' own sentences, the page's file names and `check`'s
exit codes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from services.media import probe
from tests import mediagen
from tests.cli.support import run


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("fix-clips")
    return {
        "portrait": mediagen.make_video(
            d / "phone clip.mp4", size=(360, 640), seconds=3.5, fps=8, audio=True
        ),
        "four_three": mediagen.make_video(d / "webcam.mp4", size=(320, 240), seconds=3.5, fps=8),
        "long": mediagen.make_video(
            d / "long-take.mp4", size=(320, 180), seconds=45.0, fps=5, audio=True
        ),
        "faceless": mediagen.make_video(
            d / "empty-room.mp4", size=(180, 320), seconds=3.5, fps=8, face=False
        ),
        "image": mediagen.make_image(d / "face.png", size=(400, 400)),
    }


@pytest.fixture
def work(tmp_path: Path, clips: dict[str, Path]) -> dict[str, Path]:
    """Each test's own copies: outputs land beside the inputs."""
    out = {}
    for key, src in clips.items():
        out[key] = tmp_path / src.name
        out[key].write_bytes(src.read_bytes())
    return out


def _check_sentence(env: dict[str, str], path: Path, provider: str, check_id: str) -> str:
    checked = run(["check", str(path), "--provider", provider, "--json"], env)
    [report] = checked.json()
    [found] = [c for c in report["report"]["checks"] if c["id"] == check_id]
    return str(found["sentence"])


def test_crop_a_portrait_clip_beside_it_with_the_checks_sentence_and_no_overwrite(
    env: dict[str, str], work: dict[str, Path]
) -> None:
    src = work["portrait"]
    r = run(["fix", str(src), "--crop-16-9", "--provider", "cometapi", "--json"], env)
    assert r.code == 0, r.output
    [doc] = r.json()
    made = src.with_name("phone clip-cropped.mp4")
    assert doc["fixed"] is True and doc["path"] == str(made.resolve())
    # The sentence that offered the fix is the check's own, word for word (as on the page).
    offered = [o["sentence"] for o in doc["offered_by"]]
    assert offered == [_check_sentence(env, src, "cometapi", "aspect")]
    assert "CometAPI accepts 16:9" in offered[0]
    assert doc["label"] == "Crop to 16:9 → 360×202"
    info = probe(made)
    assert (info.width, info.height) == (360, 202) and info.has_audio
    assert doc["info"]["width"] == 360 and doc["report"]["failed"] is False
    # The checks ran again on the new file: CometAPI's shape limit is met now.
    aspect = [c for c in doc["report"]["checks"] if c["id"] == "aspect"]
    assert [c["status"] for c in aspect] == ["ok"]

    before = made.read_bytes()
    again = run(["fix", str(src), "--crop-16-9"], env)
    assert again.code == 1, again.output
    assert "already exists and is never replaced" in again.stderr
    assert made.read_bytes() == before
    assert not list(src.parent.glob(".reenact-fix-*"))  # no work folder left behind


def test_pad_a_4_3_clip_into_another_folder(
    env: dict[str, str], work: dict[str, Path], tmp_path: Path
) -> None:
    src, out = work["four_three"], tmp_path / "fixed" / "inputs"
    r = run(["fix", str(src), "--pad-16-9", "--out", str(out)], env)
    assert r.code == 0, r.output
    made = out / "webcam-padded.mp4"
    assert f"Wrote {made.resolve()}" in r.stdout
    assert "320×180" not in r.stdout and "320×240" not in r.stdout  # it is the new file's
    info = probe(made)
    assert (info.width, info.height) == (426, 240)
    assert f"{info.width}×{info.height} · 3.5 s · 8 fps · H264 · no audio" in r.stdout
    assert "[driving video]" in r.stdout and "Exactly one face" in r.stdout
    assert not src.with_name("webcam-padded.mp4").exists()


def test_trim_a_45_s_clip_keeps_30_s_and_its_sound(
    env: dict[str, str], work: dict[str, Path]
) -> None:
    src = work["long"]
    r = run(["fix", str(src), "--trim", "--provider", "runway"], env)
    assert r.code == 0, r.output
    said = _check_sentence(env, src, "runway", "reference_duration")
    assert f"{src}: runway: {said}" in r.stdout and "Trim it to 30 s" in said
    made = src.with_name("long-take-trimmed.mp4")
    info = probe(made)
    assert info.duration_s is not None and abs(info.duration_s - 30.0) < 0.25
    assert info.has_audio and info.codec == "h264"
    assert "runway: 30.0 s, within Runway's 3–30 s." in r.stdout


def test_a_fix_with_nothing_to_do_writes_nothing_and_names_the_input(
    env: dict[str, str], work: dict[str, Path]
) -> None:
    src = work["four_three"]
    files_before = sorted(p.name for p in src.parent.iterdir())
    r = run(["fix", str(src), "--trim", "--json"], env)
    assert r.code == 0, r.output
    [doc] = r.json()
    assert doc["fixed"] is False and doc["path"] == str(src.resolve())
    assert (
        doc["sentence"]
        == "'webcam.mp4' lasts 3.5 s, already within 30 s; nothing to trim, nothing written."
    )
    assert doc["report"]["failed"] is False
    wide = run(["fix", str(work["long"]), "--crop-16-9"], env)
    assert wide.code == 0 and "is already 16:9 (320×180); nothing to crop" in wide.stdout
    mp4 = run(["fix", str(src), "--transcode"], env)
    assert mp4.code == 0 and "nothing to convert" in mp4.stdout
    assert sorted(p.name for p in src.parent.iterdir()) == files_before


def test_exit_1_when_the_fixed_file_still_fails_a_check(
    env: dict[str, str], work: dict[str, Path]
) -> None:
    r = run(["fix", str(work["faceless"]), "--pad-16-9", "--json"], env)
    assert r.code == 1, r.output
    [doc] = r.json()
    assert doc["fixed"] is True and Path(doc["path"]).is_file()  # written, and said unfit
    failing = [c["sentence"] for c in doc["report"]["checks"] if c["status"] == "fail"]
    assert failing and failing[0].startswith("No face was found in 'empty-room-padded.mp4'")


def test_the_fixs_own_refusals_and_usage_errors(
    env: dict[str, str], work: dict[str, Path], tmp_path: Path
) -> None:
    image = work["image"]
    trimmed = run(["fix", str(image), "--trim"], env)
    assert trimmed.code == 1
    assert "'face.png' is an image; only videos can be trimmed." in trimmed.stderr

    cropped = run(["fix", str(image), "--crop-16-9", "--json"], env)
    assert cropped.code == 0, cropped.output
    [doc] = cropped.json()
    assert doc["path"] == str(image.with_name("face-cropped.png").resolve())
    assert (doc["info"]["width"], doc["info"]["height"]) == (400, 224)

    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    several = run(["fix", str(text), str(tmp_path / "gone.mp4"), str(work["long"]), "--trim"], env)
    assert several.code == 1  # the readable one is still fixed
    assert "'notes.mp4' is not a video or image" in several.stderr
    assert "'gone.mp4' does not exist" in several.stderr
    assert work["long"].with_name("long-take-trimmed.mp4").is_file()

    usage: list[tuple[list[str], str]] = [
        (["fix", str(image)], "one of the arguments --crop-16-9"),
        (["fix", str(image), "--trim", "--pad-16-9"], "not allowed with"),
        (["fix", "https://example.com/take.mp4", "--trim"], "is a link"),
        (["fix", str(image), "--trim", "--out", str(image)], "--out must be a folder"),
        (["fix", str(image), "--trim", "--provider", "nope"], "Unknown provider"),
    ]
    for args, words in usage:
        r = run(args, env)
        assert r.code == 2 and words in r.stderr, (args, r.output)
        assert "Traceback" not in r.output
    doc: Any = run(["fix", str(image), "--json"], env).json()
    assert "one of the arguments" in doc["error"]

"""Sound on every result: a provider's silent result is archived with the driving clip's
sound (the picture's packets untouched, the provider's file kept as original.mp4), unless
the creator switched it off; anything that stops it is a sentence on the task, never a
failed task. Real emulators, a real SQLite file, real `reenact` processes."""

from __future__ import annotations

import logging
from pathlib import Path

import av
import pytest

from services.archive import ORIGINAL_NAME, SOUND_CHOICE, sound_meta, sound_pref_key
from services.models import LOCAL_OWNER, Task, TaskStatus
from tests import mediagen
from tests.cli.support import base_env, run
from tests.emulators import RunwayEmulator
from tests.media.test_remux import onsets, video_packets


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("sound")
    return {
        # What the provider sends back: 3 s of picture, no audio track.
        "silent": mediagen.make_video(d / "silent.mp4", seconds=3.0, fps=10),
        "voiced": mediagen.make_video(d / "voiced.mp4", seconds=3.0, fps=10, audio=True),
        # The creator's take: a beep 1 s after its first frame.
        "take": mediagen.make_beep_clip(d / "take.mp4", seconds=4.0, beeps_s=(1.0,)),
        "mute_take": mediagen.make_beep_clip(d / "mute.mp4", seconds=4.0, audio=None),
        # A take that passes the CLI's checks (a face, 16:9, long enough), with a tone.
        "face_take": mediagen.make_video(d / "face.mp4", seconds=4.0, fps=8, audio=True),
        "character": mediagen.make_image(d / "char.png", size=(640, 360)),
    }


def _submit(studio, emu: RunwayEmulator, take: Path, image: Path, served: Path, **kw) -> Task:  # type: ignore[no-untyped-def]
    """Submit to the emulator, which answers with `served` as the result file."""
    task = studio.submit("runway", studio.prepare_inputs(str(take), str(image)), **kw)
    assert task.provider_task_id, task.error
    emu.add_file(f"{task.provider_task_id}.mp4", served.read_bytes(), "video/mp4")
    return task


def _has_audio(path: Path) -> bool:
    with av.open(str(path)) as c:
        return bool(c.streams.audio)


def _note(task: Task) -> str:
    return str(task.meta["sound"]["note"])


def test_a_silent_result_gets_the_driving_clips_sound(
    make_studio, make_monitor, runway_emulator: RunwayEmulator, media
):
    runway_emulator.configure(queued_polls=0, polls_to_finish=1)
    studio = make_studio(runway_emulator)
    task = _submit(studio, runway_emulator, media["take"], media["character"], media["silent"])
    done = make_monitor(studio).wait(task.id, timeout=30)
    assert done.status is TaskStatus.SUCCEEDED and done.archive_state == "done"
    archived = Path(done.result_path or "")
    assert archived == studio.settings.results_dir / task.id / "result.mp4"
    # The version with sound is the archived one; the provider's file sits beside it.
    assert _has_audio(archived)
    original = archived.with_name(ORIGINAL_NAME)
    assert original.read_bytes() == media["silent"].read_bytes()
    assert video_packets(archived) == video_packets(media["silent"])
    assert onsets(archived) == pytest.approx([1.0], abs=0.01)
    assert sorted(p.name for p in archived.parent.iterdir()) == ["original.mp4", "result.mp4"]
    assert done.meta["sound"] == {"added": True, "note": "Sound added from the driving clip."}
    assert done.public_json()["meta"]["sound"]["added"] is True  # what --json prints
    last = studio.store.events(task.id)[-1].message
    assert last.startswith("Result archived to ") and last.endswith(
        "Sound added from the driving clip."
    )
    # Delete takes the provider's file with it.
    studio.delete(task.id)
    assert not archived.parent.exists()


def test_switched_off_in_settings_keeps_the_result_as_it_came(
    make_studio, make_monitor, runway_emulator: RunwayEmulator, media
):
    runway_emulator.configure(queued_polls=0, polls_to_finish=1)
    studio = make_studio(runway_emulator)
    studio.store.set_pref(sound_pref_key(LOCAL_OWNER), False)
    task = _submit(studio, runway_emulator, media["take"], media["character"], media["silent"])
    done = make_monitor(studio).wait(task.id, timeout=30)
    archived = Path(done.result_path or "")
    assert archived.read_bytes() == media["silent"].read_bytes()
    assert not archived.with_name(ORIGINAL_NAME).exists()
    assert _note(done) == "Sound not added: switched off in Settings."
    assert done.meta["sound"]["added"] is False
    # Another creator's switch is their own: theirs is still on.
    assert studio.store.get_pref(sound_pref_key("someone@example.com"), True) is True


def test_no_sound_on_the_task_wins_over_the_switch_and_carries_to_a_retry(
    make_studio, make_monitor, runway_emulator: RunwayEmulator, media
):
    runway_emulator.configure(queued_polls=0, polls_to_finish=1)
    studio = make_studio(runway_emulator)
    task = _submit(
        studio,
        runway_emulator,
        media["take"],
        media["character"],
        media["silent"],
        meta=sound_meta(False),
    )
    assert task.meta[SOUND_CHOICE] is False
    done = make_monitor(studio).wait(task.id, timeout=30)
    assert Path(done.result_path or "").read_bytes() == media["silent"].read_bytes()
    assert _note(done) == "Sound not added: switched off when the task was submitted."
    again = studio.retry(task.id)
    assert again.id != task.id and again.meta[SOUND_CHOICE] is False
    assert "sound" not in again.meta  # what happened to the first one is not carried


def test_a_result_with_its_own_sound_is_untouched(
    make_studio, make_monitor, runway_emulator: RunwayEmulator, media
):
    runway_emulator.configure(queued_polls=0, polls_to_finish=1)
    studio = make_studio(runway_emulator)
    task = _submit(studio, runway_emulator, media["take"], media["character"], media["voiced"])
    done = make_monitor(studio).wait(task.id, timeout=30)
    archived = Path(done.result_path or "")
    assert archived.read_bytes() == media["voiced"].read_bytes()
    assert not archived.with_name(ORIGINAL_NAME).exists()
    assert _note(done) == "Sound left as the provider made it: the result has its own."


def test_a_driving_clip_without_sound_leaves_the_result_silent(
    make_studio, make_monitor, runway_emulator: RunwayEmulator, media
):
    runway_emulator.configure(queued_polls=0, polls_to_finish=1)
    studio = make_studio(runway_emulator)
    task = _submit(studio, runway_emulator, media["mute_take"], media["character"], media["silent"])
    done = make_monitor(studio).wait(task.id, timeout=30)
    archived = Path(done.result_path or "")
    assert archived.read_bytes() == media["silent"].read_bytes()
    assert _note(done) == "Sound not added: the driving clip has no sound."


def test_a_corrupt_driving_clip_keeps_the_silent_result_and_the_task_succeeds(
    make_studio, make_monitor, runway_emulator: RunwayEmulator, media, tmp_path, caplog
):
    runway_emulator.configure(queued_polls=0, polls_to_finish=1)
    studio = make_studio(runway_emulator)
    take = tmp_path / "take.mp4"
    take.write_bytes(media["take"].read_bytes())
    task = _submit(studio, runway_emulator, take, media["character"], media["silent"])
    # Sent to the provider intact; damaged on this machine before the result comes back.
    take.write_bytes(b"\x00\x00\x00\x18ftypisom" + bytes(range(256)) * 16)
    with caplog.at_level(logging.INFO, logger="reenact"):
        done = make_monitor(studio).wait(task.id, timeout=30)
    assert done.status is TaskStatus.SUCCEEDED and done.archive_state == "done"
    assert done.error is None
    archived = Path(done.result_path or "")
    assert archived.read_bytes() == media["silent"].read_bytes()
    assert sorted(p.name for p in archived.parent.iterdir()) == ["result.mp4"]  # no .part
    note = _note(done)
    assert note.startswith("Sound not added: the driving clip cannot be read (")
    assert note.endswith("The provider's result is kept as it came.")
    assert any(note in e.message for e in studio.store.events(task.id))
    lines = [r for r in caplog.records if r.name == "reenact.archive"]
    assert len(lines) == 1 and lines[0].levelno == logging.WARNING
    assert lines[0].exc_info is None  # one line, no traceback


def test_a_driving_clip_gone_from_this_machine_is_said(
    make_studio, make_monitor, runway_emulator: RunwayEmulator, media, tmp_path
):
    runway_emulator.configure(queued_polls=0, polls_to_finish=1)
    studio = make_studio(runway_emulator)
    take = tmp_path / "take.mp4"
    take.write_bytes(media["take"].read_bytes())
    task = _submit(studio, runway_emulator, take, media["character"], media["silent"])
    take.unlink()
    done = make_monitor(studio).wait(task.id, timeout=30)
    assert done.status is TaskStatus.SUCCEEDED
    assert Path(done.result_path or "").read_bytes() == media["silent"].read_bytes()
    assert _note(done) == "Sound not added: the driving clip is no longer on this machine."


def test_a_tracked_task_has_no_driving_clip_to_take_sound_from(
    make_studio, make_monitor, runway_emulator: RunwayEmulator
):
    runway_emulator.configure(queued_polls=0, polls_to_finish=1)
    studio = make_studio(runway_emulator)
    task = studio.track("runway", runway_emulator.add_task())
    done = make_monitor(studio).wait(task.id, timeout=30)
    assert done.status is TaskStatus.SUCCEEDED and done.result_path
    assert "its driving clip is not known here" in _note(done)


def test_the_cli_adds_sound_by_default_and_not_with_no_sound(
    runway_emulator: RunwayEmulator, media, tmp_path
):
    runway_emulator.configure(queued_polls=0, polls_to_finish=1)
    env = base_env(tmp_path / "data", **runway_emulator.env())
    # The emulator's result for any task it has not been given a file for is its tiny
    # silent clip: the CLI cannot learn the provider's id before it starts waiting.
    docs = {}
    for flags in ([], ["--no-sound"]):
        out = tmp_path / ("out" + "".join(flags))
        args = ["submit", "--provider", "runway", "--video", str(media["face_take"])]
        args += ["--image", str(media["character"]), *flags, "--wait", "--out", str(out)]
        r = run([*args, "--json"], env)
        assert r.code == 0, r.output
        doc = r.json()
        copy = next(out.iterdir())
        docs[tuple(flags)] = (doc, _has_audio(copy), Path(doc["result_path"]))
    (on, on_audio, on_path), (off, off_audio, off_path) = docs[()], docs[("--no-sound",)]
    assert on_audio and on["meta"]["sound"]["added"] is True
    assert on_path.with_name(ORIGINAL_NAME).is_file()
    assert not off_audio and off["meta"]["sound"]["added"] is False
    assert off["meta"][SOUND_CHOICE] is False
    assert not off_path.with_name(ORIGINAL_NAME).exists()
    # The flag is in the help of both commands that submit.
    for command in ("submit", "compare"):
        assert "--no-sound" in run([command, "--help"], env).stdout


def test_the_local_engines_result_already_has_the_sound(tmp_path):
    """The engine copies the driving clip's sound itself: its result is left alone."""
    clip = tmp_path / "drive.mp4"
    mediagen.make_driving_clip(clip, seconds=1.0)
    character = mediagen.make_character(tmp_path / "character.png")
    env = base_env(tmp_path / "data")
    args = ["submit", "--provider", "local", "--video", str(clip)]
    r = run([*args, "--image", str(character.path), "--wait", "--json"], env, timeout=120)
    assert r.code == 0, r.output
    doc = r.json()
    archived = Path(doc["result_path"])
    assert _has_audio(archived) and not archived.with_name(ORIGINAL_NAME).exists()
    assert doc["meta"]["sound"] == {
        "added": False,
        "note": "Sound left as the provider made it: the result has its own.",
    }

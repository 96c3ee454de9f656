"""Sampling a clip's frames for the landmarker: rate cap, timestamps, upright planes, errors."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from services.errors import InputError
from services.face.landmarks import Yuv420
from services.face.video import sampled_frames
from tests.mediagen import make_performance


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("face-video") / "clip.mp4"
    return make_performance(path, size=(320, 180), fps=24, seconds=2.0)


def test_frames_are_capped_at_max_fps_on_a_grid_from_the_first(clip: Path) -> None:
    got = list(sampled_frames(clip, 10.0))
    times = np.array([f.t for f in got])
    assert times[0] == 0.0
    assert len(got) == 20  # 2 s at 10 fps; the 24 fps clip has a frame near every slot
    assert np.all(np.diff(times) >= 0.1 - 1e-3 - 1 / 24)
    assert np.all(np.abs(times - np.arange(20) / 10) <= 1 / 24)


def test_every_frame_when_the_clip_is_slower_than_the_cap(clip: Path) -> None:
    assert len(list(sampled_frames(clip, 60.0))) == 48


def test_h264_frames_come_as_planes_of_the_right_size(clip: Path) -> None:
    first = next(iter(sampled_frames(clip, 15.0)))
    assert isinstance(first.image, Yuv420)
    assert first.image.y.shape == (180, 320) and first.image.u.shape == (90, 160)
    assert not first.image.bt709  # an untagged clip under 720 lines is taken as BT.601


def test_unreadable_inputs_raise_one_sentence(tmp_path: Path) -> None:
    text = tmp_path / "notes.mp4"
    text.write_text("not a video at all\n" * 50)
    audio = tmp_path / "voice.m4a"
    with av.open(str(audio), "w") as out:
        stream = out.add_stream("aac", rate=24000)
        frame = av.AudioFrame.from_ndarray(
            np.zeros((1, 1024), np.float32), format="fltp", layout="mono"
        )
        frame.sample_rate = 24000
        frame.pts = 0
        out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    cases = {
        tmp_path / "missing.mp4": "does not exist",
        text: "could not be read as a video",
        audio: "has no video track",
    }
    for path, words in cases.items():
        with pytest.raises(InputError) as err:
            list(sampled_frames(path, 15.0, label="result video"))
        assert words in str(err.value) and path.name in str(err.value)


def test_a_phone_clip_stored_turned_comes_upright_with_its_face(tmp_path: Path) -> None:
    from services.face.landmarks import Landmarker
    from tests.mediagen import make_video

    path = make_video(tmp_path / "phone.mp4", size=(180, 320), rotation=90, seconds=1.0)
    first = next(iter(sampled_frames(path, 15.0)))
    assert isinstance(first.image, Yuv420)
    assert first.image.y.shape == (320, 180) and first.image.u.shape == (160, 90)
    found = Landmarker().detect(first.image)
    assert found is not None and abs(found.roll) < 0.2  # upright, not lying on its side

"""The engine itself (in-process): output format, motion transfer, untouched surroundings,
and a sentence for every unusable input."""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from services.engine.config import FramingConfig
from services.engine.framing import output_size
from services.engine.render import render
from services.errors import InputError
from services.models import TaskOptions
from tests.engine.conftest import Clip
from tests.engine.measure import facts, gray_frames, mouth_opening, pearson, rgb_frames
from tests.mediagen import Character, make_bad_corpus, make_driving_clip, make_image, make_video


@pytest.fixture(scope="module")
def rendered(clip: Clip, character: Character, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("render") / "out.mp4"
    render(clip.path, character.path, out)
    return out


def test_output_is_h264_yuv420p_at_the_driving_rate_and_length_with_audio(
    rendered: Path, clip: Clip, character: Character
) -> None:
    got, drv = facts(rendered), facts(clip.path)
    assert (got.codec, got.pix_fmt) == ("h264", "yuv420p")
    assert (got.width, got.height) == character.size  # 480×270 fits the caps as it is
    assert got.fps == drv.fps == clip.fps
    assert got.frames == drv.frames == clip.frames
    assert got.audio_codec == "aac"
    assert got.audio_seconds == pytest.approx(drv.audio_seconds, abs=0.1)


def test_mouth_moves_in_step_with_the_driving_mouth(
    rendered: Path, clip: Clip, character: Character
) -> None:
    driven = mouth_opening(gray_frames(rendered), character.mouth, character.face_side)
    r = pearson(driven, clip.openings)
    assert r > 0.8, f"correlation {r:.2f}"
    # and by a visible amount: the driving jaw drops 9 photo px at most (200/512 here)
    assert driven.max() > 0.4 * 9 * character.face_side / 512


def test_everything_well_outside_the_face_is_the_character_picture(
    rendered: Path, character: Character
) -> None:
    pic = cv2.imread(str(character.path), cv2.IMREAD_GRAYSCALE).astype(np.int16)
    frames = {
        i: cv2.cvtColor(f, cv2.COLOR_RGB2GRAY).astype(np.int16)
        for i, f in rgb_frames(rendered, {0, 12, 36}).items()
    }
    # the warped region is 2.6 face boxes (~96 px here) around the face at x≈228
    outside = np.zeros(pic.shape, bool)
    outside[:, :120] = outside[:, 340:] = True
    for i in (12, 36):  # mouth wide open, and again
        assert np.abs(frames[i] - frames[0])[outside].mean() < 0.5  # nothing there moves
    # frame 0 is the picture itself there: no shift, scale or tint, only compression noise
    # (judged against the picture moved by one pixel, which the same noise cannot explain)
    err = {
        (dx, dy): np.abs(np.roll(pic, (dy, dx), axis=(0, 1)) - frames[0])[outside].mean()
        for dx in (-1, 0, 1)
        for dy in (-1, 0, 1)
    }
    nearest_other = min(v for k, v in err.items() if k != (0, 0))
    assert err[(0, 0)] < 0.7 * nearest_other, err
    assert err[(0, 0)] < 3


def test_ratio_option_sets_the_output_size(
    clip: Clip, character: Character, tmp_path: Path
) -> None:
    out = tmp_path / "r.mp4"
    result = render(clip.path, character.path, out, TaskOptions(ratio="320:320"))
    assert (result.width, result.height) == (320, 320)
    assert (facts(out).width, facts(out).height) == (320, 320)


def test_phone_video_with_rotation_matrix_is_read_upright(
    character: Character, tmp_path: Path
) -> None:
    video = make_video(tmp_path / "phone.mp4", size=(216, 384), seconds=1, rotation=90)
    out = tmp_path / "out.mp4"
    result = render(video, character.path, out)  # no face would be found sideways
    assert result.frames == facts(video).frames


def test_non_mp4_audio_is_converted_to_aac(character: Character, tmp_path: Path) -> None:
    video = tmp_path / "pcm.mov"
    make_driving_clip(video, seconds=1.0, audio="pcm_s16le")
    out = tmp_path / "out.mp4"
    render(video, character.path, out)
    got = facts(out)
    assert got.audio_codec == "aac"
    assert got.audio_seconds == pytest.approx(1.0, abs=0.1)
    # The tone starts with the first frame: the encoder's priming samples are marked and
    # skipped, not played first (they used to put the sound 43 ms late).
    with av.open(str(out)) as c:
        first = next(c.decode(audio=0)).to_ndarray()[0, :256]
    assert float(np.sqrt(np.mean(first**2))) > 0.05


def test_clip_without_audio_gives_silent_output(character: Character, tmp_path: Path) -> None:
    video = tmp_path / "silent.mp4"
    make_driving_clip(video, seconds=0.5, audio=None)
    out = tmp_path / "out.mp4"
    render(video, character.path, out)
    assert facts(out).audio_codec is None
    assert facts(out).frames == 12


def test_driving_clip_without_a_face_fails_with_a_sentence(
    faceless_clip: Path, character: Character, tmp_path: Path
) -> None:
    out = tmp_path / "out.mp4"
    with pytest.raises(InputError, match=r"No face was found .* driving video"):
        render(faceless_clip, character.path, out)
    assert not out.exists()  # no half-written file left behind


def test_character_image_without_a_face_fails_with_a_sentence(
    clip: Clip, faceless_image: Path, tmp_path: Path
) -> None:
    with pytest.raises(InputError, match=r"No face was found in the character image"):
        render(clip.path, faceless_image, tmp_path / "out.mp4")


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_bad_corpus(tmp_path_factory.mktemp("bad"))


@pytest.mark.parametrize(
    "name",
    ["zero_bytes", "truncated_mp4", "html_as_mp4", "png_as_mp4", "random_bytes", "weird_name"],
)
def test_broken_driving_files_fail_with_a_sentence(
    name: str, bad_files: dict[str, Path], character: Character, tmp_path: Path
) -> None:
    out = tmp_path / "out.mp4"
    with pytest.raises(InputError) as err:
        render(bad_files[name], character.path, out)
    assert str(err.value).endswith(".")
    assert not out.exists()


@pytest.mark.parametrize("name", ["zero_bytes", "html_as_mp4", "png_bomb", "random_bytes"])
def test_broken_character_images_fail_with_a_sentence(
    name: str, bad_files: dict[str, Path], clip: Clip, tmp_path: Path
) -> None:
    with pytest.raises(InputError) as err:
        render(clip.path, bad_files[name], tmp_path / "out.mp4")
    assert str(err.value).endswith(".")


def test_unreadable_character_image_fails_with_a_sentence(clip: Clip, tmp_path: Path) -> None:
    fake = tmp_path / "fake.png"
    fake.write_text("not an image")
    with pytest.raises(InputError, match="could not be read"):
        render(clip.path, fake, tmp_path / "out.mp4")


@pytest.mark.parametrize(
    ("size", "ratio", "expected"),
    [
        ((1920, 1080), None, (1280, 720)),
        ((1080, 1920), None, (720, 1280)),
        ((4000, 3000), None, (960, 720)),
        ((1000, 1000), None, (720, 720)),
        ((481, 271), None, (480, 270)),  # even, never upscaled
        ((640, 360), "1280:720", (1280, 720)),
        ((640, 360), "3840:2160", (1920, 1080)),
    ],
)
def test_output_size_follows_the_picture_within_caps(
    size: tuple[int, int], ratio: str | None, expected: tuple[int, int]
) -> None:
    assert output_size(*size, ratio, FramingConfig()) == expected


def test_output_caps_come_from_the_config() -> None:
    small = FramingConfig(cap_long=640, cap_short=360, ratio_cap_long=800)
    assert output_size(1920, 1080, None, small) == (640, 360)
    assert output_size(1080, 1920, None, small) == (360, 640)
    assert output_size(640, 360, "1280:720", small) == (800, 450)


def test_a_clip_shorter_than_the_face_search_still_renders(tmp_path: Path) -> None:
    """A 1 s clip at 8 fps with a face too small for the landmark model: the flow fallback
    gets its turn within the clip's 8 frames, not only after the 2 s search window."""
    video = make_video(tmp_path / "short.mp4", size=(160, 90), seconds=1.0, fps=8, audio=True)
    image = make_image(tmp_path / "char.png", size=(160, 90), face_scale=1.0)
    result = render(video, image, tmp_path / "out.mp4")
    assert result.frames == 8
    assert facts(result.path).frames == 8


def test_a_rigid_accessory_moved_by_a_fraction_of_a_pixel_keeps_its_edges_clean() -> None:
    """The glasses layer is laid back moved by the head; where its mask reaches the edge of
    its box, what lies past the box must not bleed in (it did as black luma and green
    chroma: a line beside the nose on a face with glasses)."""
    from services.engine.config import WarpConfig
    from services.engine.framing import Square
    from services.engine.warp import FaceWarper

    w, h = 160, 120
    i420 = np.empty((h * 3 // 2, w), np.uint8)
    i420[:h] = 120  # grey, neutral chroma
    i420[h:] = 128
    warper = FaceWarper(i420, (w, h), Square(80, 60, 80), Square(80, 60, 100), 32, WarpConfig())
    box = (50, 40, 110, 80)  # the mask fills it, up to every edge
    mask = np.ones((box[3] - box[1], box[2] - box[0]), np.float32)
    warper.overlay(i420, mask, box, 1 + 0j, 0.4 + 0.3j)
    out = warper.frame.astype(np.int16)
    assert np.abs(out[:h] - 120).max() <= 1
    assert np.abs(out[h:] - 128).max() <= 1

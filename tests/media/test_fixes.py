"""apply_fix(): each fix writes a new file that then passes the check it fixed."""

from __future__ import annotations

import hashlib
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from services.errors import InputError
from services.media import CheckReport, FixId, apply_fix, probe, run_checks
from services.media.fixes import crop_box, pad_size
from services.models import MediaRole, ProviderCapabilities
from tests.mediagen import make_video

V = MediaRole.DRIVING_VIDEO
I = MediaRole.CHARACTER_IMAGE  # noqa: E741
COMET = ProviderCapabilities(id="cometapi", name="CometAPI", required_aspect="16:9")
ACT_TWO = ProviderCapabilities(
    id="runway", name="Runway Act-Two", reference_min_s=3.0, reference_max_s=30.0
)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def status(report: CheckReport, check_id: str, provider: str | None = None) -> str:
    return next(c.status for c in report.checks if c.id == check_id and c.provider == provider)


@pytest.mark.parametrize("clip", ["v9x16", "phone", "v4x3"])
@pytest.mark.parametrize("fix", ["crop_16_9", "pad_16_9"])
def test_video_to_16_9_then_passes(
    media: dict[str, Path], tmp_path: Path, clip: str, fix: str
) -> None:
    src = media[clip]
    before = digest(src)
    assert status(run_checks(src, V, [COMET]), "aspect", "cometapi") == "fail"
    out = apply_fix(src, fix, tmp_path)
    assert out.parent == tmp_path and out != src and out.suffix == ".mp4"
    assert digest(src) == before  # the user's file is never touched
    report = run_checks(out, V, [COMET])
    assert status(report, "aspect", "cometapi") == "ok", report.checks
    assert status(report, "faces") == "ok"  # the face survived the crop
    info, src_info = probe(out), probe(src)
    assert (info.codec, info.pixel_format, info.rotation) == ("h264", "yuv420p", 0)
    assert info.has_audio == src_info.has_audio
    assert info.duration_s == pytest.approx(src_info.duration_s, abs=0.15)


def test_crop_follows_the_face(tmp_path: Path) -> None:
    """9:16 clip with the face high up: the 16:9 window is cut around the face, not the
    middle (a centred window would cut the face off)."""
    src = make_video(tmp_path / "high.mp4", size=(180, 320), seconds=2.0, face_pos=(0.5, 0.3))
    out = apply_fix(src, "crop_16_9", tmp_path / "out")
    info = probe(out)
    assert (info.width, info.height) == (180, 102)
    report = run_checks(out, V, [])
    assert len(report.faces) == 1
    _, y, _, h = report.faces[0]
    assert abs((y + h / 2) - info.height / 2) < 0.2 * info.height


def test_crop_of_4_3_keeps_the_width(media: dict[str, Path], tmp_path: Path) -> None:
    info = probe(apply_fix(media["v4x3"], "crop_16_9", tmp_path))
    assert (info.width, info.height) == (240, 136)


def test_pad_keeps_the_whole_picture_and_blurs_the_sides(
    media: dict[str, Path], tmp_path: Path
) -> None:
    out = apply_fix(media["v9x16"], "pad_16_9", tmp_path)
    info = probe(out)
    assert (info.width, info.height) == (568, 320)
    with av.open(str(out)) as c:
        frame = next(c.decode(video=0)).to_ndarray(format="rgb24").astype(int)
    side = frame[:, :150]
    # Blurred fill: neither black bars nor sharp detail.
    assert side.mean() > 20
    assert np.abs(np.diff(side, axis=1)).mean() < 4


def test_trim_to_30s_then_passes_act_two(media: dict[str, Path], tmp_path: Path) -> None:
    src = media["long45s"]
    assert status(run_checks(src, V, [ACT_TWO]), "reference_duration", "runway") == "fail"
    out = apply_fix(src, "trim_30s", tmp_path)
    info = probe(out)
    assert 29.5 <= info.duration_s <= 30.0
    assert info.has_audio
    with av.open(str(out)) as c:
        a = c.streams.audio[0]
        assert float(a.duration * a.time_base) <= 30.05
    assert status(run_checks(out, V, [ACT_TWO]), "reference_duration", "runway") == "ok"


@pytest.mark.parametrize("clip", ["mpeg4", "vp9"])
def test_transcode_makes_browser_playable_h264(
    media: dict[str, Path], tmp_path: Path, clip: str
) -> None:
    src = media[clip]
    assert status(run_checks(src, V, []), "format") == "warn"
    out = apply_fix(src, "transcode_h264", tmp_path)
    info = probe(out)
    assert (info.container, info.codec, info.pixel_format) == ("mp4", "h264", "yuv420p")
    assert status(run_checks(out, V, []), "format") == "ok"
    # faststart: the moov box comes before the media data.
    data = out.read_bytes()
    assert 0 < data.find(b"moov") < data.find(b"mdat")


def test_transcode_keeps_audio_and_uprights_phone_clip(
    media: dict[str, Path], tmp_path: Path
) -> None:
    out = apply_fix(media["v9x16"], "transcode_h264", tmp_path)
    assert probe(out).audio_codec == "aac"
    upright = apply_fix(media["phone"], "transcode_h264", tmp_path)
    info = probe(upright)
    assert (info.width, info.height, info.rotation) == (180, 320, 0)
    assert len(run_checks(upright, V, []).faces) == 1  # upright pixels: the face is found


@pytest.mark.parametrize("image", ["i9x16_exif", "i4x3"])
@pytest.mark.parametrize("fix", ["crop_16_9", "pad_16_9"])
def test_image_to_16_9(media: dict[str, Path], tmp_path: Path, image: str, fix: str) -> None:
    src = media[image]
    before = digest(src)
    out = apply_fix(src, fix, tmp_path)
    assert digest(src) == before
    assert out.suffix == ".jpg"  # JPEG in, JPEG out
    report = run_checks(out, I, [COMET])
    assert status(report, "aspect", "cometapi") == "ok"
    assert status(report, "faces") == "ok"
    with Image.open(out) as img:
        assert img.getexif().get(0x0112) in (None, 1)  # orientation baked into the pixels


def test_png_stays_png(media: dict[str, Path], tmp_path: Path) -> None:
    out = apply_fix(media["i_twofaces"], "pad_16_9", tmp_path)
    assert out.suffix == ".png" and probe(out).container == "png"


def test_fixes_that_do_not_apply(media: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(InputError, match="only videos can be trimmed"):
        apply_fix(media["i16x9"], "trim_30s", tmp_path)
    with pytest.raises(InputError, match="Unknown fix 'sharpen'"):
        apply_fix(media["v16x9"], "sharpen", tmp_path)


def test_bad_file_fix_is_a_sentence(bad_files: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(InputError, match="damaged or incomplete"):
        apply_fix(bad_files["truncated_mp4"], "transcode_h264", tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_fix_ids_are_listed() -> None:
    assert set(FixId) == {"crop_16_9", "pad_16_9", "trim_30s", "transcode_h264"}
    assert all(fix.label for fix in FixId), "every fix has a button label"


def test_geometry() -> None:
    box = crop_box(1080, 1920, (540, 300))
    assert (box.w, box.h) == (1080, 608) and box.y == 0  # clamped at the top
    box = crop_box(1440, 1080, (100, 540))
    assert (box.w, box.h, box.x) == (1440, 810, 0)
    box = crop_box(2560, 1080, None)
    assert (box.w, box.h, box.x) == (1920, 1080, 320)
    assert pad_size(1080, 1920) == (3414, 1920)
    assert pad_size(2560, 1080) == (2560, 1440)

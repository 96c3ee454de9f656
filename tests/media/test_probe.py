"""probe(): facts from metadata, and a sentence for every file that is not usable media."""

from __future__ import annotations

import os
from pathlib import Path

import av
import pytest

from services.errors import InputError
from services.media import probe
from tests import mediagen


def test_16_9_clip_with_audio(media: dict[str, Path]) -> None:
    info = probe(media["v16x9"])
    assert info.kind == "video"
    assert (info.container, info.codec, info.mime) == ("mp4", "h264", "video/mp4")
    assert (info.width, info.height, info.rotation) == (320, 180, 0)
    assert info.display_aspect == pytest.approx(16 / 9)
    assert info.aspect_label == "16:9"
    assert info.fps == pytest.approx(10)
    assert info.duration_s == pytest.approx(4.0, abs=0.05)
    assert info.frame_count == 40
    assert info.has_audio and info.audio_codec == "aac"
    assert info.pixel_format == "yuv420p"
    assert info.size_bytes == media["v16x9"].stat().st_size


def test_silent_clip_has_no_audio(media: dict[str, Path]) -> None:
    info = probe(media["v16x9_silent"])
    assert not info.has_audio and info.audio_codec is None


def test_portrait_and_4_3(media: dict[str, Path]) -> None:
    assert probe(media["v9x16"]).aspect_label == "9:16"
    assert probe(media["v4x3"]).aspect_label == "4:3"


def test_phone_rotation_swaps_display_size(media: dict[str, Path]) -> None:
    info = probe(media["phone"])
    # Stored 320x180 with a display matrix: shown as a 180x320 portrait.
    with av.open(str(media["phone"])) as c:
        cc = c.streams.video[0].codec_context
        assert (cc.width, cc.height) == (320, 180)
    assert (info.width, info.height) == (180, 320)
    assert info.rotation in (90, 270)
    assert info.display_aspect == pytest.approx(9 / 16)


def test_long_clip_duration(media: dict[str, Path]) -> None:
    info = probe(media["long45s"])
    assert info.duration_s == pytest.approx(45.0, abs=0.1)
    assert info.frame_count == 450


def test_image_and_exif_orientation(media: dict[str, Path]) -> None:
    png = probe(media["i16x9"])
    assert (png.kind, png.container, png.mime) == ("image", "png", "image/png")
    assert (png.width, png.height) == (640, 360)
    assert png.duration_s is None and png.fps is None
    jpg = probe(media["i9x16_exif"])
    assert jpg.container == "jpeg"
    assert (jpg.width, jpg.height) == (360, 640)  # stored 640x360, EXIF orientation 6
    assert jpg.rotation == 90


def test_other_codecs(media: dict[str, Path]) -> None:
    assert probe(media["mpeg4"]).codec == "mpeg4"
    webm = probe(media["vp9"])
    assert (webm.container, webm.codec) == ("webm", "vp9")


def test_weird_path_is_fine(weird_clip: Path) -> None:
    assert ".." in weird_clip.parts
    info = probe(weird_clip)
    assert info.kind == "video" and info.width == 160


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("zero_bytes", "is empty (0 bytes)"),
        ("truncated_mp4", "damaged or incomplete"),
        ("html_as_mp4", "is a web page (HTML)"),
        ("png_as_mp4", "named like a video (.mp4) but is a PNG image"),
        ("random_bytes", "not a video or image this app can read"),
        ("png_bomb", "declares 60000×60000 pixels"),
        ("weird_name", "not a video or image this app can read"),
    ],
)
def test_bad_files_raise_a_sentence(bad_files: dict[str, Path], name: str, fragment: str) -> None:
    with pytest.raises(InputError) as err:
        probe(bad_files[name])
    sentence = str(err.value)
    assert fragment in sentence
    assert bad_files[name].name in sentence  # names the file, non-ASCII intact
    assert sentence.rstrip().endswith(".")
    assert "Traceback" not in sentence


def test_gif_probes_as_animated_image(bad_files: dict[str, Path]) -> None:
    info = probe(bad_files["gif"])
    assert (info.kind, info.container, info.animated) == ("image", "gif", True)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        probe(tmp_path / "nope.mp4")


def test_directory_is_not_a_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="is not a file"):
        probe(tmp_path)


def test_truncated_faststart_file_detected_from_its_index(tmp_path: Path) -> None:
    """moov in front, so the header opens fine; the index points past the end of the file."""
    clip = mediagen.make_video(tmp_path / "src.mp4", size=(160, 90), seconds=3.0)
    fast = tmp_path / "fast.mp4"
    with (
        av.open(str(clip)) as src,
        av.open(str(fast), "w", format="mp4", options={"movflags": "+faststart"}) as out,
    ):
        s_in = src.streams.video[0]
        s_out = out.add_stream_from_template(s_in)
        for packet in src.demux(s_in):
            if packet.dts is None:
                continue
            packet.stream = s_out
            out.mux(packet)
    assert probe(fast).duration_s == pytest.approx(3.0, abs=0.1)
    cut = tmp_path / "cut.mp4"
    data = fast.read_bytes()
    cut.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(InputError, match="incomplete"):
        probe(cut)


def test_probe_does_not_read_the_whole_file(tmp_path: Path) -> None:
    """A clip followed by 64 MB of padding in a 'free' box: probing reads headers only."""
    clip = mediagen.make_video(tmp_path / "c.mp4", size=(160, 90), seconds=2.0)
    pad = 64 * 1024 * 1024
    with clip.open("ab") as fh:
        fh.write((pad + 8).to_bytes(4, "big") + b"free")
        fh.truncate(fh.tell() + pad)  # sparse: no 64 MB actually written
    before = _read_bytes()
    info = probe(clip)
    assert info.size_bytes > pad
    if before is not None:
        assert _read_bytes() - before < 8 * 1024 * 1024


def _read_bytes() -> int | None:
    try:
        with open(f"/proc/{os.getpid()}/io") as fh:
            for line in fh:
                if line.startswith("rchar:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def test_damaged_image(media: dict[str, Path], tmp_path: Path) -> None:
    data = media["i16x9"].read_bytes()
    cut = tmp_path / "cut.png"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="cannot be decoded"):
        probe(cut)

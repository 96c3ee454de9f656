"""One list of file names the app opens (services.media.sniff), and it agrees with what the
bundled decoders read: every listed name round-trips through a real file and probe()."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.errors import InputError
from services.media import probe, run_checks
from services.media.sniff import IMAGE_EXTS, SNIFF_BYTES, VIDEO_EXTS, sniff
from services.models import MediaRole
from tests.mediagen import make_image, make_video


@pytest.mark.parametrize("ext", IMAGE_EXTS)
def test_every_image_name_opens(tmp_path: Path, ext: str) -> None:
    path = make_image(tmp_path / f"still{ext}", size=(64, 48), face=False)
    assert sniff(path.read_bytes()[:SNIFF_BYTES]).kind == "image"
    info = probe(path)
    assert (info.kind, info.width, info.height) == ("image", 64, 48)


@pytest.mark.parametrize("ext", VIDEO_EXTS)
def test_every_video_name_opens(tmp_path: Path, ext: str) -> None:
    codec = "libvpx" if ext == ".webm" else "libx264"
    path = make_video(tmp_path / f"clip{ext}", size=(64, 48), seconds=0.5, face=False, codec=codec)
    found = sniff(path.read_bytes()[:SNIFF_BYTES])
    assert found.kind == "video" and found.ext in VIDEO_EXTS
    info = probe(path)
    assert (info.kind, info.width, info.height) == ("video", 64, 48)


def test_avif_opens_and_the_check_says_what_providers_take(tmp_path: Path) -> None:
    path = make_image(tmp_path / "face.avif", size=(64, 48), face=False)
    [fmt] = [c for c in run_checks(path, MediaRole.CHARACTER_IMAGE, []).checks if c.id == "format"]
    assert fmt.status == "fail"
    assert fmt.sentence.startswith("'face.avif' is an AVIF image; providers take PNG, JPEG or WebP")


def test_heic_is_recognised_but_not_an_image_name(tmp_path: Path) -> None:
    # Pillow has no HEIF decoder, so HEIC is not listed; a HEIC file is told to be exported.
    assert ".heic" not in IMAGE_EXTS
    path = tmp_path / "photo.heic"
    path.write_bytes(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(200))
    assert sniff(path.read_bytes()).ext == ".heic"
    with pytest.raises(InputError, match="HEIC image, a format this app cannot read"):
        probe(path)

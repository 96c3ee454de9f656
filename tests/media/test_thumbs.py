"""thumbnail(): first frame, upright, small, face boxed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from services.errors import InputError
from services.media import thumbnail
from services.media.thumbs import BOX_COLOUR


def _box_pixels(img: Image.Image) -> int:
    arr = np.asarray(img).astype(int)
    return int((np.abs(arr - np.array(BOX_COLOUR)).sum(axis=2) < 30).sum())


def test_video_thumbnail_is_upright_and_boxed(media: dict[str, Path]) -> None:
    img = thumbnail(media["phone"], max_side=160)
    assert img.size == (90, 160)  # portrait, as displayed
    assert _box_pixels(img) > 50


def test_image_thumbnail_respects_exif_and_max_side(media: dict[str, Path]) -> None:
    img = thumbnail(media["i9x16_exif"], max_side=200)
    assert max(img.size) <= 200 and img.size[1] > img.size[0]
    assert _box_pixels(img) > 50


def test_without_faces_no_box(media: dict[str, Path]) -> None:
    assert _box_pixels(thumbnail(media["v16x9"], faces=False)) == 0


def test_bad_file(bad_files: dict[str, Path]) -> None:
    with pytest.raises(InputError):
        thumbnail(bad_files["html_as_mp4"])

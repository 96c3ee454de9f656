"""The picture the UI shows beside the checks: first frame, upright, face boxed."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

from services.media import faces as face_mod
from services.media.frames import samples
from services.media.metadata import open_media

BOX_COLOUR = (40, 220, 90)


def thumbnail(path: Path | str, faces: bool = True, max_side: int = 480) -> Image.Image:
    """First frame (or the image), upright, longer side ≤ max_side, faces outlined.

    Raises InputError with a sentence for a file that cannot be read.
    """
    with open_media(Path(path)) as opened:
        sample = samples(opened, [0.0], max_side)[0]
    img = Image.fromarray(sample.rgb)
    if faces:
        draw = ImageDraw.Draw(img)
        width = max(2, round(max(img.size) / 160))
        for x, y, w, h in face_mod.detect(sample.rgb):
            draw.rectangle((x, y, x + w, y + h), outline=BOX_COLOUR, width=width)
    return img

"""The picture the UI shows beside the checks: first frame, upright, face boxed."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

from services.face import search as face_search
from services.media import faces as face_mod
from services.media.frames import samples
from services.media.metadata import open_media

BOX_COLOUR = (40, 220, 90)
DETECT_SIDE = 480


def thumbnail(path: Path | str, faces: bool = True, max_side: int = 480) -> Image.Image:
    """First frame (or the image), upright, longer side ≤ max_side, faces outlined.

    Raises InputError with a sentence for a file that cannot be read.
    """
    side = max(max_side, DETECT_SIDE)
    # The image is shrunk to what is shown as soon as it is decoded: no full-size copies.
    with open_media(Path(path), image_max_side=side) as opened:
        # Faces are searched at the checks' size even for a tiny thumbnail: small faces
        # vanish below the cascade's 24-pixel window.
        sample = samples(opened, [0.0], side)[0]
    img = Image.fromarray(sample.rgb)
    boxes = face_search.detect(sample.rgb) if faces else []
    if max(img.size) > max_side:
        factor = max_side / max(img.size)
        img = img.resize(
            (max(1, round(img.width * factor)), max(1, round(img.height * factor))),
            Image.Resampling.LANCZOS,
        )
        boxes = [face_mod.scale_box(b, factor) for b in boxes]
    if boxes:
        draw = ImageDraw.Draw(img)
        width = max(2, round(max(img.size) / 160))
        for x, y, w, h in boxes:
            draw.rectangle((x, y, x + w, y + h), outline=BOX_COLOUR, width=width)
    return img

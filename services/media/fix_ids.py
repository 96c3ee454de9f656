"""The one-click fixes by id, and what a button calls each.

Apart from fixes.py on purpose: checks, the page and the CLI name fixes without loading the
PyAV/OpenCV code that applies them.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import PurePath


class FixId(StrEnum):
    CROP_16_9 = "crop_16_9"
    PAD_16_9 = "pad_16_9"
    TRIM_30S = "trim_30s"
    TRANSCODE_H264 = "transcode_h264"

    @property
    def label(self) -> str:
        return FIX_LABELS[self]

    def name_for(self, name: str, ext: str) -> str:
        """The fixed file's name: the creator's own with the fix added, so files and check
        sentences read "phone-clip-cropped.mp4" (the page and `reenact fix` alike)."""
        return f"{PurePath(name).stem}-{FIX_SUFFIXES[self]}{ext}"


# Button-sized names. Crop and pad get their output size appended (fixes.fix_label), so the
# creator knows before clicking what the file will become.
FIX_LABELS: dict[FixId, str] = {
    FixId.CROP_16_9: "Crop to 16:9",
    FixId.PAD_16_9: "Pad to 16:9",
    FixId.TRIM_30S: "Trim to 30 s",
    FixId.TRANSCODE_H264: "Convert to H.264",
}
FIX_SUFFIXES: dict[FixId, str] = {
    FixId.CROP_16_9: "cropped",
    FixId.PAD_16_9: "padded",
    FixId.TRIM_30S: "trimmed",
    FixId.TRANSCODE_H264: "h264",
}
# The fixes that change the frame's shape: the only ones an image takes, and the ones whose
# output size depends on the input (so their labels carry it).
ASPECT_FIXES = frozenset({FixId.CROP_16_9, FixId.PAD_16_9})

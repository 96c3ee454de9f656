"""Media probing, checks and one-click fixes.

The public names are imported lazily: `services.media.sniff` (used by the download path)
must not pull in OpenCV and PyAV.

    probe(path) -> MediaInfo
    run_checks(path, role, capabilities, *, source="path") -> CheckReport
    thumbnail(path, faces=True, max_side=480) -> PIL.Image.Image
    apply_fix(path, fix, out_dir) -> Path  (fix: a FixId)
    check_inputs(items, provider_ids, settings) -> list[InputReport]
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from services.media.checks import Check, CheckReport, run_checks
    from services.media.fix_ids import FixId
    from services.media.fixes import apply_fix
    from services.media.inputs import InputReport, check_inputs
    from services.media.metadata import MediaInfo, probe
    from services.media.thumbs import thumbnail

_LAZY = {
    "MediaInfo": "metadata",
    "probe": "metadata",
    "Check": "checks",
    "CheckReport": "checks",
    "run_checks": "checks",
    "thumbnail": "thumbs",
    "FixId": "fix_ids",
    "apply_fix": "fixes",
    "InputReport": "inputs",
    "check_inputs": "inputs",
}

__all__ = [
    "Check",
    "CheckReport",
    "FixId",
    "InputReport",
    "MediaInfo",
    "apply_fix",
    "check_inputs",
    "probe",
    "run_checks",
    "thumbnail",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'services.media' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"services.media.{module}"), name)
    globals()[name] = value
    return value

"""`reenact fix PATH... --crop-16-9 | --pad-16-9 | --trim | --transcode [--out DIR]`.

The Create page's one-click fixes for scripts: the same `apply_fix`, the same sentences (the
checks that offer the fix, the fix's own refusals), the page's names ("take-cropped.mp4",
beside the input or in --out) and never over an existing file. Each new file's facts are
printed and its checks run again, with `check`'s exit codes: 0 ready, 1 an input refused or
a check still failing, 2 usage. A fix that would change nothing (cropping a 16:9 clip,
trimming a 12 s one) writes nothing and says so; under --json `path` is then the input, so a
script can always go on with `path`.

Imports stay light until a fix runs: `reenact --help` must not load PyAV or OpenCV.
"""

from __future__ import annotations

import argparse
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from services.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, CliExit, Ctx, _out_dir, _provider_list
from services.media.fix_ids import FixId

if TYPE_CHECKING:
    from services.media.checks import CheckReport
    from services.media.metadata import MediaInfo
    from services.models import ProviderCapabilities

# Flag → fix. Help says what the page's button does.
FLAGS: dict[str, tuple[FixId, str]] = {
    "--crop-16-9": (FixId.CROP_16_9, "crop to 16:9 around the face (videos: at most 1280×720)"),
    "--pad-16-9": (FixId.PAD_16_9, "pad to 16:9 with a blurred fill (videos: at most 1280×720)"),
    "--trim": (FixId.TRIM_30S, "keep the first 30 s"),
    "--transcode": (FixId.TRANSCODE_H264, "convert to H.264 MP4 (a proper header, 4:2:0)"),
}


class Offer(BaseModel):
    """A check that offered this fix: what the page shows beside the button."""

    provider: str | None = None
    status: str
    sentence: str


class FixResult(BaseModel):
    """One input's outcome (the --json document is a list of these, in input order)."""

    input: str
    fix: FixId
    fixed: bool = False  # a new file was written
    path: str | None = None  # the file to go on with: the new one, or the input if unchanged
    label: str | None = None  # the page's button label, "Crop to 16:9 → 1280×720"
    offered_by: list[Offer] = Field(default_factory=list)
    sentence: str | None = None  # why nothing was written (refused, or nothing to do)
    info: MediaInfo | None = None  # the new file's facts
    report: CheckReport | None = None  # the checks, run again on the new file
    failed: bool = False


def register(
    add: Callable[[str, Callable[[Ctx], int], str], argparse.ArgumentParser],
    json_flag: Callable[[argparse.ArgumentParser], None],
) -> None:
    p = add(
        "fix",
        cmd_fix,
        "apply one of the Create page's fixes to videos or images, writing new files",
    )
    p.epilog = (
        "Each new file is named after its input (take-cropped.mp4) and checked again. A fix "
        "that would change nothing writes nothing. Exit codes: 0 ready, 1 an input refused or "
        "still failing a check, 2 usage."
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="video or image files")
    which = p.add_mutually_exclusive_group(required=True)
    for flag, (fix, help_) in FLAGS.items():
        which.add_argument(flag, dest="fix", action="store_const", const=fix, help=help_)
    p.add_argument(
        "--out",
        metavar="DIR",
        help="folder to write to (default: beside each input); existing files are never replaced",
    )
    p.add_argument(
        "--provider",
        metavar="ID",
        help="check against this provider's limits too, before and after (comma-separate several)",
    )
    json_flag(p)


def cmd_fix(ctx: Ctx) -> int:
    from services.links import looks_like_link
    from services.media.checks import CheckReport
    from services.media.inputs import capabilities_for
    from services.media.metadata import MediaInfo

    # Its media fields name PyAV/OpenCV-backed models, loaded only now (see the docstring).
    FixResult.model_rebuild(_types_namespace={"MediaInfo": MediaInfo, "CheckReport": CheckReport})
    args = ctx.args
    fix: FixId = args.fix
    out = _out_dir(args.out)
    for item in args.paths:
        if looks_like_link(item):
            raise CliExit(
                EXIT_USAGE,
                f"reenact fix works on files on this computer, and {item} is a link: download "
                "it, then fix the file.",
            )
    ids = _provider_list(args.provider) if args.provider else []
    caps = capabilities_for(ids, ctx.settings)  # an unknown id: ConfigError, exit 2
    results = [_fix_one(ctx, Path(item).expanduser(), item, fix, caps, out) for item in args.paths]
    if ctx.json:
        ctx.emit([r.model_dump(mode="json") for r in results])
    return EXIT_FAILED if any(r.failed for r in results) else EXIT_OK


def _fix_one(
    ctx: Ctx,
    path: Path,
    given: str,
    fix: FixId,
    caps: list[ProviderCapabilities],
    out: Path | None,
) -> FixResult:
    from services.errors import InputError
    from services.media.checks import check_file, sentence_name
    from services.media.fixes import fix_label, output_suffix

    result = FixResult(input=given, fix=fix)
    before = check_file(path, None, caps, source="path")
    name = sentence_name(path)
    info = before.info
    if info is None:  # unreadable: the check's own sentence says why
        return _refused(ctx, result, before.failing()[0].sentence)
    offers = [c for c in before.checks if fix in c.fixes]
    result.offered_by = [
        Offer(provider=c.provider, status=c.status, sentence=c.sentence) for c in offers
    ]
    result.label = fix_label(fix, info.width, info.height, info.kind)
    if not offers and (nothing := _nothing_to_do(fix, info, name)):
        # The input is the file to go on with: its facts and checks, as for a new one.
        ctx.out(f"{given}: {nothing}")
        result.sentence = nothing
        return _done(ctx, result, path.resolve(), before)

    folder = out if out is not None else path.parent
    dest = folder / fix.name_for(path.name, output_suffix(info))
    if dest.exists():
        return _refused(ctx, result, _exists(dest, out is None))
    for offer in result.offered_by:
        who = f"{offer.provider}: " if offer.provider else ""
        ctx.out(f"{given}: {who}{offer.sentence}")
    ctx.note(f"{result.label} — {name}…")
    try:
        made = _write_new(path, fix, dest)
    except InputError as err:  # the fix's own sentence (an image cannot be trimmed, …)
        return _refused(ctx, result, str(err))
    except FileExistsError:  # made meanwhile by someone else: still never replaced
        return _refused(ctx, result, _exists(dest, out is None))
    result.fixed = True
    ctx.out(f"Wrote {made}")
    return _done(ctx, result, made, check_file(made, before.role, caps, source="path"))


def _done(ctx: Ctx, result: FixResult, path: Path, report: CheckReport) -> FixResult:
    result.path, result.info, result.report = str(path), report.info, report
    result.failed = report.failed
    if report.info is not None:
        ctx.out(f"  {facts(report.info)}")
    ctx.out(_checks_text(path, report))
    return result


def _refused(ctx: Ctx, result: FixResult, sentence: str) -> FixResult:
    ctx.note(f"{result.input}: {sentence}")
    result.sentence, result.failed = sentence, True
    return result


def _exists(dest: Path, beside_input: bool) -> str:
    where = "choose another folder with --out" if beside_input else "choose another --out"
    return f"{dest} already exists and is never replaced: move it away, or {where}."


def _nothing_to_do(fix: FixId, info: MediaInfo, name: str) -> str | None:
    """The sentence when the file already has what the fix makes (and no check asked for
    it); None when the fix would change the file."""
    from services.media.checks import browser_ready
    from services.media.fixes import TRIM_SECONDS, crop_box

    w, h = info.width, info.height
    if fix is FixId.CROP_16_9 or fix is FixId.PAD_16_9:
        box = crop_box(w, h, None)  # the whole (even-sided) frame when it is 16:9 already
        if (box.w, box.h) == (w - w % 2, h - h % 2):
            verb = "crop" if fix is FixId.CROP_16_9 else "pad"
            return f"{name} is already 16:9 ({w}×{h}); nothing to {verb}, nothing written."
        return None
    if fix is FixId.TRIM_30S:
        d = info.duration_s if info.kind == "video" else None
        if d is not None and d <= TRIM_SECONDS + 0.05:
            return (
                f"{name} lasts {d:.1f} s, already within {TRIM_SECONDS:g} s; nothing to trim, "
                "nothing written."
            )
        return None
    if browser_ready(info):  # and no check offered the conversion: the header is sound
        return (
            f"{name} is already {info.container.upper()} H.264 video that browsers and "
            "providers take as it is; nothing to convert, nothing written."
        )
    return None


def _write_new(path: Path, fix: FixId, dest: Path) -> Path:
    """Run the fix into a work folder beside `dest` and give the result its name without
    ever replacing a file (a hard link fails on an existing name; so does an exclusive
    create where links are not possible)."""
    from services.media.fixes import apply_fix

    dest.parent.mkdir(parents=True, exist_ok=True)
    work = dest.parent / f".reenact-fix-{uuid.uuid4().hex}"
    try:
        made = apply_fix(path, fix, work)
        try:
            os.link(made, dest)
        except FileExistsError:
            raise
        except OSError:
            with made.open("rb") as src, dest.open("xb") as dst:
                shutil.copyfileobj(src, dst)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return dest.resolve()


def facts(info: MediaInfo) -> str:
    """One line of what a file is: 1280×720 · 12.0 s · 30 fps · H264 · AAC audio · 2.1 MB."""
    parts = [f"{info.width}×{info.height}"]
    if info.kind == "video":
        if info.duration_s:
            parts.append(f"{info.duration_s:.1f} s")
        if info.fps:
            parts.append(f"{info.fps:.3g} fps")
    parts.append(info.codec.upper())
    if info.kind == "video":
        parts.append(f"{info.audio_codec.upper()} audio" if info.audio_codec else "no audio")
    size = info.size_bytes
    parts.append(f"{size / 1e6:.1f} MB" if size >= 1e6 else f"{size / 1e3:.0f} KB")
    return " · ".join(parts)


def _checks_text(path: Path, report: CheckReport) -> str:
    from services.cli_output import check_text
    from services.media.inputs import InputReport

    return check_text(
        [InputReport(input=str(path), role=report.role, path=str(path), report=report)]
    )

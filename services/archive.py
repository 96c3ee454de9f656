"""Archiving a finished task's result into the data dir, so expiring provider links never
matter: `results/<task_id>/result.mp4`, written through a `.part` file and renamed atomically.

HTTP(S) results are streamed by `services.fetch.download` (size and type checked, retries,
expired links → a sentence). The local engine hands over a `file://` URI instead: that file is
copied, and only from inside the data dir, so a task row can never make the app read (and then
serve) an arbitrary file on this machine.

Sound on every result: a result that came without an audio track gets the driving clip's
sound (services/media/remux.py: video packets copied, audio aligned and cut), and the
provider's file stays beside it as `original.mp4`. Whether to do it is the submitter's
choice recorded on the task (`--no-sound`), else the owner's Settings switch (on unless
turned off). Whatever happens — added, not wanted, nothing to add, a failure — is one
sentence on the task (`Task.meta["sound"]`), and a failure never fails the task: the
provider's result is archived as it came.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

from services.config import Settings
from services.errors import (
    DiskFullError,
    ErrorKind,
    InputError,
    ProviderError,
    ensure_free_space,
    is_disk_full,
)
from services.links import is_web_link
from services.models import Task

if TYPE_CHECKING:
    import httpx

    from services.store import Store

log = logging.getLogger("reenact.archive")

RESULT_NAME = "result.mp4"
ORIGINAL_NAME = "original.mp4"  # the provider's file, when the app added sound to it
# Task.meta: the submitter's choice (False: keep the provider's result as it came) …
SOUND_CHOICE = "add_sound"
# … and what happened at archive time: {"added": bool, "note": sentence}.
SOUND_NOTE = "sound"
# Act-Two outputs are at most 30 s; a generous cap still stops a runaway or hostile answer.
MAX_RESULT_BYTES = 2 * 1024 * 1024 * 1024


def result_dest(settings: Settings, task_id: str) -> Path:
    return settings.results_dir / task_id / RESULT_NAME


def fetch_result(
    url: str, task_id: str, settings: Settings, *, client: httpx.Client | None = None
) -> Path:
    """Put the result behind `url` at `result_dest(...)` and return that path; `client`
    (fetch.download_client) keeps connections open across many results.

    Raises ProviderError (retryable or not — an expired link is NOT_FOUND and not retryable),
    InputError (a web page or garbage instead of a video) or DiskFullError (no room: nothing
    is left behind, and it works once space is freed) with the sentence to show.
    """
    dest = result_dest(settings, task_id)
    if url.lower().startswith("file:"):
        return _copy_local(url, dest, settings)
    if not is_web_link(url):
        raise InputError(f"The provider gave a result link this app cannot fetch: {url[:80]}")
    from services.fetch import download  # httpx only when there is something to download

    return download(url, dest, settings, max_bytes=MAX_RESULT_BYTES, expect="video", client=client)


def _copy_local(url: str, dest: Path, settings: Settings) -> Path:
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise InputError("The result is a file on another machine; it cannot be archived.")
    source = Path(url2pathname(unquote(parts.path)))
    # Only the local engine's work area: a remote provider answering with file:// must not be
    # able to make this app "archive" someone's upload or the database.
    root = settings.work_dir.resolve()
    try:
        real = source.resolve(strict=True)
    except (OSError, RuntimeError) as exc:
        raise ProviderError(
            ErrorKind.NOT_FOUND,
            "The local engine's output file is gone, so the result cannot be archived. "
            "Run the task again.",
        ) from exc
    if not real.is_relative_to(root) or not real.is_file():
        raise InputError(
            "The result file is outside the local engine's work folder (outside the data "
            "folder's work area), so it was not archived."
        )
    from services.media.sniff import SNIFF_BYTES, sniff

    with real.open("rb") as fh:
        found = sniff(fh.read(SNIFF_BYTES))
    if found.kind != "video":
        raise InputError(f"The local engine's output is {found.describe()}, not a video.")
    size = real.stat().st_size
    if size > MAX_RESULT_BYTES:
        raise InputError("The local engine's output is too large to archive.")
    part = dest.with_suffix(".part")
    try:
        ensure_free_space(dest.parent, size)
        dest.parent.mkdir(parents=True, exist_ok=True)
        with real.open("rb") as src, part.open("wb") as out:
            shutil.copyfileobj(src, out, 1024 * 1024)
            out.flush()
            os.fsync(out.fileno())
        os.replace(part, dest)
    except OSError as exc:
        if is_disk_full(exc):
            raise DiskFullError() from exc
        raise
    finally:
        part.unlink(missing_ok=True)
    return dest


# ---- sound on every result ------------------------------------------------------------------
@dataclass(frozen=True)
class SoundNote:
    added: bool
    sentence: str

    def as_meta(self) -> dict[str, Any]:
        return {"added": self.added, "note": self.sentence}


def sound_pref_key(owner: str) -> str:
    """The Settings switch, one per owner (each signed-in creator has their own)."""
    return f"add_sound:{owner}"


def sound_choice(meta: Mapping[str, Any]) -> dict[str, Any]:
    """The submitter's sound choice out of a task's meta, to carry over to a retry."""
    choice = meta.get(SOUND_CHOICE)
    return {SOUND_CHOICE: choice} if isinstance(choice, bool) else {}


def sound_meta(add_sound: bool) -> dict[str, Any]:
    """What a submitter records on its tasks (`Studio.submit(meta=...)`): only an explicit
    "no", so a task without it follows the owner's switch."""
    return {} if add_sound else {SOUND_CHOICE: False}


def sound_note(task: Task) -> str | None:
    """The sentence saying whether the result has the driving clip's sound, and why not."""
    note = task.meta.get(SOUND_NOTE)
    return str(note.get("note")) if isinstance(note, Mapping) and note.get("note") else None


def add_sound(
    task: Task, result: Path, settings: Settings, store: Store, *, switch: bool | None = None
) -> SoundNote:
    """Give the freshly archived `result` of `task` the driving clip's sound when it has none
    (and that is wanted): `result` becomes the version with sound, the provider's file is
    kept beside it. Never raises: a failure keeps `result` as it came and says why.
    `switch` is the owner's Settings switch when the caller has read it (the monitor reads
    it once per owner for a batch of archives); else it is read here."""
    try:
        return _add_sound(task, result, settings, store, switch)
    except Exception as exc:
        # Only ever a bug: the remux's own failures are sentences. The result stays silent.
        log.exception("Adding sound to the result of task %s failed", task.id)
        return SoundNote(False, f"Sound not added: unexpected error ({type(exc).__name__}).")


def sound_switch(store: Store, owner: str) -> bool:
    """The owner's Settings switch (on unless turned off)."""
    return store.get_pref(sound_pref_key(owner), True) is not False


def sound_needs_switch(task: Task) -> bool:
    """Whether adding sound to `task`'s result follows its owner's switch (the submitter
    made no choice)."""
    return task.meta.get(SOUND_CHOICE) is None


def sound_needs_inputs(task: Task) -> bool:
    """Whether `task` was loaded without the inputs its sound may come from (the monitor's
    claims load tasks light) and has them in the store."""
    return task.meta.get(SOUND_CHOICE) is not False and task.inputs is None and not task.tracked


def _add_sound(
    task: Task, result: Path, settings: Settings, store: Store, switch: bool | None
) -> SoundNote:
    original = result.with_name(ORIGINAL_NAME)
    choice = task.meta.get(SOUND_CHOICE)
    if choice is False:
        return _skip(original, "Sound not added: switched off when the task was submitted.")
    if choice is None and not (sound_switch(store, task.owner) if switch is None else switch):
        return _skip(original, "Sound not added: switched off in Settings.")
    inputs = task.inputs
    if sound_needs_inputs(task):
        full = store.get_task(task.id)
        inputs = full.inputs if full is not None else None
    if inputs is None:
        return _skip(
            original,
            "Sound not added: this task was followed by its id, so its driving clip is not "
            "known here.",
        )
    from services.compare.analysis import local_input

    driving = local_input(inputs.video, settings)
    if driving is None:
        return _skip(original, "Sound not added: the driving clip is no longer on this machine.")
    return _remux(task, result, driving, original)


def _skip(original: Path, sentence: str) -> SoundNote:
    # A leftover of an earlier attempt (a crash between its renames) must not outlive it.
    original.unlink(missing_ok=True)
    return SoundNote(False, sentence)


def _remux(task: Task, result: Path, driving: Path, original: Path) -> SoundNote:
    from services.media.remux import Remuxed, Skipped, add_driving_audio

    part = result.with_name("result.sound.part")
    keep = result.with_name("original.part")
    try:
        outcome = add_driving_audio(result, driving, part)
        if isinstance(outcome, Remuxed):
            fsync_path(part)
            # Both names always hold a whole file: the original is linked (no copy, no
            # window without it) before the version with sound takes the result's name.
            keep.unlink(missing_ok=True)
            try:
                os.link(result, keep)
            except OSError:  # a filesystem without hard links
                shutil.copyfile(result, keep)
            os.replace(keep, original)
            os.replace(part, result)
            fsync_path(result.parent)
    except (InputError, OSError) as err:
        # Until the last rename `result` is the provider's file, whole: it is archived as is.
        if is_disk_full(err):
            detail = "the disk is full"
        elif isinstance(err, OSError):
            detail = err.strerror or type(err).__name__
        else:
            detail = str(err).rstrip(".")
        log.warning("Sound not added to the result of task %s: %s", task.id, detail)
        return _skip(
            original, f"Sound not added: {detail}. The provider's result is kept as it came."
        )
    finally:
        part.unlink(missing_ok=True)
        keep.unlink(missing_ok=True)
    if outcome is Skipped.RESULT_HAS_AUDIO:
        return _skip(original, "Sound left as the provider made it: the result has its own.")
    if outcome is Skipped.DRIVING_SILENT:
        return _skip(original, "Sound not added: the driving clip has no sound.")
    how = "" if outcome.copied else f" (its {outcome.audio_codec} audio converted to AAC)"
    return SoundNote(True, f"Sound added from the driving clip{how}.")


def fsync_path(path: Path) -> None:
    """Flush a written file, or a folder after a rename (what makes the rename itself
    durable); not every platform lets a folder be opened, so that is skipped quietly."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

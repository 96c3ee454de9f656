"""The Create form as the creator left it: inputs (by their stored file), chosen providers and
options, kept per owner in the store's preferences so a reload or a server restart shows the
same form. Read back once per session and trusted for nothing: a file that is gone is dropped
with a sentence, unknown providers are ignored, options pass `TaskOptions` again.

Not in the URL: file paths do not belong in links people copy and share.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import streamlit as st
from pydantic import BaseModel, ValidationError

from components.common import get_studio, log
from components.format import plain
from components.identity import viewer
from components.media_input import MediaChoice, current, restore
from components.provider_picker import option_values, restore_options
from services.links import is_web_link
from services.models import MediaRole, TaskOptions

_LOADED = "_draft_loaded"
_SAVED = "_draft_saved"
_ROLE_NAMES = {
    MediaRole.DRIVING_VIDEO: "driving video",
    MediaRole.CHARACTER_IMAGE: "character image",
    MediaRole.CHARACTER_VIDEO: "character video",
}


class Draft(BaseModel):
    inputs: dict[MediaRole, MediaChoice] = {}
    providers: list[str] = []
    options: TaskOptions = TaskOptions()


def _pref_key() -> str:
    key = f"draft:{viewer().owner}"
    # The preferences table keys are at most 64 characters; a long e-mail owner is hashed.
    return key if len(key) <= 64 else "draft:" + hashlib.sha256(key.encode()).hexdigest()


def _inside(path: str, folder: Path) -> bool:
    try:
        return Path(path).resolve().is_relative_to(folder.resolve())
    except (OSError, ValueError):
        return False


def _stored(choice: MediaChoice, uploads: Path) -> MediaChoice | None:
    """The choice if its file is still a stored upload; a vanished `before` only loses undo."""
    if not (_inside(choice.path, uploads) and Path(choice.path).is_file()):
        return None
    if choice.before and not (_inside(choice.before, uploads) and Path(choice.before).is_file()):
        choice = choice.model_copy(update={"before": None})
    if choice.url and not is_web_link(choice.url):
        # Providers would be handed the link as-is; the stored file stands in for it.
        choice = choice.model_copy(update={"url": None})
    return choice


def _read(raw: Any) -> Draft | None:
    if not isinstance(raw, dict):
        return None
    try:
        return Draft.model_validate(raw)
    except ValidationError:
        # One bad part (an option out of range after an upgrade) must not cost the rest.
        log.info("Draft partly unreadable; keeping what validates")
    draft = Draft()
    inputs = raw.get("inputs")
    for role, value in inputs.items() if isinstance(inputs, dict) else ():
        try:
            draft.inputs[MediaRole(role)] = MediaChoice.model_validate(value)
        except (ValueError, ValidationError):
            continue
    providers = raw.get("providers")
    if isinstance(providers, list):
        draft.providers = [p for p in providers if isinstance(p, str)]
    options = raw.get("options")
    kept: dict[str, Any] = {}
    for name, value in options.items() if isinstance(options, dict) else ():
        try:
            TaskOptions.model_validate({name: value})
        except ValidationError:
            continue
        kept[name] = value
    draft.options = TaskOptions.model_validate(kept)
    return draft


def resume_draft() -> list[str] | None:
    """Once per session, before the form's widgets exist: put the creator's last draft back.
    Returns the providers it had ticked (None: no draft, so the picker's default applies)."""
    if st.session_state.get(_LOADED):
        return None
    st.session_state[_LOADED] = True
    studio = get_studio()
    draft = _read(studio.store.get_pref(_pref_key()))
    if draft is None:
        return None
    uploads = studio.settings.uploads_dir
    for role, choice in draft.inputs.items():
        if current(role) is not None:
            continue
        kept = _stored(choice, uploads)
        gone = None
        if kept is None:
            gone = (
                f"The {_ROLE_NAMES[role]} from last time ({plain(choice.name)}) is no longer "
                "stored: add it again."
            )
        restore(role, kept, gone)
    restore_options(draft.options)
    # Providers are checked by the picker: only usable ones can be ticked.
    return draft.providers


def _snapshot(draft: Draft) -> dict[str, Any]:
    return draft.model_dump(mode="json")


def keep_draft(providers: list[str]) -> None:
    """After the form is drawn: store it when it differs from what is stored."""
    draft = Draft(
        inputs={role: c for role in MediaRole if (c := current(role)) is not None},
        providers=providers,
        options=option_values(),
    )
    snapshot = _snapshot(draft)
    if st.session_state.get(_SAVED) == snapshot:
        return
    get_studio().store.set_pref(_pref_key(), snapshot)
    st.session_state[_SAVED] = snapshot

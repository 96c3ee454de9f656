"""The Batch tab's form: many driving clips × one or more characters, one row each, with the
One take form's providers and options. Every file is checked (the same cached checks as the
One take panel), every row priced; the total is shown and confirmed with one click.

One click, one charge, as components/submit.py: the click records the request, the script
draws the button disabled and sends with the batch's key (its rows and a per-session nonce),
so a double click or a rerun mid-send reaches the same batch and sends nothing twice.
The files chosen are kept per owner (preferences), so a reload shows the same form.
"""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import streamlit as st
from pydantic import BaseModel, ValidationError

from components.common import get_studio, human_mb, sentences, upload_limit_mb
from components.format import cost, plain
from components.identity import viewer
from components.media_input import _mtime, _report
from components.provider_picker import options_panel, provider_picker
from components.providers import provider_name
from components.uploads import display_name, release_memory, save_stream
from services.batch import Plan, image_name, lines_for, plan, video_name
from services.errors import InputError, ReenactError
from services.models import BatchLine, MediaRole, TaskOptions
from services.upload_policy import check_quota, discard, remember

if TYPE_CHECKING:
    from streamlit.runtime.uploaded_file_manager import UploadedFile

    from services.media.checks import CheckReport, Source

_PENDING = "_pending_batch"
_NONCE = "_batch_nonce"
_LOADED = "_batch_files_loaded"
_KINDS = {"takes": "video", "characters": "image"}
_WRONG = {
    "takes": "{name} is an image: drop it on Characters.",
    "characters": "{name} is a video: drop it on Driving clips.",
}


class StoredFile(BaseModel):
    path: str  # uploads/<sha256>/<name>
    name: str


def _files(which: str) -> list[StoredFile]:
    return [StoredFile.model_validate(f) for f in st.session_state.get(f"batch_{which}", [])]


def _set_files(which: str, files: list[StoredFile]) -> None:
    st.session_state[f"batch_{which}"] = [f.model_dump() for f in files]
    _keep(which, files)


def _pref_key(which: str) -> str:
    key = f"batch:{which}:{viewer().owner}"
    return key if len(key) <= 64 else f"batch:{which}:" + hashlib.sha256(key.encode()).hexdigest()


def _keep(which: str, files: list[StoredFile]) -> None:
    get_studio().store.set_pref(_pref_key(which), [f.model_dump() for f in files] or None)


def _resume() -> None:
    """Once per session: the files chosen last time that are still stored."""
    if st.session_state.get(_LOADED):
        return
    st.session_state[_LOADED] = True
    studio = get_studio()
    uploads = studio.settings.uploads_dir.resolve()
    for which in _KINDS:
        raw = studio.store.get_pref(_pref_key(which))
        kept = []
        for item in raw if isinstance(raw, list) else []:
            try:
                f = StoredFile.model_validate(item)
            except ValidationError:
                continue
            path = Path(f.path)
            if path.is_file() and path.resolve().is_relative_to(uploads):
                kept.append(f)
        st.session_state[f"batch_{which}"] = [f.model_dump() for f in kept]


def batch_form(remembered: list[str] | None) -> str | None:
    """Draw the form; return the id of the batch it sent (on the run that sent it)."""
    _resume()
    pending = st.session_state.get(_PENDING)
    files_col, setup_col = st.columns([3, 2], gap="large")
    with setup_col:
        st.subheader("Providers")
        chosen = provider_picker(remembered)
        options = TaskOptions()
        if chosen:
            st.subheader("Options")
            options = options_panel(chosen)
    with files_col:
        st.subheader("Driving clips")
        takes = _file_list(
            "takes", "The takes: one person facing the camera each, 3–30 s.", bool(pending)
        )
        st.subheader("Characters")
        characters = _file_list(
            "characters", "Who performs: every clip goes onto every character.", bool(pending)
        )

    blockers = []
    if not takes:
        blockers.append("Add at least one driving clip.")
    if not characters:
        blockers.append("Add at least one character image.")
    if not chosen:
        blockers.append("Choose at least one provider.")
    planned: Plan | None = None
    if not blockers:
        lines = lines_for([f.path for f in takes], [f.path for f in characters], chosen, options)
        with files_col, st.spinner("Checking every file…"):
            planned = _plan(lines, _name(len(takes), len(characters)))
            _rows_table(planned)
    with setup_col:
        if planned is not None:
            st.subheader("Total")
            _total(planned)
        if pending:
            st.button(
                "Sending…",
                disabled=True,
                type="primary",
                width="stretch",
                icon=":material/hourglass_top:",
                key="batch_busy",
            )
            return _perform(pending)
        return _confirm_button(planned, blockers)


# ---------------------------------------------------------------------------- files


def _file_list(which: str, hint: str, busy: bool) -> list[StoredFile]:
    files = _files(which)
    with st.container(border=True, key=f"batch_files_{which}"):
        if not files:
            st.caption(hint)
        for i, f in enumerate(files):
            name_col, remove_col = st.columns([6, 1], vertical_alignment="center")
            name_col.markdown(
                f":material/{'movie' if which == 'takes' else 'face'}: {plain(f.name)}"
            )
            if remove_col.button(
                "Remove",
                key=f"batch_rm_{which}_{i}",
                icon=":material/close:",
                type="tertiary",
                help=f"Remove {f.name}",
                disabled=busy,
            ):
                _set_files(which, [g for g in files if g.path != f.path])
                st.rerun()
        gen = st.session_state.setdefault(f"_batch_upgen_{which}", 0)
        uploaded = st.file_uploader(
            "Video files" if which == "takes" else "Image files",
            key=f"batch_upload_{which}_{gen}",
            accept_multiple_files=True,
            help=f"Drop several at once; up to {human_mb(upload_limit_mb())} per file.",
            label_visibility="collapsed",
            disabled=busy,
        )
        refused = st.session_state.pop(f"_batch_refused_{which}", None)
        for sentence in refused or []:
            st.error(plain(sentence), icon=":material/error:")
        if uploaded:
            with st.spinner("Saving the files…"), sentences("saving the uploads"):
                added, problems = _store(which, list(uploaded), files)
                _set_files(which, files + added)
                st.session_state[f"_batch_refused_{which}"] = problems
            # Only once they are in the list: a run stopped before (a rerun asked for by the
            # other uploader) finds the same files in the same widget and stores them again
            # (by content: once). Then a new key lets Streamlit drop the in-memory copies.
            st.session_state[f"_batch_upgen_{which}"] = gen + 1
            for item in uploaded:
                release_memory(item)
            del uploaded
            st.rerun()
    return files


def _store(
    which: str, uploaded: list[UploadedFile], have: list[StoredFile]
) -> tuple[list[StoredFile], list[str]]:
    """Store each upload (the uploads folder, by content), keep the readable ones of the
    right kind; say why for the others."""
    from services.media import probe

    studio, owner = get_studio(), viewer().owner
    known = {f.path for f in have}
    added: list[StoredFile] = []
    problems: list[str] = []
    for item in uploaded:
        shown = display_name(item.name)
        try:
            check_quota(studio.store, studio.settings, owner, item.size)
            stored = save_stream(item, item.name, studio.settings.uploads_dir)
            try:
                kind = probe(stored).kind
                if kind != _KINDS[which]:
                    raise InputError(_WRONG[which].format(name=shown))
            except InputError:
                if str(stored) not in known:
                    discard(studio.store, studio.settings, stored)
                raise
            remember(studio.store, owner, stored)
        except ReenactError as err:
            problems.append(str(err))
            continue
        if str(stored) not in known:
            known.add(str(stored))
            added.append(StoredFile(path=str(stored), name=shown))
    return added, problems


# ---------------------------------------------------------------------------- plan


def _name(takes: int, characters: int) -> str:
    return (
        f"{takes} take{'s' if takes != 1 else ''} × "
        f"{characters} character{'s' if characters != 1 else ''}"
    )


def _checker(
    path: Path, role: MediaRole, providers: tuple[str, ...], source: Source, name: str
) -> CheckReport:
    # The One take panel's cached checks: a file checked there (or on the last rerun) is
    # not checked again.
    return _report(str(path), _mtime(str(path)), role.value, providers, source, name)


def _nonce() -> str:
    return str(st.session_state.setdefault(_NONCE, uuid.uuid4().hex[:16]))


def _plan(lines: list[BatchLine], name: str) -> Plan:
    from services.batch import batch_key

    owner = viewer().owner
    key = batch_key(lines, owner, _nonce())
    return plan(get_studio(), lines, name=name, key=key, owner=owner, checker=_checker)


def _state(line: BatchLine, planned: Plan) -> str:
    if line.row in planned.sent:
        return "Sent"
    if line.problems:
        return "Not sent"
    return "Ready"


def _rows_table(planned: Plan) -> None:
    rows = []
    for line in planned.lines:
        known = [v for v in line.estimates.values() if v is not None]
        priced = len(known) == len(line.estimates)
        rows.append(
            {
                "Row": line.row,
                "Driving clip": video_name(line),
                "Character": image_name(line),
                "State": _state(line, planned),
                "Estimate": cost(sum(known)) if priced else "price not published",
                "Why not / notes": " ".join(line.problems or line.notes),
            }
        )
    ready = len(planned.to_send)
    refused = len(planned.refused)
    st.markdown(
        f"**Rows** · {ready} ready"
        + (f" · :red[{refused} not sent: their checks failed]" if refused else "")
    )
    st.dataframe(rows, hide_index=True, width="stretch", key="batch_rows")


def _total(planned: Plan) -> None:
    from services.spending import headroom

    studio = get_studio()
    lines = []
    for pid, usd in planned.priced_by_provider().items():
        n = sum(pid in providers for providers in planned.to_send.values())
        lines.append(
            f"- {plain(provider_name(pid))}: {n} task{'s' if n != 1 else ''} · **{cost(usd)}**"
        )
    for pid, n in planned.unpriced().items():
        lines.append(
            f"- {plain(provider_name(pid))}: {n} task{'s' if n != 1 else ''} · price not "
            "published (set yours in Settings)"
        )
    rows, tasks = len(planned.to_send), planned.task_count
    st.markdown(
        f"**{rows} row{'s' if rows != 1 else ''} → {tasks} task{'s' if tasks != 1 else ''}**"
    )
    if lines:
        st.markdown("\n".join(lines))
    for cap in headroom(studio.store, studio.settings, planned.planned_by_provider()):
        st.caption(f":material/savings: {cap.sentence()}")


def _cap_refusal(planned: Plan) -> str | None:
    from services.spending import ensure_within_cap

    studio = get_studio()
    try:
        ensure_within_cap(studio.store, studio.settings, planned.planned_by_provider())
    except ReenactError as err:
        return str(err)
    return None


def _confirm_button(planned: Plan | None, blockers: list[str]) -> str | None:
    n = planned.task_count if planned is not None else 0
    label = f"Send {n} task{'s' if n != 1 else ''}"
    if planned is not None and n:
        from services.spending import usd

        label += f" · ≈ {usd(planned.total_usd)}" if planned.total_usd else " · free"
        if planned.unpriced():
            label += " + unpriced"
    refusal = _cap_refusal(planned) if planned is not None and n else None
    if planned is not None and not n and not blockers:
        blockers.append(
            "Every row was sent already." if planned.sent else "No row can go: see why above."
        )
    if refusal:
        st.error(plain(refusal), icon=":material/savings:")
    st.button(
        label,
        type="primary",
        width="stretch",
        icon=":material/rocket_launch:",
        disabled=bool(blockers) or refusal is not None or planned is None,
        on_click=_request,
        args=(planned.model_dump(mode="json") if planned is not None else {},),
        key="batch_send",
        help="Checks were run on every file; rows that failed them are not sent.",
    )
    for reason in blockers:
        st.caption(f":material/block: {reason}")
    return None


def _request(planned: dict[str, Any]) -> None:
    """on_click: the plan the creator saw when clicking (its key makes it one batch)."""
    if st.session_state.get(_PENDING) or not planned:
        return
    st.session_state[_PENDING] = planned


def _perform(pending: dict[str, Any]) -> str | None:
    from services.batch import send

    batch_id: str | None = None
    try:
        with st.spinner("Sending the batch…"), sentences("submitting"):
            seen = Plan.model_validate(pending)
            # Planned again with the same key: a row sent meanwhile (a rerun, another tab)
            # is found and not sent twice; the checks come from the cache.
            owner = viewer().owner
            fresh = plan(
                get_studio(),
                [line.model_copy(update={"problems": [], "notes": []}) for line in seen.lines],
                name=seen.name,
                key=seen.key,
                owner=owner,
                checker=_checker,
            )
            batch = send(get_studio(), fresh, owner=owner)
            batch_id = batch.id
    finally:
        st.session_state[_PENDING] = None
    return batch_id


def new_batch() -> None:
    """The form again, for another batch (a new nonce: the same files make new charges)."""
    st.session_state[_NONCE] = uuid.uuid4().hex[:16]

"""One click, one charge.

The Submit button carries an idempotency key made from what the creator sees (inputs,
options, providers) and a per-session nonce. The click's callback only records the request;
the script then renders the button disabled and calls `Studio.submit_many` with that key.
However Streamlit reruns — a double click, an interrupted run, a rerun mid-request — the same
key reaches the store, which hands back the run it already made instead of a second one.
The nonce changes only when the creator asks for another run of the same inputs.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import streamlit as st

from components.common import get_studio, sentences
from components.identity import viewer
from services.errors import ReenactError
from services.models import TaskInputs, TaskOptions

_PENDING = "_pending_submit"
_DONE = "_submitted_runs"


def idempotency_key(providers: Sequence[str], inputs: TaskInputs, options: TaskOptions) -> str:
    nonce = st.session_state.setdefault("_submit_nonce", uuid.uuid4().hex[:16])
    form = json.dumps(
        {
            "providers": sorted(providers),
            "inputs": inputs.model_dump(mode="json"),
            "options": options.model_dump(mode="json"),
        },
        sort_keys=True,
    )
    return f"ui-{nonce}-{hashlib.sha256(form.encode()).hexdigest()[:24]}"


def _request(key: str, providers: list[str], inputs: dict[str, Any], opts: dict[str, Any]) -> None:
    """on_click: runs before the script, with the values the creator saw when clicking."""
    if st.session_state.get(_PENDING) or key in st.session_state.get(_DONE, {}):
        return
    st.session_state[_PENDING] = {
        "key": key,
        "providers": providers,
        "inputs": inputs,
        "options": opts,
    }


def _new_nonce() -> None:
    st.session_state["_submit_nonce"] = uuid.uuid4().hex[:16]


def submit_button(
    providers: list[str],
    inputs: TaskInputs | None,
    options: TaskOptions,
    blockers: list[str],
    spend: str | None = None,
    planned: Mapping[str, float | None] | None = None,
) -> str | None:
    """Render Submit; return the id of the run it made (on the run that made it). `spend`:
    what it will cost (e.g. "≈ $1.50"), said on the button so no charge comes unannounced;
    `planned`: the estimate per provider, checked against the spending caps."""
    pending = st.session_state.get(_PENDING)
    if pending:
        st.button(
            "Submitting…",
            disabled=True,
            type="primary",
            width="stretch",
            icon=":material/hourglass_top:",
            key="submit_busy",
        )
        return _perform(pending)

    key = idempotency_key(providers, inputs, options) if inputs is not None else None
    done = st.session_state.get(_DONE, {})
    if key is not None and key in done:
        st.button(
            "Submitted",
            disabled=True,
            type="primary",
            width="stretch",
            icon=":material/check:",
            key="submit_done",
        )
        st.button(
            "Run these inputs again",
            icon=":material/add:",
            on_click=_new_nonce,
            help="Starts new tasks (new charges) with the same inputs and options.",
            width="stretch",
            key="submit_again",
        )
        # A rerun can interrupt the click's own run before it hands the run id back: hand it
        # back now, once, so the page still shows this run's cards.
        return done[key] if st.query_params.get("run") != done[key] else None

    left = _under_caps(providers, planned or {}, blockers)
    n = len(providers)
    label = "Submit" if n <= 1 else f"Submit to {n} providers"
    if spend:
        label += f" · {spend}"
    st.button(
        label,
        type="primary",
        width="stretch",
        icon=":material/rocket_launch:",
        disabled=bool(blockers) or key is None,
        on_click=_request,
        args=(
            key or "",
            list(providers),
            inputs.model_dump(mode="json") if inputs else {},
            options.model_dump(mode="json"),
        ),
        key="submit",
    )
    for reason in blockers:
        st.caption(f":material/block: {reason}")
    for sentence in left:
        st.caption(f":material/savings: {sentence}")
    return None


def _under_caps(
    providers: Sequence[str], planned: Mapping[str, float | None], blockers: list[str]
) -> list[str]:
    """What is left under each spending cap that applies to these providers; a submit that
    would cross one is blocked here with the same sentence the studio would refuse it with."""
    from services import spending

    if not providers:
        return []
    studio = get_studio()
    try:
        spending.ensure_within_cap(studio.store, studio.settings, planned)
    except ReenactError as err:
        blockers.append(str(err))
        return []
    return [c.sentence() for c in spending.headroom(studio.store, studio.settings, providers)]


def _perform(pending: dict[str, Any]) -> str | None:
    run_id: str | None = None
    try:
        with st.spinner("Sending to the providers…"), sentences("submitting"):
            run, _tasks = get_studio().submit_many(
                pending["providers"],
                TaskInputs.model_validate(pending["inputs"]),
                TaskOptions.model_validate(pending["options"]),
                idempotency_key=pending["key"],
                owner=viewer().owner,
            )
            st.session_state.setdefault(_DONE, {})[pending["key"]] = run.id
            run_id = run.id
    finally:
        st.session_state[_PENDING] = None
    return run_id

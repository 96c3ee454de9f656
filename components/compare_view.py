"""One comparison run as a workspace: the driving clip and every result in synced players,
the numbers side by side, a (blind) vote, and the exports.

Everything is read from the store; the tiles fill in live (one store read per second, in a
fragment) while tasks run or results are being measured, then the fragment stops refreshing.
"""

from __future__ import annotations

import random
import string
from datetime import timedelta
from pathlib import Path
from typing import Any

import streamlit as st

from components.common import app_base_url, get_studio, result_url, sentences
from components.format import (
    ago,
    duration,
    plain,
    queued_text,
    size,
    status_label,
    waiting_to_start,
)
from components.identity import viewer
from components.providers import provider_name
from components.synced_player import PlayerTile, synced_player
from services.compare.analysis import local_input
from services.compare.bundle import exports_dir, video_name, zip_name
from services.compare.runs import RunView, TaskNumbers, load_run, numbers, vote
from services.models import Task, TaskStatus, shown_progress, utcnow

REFRESH_S = 1.0
# How long a finished result may wait to be measured before the page stops refreshing for it.
ANALYSIS_WAIT = timedelta(minutes=10)


def _blind_key(run_id: str) -> str:
    return f"cmp_blind_{run_id}"


def _order(view: RunView, blind: bool) -> list[Task]:
    """The chosen order, or in blind mode one shuffled order per run and browser session."""
    if not blind:
        return view.tasks
    seed = st.session_state.setdefault("cmp_blind_seed", random.SystemRandom().random())
    shuffled = list(view.tasks)
    random.Random(f"{seed}:{view.run.id}").shuffle(shuffled)
    return shuffled


def _labels(tasks: list[Task], blind: bool) -> dict[str, str]:
    if blind:
        return {t.id: f"Result {string.ascii_uppercase[i]}" for i, t in enumerate(tasks)}
    return {t.id: provider_name(t.provider) for t in tasks}


def run_view(run_id: str) -> None:
    studio = get_studio()
    view = load_run(studio, run_id, owner=viewer().sees)
    names = " · ".join(provider_name(p) for p in view.run.providers)
    inputs = view.run.inputs
    character = local_input(inputs.image, studio.settings)
    text, picture = st.columns([5, 1], vertical_alignment="center")
    with text:
        st.subheader(names)
        facts = [ago(view.run.created_at), f"run {view.run.id}"]
        if inputs.image:
            facts.append(f"character: {plain(Path(inputs.image).name)}")
        st.caption(" · ".join(facts))
    if character is not None:
        with picture:
            _character(str(character), character.stat().st_mtime_ns)

    voted = view.vote is not None
    blind = st.toggle(
        "Blind",
        key=_blind_key(run_id),
        disabled=voted,
        help="Results in random order with the providers' names hidden until you vote.",
    )
    blind = blind and not voted
    st.session_state["_cmp_prefetch"] = view
    fragment = st.fragment(_live, run_every=None if _quiet(view) else REFRESH_S)
    fragment(run_id, blind)
    with sentences("recording the vote"):
        _judging(view, blind)
    if not blind:
        with sentences("making the export"):
            _exports(view)


@st.cache_data(max_entries=64, show_spinner=False)
def _character_thumb(path: str, mtime_ns: int) -> Any:
    from services.media import thumbnail

    return thumbnail(Path(path), faces=False, max_side=240)


def _character(path: str, mtime_ns: int) -> None:
    """The character the results should look like, beside the driving clip's tile."""
    try:
        st.image(_character_thumb(path, mtime_ns), caption="Character", width=120)
    except Exception:
        st.caption("The character picture cannot be shown.")


def _quiet(view: RunView) -> bool:
    """Nothing will change here without the creator: every task settled and measured."""
    if not view.settled:
        return False
    for task in view.tasks:
        if task.status is TaskStatus.SUCCEEDED and task.result_path:
            done = view.analysis(task.id)
            measuring = (
                done is None or done.state == "running" or done.result_path != task.result_path
            )
            # No server monitor may be running to measure it (a CLI-only setup): stop asking.
            recent = utcnow() - (task.finished_at or task.updated_at) < ANALYSIS_WAIT
            if measuring and recent:
                return False
    return True


def _live(run_id: str, blind: bool) -> None:
    view: RunView | None = st.session_state.pop("_cmp_prefetch", None)
    if view is None or view.run.id != run_id:
        view = load_run(get_studio(), run_id, owner=viewer().sees)
    tasks = _order(view, blind)
    labels = _labels(tasks, blind)
    _players(view, tasks, labels)
    rows = {r.task_id: r for r in numbers(get_studio(), view)}
    if blind:
        st.caption(
            ":material/visibility_off: Numbers and names are hidden until you vote: costs "
            "and timings would give the providers away."
        )
    else:
        _numbers_table([rows[t.id] for t in tasks], labels)
        _fidelity_details(view, tasks)
    was_live = st.session_state.get(f"_cmp_live_{run_id}")
    quiet = _quiet(view)
    st.session_state[f"_cmp_live_{run_id}"] = not quiet
    if quiet and was_live:
        st.rerun()  # the whole page: drop the refresh and show the vote and exports as done


def _tile_status(task: Task) -> str:
    if waiting_to_start(task):
        return queued_text()  # never "render worker": a blind comparison would name it
    if task.status is TaskStatus.RUNNING:
        return f"Rendering · {shown_progress(task) or 0.0:.0%}"
    if task.status is TaskStatus.SUCCEEDED and not task.result_path:
        return task.error or "Saving the result…"
    if task.status in (TaskStatus.FAILED, TaskStatus.UNKNOWN) and task.error:
        return f"{status_label(task.status)}: {task.error}"
    return status_label(task.status)


def _players(view: RunView, tasks: list[Task], labels: dict[str, str]) -> None:
    reference = PlayerTile(
        id="reference",
        label="Driving clip",
        src=f"{app_base_url()}/runs/{view.run.id}/reference" if view.reference else None,
        status=None if view.reference else "The driving clip is not on this machine.",
        reference=True,
    )
    tiles = [reference]
    for task in tasks:
        ready = task.status is TaskStatus.SUCCEEDED and task.result_path
        tiles.append(
            PlayerTile(
                id=task.id,
                label=labels[task.id],
                src=result_url(task) if ready else None,
                status=None if ready else _tile_status(task),
            )
        )
    synced_player(tiles, key=f"player_{view.run.id}", fps=_fps(view))


def _fps(view: RunView) -> float:
    for task in view.tasks:
        analysis = view.analysis(task.id)
        if analysis and analysis.output and analysis.output.fps:
            return analysis.output.fps
    return 24.0


def _seconds(value: float | None) -> str:
    return "—" if value is None else duration(value)


def _cost(r: TaskNumbers) -> str:
    if r.cost_usd is None:
        return "no price (set yours in Settings)"
    if r.cost_usd == 0:
        return "free"
    text = f"${r.cost_usd:.2f}"
    if r.cost_source == "estimate":
        text += " est. (your price)" if r.price_source == "yours" else " est."
    return text


def _best(rows: list[TaskNumbers], value: Any, *, high: bool) -> set[str]:
    """The task ids holding the best value of a row (only when there is a choice)."""
    scored = [(value(r), r.task_id) for r in rows if value(r) is not None]
    if len(scored) < 2:
        return set()
    top = max(v for v, _ in scored) if high else min(v for v, _ in scored)
    return {tid for v, tid in scored if v == top}


def _numbers_table(rows: list[TaskNumbers], labels: dict[str, str]) -> None:
    """One row per provider, in the players' order; ★ marks the fastest, the cheapest and
    the most faithful finished result."""
    done = [r for r in rows if r.state is TaskStatus.SUCCEEDED]
    fastest = _best(done, lambda r: r.total_s, high=False)
    cheapest = _best(done, lambda r: r.cost_usd, high=False)
    table: list[dict[str, Any]] = []
    for r in rows:
        total = _seconds(r.total_s)
        table.append(
            {
                "Provider": labels[r.task_id],
                "State": status_label(r.state),
                "Queued": _seconds(r.queued_s),
                "Render": _seconds(r.render_s),
                "Submit → done": f"{total} ★" if r.task_id in fastest else total,
                "Cost": f"{_cost(r)} ★" if r.task_id in cheapest else _cost(r),
                "Resolution": f"{r.width}×{r.height}" if r.width and r.height else "—",
                "FPS": f"{r.fps:g}" if r.fps else "—",
                "Length": f"{r.duration_s:.2f} s" if r.duration_s is not None else "—",
                "File": size(r.size_bytes) if r.size_bytes is not None else "—",
                "Audio": "—" if r.has_audio is None else ("yes" if r.has_audio else "no"),
                "Fidelity": r.fidelity,
                "Note": r.error or r.fidelity_note or "",
            }
        )
    st.dataframe(
        table,
        hide_index=True,
        key="cmp_numbers",
        column_config={
            "Fidelity": st.column_config.ProgressColumn(
                "Fidelity",
                help="Motion fidelity, 0–100: how closely the result's face follows the "
                "driving clip (mouth, eyes, brows, head), measured here the same way for every "
                "provider.",
                min_value=0,
                max_value=100,
                format="%.0f",
            ),
            "Cost": st.column_config.TextColumn(
                help="What the provider reported, else an estimate from its price per second "
                "(yours from Settings, or the published one)."
            ),
            "Note": st.column_config.TextColumn(width="medium"),
        },
    )


def _fidelity_details(view: RunView, tasks: list[Task]) -> None:
    scored = [(t, view.analysis(t.id)) for t in tasks]
    scored = [(t, a) for t, a in scored if a and a.fidelity and a.fidelity.get("signals")]
    if not scored:
        return
    with st.expander("Motion fidelity per signal", icon=":material/insights:"):
        rows = []
        for task, analysis in scored:
            assert analysis is not None and analysis.fidelity is not None
            for sig in analysis.fidelity.get("signals", []):
                rows.append(
                    {
                        "Provider": provider_name(task.provider),
                        "Signal": str(sig.get("name", "")).replace("_", " "),
                        "Correlation r": sig.get("r"),
                        "Amplitude ratio": sig.get("amplitude"),
                        "Score": sig.get("score"),
                        "Weight": sig.get("weight"),
                        "Note": sig.get("note"),
                    }
                )
        st.dataframe(rows, hide_index=True, key="cmp_signals")
        st.caption(
            "Per signal: the correlation of the result's motion with the driving clip's, and "
            "how much of its amplitude came through (1 = all). Signals the driving clip "
            "hardly moves are left out of the score."
        )


def _judging(view: RunView, blind: bool) -> None:
    contenders = [t for t in _order(view, blind) if t.provider in view.contenders]
    st.markdown("**Which result is best?**")
    if len(contenders) < 2:
        st.caption("A vote needs at least two finished results.")
        return
    labels = _labels(_order(view, blind), blind)
    if view.vote is not None:
        how = "blind" if view.vote.blind else "seeing the names"
        note = f" — “{plain(view.vote.note)}”" if view.vote.note else ""
        st.success(
            f"Your vote ({how}): {provider_name(view.vote.winner)}{note}",
            icon=":material/how_to_vote:",
        )
        if view.vote.blind:
            st.caption(
                "Revealed: "
                + ", ".join(f"{labels[t.id]} was {provider_name(t.provider)}" for t in contenders)
            )
    with st.form(key=f"vote_{view.run.id}", border=False):
        winner = st.radio(
            "Winner",
            [t.id for t in contenders],
            format_func=lambda tid: labels[tid],
            horizontal=True,
            index=None,
            label_visibility="collapsed",
        )
        note = st.text_input("Note (optional)", max_chars=500, placeholder="Why this one?")
        again = "Change my vote" if view.vote is not None else "Vote"
        if st.form_submit_button(again, icon=":material/how_to_vote:"):
            if winner is None:
                st.warning("Pick the best result first.")
                return
            task = next(t for t in contenders if t.id == winner)
            vote(
                get_studio(),
                view.run.id,
                task.provider,
                note=note,
                blind=blind,
                owner=viewer().sees,
            )
            st.session_state.pop(_blind_key(view.run.id), None)
            st.toast(f"Vote recorded: {labels[winner]} was {provider_name(task.provider)}.")
            st.rerun()


def _export_ready(path: Path, view: RunView) -> bool:
    """Made after the newest change to the run's tasks (else it may miss a result)."""
    if not path.is_file():
        return False
    newest = max((t.updated_at for t in view.tasks), default=view.run.created_at)
    return path.stat().st_mtime >= newest.timestamp()


def _exports(view: RunView) -> None:
    from services.compare.bundle import export_video, export_zip

    st.markdown("**Export**")
    left, right = st.columns(2)
    with left:
        _export(
            view,
            video_name(view.run.id),
            make=export_video,
            what="side-by-side video",
            icon=":material/view_column:",
            busy="Rendering the side-by-side video…",
            help_="The driving clip beside every result, labelled, with the driving clip's sound.",
        )
    with right:
        _export(
            view,
            zip_name(view.run.id),
            make=export_zip,
            what="ZIP of results",
            icon=":material/folder_zip:",
            busy="Packing the results…",
            help_="Every result plus summary.csv and summary.json (the numbers above).",
        )


def _export(
    view: RunView, name: str, *, make: Any, what: str, icon: str, busy: str, help_: str
) -> None:
    """A download link once the file is made (and current), else the button that makes it;
    the file is served from disk by the /exports route, never through the session."""
    studio = get_studio()
    folder = exports_dir(studio, view.run.id)
    path = folder / name
    if _export_ready(path, view):
        st.link_button(
            f"Download {what} ({size(path.stat().st_size)})",
            f"{app_base_url()}/exports/{view.run.id}/{name}?download=1",
            icon=":material/download:",
        )
    elif st.button(f"Make {what}", icon=icon, disabled=not view.contenders, help=help_):
        with st.spinner(busy):
            folder.mkdir(parents=True, exist_ok=True)
            make(studio, view, folder)
        st.rerun()

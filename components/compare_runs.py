"""The list of comparison runs (newest first, paginated, filtered by provider; the filter and
page live in the URL) and the providers' leaderboard from the votes."""

from __future__ import annotations

import streamlit as st

from components.common import get_studio
from components.format import ago, status_label
from components.identity import viewer
from components.pager import pager
from components.providers import info_by_id, provider_name
from services.compare.leaderboard import Standing, leaderboard
from services.compare.runs import current_tasks
from services.models import Run, TaskStatus, Vote

PAGE_SIZE = 10


def _filter() -> str | None:
    infos = info_by_id()
    options = ["all", *infos]
    wanted = st.query_params.get("provider", "all")
    chosen = st.selectbox(
        "Provider",
        options,
        index=options.index(wanted) if wanted in options else 0,
        format_func=lambda p: "Every provider" if p == "all" else provider_name(p),
        key="cmp_filter",
        width=240,
    )
    if chosen != wanted:
        if chosen == "all":
            st.query_params.pop("provider", None)
        else:
            st.query_params["provider"] = chosen
        st.query_params.pop("page", None)
    return None if chosen == "all" else chosen


def _page(pages: int) -> int:
    try:
        page = int(st.query_params.get("page", "1"))
    except ValueError:
        page = 1
    return max(1, min(pages, page))


def run_list() -> None:
    store = get_studio().store
    provider = _filter()
    sees = viewer().sees
    total = store.count_comparisons(provider=provider, owner=sees)
    if total == 0:
        st.info(
            "No comparisons yet. On the Create page, tick two or more providers and submit "
            "once (or run `reenact compare`): the results appear here side by side."
            if provider is None
            else f"No comparison included {provider_name(provider)} yet.",
            icon=":material/compare:",
        )
        return
    pages = max(1, -(-total // PAGE_SIZE))
    page = _page(pages)
    runs = store.list_comparisons(
        provider=provider, owner=sees, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE
    )
    votes = {v.run_id: v for v in store.votes([r.id for r in runs])}
    for run in runs:
        vote = votes.get(run.id)
        _run_row(run, vote.winner if vote else None)
    _pager(page, pages, total)


def _run_row(run: Run, winner: str | None) -> None:
    tasks = current_tasks(run, get_studio().store.run_tasks(run.id))
    states: dict[str, int] = {}
    for task in tasks:
        label = status_label(task.status)
        states[label] = states.get(label, 0) + 1
    with st.container(border=True, key=f"runrow_{run.id}"):
        left, right = st.columns([4, 1], vertical_alignment="center")
        names = " · ".join(provider_name(p) for p in run.providers)
        left.markdown(f"**{names}**", text_alignment="left")
        facts = [ago(run.created_at), ", ".join(f"{n} {s.lower()}" for s, n in states.items())]
        if winner:
            facts.append(f"winner: {provider_name(winner)}")
        elif sum(t.status is TaskStatus.SUCCEEDED for t in tasks) >= 2:
            facts.append("not judged yet")
        left.caption(" · ".join(facts) + f" · run {run.id}")
        if right.button("Open", key=f"open_{run.id}", width="stretch"):
            st.query_params["run"] = run.id
            st.rerun()


def _pager(page: int, pages: int, total: int) -> None:
    if pages <= 1:
        st.caption(f"{total} comparison{'' if total == 1 else 's'}")
        return
    asked = pager(page, pages, f"Page {page} of {pages} · {total:,} comparisons", key="cmp")
    if asked is not None:
        st.query_params["page"] = str(asked)
        st.rerun()


@st.cache_data(max_entries=4, show_spinner=False)
def _standings(votes: tuple[Vote, ...]) -> list[Standing]:
    # The bootstrap refits the model hundreds of times: once per set of votes, not per rerun.
    return leaderboard(votes)


def leaderboard_panel() -> None:
    votes = get_studio().store.votes(owner=viewer().sees)
    standings = _standings(tuple(votes))
    if not standings:
        st.caption(
            "No votes yet. Open a run with two or more results and pick a winner (blind, if "
            "you like): the providers are ranked here from every vote."
        )
        return
    st.dataframe(
        [
            {
                "Rank": n,
                "Provider": provider_name(s.provider),
                "Rating": round(s.rating),
                "95 % interval": f"{s.low:.0f} – {s.high:.0f}",
                "Won": s.first_places,
                "Judged in": s.votes,
                "Pairs won–lost": f"{s.wins}–{s.losses}",
            }
            for n, s in enumerate(standings, start=1)
        ],
        hide_index=True,
        key="leaderboard",
    )
    st.caption(
        f"From {len(votes)} vote{'' if len(votes) == 1 else 's'}: a Bradley–Terry fit of who "
        "beat whom (each vote's winner beat every other result of its run). 1000 is an "
        "average provider; +100 means winning about 64 % of the time against it. The "
        "interval comes from resampling the votes."
    )

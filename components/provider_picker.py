"""Choose providers and their options.

Every provider is listed: a configured one can be ticked; one that is not says why (and what
to set) — keys are never shown. Options appear only when a chosen provider supports them.
"""

from __future__ import annotations

from typing import TypeVar, overload

import streamlit as st

from components.common import get_studio
from components.format import cost
from components.providers import OPTION_LABELS, accepts_sentence, provider_infos
from services.models import TaskOptions
from services.studio import ProviderInfo

_KEY = "pick_{}"
_T = TypeVar("_T")


def _usable(info: ProviderInfo) -> bool:
    return info.availability.available and info.capabilities.can_create


def default_selection(infos: list[ProviderInfo], remembered: list[str] | None = None) -> list[str]:
    """What is ticked when a session starts: exactly the creator's last choice (`remembered`,
    from their draft; providers no longer usable drop out), else the free local engine. A paid
    provider is never ticked for the creator: a key being set is not a choice to pay."""
    usable = [i.id for i in infos if _usable(i)]
    if remembered is not None:
        return [pid for pid in usable if pid in remembered]
    return [pid for pid in usable if pid == "local"]


def provider_picker(remembered: list[str] | None = None) -> list[str]:
    infos = provider_infos()
    if "_pick_initialised" not in st.session_state:
        for pid in default_selection(infos, remembered):
            st.session_state[_KEY.format(pid)] = True
        st.session_state["_pick_initialised"] = True
    chosen: list[str] = []
    usable = [i for i in infos if _usable(i)]
    others = [i for i in infos if not _usable(i)]
    if not usable:
        st.warning(
            "No provider is ready. Set a provider's key (see Settings), or install the local "
            "engine's dependencies.",
            icon=":material/key_off:",
        )
    for info in usable:
        with st.container(border=True, key=f"provider_row_{info.id}"):
            top = st.columns([3, 2], vertical_alignment="center")
            with top[0]:
                on = st.checkbox(info.name, key=_KEY.format(info.id), persist_state="session")
            with top[1]:
                st.markdown(_status_badge(info), text_alignment="right", width="stretch")
            st.caption(accepts_sentence(info.capabilities))
            if on:
                chosen.append(info.id)
    if others:
        with st.expander(f"Not available here ({len(others)})", icon=":material/key_off:"):
            for info in others:
                if not info.capabilities.can_create and info.availability.available:
                    why = "Only follows tasks made elsewhere: use *Track a task* on Tasks."
                else:
                    why = info.availability.reason or "Not available."
                st.markdown(f"**{info.name}** — {why}")
    return chosen


def _status_badge(info: ProviderInfo) -> str:
    if info.id == "local":
        return ":green-badge[:material/computer: Offline · free]"
    return ":green-badge[:material/key: Ready]"


_OPTION_KEYS = {
    "expression_intensity": "opt_intensity",
    "body_control": "opt_body",
    "ratio": "opt_ratio",
    "seed": "opt_seed",
    "public_figure_threshold": "opt_public_figure",
}
_PROVIDER_DEFAULT = "Provider default"
# Choice boxes that start at _PROVIDER_DEFAULT: left there, the option is not sent at all.
_CHOICE_BOXES = ("ratio", "public_figure_threshold")
_PUBLIC_FIGURE_WORDS = {
    _PROVIDER_DEFAULT: _PROVIDER_DEFAULT,
    "auto": "Standard (auto)",
    "low": "Less strict (low)",
}


def option_values() -> TaskOptions:
    """Every option the creator has set this session, shown or not (the widgets keep their
    value while a provider that hides them is chosen), so a draft loses none of them."""
    values = {
        opt: st.session_state[key] for opt, key in _OPTION_KEYS.items() if key in st.session_state
    }
    for opt in _CHOICE_BOXES:
        if values.get(opt) == _PROVIDER_DEFAULT:
            values[opt] = None
    return TaskOptions.model_validate(values)


def restore_options(options: TaskOptions) -> None:
    """Before the widgets exist: start them at a remembered draft's values."""
    for opt, value in options.model_dump(exclude_none=True).items():
        st.session_state[_OPTION_KEYS[opt]] = value


@overload
def _default(key: str, value: _T) -> _T | None: ...
@overload
def _default(key: str, value: _T, unset: _T) -> _T: ...
def _default(key: str, value: _T, unset: _T | None = None) -> _T | None:
    """A widget's default, left out once Session State holds its value (a restored draft):
    Streamlit logs a warning for a widget given both."""
    return unset if key in st.session_state else value


def options_panel(chosen: list[str]) -> TaskOptions:
    """Widgets for the options any chosen provider supports; the rest stay unset."""
    infos = {i.id: i for i in provider_infos()}
    supported: dict[str, list[str]] = {}
    ratios: list[str] = []
    for pid in chosen:
        caps = infos[pid].capabilities
        for opt in sorted(caps.options):
            supported.setdefault(opt, []).append(infos[pid].name)
        ratios.extend(r for r in caps.ratios if r not in ratios)
    if not supported:
        st.caption("The chosen providers take no extra options.")
        return TaskOptions()

    def used_by(opt: str) -> str:
        names = supported[opt]
        return "Used by " + ", ".join(names) + "."

    values: dict[str, object] = {}
    if "expression_intensity" in supported:
        values["expression_intensity"] = st.slider(
            OPTION_LABELS["expression_intensity"],
            1,
            5,
            _default("opt_intensity", 3),
            key="opt_intensity",
            help="How strongly the performer's expressions are carried over. "
            + used_by("expression_intensity"),
            persist_state="session",
        )
    if "body_control" in supported:
        values["body_control"] = st.toggle(
            OPTION_LABELS["body_control"],
            value=_default("opt_body", True, unset=False),
            key="opt_body",
            help="Also carry over body and hand motion, not only the face. "
            + used_by("body_control"),
            persist_state="session",
        )
    if "ratio" in supported and ratios:
        if st.session_state.get("opt_ratio", _PROVIDER_DEFAULT) not in (_PROVIDER_DEFAULT, *ratios):
            # A remembered ratio these providers do not offer.
            st.session_state["opt_ratio"] = _PROVIDER_DEFAULT
        picked = st.selectbox(
            OPTION_LABELS["ratio"],
            [_PROVIDER_DEFAULT, *ratios],
            key="opt_ratio",
            help="Width:height of the output in pixels. " + used_by("ratio"),
            persist_state="session",
        )
        values["ratio"] = None if picked == _PROVIDER_DEFAULT else picked
    if "seed" in supported:
        seed = st.number_input(
            OPTION_LABELS["seed"],
            min_value=0,
            max_value=4294967295,
            value=None,
            step=1,
            placeholder="Random",
            key="opt_seed",
            help="Fix the seed to get the same result for the same inputs. " + used_by("seed"),
            persist_state="session",
        )
        values["seed"] = int(seed) if seed is not None else None
    if "public_figure_threshold" in supported:
        if st.session_state.get("opt_public_figure", _PROVIDER_DEFAULT) not in _PUBLIC_FIGURE_WORDS:
            st.session_state["opt_public_figure"] = _PROVIDER_DEFAULT
        picked = st.selectbox(
            OPTION_LABELS["public_figure_threshold"],
            list(_PUBLIC_FIGURE_WORDS),
            format_func=_PUBLIC_FIGURE_WORDS.__getitem__,
            key="opt_public_figure",
            help="How strictly the provider's content moderation refuses inputs that show a "
            "recognisable public figure: less strict lets more through. "
            + used_by("public_figure_threshold"),
            persist_state="session",
        )
        values["public_figure_threshold"] = None if picked == _PROVIDER_DEFAULT else picked
    return TaskOptions.model_validate(values)


def cost_summary(estimates: dict[str, float | None]) -> None:
    """Per provider, and a total when every price is known."""
    if not estimates:
        return
    names = {i.id: i.name for i in provider_infos()}
    mine = get_studio().prices()
    lines = []
    for pid, v in estimates.items():
        if v is None:
            lines.append(f"- {names.get(pid, pid)}: **{cost(v)}** — set your price in Settings")
        else:
            yours = " (your price)" if pid in mine and v else ""
            lines.append(f"- {names.get(pid, pid)}: **{cost(v)}**{yours}")
    known = [v for v in estimates.values() if v is not None]
    total = ""
    if len(estimates) > 1 and len(known) == len(estimates):
        total = f"\n\nTotal: **{cost(sum(known))}**"
    st.markdown("\n".join(lines) + total)


def spend_label(estimates: dict[str, float | None]) -> str | None:
    """What Submit will cost, short enough for the button; None when it costs nothing."""
    known = [v for v in estimates.values() if v is not None]
    unknown = len(estimates) - len(known)
    paid = sum(known)
    if unknown and paid:
        return f"{cost(paid)} + unpriced"
    if unknown:
        return "price not published"
    return cost(paid) if paid else None

"""Settings → Spending: what was spent per provider and UTC day in a month (the provider's own
figures where it reported one, else estimates, marked so), and the caps (services/spending.py).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import streamlit as st

from services import spending
from services.config import TOTAL
from services.models import utcnow
from services.spending import Period, SpendReport, usd
from services.studio import ProviderInfo, Studio

_MONTHS_SHOWN = 12
_SOURCE_WORDS = {
    "reported": "reported by the provider",
    "estimate": "estimate",
    "mixed": "part reported, part estimate",
    "none": "—",
}


def _months(now: datetime) -> list[str]:
    """This month and the eleven before it, newest first (UTC)."""
    out = []
    year, month = now.year, now.month
    for _ in range(_MONTHS_SHOWN):
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return out


def spending_panel(studio: Studio, infos: list[ProviderInfo], *, can_edit: bool) -> None:
    now = utcnow()
    names = {i.id: i.name for i in infos}
    month = st.selectbox("Month (UTC)", _months(now), key="spend_month")
    report = spending.month_report(studio.store, studio.settings, month, now=now)
    for problem in report.problems:
        st.error(problem, icon=":material/error:")
    _totals(report, names, now)
    _days(report, names, now)
    st.markdown("**Caps**")
    caps_form(studio, infos, report, can_edit=can_edit)


def _totals(report: SpendReport, names: dict[str, str], now: datetime) -> None:
    today = next((d for d in report.days if d.day == now.date()), None)
    this_month = report.month == f"{now.year:04d}-{now.month:02d}"
    cols = st.columns(2 if this_month else 1)
    if this_month:
        cols[0].metric("Today (UTC)", usd(today.total.total_usd if today else 0))
    cols[-1].metric("This month" if this_month else report.month, usd(report.total.total_usd))
    if report.total.tasks:
        n = report.total.tasks
        st.caption(f"{report.month}: {report.total.shown()} over {n} task{'s' * (n != 1)}.")
    if not report.providers:
        st.caption("Nothing was spent in this month.")
        return
    # A plain table: a handful of rows, read by screen readers and searchable on the page.
    with st.container(key="spend_providers"):
        st.table(
            [
                {
                    "Provider": names.get(pid, pid),
                    "Tasks": s.tasks,
                    "Spent": usd(s.total_usd),
                    "Reported": usd(s.reported_usd),
                    "Estimated": usd(s.estimated_usd),
                    "Source": _SOURCE_WORDS[s.source]
                    + (f" · {s.unpriced} without a price" if s.unpriced else ""),
                }
                for pid, s in report.providers.items()
            ],
            hide_index=True,
        )
    st.caption(
        "Reported: what the provider said it charged (Runway reports it on every finished "
        "task). Estimated: price per second × the driving clip, where it reported nothing; "
        "failed and canceled tasks count only what the provider reported."
    )


def _days(report: SpendReport, names: dict[str, str], now: datetime) -> None:
    if not report.days:
        return
    # Every day of the month so far, so the chart reads as the month's timeline.
    start = spending.parse_month(report.month)
    end = min(spending.next_month(start), spending.day_start(now) + timedelta(days=1))
    spent = {(d.day, pid): s.total_usd for d in report.days for pid, s in d.providers.items()}
    records = []
    day = start
    while day < end:
        for pid in report.providers:
            records.append(
                {
                    "Day": day.date().isoformat(),
                    "Provider": names.get(pid, pid),
                    "US$": spent.get((day.date(), pid), 0.0),
                }
            )
        day += timedelta(days=1)
    st.bar_chart(records, x="Day", y="US$", color="Provider", height=220)
    with st.expander("Per day"):
        st.dataframe(
            [
                {
                    "Day (UTC)": d.day.isoformat(),
                    "Total": d.total.shown(),
                    **{names.get(pid, pid): s.shown() for pid, s in d.providers.items()},
                }
                for d in report.days
            ],
            hide_index=True,
            key="spend_days",
        )
    st.caption(
        "Days are UTC days; a task counts on the day it was submitted. “est.” marks the app's "
        "estimate where the provider reported no cost."
    )


def caps_form(
    studio: Studio, infos: list[ProviderInfo], report: SpendReport, *, can_edit: bool
) -> None:
    """Every cap: the whole account and each paid provider, per UTC day and month. A saved
    value replaces the environment's; an emptied one means no cap."""
    in_force = {(c.period, c.scope): c for c in spending.caps(studio.store, studio.settings)}
    for status in report.caps:
        share = status.spent_usd / status.cap_usd if status.cap_usd else 1.0
        st.progress(
            min(1.0, share),
            text=f"{status.title()} {usd(status.cap_usd)}: {usd(status.spent_usd)} spent, "
            f"{usd(status.left_usd)} left",
        )
    scopes = [(TOTAL, "All providers together")] + [
        (i.id, i.name)
        for i in infos
        if i.capabilities.can_create and i.capabilities.cost_per_second_usd != 0
    ]
    periods: tuple[Period, ...] = spending.PERIODS
    with st.form("spend_caps", border=True):
        values: dict[tuple[Period, str], float | None] = {}
        head = st.columns([2, 1, 1])
        head[1].caption("Per UTC day (US$)")
        head[2].caption("Per UTC month (US$)")
        for scope, label in scopes:
            cols = st.columns([2, 1, 1], vertical_alignment="bottom")
            cols[0].markdown(label)
            for col, period in zip(cols[1:], periods, strict=True):
                cap = in_force.get((period, scope))
                values[(period, scope)] = col.number_input(
                    f"{label}: US$ per {period}",
                    min_value=0.0,
                    max_value=spending.MAX_CAP_USD,
                    value=cap.usd if cap else None,
                    step=1.0,
                    format="%.2f",
                    placeholder="no cap",
                    label_visibility="collapsed",
                    help=f"From {cap.source}." if cap else None,
                    disabled=not can_edit,
                    key=f"cap_{period}_{scope}",
                )
        saved = st.form_submit_button("Save caps", icon=":material/save:", disabled=not can_edit)
    if saved:
        changed = 0
        for (period, scope), value in values.items():
            cap = in_force.get((period, scope))
            if value != (cap.usd if cap else None):
                spending.set_cap(studio.store, period, scope, value)
                changed += 1
        st.toast(
            "Caps saved: the next submit is checked against them." if changed else "No change."
        )
        st.rerun()
    st.caption(
        "A submit or batch that would cross a cap is refused before anything is sent, with "
        "how much is left. Empty means no cap. Caps in the environment "
        "(`REENACT_SPEND_CAP_DAY_USD`, `REENACT_RUNWAY_SPEND_CAP_MONTH_USD`, …) apply until "
        "one is saved here." + ("" if can_edit else " Only an admin can change them.")
    )

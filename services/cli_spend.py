"""`reenact spend [--json] [--month YYYY-MM]`: what was spent per provider and UTC day in a
month (the provider's own figures where it reported one, else estimates, marked so), and
every spending cap with what is left under it today and this month (services/spending.py).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from services.cli import Ctx
    from services.spending import SpendReport


def register(
    add: Callable[[str, Callable[[Ctx], int], str], argparse.ArgumentParser],
    json_flag: Callable[[argparse.ArgumentParser], None],
) -> None:
    p = add(
        "spend",
        cmd_spend,
        "what was spent per provider and day (UTC) in a month, and what is left under the caps",
    )
    p.add_argument(
        "--month", type=_month, metavar="YYYY-MM", help="which month (default: this one, UTC)"
    )
    json_flag(p)


def _month(value: str) -> str:
    from services.errors import InputError
    from services.spending import parse_month

    try:
        parse_month(value)
    except InputError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return value.strip()


def cmd_spend(ctx: Ctx) -> int:
    from services.cli import EXIT_OK
    from services.spending import month_report

    report = month_report(ctx.studio.store, ctx.settings, ctx.args.month)
    if ctx.json:
        ctx.emit(report.model_dump(mode="json"))
    else:
        ctx.out(spend_text(report, _names(ctx)))
    return EXIT_OK


def _names(ctx: Ctx) -> dict[str, str]:
    return {info.id: info.name for info in ctx.runtime.catalog.infos()}


def spend_text(report: SpendReport, names: dict[str, str]) -> str:
    from services.cli_output import table
    from services.spending import usd

    lines = [f"Spending in {report.month} (days are UTC)"]
    if not report.providers:
        lines.append("Nothing was spent in this month.")
    else:
        rows = [
            [names.get(pid, pid), str(s.tasks), s.shown()] for pid, s in report.providers.items()
        ]
        rows.append(["Total", str(report.total.tasks), report.total.shown()])
        lines += ["", table(["PROVIDER", "TASKS", "SPENT"], rows)]
        lines += ["", "By day:"]
        for day in report.days:
            parts = [f"{names.get(pid, pid)} {s.shown()}" for pid, s in day.providers.items()]
            lines.append(
                f"  {day.day.isoformat()}  {usd(day.total.total_usd)}  ({'; '.join(parts)})"
            )
    lines.append("")
    for problem in report.problems:
        lines.append(f"Cap not applied: {problem}")
    if report.caps:
        lines.append("Caps (today and this month, UTC):")
        for cap in report.caps:
            lines.append(
                f"  {cap.title()} {usd(cap.cap_usd)}: {usd(cap.spent_usd)} spent, "
                f"{usd(cap.left_usd)} left (from {cap.source})"
            )
    elif not report.problems:
        lines.append(
            "No spending cap is set (Settings → Spending, or REENACT_SPEND_CAP_DAY_USD / "
            "REENACT_SPEND_CAP_MONTH_USD)."
        )
    lines.append(
        "“est.” is the app's estimate (price per second × the driving clip) where the "
        "provider reported no cost."
    )
    return "\n".join(lines)

"""Spending: what was spent per provider per UTC day and month, and the caps that refuse a
submit or a batch that would cross them.

What a task counts for (`COUNTED` and `_SUMS`, the one rule every figure uses, as SQL):
- the provider's own figure (`Task.cost_usd`, written from a poll) wherever it gave one —
  "reported", whatever the task's state (a refunded failure reports $0);
- else, for a task that may have been charged (being submitted, queued, running, succeeded,
  or unknown — a create that may have reached the provider), its estimate
  (`Task.cost_estimate`: price per second × the driving clip) — "estimate";
- a failed or canceled task without a figure counts nothing (providers do not charge for
  what they did not make unless they say so), nor does a task followed by id (made and
  paid elsewhere) without one;
- a task that should count but has no price is "unpriced": counted as a task, $0.

A task belongs to the UTC day it was submitted (when a provider charges, at the create).
Days and months are UTC everywhere — the page, the CLI and the caps — so "today" is the
same for every process and time zone.

Caps: per UTC day and/or month, over every provider together (`TOTAL`) or per provider.
The environment's (config.SpendCaps, e.g. REENACT_SPEND_CAP_DAY_USD or
REENACT_RUNWAY_SPEND_CAP_MONTH_USD) apply until Settings saves its own, one cap at a time
(a cleared cap in Settings means no cap). `ensure_within_cap` refuses with a sentence that
says which cap, what is spent, what this would add and what is left; `within_cap` holds
the check and the caller's row inserts under one lock (a file lock beside the SQLite file,
an advisory lock on PostgreSQL), so two submits racing cannot both fit under the same
headroom.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, computed_field
from sqlalchemy import and_, case, func, or_, select

from services.config import PROVIDER_IDS, TOTAL, Settings, spend_cap_variable
from services.dblock import db_lock
from services.errors import ConfigError, InputError
from services.models import TaskStatus, utcnow
from services.store import Store, TaskRow

Period = Literal["day", "month"]
PERIODS: tuple[Period, ...] = ("day", "month")

CAPS_PREF = "spend_caps"
SETTINGS_SOURCE = "Settings"
# The most a cap may be set to in Settings (a typo of three extra zeros is not a cap).
MAX_CAP_USD = 1_000_000.0
# Amounts are compared in whole cents: $20.00 spent of a $20.00 cap is not over it.
_CENT = 0.005

# States whose estimate never counts: nothing was made, or the provider ended it unmade.
_NOT_CHARGED = (TaskStatus.FAILED.value, TaskStatus.CANCELED.value, TaskStatus.DRAFT.value)


# ---- what one task counts for (the rule, as SQL: sums are the database's work) -----------------
_T = TaskRow
# Which tasks count at all: a reported figure, or a state that may have been charged.
COUNTED = or_(_T.cost_usd.is_not(None), and_(_T.status.not_in(_NOT_CHARGED), _T.tracked == 0))
# Of those: the provider's figure, else the estimate (None: unpriced).
_ESTIMATE = case((_T.cost_usd.is_(None), _T.cost_estimate))
_SUMS = (
    func.count(),
    func.count(_T.cost_usd),
    func.coalesce(func.sum(_T.cost_usd), 0.0),
    func.coalesce(func.sum(_ESTIMATE), 0.0),
    func.sum(case((func.coalesce(_T.cost_usd, _T.cost_estimate).is_(None), 1), else_=0)),
)


class Spent(BaseModel):
    """Money spent over some tasks, the provider's figures and our estimates apart."""

    reported_usd: float = 0.0
    estimated_usd: float = 0.0
    tasks: int = 0  # tasks counted
    reported_tasks: int = 0  # of those, tasks with the provider's own figure
    unpriced: int = 0  # of those, tasks with neither a figure nor a price ($0 here)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def total_usd(self) -> float:
        return round(self.reported_usd + self.estimated_usd, 2)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def source(self) -> str:
        """ "reported" (every figure from the provider), "estimate" (none), "mixed", or
        "none" (no task)."""
        if not self.tasks:
            return "none"
        if self.reported_tasks == self.tasks:
            return "reported"
        return "mixed" if self.reported_tasks else "estimate"

    def shown(self) -> str:
        """ "$0.70 ($0.50 reported + $0.20 est.)": any estimate in it is marked."""
        text = usd(self.total_usd)
        if self.estimated_usd > 0 and self.reported_usd > 0:
            text += f" ({usd(self.reported_usd)} reported + {usd(self.estimated_usd)} est.)"
        elif self.estimated_usd > 0:
            text += " est."
        if self.unpriced:
            text += f", {self.unpriced} without a price"
        return text

    @classmethod
    def of(
        cls, tasks: int, reported: int, reported_usd: float, estimated_usd: float, unpriced: int
    ) -> Spent:
        """From one row of the `_SUMS` columns."""
        return cls(
            tasks=tasks,
            reported_tasks=reported,
            reported_usd=round(float(reported_usd), 4),
            estimated_usd=round(float(estimated_usd), 4),
            unpriced=int(unpriced or 0),
        )

    def __add__(self, other: Spent) -> Spent:
        return Spent(
            tasks=self.tasks + other.tasks,
            reported_tasks=self.reported_tasks + other.reported_tasks,
            reported_usd=round(self.reported_usd + other.reported_usd, 4),
            estimated_usd=round(self.estimated_usd + other.estimated_usd, 4),
            unpriced=self.unpriced + other.unpriced,
        )


class DaySpent(BaseModel):
    day: date  # a UTC day
    total: Spent
    providers: dict[str, Spent]


class CapStatus(BaseModel):
    """One cap as it stands now (today or this month, UTC)."""

    period: Period
    scope: str  # TOTAL or a provider id
    name: str  # "all providers" or the provider's name
    cap_usd: float
    spent_usd: float
    left_usd: float
    source: str  # "Settings" or the environment variable it came from
    unpriced: int = 0  # tasks under it with no price (counted as $0)

    def title(self) -> str:
        """ "Today's Runway cap" """
        words = _cap_words(self.period, self.name)
        return words[0].upper() + words[1:]

    def sentence(self) -> str:
        """ "$1.60 left of today's Runway cap ($20.00)." """
        words = _cap_words(self.period, self.name)
        return f"{usd(self.left_usd)} left of {words} ({usd(self.cap_usd)})."


class SpendReport(BaseModel):
    """`reenact spend --json` and the Settings panel: one UTC month, by provider and day."""

    month: str  # YYYY-MM
    timezone: str = "UTC"
    as_of: datetime
    total: Spent
    providers: dict[str, Spent]
    days: list[DaySpent]  # days with spending, in order
    caps: list[CapStatus] = Field(default_factory=list)  # as they stand now
    # Cap variables that are set but unreadable (paid submits are refused until fixed).
    problems: list[str] = Field(default_factory=list)


def usd(value: float) -> str:
    return f"${value:,.2f}"


# ---- periods (UTC) ----------------------------------------------------------------------------
def day_start(now: datetime) -> datetime:
    now = now.astimezone(UTC)
    return datetime(now.year, now.month, now.day, tzinfo=UTC)


def month_start(now: datetime) -> datetime:
    now = now.astimezone(UTC)
    return datetime(now.year, now.month, 1, tzinfo=UTC)


def next_month(start: datetime) -> datetime:
    return datetime(start.year + start.month // 12, start.month % 12 + 1, 1, tzinfo=UTC)


def parse_month(value: str) -> datetime:
    """The start of the UTC month "YYYY-MM"."""
    parts = value.strip().split("-")
    if len(parts) == 2 and all(p.isdigit() for p in parts) and len(parts[0]) == 4:
        year, month = int(parts[0]), int(parts[1])
        if 1 <= month <= 12 and year >= 1970:
            return datetime(year, month, 1, tzinfo=UTC)
    raise InputError(f"Give the month as YYYY-MM, for example 2026-05 (not “{value[:20]}”).")


# ---- reading the store ------------------------------------------------------------------------
def _sums(store: Store, start: datetime, end: datetime, by: Any) -> list[tuple[str, Any, Spent]]:
    """(provider, `by`'s value, what was spent) for tasks submitted in [start, end), one row
    per provider and value of `by` (a UTC day, or whether it was today)."""
    stmt = (
        select(_T.provider, by, *_SUMS)
        .where(_T.created_at >= start, _T.created_at < end, COUNTED)
        .group_by(_T.provider, by)
    )
    with store.engine.connect() as conn:
        return [(row[0], row[1], Spent.of(*row[2:])) for row in conn.execute(stmt)]


def _total(by_provider: dict[str, Spent]) -> Spent:
    return sum(by_provider.values(), Spent())


def _ordered(by_provider: dict[str, Spent]) -> dict[str, Spent]:
    order = {pid: i for i, pid in enumerate(PROVIDER_IDS)}
    return dict(sorted(by_provider.items(), key=lambda kv: (order.get(kv[0], 99), kv[0])))


def month_report(
    store: Store,
    settings: Settings,
    month: str | None = None,
    *,
    now: datetime | None = None,
) -> SpendReport:
    """A UTC month (default: this one) by provider and day, with the caps as they stand now."""
    now = now or utcnow()
    start = parse_month(month) if month else month_start(now)
    # Stored times are UTC, so the database's date() is the UTC day.
    by_day: dict[date, dict[str, Spent]] = {}
    providers: dict[str, Spent] = {}
    for provider, day, spent in _sums(store, start, next_month(start), func.date(_T.created_at)):
        by_day.setdefault(_as_date(day), {})[provider] = spent
        providers[provider] = providers.get(provider, Spent()) + spent
    days = [
        DaySpent(day=day, total=_total(by_day[day]), providers=_ordered(by_day[day]))
        for day in sorted(by_day)
    ]
    return SpendReport(
        month=f"{start.year:04d}-{start.month:02d}",
        as_of=now,
        total=_total(providers),
        providers=_ordered(providers),
        days=days,
        caps=cap_status(store, settings, now=now),
        problems=list(settings.spend_caps.errors),
    )


def _as_date(value: Any) -> date:
    """SQLite's date() is text, PostgreSQL's a date."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


# ---- caps -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Cap:
    period: Period
    scope: str  # TOTAL or a provider id
    usd: float
    source: str  # "Settings" or the environment variable


def _saved(store: Store) -> dict[str, dict[str, float | None]]:
    """The caps saved in Settings: period → scope → dollars (None: no cap, on purpose)."""
    raw = store.get_pref(CAPS_PREF, {})
    out: dict[str, dict[str, float | None]] = {p: {} for p in PERIODS}
    if not isinstance(raw, dict):
        return out
    for period in PERIODS:
        entries = raw.get(period)
        if not isinstance(entries, dict):
            continue
        for scope, value in entries.items():
            if scope != TOTAL and scope not in PROVIDER_IDS:
                continue
            if value is None or (isinstance(value, int | float) and 0 <= value <= MAX_CAP_USD):
                out[period][scope] = None if value is None else float(value)
    return out


def caps(store: Store, settings: Settings) -> list[Cap]:
    """The caps in force: each one from Settings where it was saved there, else from the
    environment. Ordered provider caps first (the narrower), day before month."""
    saved = _saved(store)
    out: list[Cap] = []
    for period in PERIODS:
        env: dict[str, float] = getattr(settings.spend_caps, period)
        for scope in (*PROVIDER_IDS, TOTAL):
            if scope in saved[period]:
                value, source = saved[period][scope], SETTINGS_SOURCE
            elif scope in env:
                value, source = env[scope], spend_cap_variable(period, scope)
            else:
                continue
            if value is not None:
                out.append(Cap(period, scope, value, source))
    return sorted(out, key=lambda c: (c.scope == TOTAL, PERIODS.index(c.period)))


def set_cap(store: Store, period: str, scope: str, value: float | None) -> None:
    """Save one cap in Settings (None: no cap, whatever the environment says)."""
    if period not in PERIODS:
        raise InputError("A cap is per day or per month.")
    if scope != TOTAL and scope not in PROVIDER_IDS:
        raise InputError(f"There is no provider called '{scope[:40]}'.")
    if value is not None and not 0 <= value <= MAX_CAP_USD:
        raise InputError(f"A cap must be between $0 and {usd(MAX_CAP_USD)}.")
    saved = _saved(store)
    saved[period][scope] = None if value is None else round(float(value), 2)
    store.set_pref(CAPS_PREF, saved)


def forget_cap(store: Store, period: str, scope: str) -> None:
    """Drop a cap saved in Settings, so the environment's (if any) applies again."""
    saved = _saved(store)
    if saved.get(period, {}).pop(scope, 0) != 0:
        store.set_pref(CAPS_PREF, saved)


def _spent_now(store: Store, now: datetime) -> dict[tuple[Period, str], Spent]:
    """(period, scope) → spent today / this month (UTC), by provider and over all of them:
    one grouped read of this month."""
    start = month_start(now)
    today = (_T.created_at >= day_start(now)).label("today")
    out: dict[tuple[Period, str], Spent] = {}
    for provider, is_today, spent in _sums(store, start, next_month(start), today):
        periods: tuple[Period, ...] = ("day", "month") if is_today else ("month",)
        for period in periods:
            for scope in (provider, TOTAL):
                out[(period, scope)] = out.get((period, scope), Spent()) + spent
    return out


def _name(scope: str) -> str:
    if scope == TOTAL:
        return "all providers"
    from services.providers.registry import provider_class

    try:
        return provider_class(scope).name
    except Exception:
        return scope


def _cap_words(period: str, name: str) -> str:
    when = "today's" if period == "day" else "this month's"
    return f"{when} cap for all providers" if name == "all providers" else f"{when} {name} cap"


def cap_status(
    store: Store,
    settings: Settings,
    *,
    now: datetime | None = None,
) -> list[CapStatus]:
    """Every cap in force with what is spent under it and what is left (UTC day/month)."""
    now = now or utcnow()
    found = caps(store, settings)
    if not found:
        return []
    spent = _spent_now(store, now)
    out = []
    for cap in found:
        under = spent.get((cap.period, cap.scope), Spent())
        out.append(
            CapStatus(
                period=cap.period,
                scope=cap.scope,
                name=_name(cap.scope),
                cap_usd=cap.usd,
                spent_usd=under.total_usd,
                left_usd=round(max(0.0, cap.usd - under.total_usd), 2),
                source=cap.source,
                unpriced=under.unpriced,
            )
        )
    return out


def ensure_within_cap(
    store: Store,
    settings: Settings,
    planned: Mapping[str, float | None],
    *,
    now: datetime | None = None,
) -> None:
    """Refuse (InputError, with the sentence) what would cross a cap: `planned` is what is
    about to be sent, US dollars per provider id (None: no price known). Nothing to add, or
    no cap that applies, passes without reading the tasks."""
    if settings.spend_caps.errors:
        raise ConfigError(settings.spend_caps.errors[0])
    applying = [cap for cap in caps(store, settings) if cap.scope == TOTAL or cap.scope in planned]
    if not applying:
        return
    for pid, amount in planned.items():
        if amount is None:
            cap = next((c for c in applying if c.scope in (pid, TOTAL)), None)
            if cap is None:
                continue
            name = _name(pid)
            raise InputError(
                f"{name} has no price here, so what it costs cannot be counted against "
                f"{_cap_words(cap.period, _name(cap.scope))} ({usd(cap.usd)}). Set your price "
                f"per second for {name} in Settings → Your prices, then submit again."
            )
    spent = _spent_now(store, now or utcnow())
    for cap in applying:
        adding = sum(amount or 0.0 for pid, amount in planned.items() if cap.scope in (pid, TOTAL))
        if adding <= 0:
            continue
        so_far = spent.get((cap.period, cap.scope), Spent()).total_usd
        if so_far + adding > cap.usd + _CENT:
            left = max(0.0, cap.usd - so_far)
            words = _cap_words(cap.period, _name(cap.scope))
            wait = "tomorrow (UTC)" if cap.period == "day" else "next month (UTC)"
            raise InputError(
                f"{words[0].upper() + words[1:]} is {usd(cap.usd)}: {usd(so_far)} spent, this "
                f"would add {usd(adding)}; {usd(left)} left. Raise the cap in Settings → "
                f"Spending, or wait until {wait}."
            )


# ---- one check at a time ------------------------------------------------------------------------
@contextmanager
def _cap_lock(store: Store) -> Iterator[None]:
    """One cap check (and the rows it allowed) at a time, across processes."""
    with db_lock(store.engine, "spend"):
        yield


@contextmanager
def within_cap(
    store: Store,
    settings: Settings,
    planned: Mapping[str, float | None],
    *,
    now: datetime | None = None,
) -> Iterator[None]:
    """`ensure_within_cap`, holding the check until the block has written the task rows it
    allowed (their estimates then count for the next check). Without a cap that applies to
    `planned`, no lock is taken."""
    if not any((a is None or a > 0) for a in planned.values()) or not (
        settings.spend_caps.errors or caps(store, settings)
    ):
        yield
        return
    with _cap_lock(store):
        ensure_within_cap(store, settings, planned, now=now)
        yield


def headroom(
    store: Store, settings: Settings, providers: Iterable[str], *, now: datetime | None = None
) -> list[CapStatus]:
    """The caps that apply to a submit to `providers` (the Submit button says what is left)."""
    chosen = set(providers)
    return [
        c for c in cap_status(store, settings, now=now) if c.scope == TOTAL or c.scope in chosen
    ]

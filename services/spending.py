"""Spending: what was spent per provider per UTC day and month, and the caps that refuse a
submit or a batch that would cross them.

What a task counts for (`charge`, the one rule every figure uses):
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

import fcntl
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, computed_field
from sqlalchemy import and_, or_, select, text

from services.config import PROVIDER_IDS, TOTAL, Settings, spend_cap_variable
from services.errors import ConfigError, InputError
from services.models import TaskStatus, utcnow
from services.store import Store, TaskRow

Period = Literal["day", "month"]
PERIODS: tuple[Period, ...] = ("day", "month")
Source = Literal["reported", "estimate"]

CAPS_PREF = "spend_caps"
SETTINGS_SOURCE = "Settings"
# The most a cap may be set to in Settings (a typo of three extra zeros is not a cap).
MAX_CAP_USD = 1_000_000.0
# Amounts are compared in whole cents: $20.00 spent of a $20.00 cap is not over it.
_CENT = 0.005

# States whose estimate never counts: nothing was made, or the provider ended it unmade.
_NOT_CHARGED = (TaskStatus.FAILED.value, TaskStatus.CANCELED.value, TaskStatus.DRAFT.value)


# ---- what one task counts for ---------------------------------------------------------------
def charge(
    status: str, tracked: bool, cost_usd: float | None, cost_estimate: float | None
) -> tuple[float | None, Source] | None:
    """(US dollars or None when unpriced, where the figure comes from), or None when the
    task counts nothing. See the module's docstring for the rule."""
    if cost_usd is not None:
        return float(cost_usd), "reported"
    if status in _NOT_CHARGED or tracked:
        return None
    return cost_estimate, "estimate"


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

    def add(self, usd: float | None, source: Source) -> None:
        self.tasks += 1
        if usd is None:
            self.unpriced += 1
        elif source == "reported":
            self.reported_tasks += 1
            self.reported_usd = round(self.reported_usd + usd, 4)
        else:
            self.estimated_usd = round(self.estimated_usd + usd, 4)


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
@dataclass(frozen=True)
class _Row:
    provider: str
    created_at: datetime
    usd: float | None
    source: Source


def _rows(store: Store, start: datetime, end: datetime) -> list[_Row]:
    """Every task submitted in [start, end) that counts for something."""
    t = TaskRow
    stmt = select(t.provider, t.status, t.tracked, t.cost_usd, t.cost_estimate, t.created_at).where(
        t.created_at >= start,
        t.created_at < end,
        or_(t.cost_usd.is_not(None), and_(t.status.not_in(_NOT_CHARGED), t.tracked == 0)),
    )
    out: list[_Row] = []
    with store.engine.connect() as conn:
        for provider, status, tracked, cost_usd, estimate, created_at in conn.execute(stmt):
            counted = charge(status, bool(tracked), cost_usd, estimate)
            if counted is not None:
                out.append(_Row(provider, created_at, counted[0], counted[1]))
    return out


def _sum(rows: Iterable[_Row]) -> tuple[Spent, dict[str, Spent]]:
    total, providers = Spent(), dict[str, Spent]()
    for row in rows:
        total.add(row.usd, row.source)
        providers.setdefault(row.provider, Spent()).add(row.usd, row.source)
    return total, _ordered(providers)


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
    rows = _rows(store, start, next_month(start))
    total, providers = _sum(rows)
    by_day: dict[date, list[_Row]] = {}
    for row in rows:
        by_day.setdefault(row.created_at.astimezone(UTC).date(), []).append(row)
    days = []
    for day in sorted(by_day):
        day_total, day_providers = _sum(by_day[day])
        days.append(DaySpent(day=day, total=day_total, providers=day_providers))
    this_month = start == month_start(now)
    return SpendReport(
        month=f"{start.year:04d}-{start.month:02d}",
        as_of=now,
        total=total,
        providers=providers,
        days=days,
        caps=cap_status(store, settings, now=now, rows=rows if this_month else None),
        problems=list(settings.spend_caps.errors),
    )


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


def _spent_now(rows: Iterable[_Row], now: datetime) -> dict[tuple[Period, str], Spent]:
    """(period, scope) → spent today / this month, by provider and over all of them."""
    today = day_start(now)
    out: dict[tuple[Period, str], Spent] = {}
    for row in rows:
        periods: tuple[Period, ...] = ("day", "month") if row.created_at >= today else ("month",)
        for period in periods:
            for scope in (row.provider, TOTAL):
                out.setdefault((period, scope), Spent()).add(row.usd, row.source)
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
    rows: list[_Row] | None = None,
) -> list[CapStatus]:
    """Every cap in force with what is spent under it and what is left (UTC day/month)."""
    now = now or utcnow()
    found = caps(store, settings)
    if not found:
        return []
    if rows is None:
        start = month_start(now)
        rows = _rows(store, start, next_month(start))
    spent = _spent_now(rows, now)
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
    now = now or utcnow()
    start = month_start(now)
    spent = _spent_now(_rows(store, start, next_month(start)), now)
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
# In-memory databases live in one process: a thread lock is enough there.
_MEMORY_LOCK = threading.Lock()
# Any 64-bit number, the same in every process (pg_advisory_lock's key).
_PG_LOCK_KEY = 0x5245_454E_5350_454E


@contextmanager
def _cap_lock(store: Store) -> Iterator[None]:
    """One cap check (and the rows it allowed) at a time, across processes."""
    engine = store.engine
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _PG_LOCK_KEY})
            conn.commit()
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_LOCK_KEY})
                conn.commit()
        return
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:" or database.startswith("file:"):
        with _MEMORY_LOCK:
            yield
        return
    path = Path(database)
    # Each holder opens its own handle: flock then also keeps two threads of one process
    # apart, not only two processes.
    with open(path.with_name(f"{path.name}.spend.lock"), "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


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

"""Providers ranked from the creators' votes, the way public video arenas rank models: every
vote says the winner beat each other contender of its run; a Bradley–Terry model is fitted
to those pairwise outcomes and its strengths shown on an Elo-like scale (1000 = an average
provider, +100 ≈ wins 64 % against it). The uncertainty interval comes from a bootstrap over
votes (runs, not pairs: the pairs of one vote are not independent).
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Sequence

from pydantic import BaseModel

from services.models import Vote

SCALE = 400.0 / math.log(10.0)  # Elo points per natural-log unit of strength
BASE = 1000.0
# Pseudo-games against an average provider (one won, one lost): keeps an unbeaten provider
# finite, and pulls a rating backed by few votes toward the middle.
PRIOR_GAMES = 1.0
BOOTSTRAP_SAMPLES = 300


class Standing(BaseModel):
    provider: str
    rating: float  # Elo-like; 1000 = an average provider
    low: float  # 95 % bootstrap interval
    high: float
    wins: int  # pairwise wins (one per beaten contender)
    losses: int
    votes: int  # runs judged with this provider among the contenders
    first_places: int  # runs it won


def pairs(votes: Sequence[Vote]) -> list[tuple[str, str]]:
    """(winner, loser) for every contender a vote's winner beat."""
    out = []
    for vote in votes:
        for other in dict.fromkeys(vote.contenders):
            if other != vote.winner:
                out.append((vote.winner, other))
    return out


def bradley_terry(
    outcomes: Sequence[tuple[str, str]], players: Sequence[str], *, iterations: int = 200
) -> dict[str, float]:
    """Strengths (log scale, the average provider at 0) by Hunter's MM algorithm, each
    player also meeting a fixed-strength average opponent PRIOR_GAMES times each way."""
    wins = Counter(w for w, _ in outcomes)
    games: Counter[tuple[str, str]] = Counter()
    for w, lo in outcomes:
        games[(w, lo)] += 1
        games[(lo, w)] += 1
    opponents: dict[str, list[tuple[str, int]]] = {p: [] for p in players}
    for (a, b), n in games.items():
        if a in opponents:
            opponents[a].append((b, n))
    strength = dict.fromkeys(players, 1.0)
    for _ in range(iterations):
        moved = 0.0
        for p in players:
            denom = 2 * PRIOR_GAMES / (strength[p] + 1.0)
            denom += sum(n / (strength[p] + strength[q]) for q, n in opponents[p])
            new = (wins[p] + PRIOR_GAMES) / denom
            moved = max(moved, abs(math.log(new / strength[p])))
            strength[p] = new
        if moved < 1e-9:
            break
    return {p: math.log(s) for p, s in strength.items()}


def leaderboard(
    votes: Sequence[Vote], *, samples: int = BOOTSTRAP_SAMPLES, seed: int = 0
) -> list[Standing]:
    """Every provider that has been judged, best first."""
    players = sorted({p for v in votes for p in [v.winner, *v.contenders]})
    if not players:
        return []
    outcomes = pairs(votes)
    point = bradley_terry(outcomes, players)
    rng = random.Random(seed)
    draws: dict[str, list[float]] = {p: [] for p in players}
    for _ in range(samples if len(votes) > 1 else 0):
        resampled = [votes[rng.randrange(len(votes))] for _ in votes]
        fitted = bradley_terry(pairs(resampled), players, iterations=100)
        for p in players:
            draws[p].append(fitted[p])
    wins = Counter(w for w, _ in outcomes)
    losses = Counter(lo for _, lo in outcomes)
    judged = Counter(p for v in votes for p in dict.fromkeys(v.contenders))
    firsts = Counter(v.winner for v in votes)
    table = []
    for p in players:
        spread = sorted(draws[p]) or [point[p]]
        low = spread[int(0.025 * (len(spread) - 1))]
        high = spread[math.ceil(0.975 * (len(spread) - 1))]
        table.append(
            Standing(
                provider=p,
                rating=round(BASE + SCALE * point[p], 1),
                low=round(BASE + SCALE * min(low, point[p]), 1),
                high=round(BASE + SCALE * max(high, point[p]), 1),
                wins=wins[p],
                losses=losses[p],
                votes=judged[p],
                first_places=firsts[p],
            )
        )
    return sorted(table, key=lambda s: (-s.rating, s.provider))

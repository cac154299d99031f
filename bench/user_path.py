"""Throughput on the user's path, every side in the same rounds: jobctl through its HTTP API and through
`jobctl.client`, raw Celery, and (on PostgreSQL) the durable peers. Each round runs every side once, in an order
that rotates from round to round; each side's figure is the median of its rounds, and each ratio is the median
of the per-round ratios (jobctl's rate over the other side's in the same round)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from jobctl.bench.stats import median, ratios

Round = Callable[[int], float]  # jobs -> jobs (or chains) per second


@dataclass(frozen=True)
class Contender:
    """One side of the user-path rounds: its name and how it runs one round of `jobs` jobs."""

    name: str
    round: Round


@dataclass(frozen=True)
class Rounds:
    """Per side, its rate in each round (jobs or chains per second), in round order."""

    rates: dict[str, list[float]]

    def median(self, name: str) -> float:
        return median(self.rates[name])

    def ratio(self, ours: str, theirs: str) -> float:
        """The median over the rounds of `ours`' rate over `theirs`'."""
        return median(ratios(self.rates[ours], self.rates[theirs]))

    def per_round(self, ours: str, theirs: str) -> str:
        return ", ".join(f"{r:.2f}" for r in ratios(self.rates[ours], self.rates[theirs]))


def measure(contenders: Sequence[Contender], rounds: int, jobs: int, warmup: int) -> Rounds:
    """A warm-up round of `warmup` jobs on every side, then `rounds` rounds of `jobs`, the order rotating."""
    for side in contenders:
        side.round(warmup)
    rates: dict[str, list[float]] = {side.name: [] for side in contenders}
    for i in range(rounds):
        shift = i % len(contenders)
        for side in [*contenders[shift:], *contenders[:shift]]:
            rates[side.name].append(side.round(jobs))
    return Rounds(rates)

"""Small statistics for the benchmark: percentiles, medians and ratios of paired rounds."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(values: Sequence[float], p: float) -> float:
    """The `p`-th percentile (0-100) of `values` by linear interpolation between closest ranks.

    `ValueError` on an empty sequence; a single value is every percentile of itself."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= p <= 100:
        raise ValueError(f"percentile {p} outside 0-100")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(values: Sequence[float]) -> float:
    """The median of `values` (the 50th percentile)."""
    return percentile(values, 50)


def ratios(numerators: Sequence[float], denominators: Sequence[float]) -> list[float]:
    """Round-by-round ratios of two paired series of equal length (each round measured both sides)."""
    if len(numerators) != len(denominators):
        raise ValueError("paired series differ in length")
    return [n / d for n, d in zip(numerators, denominators, strict=True)]

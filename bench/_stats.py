"""Shared statistics for the benchmarks (a helper module: `make bench` skips `_*.py`)."""

from __future__ import annotations


def pct(samples: list[float], p: float) -> float:
    """The p-th percentile (nearest rank)."""
    s = sorted(samples)
    return s[min(len(s) - 1, max(0, round(p / 100 * len(s)) - 1))]

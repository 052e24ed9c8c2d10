"""The fixed buckets of the run-time and wait-time histograms, and percentiles read back from them.

A duration falls in the first bucket whose bound (ms) it does not exceed; beyond the last bound it
falls in `inf`. A percentile is the bound of the bucket holding its rank (nearest rank): "p95 = 250"
says 95 % of the attempts took at most 250 ms, and more than 5 % took over the bound before it.
Durations past the last bound read as that bound (1 h).
"""

from __future__ import annotations

from collections.abc import Mapping

# mirrors STATS_BOUNDS of arq_jobs/_scripts/lua/includes/stats.lua
BOUNDS_MS: tuple[int, ...] = (
    1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000, 60_000, 120_000,
    300_000, 600_000, 1_800_000, 3_600_000,
)  # fmt: skip
OVERFLOW = "inf"
LABELS: tuple[str, ...] = (*(str(bound) for bound in BOUNDS_MS), OVERFLOW)
RUN = "run"  # field prefix of the run-time histogram (start → end of an attempt)
WAIT = "wait"  # of the wait-time histogram (due → start)


def bucket(ms: float) -> str:
    """The label of the bucket holding a duration (as the script computes it)."""
    for bound in BOUNDS_MS:
        if ms <= bound:
            return str(bound)
    return OVERFLOW


def label_ms(label: str) -> int:
    """What a bucket reads as: its bound; the overflow bucket reads as the last bound."""
    return BOUNDS_MS[-1] if label == OVERFLOW else int(label)


def percentile(counts: Mapping[str, int], percent: int) -> int | None:
    """The `percent`-th percentile (nearest rank) of a histogram given as label → count; None when
    it is empty."""
    total = sum(counts.get(label, 0) for label in LABELS)
    if total <= 0:
        return None
    rank = -(-percent * total // 100)  # ceil(percent / 100 * total), in integers
    seen = 0
    for label in LABELS:
        seen += counts.get(label, 0)
        if seen >= rank:
            return label_ms(label)
    return label_ms(OVERFLOW)  # pragma: no cover - the loop reaches `total`

"""Latency samples (nanoseconds) summed up in milliseconds, for ``demo`` and ``bench``."""

from __future__ import annotations

#: The percentiles a summary reports, by name.
PERCENTILES = {"p50": 0.5, "p90": 0.9, "p99": 0.99}


def _at(ordered: list[int], fraction: float) -> float:
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] / 1e6


def percentile_ms(samples: list[int], fraction: float) -> float:
    """The sample at ``fraction`` of the sorted list, in milliseconds (nan when empty)."""
    return _at(sorted(samples), fraction) if samples else float("nan")


def summary_ms(samples: list[int]) -> dict[str, float | None]:
    """p50, p90, p99 and max in milliseconds, to the microsecond (None when empty)."""
    if not samples:
        return {name: None for name in (*PERCENTILES, "max")}
    ordered = sorted(samples)
    result: dict[str, float | None] = {
        name: round(_at(ordered, fraction), 3) for name, fraction in PERCENTILES.items()
    }
    result["max"] = round(ordered[-1] / 1e6, 3)
    return result

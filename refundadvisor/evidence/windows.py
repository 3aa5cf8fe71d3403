"""Spikes in a time series of buckets: a robust baseline and the windows far above it.

The baseline is the median of the active buckets (those with any traffic), so one runaway
hour cannot lift it and a quiet day's empty minutes cannot sink it to zero. A bucket is hot
when it is at least ``k`` times the baseline (and at least ``floor``); hot buckets at most
``max_gap`` buckets apart form a window, and a window needs ``min_buckets`` hot buckets.
"""

from statistics import median
from typing import Mapping, NamedTuple, Optional

MAX_WINDOWS = 10


class Baseline(NamedTuple):
    per_bucket: float  # the median of the active buckets
    threshold: float  # a bucket at or above this is hot
    k: float
    bucket_seconds: int


class Window(NamedTuple):
    start: int  # Unix seconds, the first hot bucket's start
    end: int  # Unix seconds, the last hot bucket's end (exclusive)
    hot_buckets: int
    value: float  # the metric summed over [start, end)
    cost: int  # nano-USD summed over [start, end)
    peak: float  # the highest bucket
    ratio: float  # the window's mean per bucket against the baseline


def baseline_of(series: Mapping[int, float], bucket_seconds: int, k: float, floor: float) -> Baseline:
    active = [value for value in series.values() if value > 0]
    typical = float(median(active)) if active else 0.0
    return Baseline(typical, max(k * typical, floor), k, bucket_seconds)


def find_windows(series: Mapping[int, float], costs: Mapping[int, int], bucket_seconds: int, k: float = 5.0,
                 floor: float = 0.0, min_buckets: int = 1, max_gap: int = 2) -> tuple[Baseline, list[Window]]:
    """The baseline and the windows far above it, largest first (by the metric, then cost).

    ``series`` maps bucket starts (Unix seconds, multiples of bucket_seconds) to the metric;
    ``costs`` maps the same starts to nano-USD (may be empty)."""
    baseline = baseline_of(series, bucket_seconds, k, floor)
    if baseline.threshold <= 0:
        return baseline, []
    hot = sorted(start for start, value in series.items() if value >= baseline.threshold)
    runs: list[list[int]] = []
    for start in hot:
        if runs and start - runs[-1][-1] <= (max_gap + 1) * bucket_seconds:
            runs[-1].append(start)
        else:
            runs.append([start])
    windows = []
    for run in runs:
        if len(run) < min_buckets:
            continue
        first, last = run[0], run[-1] + bucket_seconds
        inside = range(first, last, bucket_seconds)
        value = sum(series.get(start, 0) for start in inside)
        cost = sum(costs.get(start, 0) for start in inside)
        mean = value / len(inside)
        windows.append(Window(first, last, len(run), value, cost, max(series[start] for start in run),
                              mean / baseline.per_bucket if baseline.per_bucket else float("inf")))
    windows.sort(key=lambda window: (window.value, window.cost), reverse=True)
    return baseline, windows[:MAX_WINDOWS]


def largest(windows: list[Window]) -> Optional[Window]:
    return windows[0] if windows else None

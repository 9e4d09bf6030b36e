"""Statistics of timed pairs, without numpy: medians, quantiles, and the spread of per-pair ratios."""

from __future__ import annotations

import math
import statistics


def median(x):
    return statistics.median(x) if x else float('nan')


def quantile(x, q):
    """Linear-interpolated quantile (numpy's default) without numpy."""
    s = sorted(x)
    if not s:
        return float('nan')
    k = (len(s) - 1) * q
    lo, hi = math.floor(k), math.ceil(k)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def ratio_stats(r):
    """median and interquartile range of per-pair ratios."""
    return {'median': median(r), 'p25': quantile(r, 0.25), 'p75': quantile(r, 0.75),
            'min': min(r) if r else float('nan'), 'max': max(r) if r else float('nan'), 'n': len(r)}

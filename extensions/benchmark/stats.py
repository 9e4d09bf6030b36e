"""Statistics of the benchmark, pure functions on lists of numbers (standard library; scipy only for the quantile
of Student's t distribution, imported where it is needed, so that ``--report-only`` on timing data needs none):

* timed pairs: medians, quantiles, the spread of per-pair ratios, latency percentiles;
* accuracy over seeds: mean and sample standard deviation, the t-interval of a mean, and the 95% interval of
  the difference of two models' means: Welch's t-interval (the runs of two models are independent samples
  with possibly different spreads; the default and the one the verdicts use) and the paired-by-seed
  t-interval (shown alongside: runs of one seed share the seed, not the initial weights);
* the verdict in words that an interval supports: a difference whose interval contains 0 is never a win.
"""

from __future__ import annotations

import math
import statistics

CONFIDENCE = 0.95


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


def latency_percentiles(times_s) -> dict:
    """P50/P95/P99 (linear interpolation, as numpy) of timed runs given in seconds, in milliseconds; n runs.
    With 20 runs P99 lies between the two slowest: it is a tail estimate only with many runs."""
    ms = [t * 1e3 for t in times_s]
    return {'p50': quantile(ms, 0.50), 'p95': quantile(ms, 0.95), 'p99': quantile(ms, 0.99), 'n': len(ms)}


# ------------------------------------------------------------------------------------------ over seeds
def mean(x) -> float:
    return statistics.fmean(x) if x else float('nan')


def sd(x) -> float:
    """Sample standard deviation (n - 1); nan for fewer than 2 values."""
    return statistics.stdev(x) if len(x) >= 2 else float('nan')


def t_quantile(p: float, df: float) -> float:
    """The p-quantile of Student's t with df degrees of freedom (df may be fractional, as Welch's)."""
    from scipy.stats import t  # noqa: PLC0415  (only the accuracy statistics need scipy)
    return float(t.ppf(p, df))


def _interval(diff: float, se: float, df: float, conf: float, method: str, **extra) -> dict:
    """diff +- t(df) * se; a zero standard error (every value equal) gives the degenerate interval [diff, diff]."""
    if se == 0:
        t = 0.0
    elif math.isfinite(df) and df > 0:
        t = t_quantile(0.5 + conf / 2, df)
    else:
        t = float('nan')
    return {'diff': diff, 'lo': diff - t * se, 'hi': diff + t * se, 'se': se, 'df': df, 't': t,
            'confidence': conf, 'method': method, **extra}


def mean_interval(x, conf: float = CONFIDENCE) -> dict:
    """The t-interval of the mean of x (n - 1 degrees of freedom): {'mean', 'lo', 'hi', 'sd', 'n'}."""
    n = len(x)
    if n < 2:
        m = mean(x)
        return {'mean': m, 'lo': float('nan'), 'hi': float('nan'), 'sd': float('nan'), 'n': n}
    r = _interval(mean(x), sd(x) / math.sqrt(n), n - 1, conf, 'one-sample t')
    return {'mean': r['diff'], 'lo': r['lo'], 'hi': r['hi'], 'sd': sd(x), 'n': n}


def welch_interval(a, b, conf: float = CONFIDENCE) -> dict:
    """Welch's t-interval of mean(b) - mean(a) for independent samples with possibly unequal variances:
    standard error sqrt(va/na + vb/nb), Welch-Satterthwaite degrees of freedom. Equals
    scipy.stats.ttest_ind(b, a, equal_var=False).confidence_interval(conf)."""
    na, nb = len(a), len(b)
    if na < 2 or nb < 2:
        return {'diff': mean(b) - mean(a), 'lo': float('nan'), 'hi': float('nan'), 'se': float('nan'),
                'df': float('nan'), 't': float('nan'), 'confidence': conf, 'method': 'welch', 'n': [na, nb]}
    sa, sb = statistics.variance(a) / na, statistics.variance(b) / nb
    se = math.sqrt(sa + sb)
    den = sa**2 / (na - 1) + sb**2 / (nb - 1)
    df = (sa + sb) ** 2 / den if den > 0 else float('inf')
    return _interval(mean(b) - mean(a), se, df, conf, 'welch', n=[na, nb])


def paired_interval(a, b, conf: float = CONFIDENCE) -> dict:
    """The paired t-interval of mean(b - a), pairs given in the same order (here: by seed). Equals
    scipy.stats.ttest_rel(b, a).confidence_interval(conf)."""
    if len(a) != len(b):
        raise ValueError(f'paired samples of different lengths: {len(a)} and {len(b)}')
    d = [y - x for x, y in zip(a, b)]
    n = len(d)
    if n < 2:
        return {'diff': mean(d), 'lo': float('nan'), 'hi': float('nan'), 'se': float('nan'), 'df': float('nan'),
                't': float('nan'), 'confidence': conf, 'method': 'paired', 'n': n}
    return _interval(mean(d), sd(d) / math.sqrt(n), n - 1, conf, 'paired', n=n)


def spread_ratio(a, b) -> float:
    """sd(b) / sd(a): how much more (or less) b varies from run to run than a; inf when a never varied."""
    sa, sb = sd(a), sd(b)
    if math.isnan(sa) or math.isnan(sb):
        return float('nan')
    return sb / sa if sa > 0 else (1.0 if sb == 0 else float('inf'))


# -------------------------------------------------------------------------------------------- in words
def fnum(x: float, nd: int = 3, sign: bool = False) -> str:
    """x with nd decimals, more (up to 6) where nd would round a nonzero value to zero, so that the sign an
    interval's end has is always the sign it shows."""
    if x is None or not math.isfinite(x):
        return 'n/a' if x is None or math.isnan(x) else ('+inf' if x > 0 else '-inf')
    while nd < 6 and x != 0 and round(abs(x), nd) == 0:
        nd += 1
    return f'{x:+.{nd}f}' if sign else f'{x:.{nd}f}'


def ci_text(lo: float, hi: float, conf: float = CONFIDENCE, nd: int = 3) -> str:
    return f'{conf:.0%} CI {fnum(lo, nd, True)}..{fnum(hi, nd, True)}'


def verdict_kind(iv: dict) -> str:
    """'better', 'worse' or 'none' (the interval contains 0, or there is no interval): for a difference
    b - a of a higher-is-better metric."""
    lo, hi = iv['lo'], iv['hi']
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return 'none'
    if lo > 0:
        return 'better'
    if hi < 0:
        return 'worse'
    return 'none'


def verdict(iv: dict, nd: int = 3) -> str:
    """The plain-words verdict an interval of b - a supports: 'better by X (95% CI a..b)', 'worse by X (...)' or
    'no difference detectable at this budget (...)'; an interval that touches or contains 0 is never a win."""
    kind = verdict_kind(iv)
    conf = iv.get('confidence', CONFIDENCE)
    if not (math.isfinite(iv['lo']) and math.isfinite(iv['hi'])):
        return f'no interval (too few runs); difference {fnum(iv["diff"], nd, True)}'
    ci = ci_text(iv['lo'], iv['hi'], conf, nd)
    if kind == 'better':
        return f'better by {fnum(iv["diff"], nd)} ({ci})'
    if kind == 'worse':
        return f'worse by {fnum(-iv["diff"], nd)} ({ci})'
    return f'no difference detectable at this budget ({ci})'


def compare(a, b, conf: float = CONFIDENCE) -> dict:
    """b against a (lists of one metric over seeds, in seed order): Welch's interval (the verdict's), the paired
    interval, the spread ratio and the verdict."""
    w = welch_interval(a, b, conf)
    return {'welch': w, 'paired': paired_interval(a, b, conf) if len(a) == len(b) else None,
            'sd_ratio': spread_ratio(a, b), 'verdict': verdict(w), 'kind': verdict_kind(w)}


def fla(la) -> str:
    return ', '.join(f'{x:.2f}' for x in la) if la else 'n/a'


def fr(x, nd=2):
    return '-' if x is None or (isinstance(x, float) and math.isnan(x)) else f'{x:.{nd}f}'


def fratio(r) -> str:
    """A Ratio (results.Ratio) as 'median (p25-p75)'; plain's own ratio as 1.00."""
    if not r:
        return '-'
    if r.n <= 1 and r.median == 1.0:
        return '1.00'
    return f'{r.median:.2f} ({r.p25:.2f}-{r.p75:.2f})'

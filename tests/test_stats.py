"""extensions.benchmark.stats: the intervals of the accuracy comparison, checked against scipy and against cases
computed by hand, and the verdict wording at its boundaries (a difference whose interval contains 0 is never a
win). Pure functions: no model, no training."""

from __future__ import annotations

import math

import pytest
from scipy import stats as sps

from extensions.benchmark import stats

# hand-measured on the demo scene (img 160, 15 epochs, AdamW lr0 0.004, train.py --seed 0/1/2), mAP50-95
PLAIN = [0.117, 0.120, 0.124]
RES2 = [0.098, 0.172, 0.186]


def test_welch_matches_scipy_on_the_hand_measured_seeds():
    w = stats.welch_interval(PLAIN, RES2)
    ref = sps.ttest_ind(RES2, PLAIN, equal_var=False).confidence_interval(0.95)
    assert (w['lo'], w['hi']) == pytest.approx((ref.low, ref.high), abs=1e-12)
    # what the seeds say: about +0.03 +- 0.12, Welch-Satterthwaite df about 2, spread about 13x plain's
    assert w['diff'] == pytest.approx(0.152 - 0.120333, abs=1e-5)
    assert (w['hi'] - w['lo']) / 2 == pytest.approx(0.117, abs=0.001)
    assert w['df'] == pytest.approx(2.02, abs=0.01)
    assert stats.spread_ratio(PLAIN, RES2) == pytest.approx(13.46, abs=0.01)
    assert stats.verdict(w) == 'no difference detectable at this budget (95% CI -0.085..+0.148)'
    # seed 0 alone says worse by 0.019, seeds 1-2 better: one seed is not a verdict
    assert RES2[0] - PLAIN[0] < 0 < RES2[1] - PLAIN[1]


def test_welch_by_hand():
    """a = 1, 2, 3 and b = 4, 5, 6: diff 3, variances 1, se = sqrt(1/3 + 1/3), df = (2/3)^2 / (2 * (1/3)^2 / 2)
    = 4, t(0.975, 4) = 2.7764 (tables): 3 +- 2.2670."""
    w = stats.welch_interval([1.0, 2.0, 3.0], [4.0, 5.0, 6.0])
    assert w['df'] == pytest.approx(4.0)
    assert w['t'] == pytest.approx(2.7764, abs=1e-4)
    assert w['se'] == pytest.approx(math.sqrt(2 / 3))
    assert (w['lo'], w['hi']) == pytest.approx((0.73304, 5.26696), abs=1e-5)
    assert stats.verdict(w) == 'better by 3.000 (95% CI +0.733..+5.267)'
    assert stats.verdict(stats.welch_interval([4.0, 5.0, 6.0], [1.0, 2.0, 3.0])) == (
        'worse by 3.000 (95% CI -5.267..-0.733)')


def test_welch_unequal_sizes_and_spreads_matches_scipy():
    a, b = [0.30, 0.32, 0.35, 0.31, 0.33], [0.40, 0.45, 0.37]
    w = stats.welch_interval(a, b)
    ref = sps.ttest_ind(b, a, equal_var=False)
    ci = ref.confidence_interval(0.95)
    assert (w['lo'], w['hi']) == pytest.approx((ci.low, ci.high), abs=1e-12)
    assert w['df'] == pytest.approx(ref.df)
    ci90 = ref.confidence_interval(0.90)
    w90 = stats.welch_interval(a, b, conf=0.90)
    assert (w90['lo'], w90['hi']) == pytest.approx((ci90.low, ci90.high), abs=1e-12)
    assert stats.verdict(w90) == 'better by 0.085 (90% CI +0.022..+0.148)'


def test_paired_and_mean_intervals_match_scipy():
    p = stats.paired_interval(PLAIN, RES2)
    ci = sps.ttest_rel(RES2, PLAIN).confidence_interval(0.95)
    assert (p['lo'], p['hi']) == pytest.approx((ci.low, ci.high), abs=1e-12)
    assert p['df'] == 2
    m = stats.mean_interval(RES2)
    ci = sps.ttest_1samp(RES2, 0).confidence_interval(0.95)
    assert (m['lo'], m['hi']) == pytest.approx((ci.low, ci.high), abs=1e-12)
    assert m['mean'] == pytest.approx(0.152) and m['sd'] == pytest.approx(math.sqrt(0.002236)) and m['n'] == 3
    with pytest.raises(ValueError, match='different lengths'):
        stats.paired_interval([1.0, 2.0], [1.0, 2.0, 3.0])


@pytest.mark.parametrize('lo, hi, diff, expected', [
    (0.0, 0.05, 0.02, 'no difference detectable at this budget (95% CI +0.000..+0.050)'),  # touches 0: no win
    (1e-9, 0.05, 0.02, 'better by 0.020 (95% CI +0.000000..+0.050)'),  # just above 0: the sign shows
    (0.0004, 0.05, 0.02, 'better by 0.020 (95% CI +0.0004..+0.050)'),
    (-0.05, 0.0, -0.02, 'no difference detectable at this budget (95% CI -0.050..+0.000)'),
    (-0.05, -1e-9, -0.02, 'worse by 0.020 (95% CI -0.050..-0.000000)'),
    (-0.05, -0.0004, -0.02, 'worse by 0.020 (95% CI -0.050..-0.0004)'),
    (-0.03, 0.09, 0.03, 'no difference detectable at this budget (95% CI -0.030..+0.090)'),  # a "gain" in noise
    (0.01, 0.09, 0.05, 'better by 0.050 (95% CI +0.010..+0.090)'),
    (float('nan'), float('nan'), 0.05, 'no interval (too few runs); difference +0.050'),
])
def test_verdict_wording_at_the_boundaries(lo, hi, diff, expected):
    iv = {'diff': diff, 'lo': lo, 'hi': hi, 'confidence': 0.95}
    assert stats.verdict(iv) == expected
    assert stats.verdict_kind(iv) == ('better' if expected.startswith('better') else
                                      'worse' if expected.startswith('worse') else 'none')


def test_degenerate_and_short_samples():
    same = stats.welch_interval([0.2, 0.2, 0.2], [0.2, 0.2, 0.2])  # no spread at all: the interval is a point
    assert (same['lo'], same['hi'], same['diff']) == (0.0, 0.0, 0.0)
    assert stats.verdict(same).startswith('no difference detectable')
    shifted = stats.welch_interval([0.2, 0.2, 0.2], [0.3, 0.3, 0.3])
    assert shifted['lo'] == shifted['hi'] == pytest.approx(0.1) and stats.verdict_kind(shifted) == 'better'
    one = stats.welch_interval([0.2], [0.3, 0.31])
    assert math.isnan(one['lo']) and stats.verdict_kind(one) == 'none'
    assert math.isnan(stats.mean_interval([0.3])['lo']) and math.isnan(stats.sd([0.3]))
    assert stats.spread_ratio([0.2, 0.2], [0.1, 0.3]) == math.inf
    assert stats.spread_ratio([0.2, 0.2], [0.3, 0.3]) == 1.0


def test_compare_bundles_welch_paired_spread_and_verdict():
    c = stats.compare(PLAIN, RES2)
    assert c['welch'] == stats.welch_interval(PLAIN, RES2)
    assert c['paired'] == stats.paired_interval(PLAIN, RES2)
    assert c['kind'] == 'none' and c['verdict'] == stats.verdict(c['welch'])
    assert c['sd_ratio'] == pytest.approx(stats.sd(RES2) / stats.sd(PLAIN))
    assert stats.compare([0.1, 0.2], [0.1, 0.2, 0.3])['paired'] is None  # different seed counts: no pairing


def test_latency_percentiles():
    times = [i / 1000 for i in range(1, 102)]  # 1 .. 101 ms
    p = stats.latency_percentiles(times)
    assert (p['p50'], p['p95'], p['p99'], p['n']) == pytest.approx((51.0, 96.0, 100.0, 101))
    p20 = stats.latency_percentiles([0.010] * 19 + [0.030])  # 20 runs: P99 lies between the two slowest
    assert p20['p50'] == pytest.approx(10.0) and 10.0 < p20['p99'] < 30.0 and p20['p95'] == pytest.approx(11.0)

"""The DP is exact: brute force over every ladder and every split agrees on small cases."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from dynashape._plan import dp


def _ladder_brute(values: np.ndarray, w: np.ndarray, c: np.ndarray, k: int) -> float:
    n = len(values)
    best = np.inf
    for inner in itertools.combinations(range(n - 1), k - 1):
        ends = [*inner, n - 1]
        idx = np.searchsorted(np.array(ends), np.arange(n))
        bucket = np.array(ends)[idx]
        best = min(best, float(sum((w[:, i] * c[:, bucket[i]]).sum() for i in range(n))))
    return best


@pytest.mark.parametrize("seed", range(6))
def test_ladder_dp_equals_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, groups = int(rng.integers(3, 9)), int(rng.integers(1, 3))
    values = np.sort(rng.choice(np.arange(1, 60), n, replace=False))
    w = rng.random((groups, n)) * (rng.random((groups, n)) > 0.2)
    c = np.array([0.3 * (g + 1) + values / 16.0 for g in range(groups)])  # non-decreasing per group
    seg = dp.segment(dp.ladder_cost_matrix(w, c), n)
    for k in range(1, n + 1):
        cost, ends = seg.best(k)
        assert cost == pytest.approx(_ladder_brute(values, w, c, k), rel=1e-12, abs=1e-12)
        assert len(ends) == k and ends[-1] == n - 1 and ends == sorted(set(ends))


def _profile_brute(values: np.ndarray, u: np.ndarray, alpha: float, k: int) -> float:
    n = len(values)
    x = np.log(values)
    best = np.inf
    for inner in itertools.combinations(range(n - 1), k - 1):
        ends, start, total = [*inner, n - 1], 0, 0.0
        for e in ends:
            seg = slice(start, e + 1)
            total += min(float((u[seg] * (1 + alpha * np.abs(x[seg] - x[o]))).sum()) for o in range(start, e + 1))
            start = e + 1
        best = min(best, total)
    return best


@pytest.mark.parametrize("seed", range(4))
def test_profile_dp_equals_brute_force(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    n = int(rng.integers(3, 8))
    values = np.sort(rng.choice(np.arange(2, 500), n, replace=False)).astype(np.float64)
    u = rng.random(n) + 0.01
    s, _ = dp.profile_cost_matrix(values, u, 0.3)
    seg = dp.segment(s, n)
    for k in range(1, n + 1):
        assert seg.best(k)[0] == pytest.approx(_profile_brute(values, u, 0.3, k), rel=1e-9)


def _ladder_total(w: np.ndarray, c: np.ndarray, ends: list[int]) -> float:
    e = np.array(ends)
    bucket = e[np.searchsorted(e, np.arange(w.shape[1]))]
    return float((w * c[:, bucket]).sum())


@pytest.mark.parametrize("seed", range(40))
def test_fast_ladder_dp_equals_plain_dp(seed: int) -> None:
    rng = np.random.default_rng(1000 + seed)
    n, groups, k = int(rng.integers(2, 160)), int(rng.integers(1, 4)), int(rng.integers(1, 24))
    w = rng.random((groups, n)) * (rng.random((groups, n)) > 0.3)
    if seed % 4 == 0:
        w = np.round(w * 3)  # many exact ties
    # non-decreasing per group, with flat stretches (ties between buckets)
    c = np.cumsum(rng.random((groups, n)) * (rng.random((groups, n)) > 0.4), axis=1) + rng.random((groups, 1))
    plain = dp.segment_ladder(w, c, k, fast=False)
    fast = dp.segment_ladder(w, c, k, fast=True)
    assert plain.method == "plain" and fast.method == "divide-and-conquer"
    np.testing.assert_allclose(fast.costs, plain.costs, rtol=1e-12, atol=1e-12)
    for kk, ends in enumerate(fast.ends, 1):
        # ties may pick other ends: they must cost the same and be a valid k-split
        assert len(ends) == kk and ends[-1] == n - 1 and ends == sorted(set(ends))
        assert _ladder_total(w, c, ends) == pytest.approx(float(plain.costs[kk - 1]), rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("seed", range(10))
def test_fast_ladder_dp_picks_the_same_ends_without_ties(seed: int) -> None:
    rng = np.random.default_rng(2000 + seed)
    n = int(rng.integers(300, 700))  # above PLAIN_DP_MAX_N: the default is the fast DP
    w = rng.random((1, n)) + 0.01
    c = np.cumsum(rng.random((1, n)) + 1e-3, axis=1)
    fast, plain = dp.segment_ladder(w, c, 32), dp.segment_ladder(w, c, 32, fast=False)
    assert fast.method == "divide-and-conquer"
    assert fast.ends == plain.ends
    np.testing.assert_allclose(fast.costs, plain.costs, rtol=1e-12)


@pytest.mark.parametrize("seed", range(20))
def test_fast_profile_dp_equals_plain_dp(seed: int) -> None:
    rng = np.random.default_rng(3000 + seed)
    n, k = int(rng.integers(2, 150)), int(rng.integers(1, 10))
    values = np.sort(rng.choice(np.arange(1, 5000), n, replace=False))
    u = rng.random(n) * (rng.random(n) > 0.3)
    alpha = float(rng.choice([0.0, 0.05, 0.3, 2.0]))
    plain = dp.segment_profiles(values, u, alpha, k, fast=False)
    fast = dp.segment_profiles(values, u, alpha, k, fast=True)
    np.testing.assert_allclose(fast.costs, plain.costs, rtol=1e-12, atol=1e-12)
    s, _ = dp.profile_cost_matrix(values, u, alpha)
    for kk, ends in enumerate(fast.ends, 1):
        starts = [0, *[e + 1 for e in ends[:-1]]]
        assert sum(s[a, b] for a, b in zip(starts, ends, strict=True)) == pytest.approx(float(plain.costs[kk - 1]), rel=1e-12, abs=1e-12)


def test_fast_dp_falls_back_where_the_inequality_is_not_proven() -> None:
    rng = np.random.default_rng(7)
    n = 400
    w = rng.random((1, n))
    c = (1.0 + np.sin(np.arange(n) / 9.0))[None, :]  # not monotone: no proof, plain DP
    assert not dp.quadrangle_holds_ladder(w, c)
    assert dp.segment_ladder(w, c, 8).method == "plain"
    with pytest.raises(ValueError, match="quadrangle"):
        dp.segment_ladder(w, c, 8, fast=True)
    assert dp.segment_profiles(np.arange(1, n + 1), -w[0], 0.1, 4).method == "plain"

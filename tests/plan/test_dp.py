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

"""Exact dynamic programming over the distinct values of one dim.

Both problems split the sorted distinct values ``v_0 < ... < v_{n-1}`` into contiguous segments:

* **bucket ladder**: each segment pads to its largest value (its bucket); segment ``i..j`` costs
  ``sum_g (P_g[j+1] - P_g[i]) * c_g(v_j)``, with ``P_g`` the prefix sums of the weights of group
  ``g`` (one group per combination of the other dims) and ``c_g`` the cost of one call there.
* **profiles**: each segment is one profile tuned at an opt; its cost is any ``n x n`` matrix.

A bucket is WLOG a workload value: lowering a bucket to the largest value it serves never costs
more when ``c`` is non-decreasing. The DP is ``O(k n^2)``, vectorized with numpy: one ``n x n``
matrix per added segment (n = 384 distinct SQuAD lengths: milliseconds; benchmarks/plan_bench.py
measures n in the thousands). NOTE: the ladder cost satisfies the quadrangle inequality
(``C(a,c) + C(b,d) - C(a,d) - C(b,c) = (P_b - P_a)(c_c - c_d) <= 0``), so a divide-and-conquer
speed-up to ``O(k n log n)`` is exact too; it is not needed at these sizes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Segmentation:
    """Best split into exactly ``k`` segments, for every ``k`` up to the limit asked for."""

    costs: np.ndarray  # costs[k-1]: best total cost with k segments (inf where k > n)
    ends: list[list[int]]  # ends[k-1]: the last index of each segment, ascending

    def best(self, k: int) -> tuple[float, list[int]]:
        k = min(k, len(self.ends))
        return float(self.costs[k - 1]), self.ends[k - 1]


def ladder_cost_matrix(weights: np.ndarray, costs: np.ndarray) -> np.ndarray:
    """``S[i, j]`` = cost of serving values ``i..j`` at bucket ``v_j``; ``inf`` below the diagonal.

    ``weights``: (groups, n) weight of each value in each group; ``costs``: (groups, n) cost of one
    call of group g at bucket v_j.
    """
    w = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    c = np.atleast_2d(np.asarray(costs, dtype=np.float64))
    prefix = np.concatenate([np.zeros((w.shape[0], 1)), np.cumsum(w, axis=1)], axis=1)  # (G, n+1)
    a = np.einsum("gj,gj->j", prefix[:, 1:], c)  # sum_g P_g[j+1] c_g(j)
    b = prefix[:, :-1].T @ c  # b[i, j] = sum_g P_g[i] c_g(j)
    s = a[None, :] - b
    s[np.tril_indices(s.shape[0], -1)] = np.inf
    return s


def segment(cost: np.ndarray, max_segments: int) -> Segmentation:
    """Minimize the summed segment cost for every k = 1..max_segments (``cost[i, j]``: segment i..j)."""
    n = cost.shape[0]
    kmax = max(1, min(max_segments, n))
    dp = cost[0].copy()  # dp[j]: best cost of values 0..j with the current number of segments
    choice = [np.zeros(n, dtype=np.int64)]
    costs = [dp[n - 1]]
    for _ in range(1, kmax):
        # the last segment starts at i >= 1; the ones before cover 0..i-1
        m = dp[:-1, None] + cost[1:, :]  # m[i-1, j] = dp[i-1] + cost[i, j]
        arg = np.argmin(m, axis=0)
        new = m[arg, np.arange(n)]
        starts = arg + 1
        # k segments need j >= k-1; there the "no new segment" fallback is never better
        dp = new
        choice.append(starts)
        costs.append(dp[n - 1])
    ends_all = []
    for k in range(1, kmax + 1):
        ends, j = [], n - 1
        for layer in range(k - 1, -1, -1):
            ends.append(j)
            j = int(choice[layer][j]) - 1
            if layer and j < 0:
                break
        ends_all.append(sorted(ends))
    return Segmentation(np.array(costs, dtype=np.float64), ends_all)


def profile_cost_matrix(values: np.ndarray, weights: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Cost of one profile over values ``i..j`` tuned at the weighted median (in log space) of the
    segment: ``sum_t u_t (1 + alpha |ln v_t - ln opt|)`` with ``u`` = weight x cost of a call.

    Returns (``S``, ``opt_index``), both ``n x n``. The weighted median minimizes the weighted L1
    distance, so it is the best opt under this model.
    """
    v = np.asarray(values, dtype=np.float64)
    u = np.asarray(weights, dtype=np.float64)
    n = len(v)
    x = np.log(np.maximum(v, 1.0))
    cu = np.concatenate([[0.0], np.cumsum(u)])
    cxu = np.concatenate([[0.0], np.cumsum(u * x)])
    s = np.full((n, n), np.inf)
    opt = np.zeros((n, n), dtype=np.int64)
    for i in range(n):
        j = np.arange(i, n)
        total = cu[j + 1] - cu[i]
        m = np.searchsorted(cu, cu[i] + total / 2.0, side="left") - 1  # first t with cu[t+1] >= half
        m = np.clip(m, i, j)
        left_u, left_xu = cu[m + 1] - cu[i], cxu[m + 1] - cxu[i]
        right_u, right_xu = cu[j + 1] - cu[m + 1], cxu[j + 1] - cxu[m + 1]
        dev = x[m] * left_u - left_xu + right_xu - x[m] * right_u
        s[i, i:] = total + alpha * dev
        opt[i, i:] = m
    return s, opt

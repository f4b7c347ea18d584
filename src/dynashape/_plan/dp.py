"""Exact dynamic programming over the distinct values of one dim.

Both problems split the sorted distinct values ``v_0 < ... < v_{n-1}`` into contiguous segments:

* **bucket ladder**: each segment pads to its largest value (its bucket); segment ``i..j`` costs
  ``C(i, j) = sum_g (P_g[j+1] - P_g[i]) * c_g(v_j)``, with ``P_g`` the prefix sums of the weights
  of group ``g`` (one group per combination of the other dims) and ``c_g`` the cost of one call there.
* **profiles**: each segment is one profile tuned at the weighted median ``m`` of its values (in
  log space); segment ``i..j`` costs ``sum_t u_t (1 + alpha |x_t - x_m|)``.

A bucket is WLOG a workload value: lowering a bucket to the largest value it serves never costs
more when ``c`` is non-decreasing.

**Speed.** The plain DP is ``O(k n^2)`` over an ``n x n`` cost matrix (n = 4096, k = 64: 46 s and
128 MiB a matrix). Both costs satisfy the quadrangle inequality ``C(a,c) + C(b,d) <= C(a,d) + C(b,c)``
for ``a <= b <= c <= d``, so the leftmost best start of the last segment is non-decreasing in its
end, and divide and conquer finds it for every end in ``O(n log n)`` cost evaluations a layer
(:func:`_dc_layer`), with the same leftmost tie-break as the plain DP, so the same segmentation:

* ladder: ``C(a,c) + C(b,d) - C(a,d) - C(b,c) = sum_g (P_g[b] - P_g[a]) (c_g(v_c) - c_g(v_d))``,
  a sum of (>= 0) x (<= 0) terms when the weights are >= 0 and every ``c_g`` is non-decreasing.
  The cost model's curves are non-decreasing by construction (``CostModel._curve``), and
  :func:`segment_ladder` checks both conditions on its arguments and takes the plain DP otherwise.
* profiles: the ``sum_t u_t`` part is additive (equality). For the deviation part
  ``g(i, j) = min_y sum_t u_t |x_t - y|`` let ``y1`` be the best point of ``a..d`` and ``y2`` of
  ``b..c`` (a median, so ``x_b <= y2 <= x_c``). If ``y1 <= y2``, serve ``a..c`` at ``y1`` and
  ``b..d`` at ``y2``: against the right side only the values after ``c`` change centre, from
  ``y1`` to ``y2``, and they lie above ``x_c >= y2 >= y1``, so they get closer. If ``y1 > y2``,
  serve ``a..c`` at ``y2`` and ``b..d`` at ``y1``: only the values before ``b`` change, and they
  lie below ``x_b <= y2 < y1``. Either way the left side is at most the right side (the 1-D
  k-median cost is known to satisfy the inequality, e.g. Grønlund et al. 2017). Needs ``u >= 0``,
  ``alpha >= 0`` and sorted values, checked by :func:`segment_profiles`.

tests/plan/test_dp.py checks both against brute force on small cases and the fast DP against the
plain one on random cases (costs and segment ends).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

# A cost over segments, evaluated on flat arrays of (start, end) index pairs.
PairCost = Callable[[np.ndarray, np.ndarray], np.ndarray]

# NOTE: below this many values the plain DP's matrix is small and its few numpy calls beat the
# divide and conquer's ~log n rounds a layer; both give the same result.
PLAIN_DP_MAX_N = 256


@dataclass(frozen=True)
class Segmentation:
    """Best split into exactly ``k`` segments, for every ``k`` up to the limit asked for."""

    costs: np.ndarray  # costs[k-1]: best total cost with k segments (inf where k > n)
    ends: list[list[int]]  # ends[k-1]: the last index of each segment, ascending
    method: str = "plain"  # "plain" (O(k n^2)) or "divide-and-conquer" (O(k n log n))

    def best(self, k: int) -> tuple[float, list[int]]:
        k = min(k, len(self.ends))
        return float(self.costs[k - 1]), self.ends[k - 1]


# -- the ladder ---------------------------------------------------------------------------------------


def _ladder_terms(weights: np.ndarray, costs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(prefix sums (G, n+1), a, c) with ``C(i, j) = a[j] - sum_g prefix[g, i] c[g, j]``."""
    w = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    c = np.atleast_2d(np.asarray(costs, dtype=np.float64))
    prefix = np.concatenate([np.zeros((w.shape[0], 1)), np.cumsum(w, axis=1)], axis=1)  # (G, n+1)
    a = np.einsum("gj,gj->j", prefix[:, 1:], c)  # sum_g P_g[j+1] c_g(j)
    return prefix, a, c


def ladder_cost_matrix(weights: np.ndarray, costs: np.ndarray) -> np.ndarray:
    """``S[i, j]`` = cost of serving values ``i..j`` at bucket ``v_j``; ``inf`` below the diagonal.

    ``weights``: (groups, n) weight of each value in each group; ``costs``: (groups, n) cost of one
    call of group g at bucket v_j.
    """
    prefix, a, c = _ladder_terms(weights, costs)
    b = prefix[:, :-1].T @ c  # b[i, j] = sum_g P_g[i] c_g(j)
    s = a[None, :] - b
    s[np.tril_indices(s.shape[0], -1)] = np.inf
    return s


def ladder_pair_cost(weights: np.ndarray, costs: np.ndarray) -> PairCost:
    """The ladder cost ``C(i, j)`` on flat index arrays, without the ``n x n`` matrix."""
    prefix, a, c = _ladder_terms(weights, costs)
    head = prefix[:, :-1]
    if head.shape[0] == 1:  # one group: one product, as in the matrix form (the same rounding)
        return lambda i, j: a[j] - head[0, i] * c[0, j]
    return lambda i, j: a[j] - np.einsum("gx,gx->x", head[:, i], c[:, j])


def quadrangle_holds_ladder(weights: np.ndarray, costs: np.ndarray) -> bool:
    """The sufficient conditions of the module's proof: weights >= 0, each group's cost non-decreasing."""
    w = np.asarray(weights, dtype=np.float64)
    c = np.atleast_2d(np.asarray(costs, dtype=np.float64))
    return bool(np.all(w >= 0) and np.all(np.isfinite(c)) and np.all(np.diff(c, axis=1) >= 0))


def segment_ladder(weights: np.ndarray, costs: np.ndarray, max_segments: int, *, fast: bool | None = None) -> Segmentation:
    """Best bucket ladders with 1..max_segments buckets. ``fast``: None picks divide and conquer
    when the quadrangle inequality is proven for these arguments and n is large; True/False force."""
    n = np.atleast_2d(np.asarray(weights)).shape[1]
    ok = quadrangle_holds_ladder(weights, costs)
    if fast is None:
        fast = ok and n > PLAIN_DP_MAX_N
    if fast and not ok:
        raise ValueError("divide and conquer needs weights >= 0 and non-decreasing costs (the quadrangle inequality)")
    if fast:
        return segment_fast(ladder_pair_cost(weights, costs), n, max_segments)
    return segment(ladder_cost_matrix(weights, costs), max_segments)


# -- profiles -----------------------------------------------------------------------------------------


def _profile_terms(values: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    v = np.asarray(values, dtype=np.float64)
    u = np.asarray(weights, dtype=np.float64)
    x = np.log(np.maximum(v, 1.0))
    cu = np.concatenate([[0.0], np.cumsum(u)])
    cxu = np.concatenate([[0.0], np.cumsum(u * x)])
    return x, cu, cxu


def _profile_eval(x: np.ndarray, cu: np.ndarray, cxu: np.ndarray, alpha: float, i: np.ndarray,
                  j: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(cost, opt index) of segments ``i..j`` (flat arrays, ``i <= j``)."""
    total = cu[j + 1] - cu[i]
    m = np.searchsorted(cu, cu[i] + total / 2.0, side="left") - 1  # first t with cu[t+1] >= half
    m = np.clip(m, i, j)
    left_u, left_xu = cu[m + 1] - cu[i], cxu[m + 1] - cxu[i]
    right_u, right_xu = cu[j + 1] - cu[m + 1], cxu[j + 1] - cxu[m + 1]
    dev = x[m] * left_u - left_xu + right_xu - x[m] * right_u
    return total + alpha * dev, m


def profile_cost_matrix(values: np.ndarray, weights: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Cost of one profile over values ``i..j`` tuned at the weighted median (in log space) of the
    segment: ``sum_t u_t (1 + alpha |ln v_t - ln opt|)`` with ``u`` = weight x cost of a call.

    Returns (``S``, ``opt_index``), both ``n x n``. The weighted median minimizes the weighted L1
    distance, so it is the best opt under this model.
    """
    x, cu, cxu = _profile_terms(values, weights)
    n = len(x)
    s = np.full((n, n), np.inf)
    opt = np.zeros((n, n), dtype=np.int64)
    for i in range(n):
        j = np.arange(i, n)
        s[i, i:], opt[i, i:] = _profile_eval(x, cu, cxu, alpha, np.full(len(j), i), j)
    return s, opt


def profile_opt(values: np.ndarray, weights: np.ndarray, i: int, j: int) -> int:
    """The opt index (weighted median in log space) of the profile over values ``i..j``."""
    x, cu, cxu = _profile_terms(values, weights)
    return int(_profile_eval(x, cu, cxu, 0.0, np.array([i]), np.array([j]))[1][0])


def segment_profiles(values: np.ndarray, weights: np.ndarray, alpha: float, max_segments: int, *,
                     fast: bool | None = None) -> Segmentation:
    """Best profile splits with 1..max_segments profiles (see :func:`segment_ladder` for ``fast``)."""
    v = np.asarray(values, dtype=np.float64)
    u = np.asarray(weights, dtype=np.float64)
    ok = bool(alpha >= 0 and np.all(u >= 0) and np.all(np.diff(v) > 0))
    if fast is None:
        fast = ok and len(v) > PLAIN_DP_MAX_N
    if fast and not ok:
        raise ValueError("divide and conquer needs weights >= 0, alpha >= 0 and ascending values (the quadrangle inequality)")
    if fast:
        x, cu, cxu = _profile_terms(v, u)
        return segment_fast(lambda i, j: _profile_eval(x, cu, cxu, alpha, i, j)[0], len(v), max_segments)
    return segment(profile_cost_matrix(v, u, alpha)[0], max_segments)


# -- the two DPs --------------------------------------------------------------------------------------


def _backtrack(choice: list[np.ndarray], n: int, kmax: int) -> list[list[int]]:
    ends_all = []
    for k in range(1, kmax + 1):
        ends, j = [], n - 1
        for layer in range(k - 1, -1, -1):
            ends.append(j)
            j = int(choice[layer][j]) - 1
            if layer and j < 0:
                break
        ends_all.append(sorted(ends))
    return ends_all


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
    return Segmentation(np.array(costs, dtype=np.float64), _backtrack(choice, n, kmax), "plain")


def _dc_layer(prev: np.ndarray, cost: PairCost, first: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """One layer of the DP by divide and conquer: for every end ``j >= first``,
    ``new[j] = min_{first <= i <= j} prev[i-1] + cost(i, j)`` and its leftmost argmin ``i``.

    The leftmost best ``i`` is non-decreasing in ``j`` (the quadrangle inequality), so the middle
    end of an interval of ends splits the candidate starts for the two halves. Every interval of
    one recursion depth is solved in one vectorized round: ``O(n)`` candidates a round, ``log n``
    rounds.
    """
    new = np.full(n, np.inf)
    arg = np.ones(n, dtype=np.int64)  # what the plain DP records where no split is possible
    jl, jr = np.array([first]), np.array([n - 1])
    ol, orr = np.array([first]), np.array([n - 1])
    while len(jl):
        mid = (jl + jr) // 2
        hi = np.minimum(orr, mid)
        counts = hi - ol + 1  # >= 1: a left neighbour's best start is at most its end, below mid
        starts = np.cumsum(counts) - counts
        seg = np.repeat(np.arange(len(mid)), counts)
        i = ol[seg] + (np.arange(int(counts.sum())) - starts[seg])
        val = prev[i - 1] + cost(i, mid[seg])
        best = np.minimum.reduceat(val, starts)
        pos = np.where(val == best[seg], np.arange(len(val)), len(val))
        first_pos = np.minimum.reduceat(pos, starts)
        first_pos = np.where(first_pos == len(val), starts, first_pos)  # all-NaN guard: take the first
        bi = i[first_pos]
        new[mid], arg[mid] = best, bi
        left = jl <= mid - 1
        right = mid + 1 <= jr
        jl, jr, ol, orr = (np.concatenate([jl[left], mid[right] + 1]), np.concatenate([mid[left] - 1, jr[right]]),
                           np.concatenate([ol[left], bi[right]]), np.concatenate([bi[left], orr[right]]))
    return new, arg


def segment_fast(cost: PairCost, n: int, max_segments: int) -> Segmentation:
    """:func:`segment` for a cost with the quadrangle inequality, in ``O(k n log n)`` evaluations of
    ``cost(i, j)`` on flat index arrays; the same costs and (leftmost tie-break) the same ends."""
    kmax = max(1, min(max_segments, n))
    idx = np.arange(n)
    dp = cost(np.zeros(n, dtype=np.int64), idx)
    choice = [np.zeros(n, dtype=np.int64)]
    costs = [dp[n - 1]]
    for k in range(2, kmax + 1):
        dp, starts = _dc_layer(dp, cost, k - 1, n)
        choice.append(starts)
        costs.append(dp[n - 1])
    return Segmentation(np.array(costs, dtype=np.float64), _backtrack(choice, n, kmax), "divide-and-conquer")

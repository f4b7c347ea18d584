"""The CUDA graph cache's policy (bounded LRU by count and bytes), tested without a GPU."""

from __future__ import annotations

from dynashape.engine.cudagraphs import BoundedLRU


def test_evicts_least_recently_used_by_count() -> None:
    c = BoundedLRU(max_items=2)
    c.put("a", 1)
    c.put("b", 2)
    assert c.get("a") == 1  # a is now the most recent
    c.put("c", 3)
    assert c.keys() == ["a", "c"] and c.evictions == 1


def test_evicts_by_bytes_but_keeps_the_newest() -> None:
    c = BoundedLRU(max_items=10, max_bytes=100)
    c.put("a", 1, nbytes=60)
    c.put("b", 2, nbytes=60)
    assert c.keys() == ["b"]
    c.put("huge", 3, nbytes=500)  # over the budget alone: kept, since a cache of zero graphs helps nobody
    assert c.keys() == ["huge"]


def test_failed_captures_are_remembered_and_cost_nothing() -> None:
    c = BoundedLRU(max_items=1)
    c.put("bad", None, nbytes=10**9)
    c.put("good", 1, nbytes=5)
    assert "bad" in c and "good" in c and len(c) == 1 and c.nbytes == 5


def test_admission_stops_thrashing_on_a_cycle_larger_than_the_cache() -> None:
    """LRU alone would capture on every request of a cycle a b c a b c ... with room for 2 graphs."""
    from dynashape.engine.cudagraphs import FrequencyAdmission

    cache, admission = BoundedLRU(max_items=2), FrequencyAdmission(max_keys=64)
    captures = 0
    for key in "abc" * 20:
        if key in cache and cache.get(key) is not None:
            admission.seen(key)
            continue
        if admission.admit(key, cache):
            cache.put(key, key)
            captures += 1
    assert captures <= 6, captures  # LRU alone: 60


def test_admission_lets_a_new_frequent_shape_in() -> None:
    from dynashape.engine.cudagraphs import FrequencyAdmission

    cache, admission = BoundedLRU(max_items=1), FrequencyAdmission(max_keys=64)
    assert admission.admit("old", cache)
    cache.put("old", 1)
    results = [admission.admit("new", cache) for _ in range(3)]
    assert results == [False, True, True]

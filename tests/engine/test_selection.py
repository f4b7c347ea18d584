"""Profile selection: the rule (closest opt in log distance, then narrower, then lower index) and its messages."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import dynashape
from dynashape import Profile
from dynashape._engine.selection import ProfileTable
from dynashape._errors import ShapeError
from dynashape._specs import TensorSpec

IDS = TensorSpec("ids", "int64", ("batch", "seq"))
MASK = TensorSpec("mask", "int64", ("batch", "seq"))


def _table(*ranges: tuple[tuple[int, int], tuple[int, int], tuple[int, int]]) -> ProfileTable:
    return ProfileTable([IDS], [Profile({"ids": r}) for r in ranges])


def test_closest_opt_wins() -> None:
    t = _table(((1, 1), (1, 128), (8, 512)), ((1, 1), (8, 128), (8, 512)))
    assert t.select([(1, 128)]) == 0
    assert t.select([(6, 128)]) == 1
    assert t.select([(9, 128)]) is None


def test_ties_go_to_the_narrower_profile_then_the_lower_index() -> None:
    wide = ((1, 1), (4, 64), (64, 4096))
    narrow = ((2, 32), (4, 64), (8, 128))
    assert _table(wide, narrow).select([(4, 64)]) == 1
    assert _table(narrow, wide).select([(4, 64)]) == 0
    assert _table(narrow, narrow).select([(4, 64)]) == 0


def test_distance_is_a_ratio() -> None:
    # batch 4 is 3 from opt 1 and 4 from opt 8, but 5/2 = 2.5x from the first and 9/5 = 1.8x from the second.
    t = _table(((1, 128), (1, 128), (16, 128)), ((1, 128), (8, 128), (16, 128)))
    assert t.select([(4, 128)]) == 1
    assert t.select([(3, 128)]) == 0  # 4/2 = 2x vs 9/4 = 2.25x


def test_static_dims_are_not_compared() -> None:
    t = ProfileTable([TensorSpec("x", "float32", (1, 3, "h"))], [Profile({"x": ((1, 3, 8), (1, 3, 16), (1, 3, 32))})])
    assert t.dims == [(0, 2)]


def test_outside_all_message_for_two_inputs() -> None:
    t = ProfileTable([IDS, MASK], [Profile({"ids": ((1, 1), (4, 64), (8, 128)), "mask": ((1, 1), (4, 64), (8, 128))})])
    err = t.outside_all([(2, 300), (2, 300)])
    assert isinstance(err, ShapeError)
    msg = str(err)
    assert "input 'ids' dim 1 (seq) = 300 is outside every profile (shapes ids:2x300, mask:2x300)" in msg
    assert "profile 0 allows 1..128" in msg and "--maxShapes=ids:8x300 in profile 0" in msg


# -- property: selection returns a profile containing the shapes, or the engine raises ShapeError

bound = st.tuples(st.integers(1, 64), st.integers(0, 64), st.integers(0, 64)).map(lambda t: (t[0], t[0] + t[1], t[0] + t[1] + t[2]))
profile_st = st.tuples(bound, bound).map(lambda bs: Profile({"ids": ((bs[0][0], bs[1][0]), (bs[0][1], bs[1][1]), (bs[0][2], bs[1][2]))}))


@settings(max_examples=100, deadline=None)
@given(st.lists(profile_st, min_size=1, max_size=4), st.tuples(st.integers(0, 200), st.integers(0, 200)))
def test_selection_contains_or_none(profiles: list[Profile], shape: tuple[int, int]) -> None:
    t = ProfileTable([IDS], profiles)
    k = t.select([shape])
    fitting = [i for i, p in enumerate(profiles) if p.contains({"ids": shape})]
    if not fitting:
        assert k is None
        assert isinstance(t.outside_all([shape]), ShapeError)
        return
    assert k in fitting
    assert t.contains(k, [shape])

    def cost(i: int) -> float:
        r = profiles[i]["ids"]
        return sum(abs(math.log((shape[a] + 1) / (r.opt[a] + 1))) for a in range(2))

    assert cost(k) <= min(cost(i) for i in fitting) + 1e-12


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 1000), st.integers(1, 1000))
def test_engine_selects_a_containing_profile_or_raises(seg_engine_2: dynashape.Engine, h: int, w: int) -> None:
    shapes = {"input_1": (1, 3, h, w)}
    fitting = [i for i, p in enumerate(seg_engine_2.profiles) if p.contains(shapes)]
    if fitting:
        assert seg_engine_2.select_profile(shapes) in fitting
    else:
        with pytest.raises(ShapeError, match="input 'input_1'"):
            seg_engine_2.select_profile(shapes)

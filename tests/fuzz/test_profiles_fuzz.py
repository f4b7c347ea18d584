"""Profiles and shape strings: the parsers and the typed records either accept or raise ProfileError."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dynashape import ProfileError, ShapeRange, TensorSpec, parse_dim_ranges, parse_shapes
from dynashape._profiles import Profile, validate_profile

from .conftest import assert_message, fuzz_settings, raises_user_error

# Text the parsers meet: digits (ASCII and not), separators, quotes, names, whitespace.
_ALPHABET = st.sampled_from([*list("0123456789xX:,=' \"_abz-."), "²", "٣", "١", "\t", "\n", "\x00", "🙂", "9" * 25])
shape_text = st.lists(_ALPHABET, max_size=40).map("".join)


@fuzz_settings(150)
@given(shape_text)
def test_parse_shapes_any_text(text: str) -> None:
    try:
        out = parse_shapes(text)
    except ProfileError as e:
        assert_message(str(e))
        return
    for name, shape in out.items():
        assert isinstance(name, str)
        assert all(type(d) is int and d >= 0 for d in shape)
        assert math.prod(shape) < 2**63


@fuzz_settings(150)
@given(shape_text)
def test_parse_dim_ranges_any_text(text: str) -> None:
    try:
        out = parse_dim_ranges(text)
    except ProfileError as e:
        assert_message(str(e)) if " | " in str(e) else None
        assert "\n" not in str(e)
        return
    for name, (lo, op, hi) in out.items():
        assert name and 0 <= lo <= op <= hi < 2**63


shape_list = st.lists(st.integers(0, 64), min_size=0, max_size=5)


@fuzz_settings(60)
@given(st.dictionaries(st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True), shape_list, min_size=1, max_size=3))
def test_parse_shapes_round_trip(shapes: dict[str, list[int]]) -> None:
    text = ",".join(f"{n}:{'x'.join(map(str, s)) or 'scalar'}" for n, s in shapes.items())
    assert parse_shapes(text) == {n: tuple(s) for n, s in shapes.items()}


# A dim is anything a user might pass: ints of every size, numpy ints, floats, bools, None, text.
any_dim = st.one_of(
    st.integers(-3, 2**64), st.sampled_from([np.int64(3), np.int32(2), np.uint8(1)]), st.floats(allow_nan=True),
    st.booleans(), st.none(), st.text(max_size=3), st.sampled_from([np.float32(2.0), np.bool_(True), 1.9, 2.0]),
)


@fuzz_settings(120)
@given(st.lists(any_dim, max_size=4), st.lists(any_dim, max_size=4), st.lists(any_dim, max_size=4))
def test_shape_range_any_values(lo: list[Any], op: list[Any], hi: list[Any]) -> None:
    try:
        r = ShapeRange(tuple(lo), tuple(op), tuple(hi))
    except ProfileError as e:
        assert_message(str(e)) if " | " in str(e) else None
        return
    for shape in (r.min, r.opt, r.max):
        assert all(type(d) is int for d in shape), "a non-integer dim was accepted"
    assert all(a <= b <= c for a, b, c in zip(r.min, r.opt, r.max, strict=True))
    for raw in (lo, op, hi):
        assert not any(isinstance(d, (bool, float, np.bool_, np.floating)) for d in raw)


@fuzz_settings(60)
@given(st.dictionaries(st.one_of(st.text(max_size=4), st.integers(), st.none()),
                       st.one_of(st.tuples(shape_list, shape_list, shape_list), st.integers(), st.text(max_size=3)),
                       max_size=3))
def test_profile_any_mapping(ranges: dict[Any, Any]) -> None:
    try:
        p = Profile(ranges)
    except ProfileError as e:
        assert "\n" not in str(e)
        return
    assert all(isinstance(n, str) and n for n in p)


SPECS = [TensorSpec("x", "float32", ("batch", 3, "h", "w"))]


@fuzz_settings(60)
@given(st.dictionaries(st.sampled_from(["batch", "h", "w", "nope"]),
                       st.one_of(st.integers(-2, 2**63), st.tuples(st.integers(-1, 10**7), st.integers(-1, 10**7), st.integers(-1, 10**7)),
                                 st.just(1.5), st.just(True)), min_size=0, max_size=4))
def test_profile_from_dims_any(dims: dict[str, Any]) -> None:
    try:
        p = validate_profile(Profile.from_dims(dims, SPECS), SPECS)
    except ProfileError as e:
        assert_message(str(e)) if " | " in str(e) else None
        return
    # Accepted profiles respect the per-tensor byte bound (16 GiB by default).
    assert math.prod(p["x"].max) * 4 <= 16 * 2**30


BAD_SHAPES = [
    "x:1x", "x:x3", "x:1xx3", "x:-1x3", "x:1.5x3", "x:1e3", "x:²x3", "x:٣x3", "x:1x3,x:1x3", ":1x3", "x", "'x:1x3",
    "\"x:1x3", "'x'1x3", "x:" + "9" * 25, "x:" + "9" * 5000, "x:99999999999x99999999999", "x:1 x 3 y", "x:0x-0",
    "x:NaN", "x:inf", "x:0x", "x:1\x003", "x:🙂",
]


@pytest.mark.parametrize("text", BAD_SHAPES)
def test_bad_shape_strings(text: str) -> None:
    raises_user_error(lambda: parse_shapes(text), ProfileError)


BAD_DIMS = [
    "image_height=²:64:128", "batch=1:2", "batch=1:2:3:4", "batch=3:2:1", "batch=-1:2:3", "batch=1.0:2:3", "=1:2:3",
    "batch", "batch=", "batch=a:b:c", "batch=1:2:4,batch=1:2:4", "batch=٣", "batch=" + "9" * 30, "batch=1:2:" + "9" * 5000,
    "batch=9223372036854775807:9223372036854775807:9223372036854775807,seq=9223372036854775807",
]


@pytest.mark.parametrize("text", BAD_DIMS)
def test_bad_dim_ranges(text: str) -> None:
    def go() -> None:
        dims = parse_dim_ranges(text)
        validate_profile(Profile.from_dims(dims, [TensorSpec("x", "float32", ("batch", "seq"))]), [TensorSpec("x", "float32", ("batch", "seq"))])

    raises_user_error(go, ProfileError)


BAD_RANGES: list[tuple[Any, Any, Any]] = [
    ((1.9, 3), (2, 3), (3, 3)), ((True, 3), (1, 3), (1, 3)), ((1, 3), (2, 3), (1, 3)), ((1,), (1, 1), (1, 1, 1)),
    ((-1,), (0,), (1,)), ((2**63,), (2**63,), (2**63,)), (("1",), ("1",), ("1",)), ((None,), (1,), (1,)), (1, 2, 3),
    ("abc", "abc", "abc"), ((np.float64(2.0),), (2,), (2,)), ((2**40, 2**40), (2**40, 2**40), (2**40, 2**40)),
    ((np.bool_(True),), (1,), (1,)), ((1, 2), (1, 2), (1, float("nan"))),
]


@pytest.mark.parametrize(("lo", "op", "hi"), BAD_RANGES)
def test_bad_shape_ranges(lo: Any, op: Any, hi: Any) -> None:
    raises_user_error(lambda: ShapeRange(lo, op, hi), ProfileError)


def test_numpy_ints_are_dims() -> None:
    r = ShapeRange((np.int64(1), np.int32(3)), (2, 3), (np.uint16(4), 3))
    assert r.min == (1, 3) and all(type(d) is int for d in r.min + r.max)


@pytest.mark.parametrize("shape", [(1, 3, 100000, 100000), (2**31, 2**31), (2**62,)])
def test_absurd_profiles_refused_at_validation(shape: tuple[int, ...]) -> None:
    spec = TensorSpec("x", "float32", tuple(f"d{i}" for i in range(len(shape))))
    p = Profile({"x": (tuple(1 for _ in shape), tuple(1 for _ in shape), shape)})
    e = raises_user_error(lambda: validate_profile(p, [spec]), ProfileError)
    assert "GiB" in str(e) or "elements" in str(e)


def test_byte_limit_is_configurable(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = TensorSpec("x", "float32", ("n",))
    p = Profile({"x": ((1,), (1,), (2**20,))})  # 4 MiB
    validate_profile(p, [spec])
    monkeypatch.setenv("DYNASHAPE_MAX_TENSOR_BYTES", str(2**20))
    raises_user_error(lambda: validate_profile(p, [spec]), ProfileError)
    for bad in ("abc", "-1", "0", "1e9", "²"):
        monkeypatch.setenv("DYNASHAPE_MAX_TENSOR_BYTES", bad)
        raises_user_error(lambda: validate_profile(p, [spec]))

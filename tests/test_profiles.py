"""Profiles as typed data: parsing trtexec's syntax, validation, and the text of the errors."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dynashape import Profile, ShapeRange, parse_dim_ranges, parse_shapes
from dynashape._errors import ProfileError
from dynashape._profiles import parse_shape, validate_profile
from dynashape._specs import TensorSpec, format_shape

PROPS = settings(max_examples=75, deadline=None)

dims = st.integers(min_value=0, max_value=4096)
shapes = st.lists(dims, min_size=0, max_size=5).map(tuple)
# Names as ONNX exporters write them: letters, digits, '_', '.', '/', ':' (TF's 'input:0'), ',' is rare but legal.
name_chars = st.sampled_from("abcXYZ019_./:-,")
names = st.text(name_chars, min_size=1, max_size=12)


def _fmt_name(name: str, quote: bool) -> str:
    return f"'{name}'" if quote or "," in name or name[0] in "'\"" else name


@PROPS
@given(st.dictionaries(names, shapes, min_size=1, max_size=4), st.booleans(), st.booleans())
def test_parse_shapes_round_trips(expected: dict[str, tuple[int, ...]], quote: bool, upper: bool) -> None:
    sep = "X" if upper else "x"
    text = ",".join(f"{_fmt_name(n, quote)}:{format_shape(s).replace('x', sep)}" for n, s in expected.items())
    assert parse_shapes(text) == expected


def test_parse_shapes_examples() -> None:
    assert parse_shapes("input_1:1x3x512x512,mask:1x128") == {"input_1": (1, 3, 512, 512), "mask": (1, 128)}
    assert parse_shapes("'input:0':1x3,\"a,b\":2") == {"input:0": (1, 3), "a,b": (2,)}
    assert parse_shapes("x:scalar") == {"x": ()}
    assert parse_shapes("") == {}


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("input_1:1x3xAx4", ["shape of 'input_1'", "'1x3xAx4'", "dim 'A'", "joined by 'x'"]),
        ("1x3x224x224", ["has no input name", "name:value"]),
        ("'input:0:1x3", ["unclosed ' quote"]),
        ("a:1x2,a:1x3", ["input 'a' appears twice"]),
        ("a:1x-2", ["dim '-2'"]),
    ],
)
def test_parse_shapes_errors(text: str, parts: list[str]) -> None:
    with pytest.raises(ProfileError) as e:
        parse_shapes(text)
    for p in parts:
        assert p in str(e.value)


def test_parse_dim_ranges() -> None:
    assert parse_dim_ranges("batch=1:8:32,seq=128") == {"batch": (1, 8, 32), "seq": (128, 128, 128)}
    with pytest.raises(ProfileError, match="name=min:opt:max"):
        parse_dim_ranges("batch=1:8")
    with pytest.raises(ProfileError, match="min 8, opt 1, max 32"):
        parse_dim_ranges("batch=8:1:32")


@PROPS
@given(st.lists(st.tuples(dims, dims, dims), min_size=0, max_size=5))
def test_shape_range_orders(triples: list[tuple[int, int, int]]) -> None:
    lo, op, hi = (tuple(t[i] for t in triples) for i in range(3))
    if all(a <= b <= c for a, b, c in triples):
        r = ShapeRange(lo, op, hi)
        assert (r.min, r.opt, r.max) == (lo, op, hi)
        assert r.contains(lo) and r.contains(op) and r.contains(hi)
        assert r.rank == len(triples)
        assert r.dynamic_axes == tuple(i for i, (a, _, c) in enumerate(triples) if a != c)
        assert ShapeRange.from_json(r.to_json()) == r
    else:
        with pytest.raises(ProfileError, match="min <= opt <= max"):
            ShapeRange(lo, op, hi)


@PROPS
@given(st.lists(st.tuples(dims, dims, dims).map(sorted), min_size=1, max_size=4), st.data())
def test_contains_agrees_with_elementwise_check(triples: list[list[int]], data: st.DataObject) -> None:
    r = ShapeRange(*(tuple(t[i] for t in triples) for i in range(3)))
    shape = data.draw(st.lists(st.integers(0, 5000), min_size=len(triples) - 1, max_size=len(triples) + 1).map(tuple))
    expected = len(shape) == len(triples) and all(t[0] <= d <= t[2] for d, t in zip(shape, triples, strict=False))
    assert r.contains(shape) is expected
    assert Profile({"x": r}).contains({"x": shape}) is expected


def test_shape_range_errors() -> None:
    with pytest.raises(ProfileError) as e:
        ShapeRange((1, 3, 512), (1, 3, 256), (1, 3, 1024))
    assert "dim 2: min 512, opt 256, max 1024" in str(e.value)
    assert "1x3x512 / 1x3x256 / 1x3x1024" in str(e.value)
    with pytest.raises(ProfileError, match="ranks 2, 3, 2"):
        ShapeRange((1, 2), (1, 2, 3), (1, 2))
    with pytest.raises(ProfileError, match="negative dim"):
        ShapeRange((-1,), (1,), (2,))
    with pytest.raises(ProfileError, match="is not a shape"):
        ShapeRange("abc", (1,), (2,))  # type: ignore[arg-type]


sym_names = st.sampled_from(["batch", "seq", "height", "width"])
spec_dims = st.one_of(st.integers(1, 8), sym_names)


@PROPS
@given(
    st.lists(st.lists(spec_dims, min_size=1, max_size=4), min_size=1, max_size=3),
    st.fixed_dictionaries({n: st.tuples(st.integers(1, 4), st.integers(0, 4), st.integers(0, 4)) for n in
                           ["batch", "seq", "height", "width"]}),
)
def test_from_dims_matches_hand_expansion(spec_shapes: list[list[int | str]], raw: dict[str, tuple[int, int, int]]) -> None:
    ranges = {n: (a, a + b, a + b + c) for n, (a, b, c) in raw.items()}
    specs = [TensorSpec(f"in{i}", "float32", tuple(s)) for i, s in enumerate(spec_shapes)]
    used = {d for s in spec_shapes for d in s if isinstance(d, str)}
    p = Profile.from_dims({n: ranges[n] for n in used}, specs)
    for spec in specs:
        for which, k in (("min", 0), ("opt", 1), ("max", 2)):
            hand = tuple(d if isinstance(d, int) else ranges[d][k] for d in spec.shape)
            assert getattr(p[spec.name], which) == hand
    # A profile made this way always validates: shared dims get one range.
    assert validate_profile(p, specs) == p


def test_from_dims_errors() -> None:
    spec = TensorSpec("ids", "int64", ("batch", "seq"))
    with pytest.raises(ProfileError) as e:
        Profile.from_dims({"batch": (1, 2, 4), "sequence": 8}, [spec])
    assert "'sequence'" in str(e.value) and "one of: batch, seq" in str(e.value)
    with pytest.raises(ProfileError) as e:
        Profile.from_dims({"batch": (1, 2, 4)}, [spec])
    assert "input 'ids' dim 1 (seq) is dynamic" in str(e.value) and "add seq=min:opt:max" in str(e.value)


def test_profile_mapping_and_json() -> None:
    p = Profile({"a": ((1, 2), (2, 2), (4, 2)), "b": ShapeRange.static((3,))})
    assert list(p) == ["a", "b"] and len(p) == 2
    assert Profile.from_json(p.to_json()) == p
    assert hash(Profile.from_json(p.to_json())) == hash(p)
    assert p.describe() == "a: 1x2 / 2x2 / 4x2, b: 3 / 3 / 3"
    with pytest.raises(ProfileError, match="a ShapeRange or a"):
        Profile({"a": (1, 2)})  # type: ignore[dict-item]
    with pytest.raises(ProfileError, match="a non-empty string"):
        Profile({"": ShapeRange.static((1,))})


def test_from_shapes_names_the_missing_flag() -> None:
    with pytest.raises(ProfileError) as e:
        Profile.from_shapes({"x": (1,)}, {"x": (2,)}, {})
    assert "input 'x' has no max shape" in str(e.value) and "--maxShapes" in str(e.value)


# -- validation against a model's inputs --------------------------------------------------------

IMAGE = TensorSpec("input_1", "float32", (1, 3, "image_height", "image_width"))
IDS = TensorSpec("input_ids", "int64", ("batch", "seq"))
MASK = TensorSpec("attention_mask", "int64", ("batch", "seq"))
SCALE = TensorSpec("scale", "float32", (1,))


def test_validate_completes_static_inputs() -> None:
    p = Profile({"input_1": ((1, 3, 256, 256), (1, 3, 512, 512), (1, 3, 768, 768))})
    done = validate_profile(p, [IMAGE, SCALE])
    assert done["scale"] == ShapeRange.static((1,))
    assert done["input_1"] == p["input_1"]


@pytest.mark.parametrize(
    ("inputs", "ranges", "parts"),
    [
        pytest.param([IMAGE], {"input_1": ((1, 3, 512, 512), (1, 3, 256, 256), (1, 3, 768, 768))},
                     ["dim 2: min 512, opt 256, max 768", "min <= opt <= max"], id="min-greater-than-opt"),
        pytest.param([IMAGE], {"input_1": ((1, 1, 256, 256), (1, 3, 512, 512), (1, 3, 768, 768))},
                     ["profile 0 gives input 'input_1' dim 1 the range 1..3 (opt 3)", "3: the model fixes this dim (shape (1, 3, image_height, image_width))"],
                     id="static-dim-mismatch"),
        pytest.param([IMAGE], {"image": ((1, 3, 256, 256),) * 3},
                     ["profile 0 names input 'image', which the model does not have",
                      "the model's inputs are: input_1 (float32, (1, 3, image_height, image_width))"], id="unknown-name"),
        pytest.param([IDS, MASK], {"input_ids": ((1, 4), (2, 16), (4, 32)), "attention_mask": ((1, 4), (2, 16), (8, 32))},
                     ["dim 'batch' is 1..8 (opt 2) for input 'attention_mask' dim 0 but 1..4 (opt 2) for input 'input_ids' dim 0",
                      "--dims batch=min:opt:max"], id="shared-dim-ranges-differ"),
        pytest.param([IDS, MASK], {"input_ids": ((1, 4), (2, 16), (4, 32))},
                     ["profile 0 gives no range for input 'attention_mask', whose dim 0 (batch), dim 1 (seq) are dynamic",
                      "add attention_mask:<shape> to --minShapes, --optShapes and --maxShapes"], id="missing-dynamic-input"),
        pytest.param([IMAGE], {"input_1": ((3, 256, 256), (3, 512, 512), (3, 768, 768))},
                     ["rank-3 shapes", "rank 4, like the model's (1, 3, image_height, image_width)"], id="wrong-rank"),
    ],
)
def test_validation_errors(inputs: list[TensorSpec], ranges: dict, parts: list[str]) -> None:
    with pytest.raises(ProfileError) as e:
        validate_profile(Profile(ranges), inputs)
    for part in parts:
        assert part in str(e.value)


def test_parse_shape_scalar_and_case() -> None:
    assert parse_shape("scalar") == ()
    assert parse_shape("1X3x4") == (1, 3, 4)
    assert list(itertools.islice(parse_shape("2x2"), 2)) == [2, 2]

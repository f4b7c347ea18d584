"""Runtime inputs: dtypes, byte orders, ranks, names, devices, layouts, sizes, profiles and out=."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import dynashape
from dynashape import DynashapeError, ShapeError

from .conftest import assert_message, fuzz_settings, raises_user_error

torch = pytest.importorskip("torch")

X = np.array([[1.0, -2.0, 3.0], [-4.0, 5.0, -6.0]], dtype=np.float32)

# Every numpy dtype that is not the model's float32, each refused by name.
WRONG_NUMPY = ["float16", "float64", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "bool",
               "complex64", "complex128", "<U3", "S3", "O", "datetime64[ns]", "timedelta64[s]", "V4", "longdouble"]


@pytest.mark.parametrize("dtype", WRONG_NUMPY)
def test_wrong_numpy_dtype(relu_engine: dynashape.Engine, dtype: str) -> None:
    x = np.zeros((2, 3), dtype=dtype)
    e = raises_user_error(lambda: relu_engine.run({"x": x}))
    assert "float32, the model's dtype" in str(e)


WRONG_TORCH = ["float16", "bfloat16", "float64", "int8", "int16", "int32", "int64", "uint8", "bool", "complex64"]


@pytest.mark.parametrize("dtype", WRONG_TORCH)
def test_wrong_torch_dtype(relu_engine: dynashape.Engine, dtype: str) -> None:
    x = torch.zeros(2, 3, dtype=getattr(torch, dtype))
    raises_user_error(lambda: relu_engine.run({"x": x}))


@pytest.mark.parametrize("order", [">", "<", "=", "|"])
@pytest.mark.parametrize("layout", ["contiguous", "fortran", "strided", "reversed", "readonly"])
def test_byte_orders_and_layouts_give_right_values(relu_engine: dynashape.Engine, order: str, layout: str) -> None:
    """Big-endian and non-contiguous input computes what native input computes (no 1e37 garbage)."""
    base = np.concatenate([X, X * 2, X * 3]).astype(np.dtype("float32").newbyteorder(order) if order != "|" else np.float32)
    x = {"contiguous": base[:2], "fortran": np.asfortranarray(base[:2]), "strided": base[::3], "reversed": base[::-1][:2],
         "readonly": base[:2].copy()}[layout]
    if layout == "readonly":
        x.flags.writeable = False
    got = relu_engine.run({"x": x})["y"]
    np.testing.assert_array_equal(got, np.maximum(x.astype(np.float32), 0))


@pytest.mark.parametrize("shape", [(), (3,), (2,), (1, 3, 1), (2, 4), (2, 2), (0, 3), (17, 3), (1000, 3), (1, 1, 1, 1, 1, 3)])
def test_wrong_ranks_and_dims(relu_engine: dynashape.Engine, shape: tuple[int, ...]) -> None:
    raises_user_error(lambda: relu_engine.run({"x": np.zeros(shape, np.float32)}), ShapeError)


NOT_ARRAYS: list[Any] = [None, 1.0, 3, "x", b"x", [[1.0, 2.0, 3.0]], ((1.0, 2.0, 3.0),), {"a": 1}, object(), np.float32,
                         memoryview(b"abc"), range(3)]


@pytest.mark.parametrize("value", NOT_ARRAYS, ids=lambda v: type(v).__name__)
def test_not_an_array(relu_engine: dynashape.Engine, value: Any) -> None:
    raises_user_error(lambda: relu_engine.run({"x": value}))


BAD_FEEDS: list[Any] = [
    {}, {"y": X}, {"x": X, "extra": X}, {"X": X}, {" x": X}, {0: X}, {None: X}, {"x": X, "x ": X}, [X], (X,), X, None, "x",
]


@pytest.mark.parametrize("feed", BAD_FEEDS, ids=range(len(BAD_FEEDS)))
def test_bad_feeds(relu_engine: dynashape.Engine, feed: Any) -> None:
    e = raises_user_error(lambda: relu_engine.run(feed))
    if isinstance(feed, dict) and feed:
        assert "x (float32" in str(e), "the valid names are listed"


@pytest.mark.parametrize("profile", [True, False, 1.0, -1, 2, 99, "0", [0], np.float64(0), 2**70])
def test_bad_profile_index(relu_engine: dynashape.Engine, profile: Any) -> None:
    raises_user_error(lambda: relu_engine.run({"x": X}, profile=profile))


def test_numpy_int_profile_index(relu_engine: dynashape.Engine) -> None:
    assert relu_engine.run({"x": X}, profile=np.int64(0))["y"].shape == (2, 3)


@pytest.mark.parametrize("device", ["meta"])
def test_foreign_device(relu_engine: dynashape.Engine, device: str) -> None:
    x = torch.zeros(2, 3, device=device)
    e = raises_user_error(lambda: relu_engine.run({"x": x}))
    assert "meta" in str(e)


def test_sparse_tensor(relu_engine: dynashape.Engine) -> None:
    raises_user_error(lambda: relu_engine.run({"x": torch.zeros(2, 3).to_sparse()}))


@pytest.mark.parametrize("kind", ["requires_grad", "transposed", "expanded", "channels_sliced"])
def test_torch_layouts_run(relu_engine: dynashape.Engine, kind: str) -> None:
    t = torch.from_numpy(X.copy())
    x = {"requires_grad": t.clone().requires_grad_(True), "transposed": t.t().contiguous().t(),
         "expanded": t[:1].expand(2, 3), "channels_sliced": torch.cat([t, t], 1)[:, ::2]}[kind]
    got = relu_engine.run({"x": x})["y"]
    assert torch.equal(got, torch.relu(x.detach()))


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf, np.finfo(np.float32).max, np.finfo(np.float32).tiny])
def test_special_values_pass_through(relu_engine: dynashape.Engine, value: float) -> None:
    """NaN and inf are data, not errors: they reach the model and come back as the model makes them."""
    x = np.full((2, 3), value, np.float32)
    np.testing.assert_array_equal(relu_engine.run({"x": x})["y"], np.maximum(x, 0))


OUTS: list[tuple[str, Any]] = [
    ("fp16 numpy", {"y": np.zeros((2, 3), np.float16)}), ("fp64 numpy", {"y": np.zeros((2, 3), np.float64)}),
    ("int numpy", {"y": np.zeros((2, 3), np.int32)}), ("fp16 torch", {"y": torch.zeros(2, 3, dtype=torch.float16)}),
    ("bf16 torch", {"y": torch.zeros(2, 3, dtype=torch.bfloat16)}), ("shape", {"y": np.zeros((3, 2), np.float32)}),
    ("unknown name", {"y": np.zeros((2, 3), np.float32), "z": np.zeros(1)}), ("missing", {}),
    ("list", [np.zeros((2, 3), np.float32)]), ("not an array", {"y": [0.0] * 6}),
    ("meta", {"y": torch.zeros(2, 3, device="meta")}),
]


@pytest.mark.parametrize(("label", "out"), OUTS, ids=[o[0] for o in OUTS])
def test_bad_out(relu_engine: dynashape.Engine, label: str, out: Any) -> None:
    before = {k: np.array(v, copy=True) for k, v in out.items() if isinstance(v, np.ndarray)} if isinstance(out, dict) else {}
    raises_user_error(lambda: relu_engine.run({"x": X}, out=out))
    for k, v in before.items():
        np.testing.assert_array_equal(out[k], v)  # nothing was written into a refused buffer


@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_good_out(relu_engine: dynashape.Engine, kind: str) -> None:
    dst = np.zeros((2, 3), np.float32) if kind == "numpy" else torch.zeros(2, 3)
    relu_engine.run({"x": X}, out={"y": dst})
    np.testing.assert_array_equal(np.asarray(dst), np.maximum(X, 0))


PAIR_BAD: list[dict[str, Any]] = [
    {"ids": np.zeros((2, 4), np.int64), "mask": np.zeros((2, 5), np.float32)},   # shared dim differs
    {"ids": np.zeros((2, 4), np.int32), "mask": np.zeros((2, 4), np.float32)},   # int32 ids
    {"ids": np.zeros((2, 4), np.float32), "mask": np.zeros((2, 4), np.float32)},  # swapped dtypes
    {"ids": np.zeros((2, 4), ">i8"), "mask": np.zeros((2, 40), ">f4")},          # big-endian, out of range
    {"ids": np.zeros((5, 4), np.int64), "mask": np.zeros((5, 4), np.float32)},   # batch above every profile
    {"ids": np.zeros((2, 4), np.int64)},                                          # mask missing
]


@pytest.mark.parametrize("feed", PAIR_BAD, ids=range(len(PAIR_BAD)))
def test_two_input_engine(pair_engine: dynashape.Engine, feed: dict[str, Any]) -> None:
    raises_user_error(lambda: pair_engine.run(feed))


def test_big_endian_ints(pair_engine: dynashape.Engine) -> None:
    ids = np.arange(8, dtype=">i8").reshape(2, 4)
    mask = np.ones((2, 4), ">f4")
    np.testing.assert_array_equal(pair_engine.run({"ids": ids, "mask": mask})["out"], ids.astype(np.float32))


dims = st.one_of(st.integers(0, 20), st.integers(2**31, 2**64), st.just(-1))


@fuzz_settings(120)
@given(st.lists(dims, min_size=0, max_size=4))
def test_select_profile_any_shape(relu_engine: dynashape.Engine, shape: list[int]) -> None:
    try:
        k = relu_engine.select_profile({"x": shape})
    except DynashapeError as e:
        assert_message(str(e))
        return
    assert relu_engine.profiles[k]["x"].contains(tuple(shape))


@fuzz_settings(60)
@given(st.sampled_from(["float32", ">f4", "<f4", "float16", "int64"]), st.integers(0, 20), st.integers(1, 4))
def test_run_any_batch_and_dtype(relu_engine: dynashape.Engine, dtype: str, batch: int, width: int) -> None:
    x = np.linspace(-1, 1, batch * width).astype(dtype).reshape(batch, width)
    try:
        y = relu_engine.run({"x": x})["y"]
    except DynashapeError as e:
        assert_message(str(e))
        assert not (np.dtype(dtype).kind == "f" and np.dtype(dtype).itemsize == 4 and width == 3 and 1 <= batch <= 16)
        return
    np.testing.assert_array_equal(y, np.maximum(x.astype(np.float32), 0))

"""The one data generator: representative roles read from the graph, user data, and the comparator's
treatment of values the reference leaves undefined."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dynashape import DynashapeError
from dynashape._data import (
    IDS,
    MASK,
    hints_from_onnx,
    load_data,
    make_inputs,
    masked_rows,
    role_of,
    watch_embeddings,
)
from dynashape._reference import Tolerance, compare_outputs, runtime_error_text
from dynashape._specs import TensorSpec

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

SPECS = [
    TensorSpec("input_ids", "int64", ("batch", "seq")),
    TensorSpec("attention_mask", "int64", ("batch", "seq")),
    TensorSpec("token_type_ids", "int64", ("batch", "seq")),
    TensorSpec("position_ids", "int64", ("batch", "seq")),
    TensorSpec("pixel_values", "float32", ("batch", 3, 8, 8)),
    TensorSpec("features", "float32", ("batch", "seq")),
    TensorSpec("keep", "bool", ("batch", "seq")),
]
SHAPES = {s.name: (6, 12) for s in SPECS} | {"pixel_values": (6, 3, 8, 8)}


def _bert_like_onnx(vocab: int = 50, types: int = 2) -> object:
    """ids -> Cast -> Gather(table), a mask used as (1 - mask) * -1e4, an unnamed int input fed to Where."""
    table = numpy_helper.from_array(np.zeros((vocab, 4), np.float32), "emb.weight")
    ttable = numpy_helper.from_array(np.zeros((types, 4), np.float32), "type.weight")
    one = numpy_helper.from_array(np.array(1, np.int64), "one")
    nodes = [
        helper.make_node("Cast", ["input_ids"], ["ids32"], to=TensorProto.INT32),
        helper.make_node("Gather", ["emb.weight", "ids32"], ["e"], name="/emb/Gather"),
        helper.make_node("Gather", ["type.weight", "token_type_ids"], ["t"], name="/type/Gather"),
        helper.make_node("Add", ["e", "t"], ["h"]),
        helper.make_node("Sub", ["one", "m"], ["inv"], name="/mask/Sub"),
        helper.make_node("Unsqueeze", ["inv", "ax"], ["inv2"]),
        helper.make_node("Cast", ["inv2"], ["invf"], to=TensorProto.FLOAT),
        helper.make_node("Cast", ["gate"], ["gb"], to=TensorProto.BOOL),
        helper.make_node("Unsqueeze", ["gb", "ax"], ["gb2"]),
        helper.make_node("Where", ["gb2", "h", "invf"], ["out"], name="/gate/Where"),
    ]
    ax = numpy_helper.from_array(np.array([-1], np.int64), "ax")
    dims = ["batch", "seq"]
    graph = helper.make_graph(
        nodes, "bert_like",
        [helper.make_tensor_value_info(n, TensorProto.INT64, dims) for n in ("input_ids", "token_type_ids", "m", "gate")],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["batch", "seq", 4])],
        [table, ttable, one, ax],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_hints_from_onnx_read_the_table_size_and_mask_use() -> None:
    hints = hints_from_onnx(_bert_like_onnx(vocab=50, types=1))
    assert hints["input_ids"].role == IDS and hints["input_ids"].vocab == 50
    assert "emb.weight" in hints["input_ids"].why
    assert hints["token_type_ids"].vocab == 1
    assert hints["m"].role == MASK and "Sub" in hints["m"].why  # a mask by use, not by name
    assert hints["gate"].role == MASK and "Where" in hints["gate"].why


def test_generated_data_is_representative_and_deterministic() -> None:
    hints = hints_from_onnx(_bert_like_onnx(vocab=50))
    feeds = [make_inputs(SPECS, SHAPES, seed=s, hints=hints) for s in range(20)]
    ids = np.concatenate([f["input_ids"].ravel() for f in feeds])
    assert ids.min() >= 0 and ids.max() < 50 and len(np.unique(ids)) > 40  # the vocabulary, not {0, 1}
    for f in feeds:
        m = f["attention_mask"]
        assert m.dtype == np.int64 and set(np.unique(m)) <= {0, 1}
        assert m[0].all() and m.any(axis=1).all()  # row 0 full, no fully masked row
        # right-padded: within a row, no 1 after a 0
        assert all((np.diff(row) <= 0).all() for row in m)
        assert f["keep"].dtype == bool and f["keep"].any(axis=1).all()
        assert set(np.unique(f["token_type_ids"])) == {0, 1}
        assert (f["position_ids"] == np.arange(12)).all()
        assert 0 <= f["pixel_values"].min() and f["pixel_values"].max() < 1
    assert any((f["attention_mask"] == 0).any() for f in feeds)  # padding does occur
    assert feeds[0]["features"].min() < 0 < feeds[0]["features"].max()  # standard normal, not [0, 1)
    again = make_inputs(SPECS, SHAPES, seed=3, hints=hints)
    assert all(np.array_equal(again[n], feeds[3][n]) for n in again)


def test_segments_respect_a_one_row_type_table() -> None:
    hints = hints_from_onnx(_bert_like_onnx(types=1))
    f = make_inputs(SPECS, SHAPES, hints=hints)
    assert not f["token_type_ids"].any()


def test_unknown_integers_are_valid_ids_and_open_masks() -> None:
    spec = TensorSpec("x", "int32", ("b", "s"))
    assert role_of(spec) == "int"
    x = make_inputs([spec], {"x": (5, 9)}, seed=1)["x"]
    assert x.dtype == np.int32 and set(np.unique(x)) <= {0, 1} and x.any(axis=1).all()


def test_watch_embeddings_finds_the_table_an_input_reaches() -> None:
    torch = pytest.importorskip("torch")

    class Tiny(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.words = torch.nn.Embedding(37, 4)
            self.types = torch.nn.Embedding(2, 4)

        def forward(self, input_ids: object, token_type_ids: object, attention_mask: object) -> object:
            _, s = input_ids.shape  # type: ignore[attr-defined]
            return (self.words(input_ids.view(-1, s)) + self.types(token_type_ids)) * attention_mask[..., None]  # type: ignore[attr-defined]

    m = Tiny()
    ex = {"input_ids": torch.tensor([[3, 5, 7]]), "token_type_ids": torch.zeros(1, 3, dtype=torch.long),
          "attention_mask": torch.ones(1, 3, dtype=torch.long)}
    with watch_embeddings(m, ex) as w:
        m(**ex)
    assert w.hints["input_ids"].vocab == 37
    assert w.hints["token_type_ids"].vocab == 2
    assert "attention_mask" not in w.hints
    assert not m.words._forward_pre_hooks  # hooks removed


def test_load_data_npz_one_feed_and_indexed(tmp_path: Path) -> None:
    specs = [TensorSpec("ids", "int64", ("b", "s")), TensorSpec("x", "float32", ("b", 4))]
    one = tmp_path / "one.npz"
    np.savez(one, ids=np.ones((2, 5), np.int64), x=np.zeros((2, 4), np.float32))
    (feed,) = load_data(str(one), specs)
    assert feed["ids"].shape == (2, 5)
    many = tmp_path / "many.npz"
    np.savez(many, ids=np.ones((3, 2, 5), np.int64), x=np.zeros((3, 2, 4), np.float32))
    feeds = load_data(str(many), specs)
    assert len(feeds) == 3 and feeds[2]["x"].shape == (2, 4)


def test_load_data_python_function(tmp_path: Path) -> None:
    specs = [TensorSpec("x", "float32", ("b", 4))]
    f = tmp_path / "feeds.py"
    f.write_text("import numpy as np\n\ndef load():\n    for b in (1, 3):\n        yield {'x': np.full((b, 4), b, np.float32)}\n")
    feeds = load_data(f"{f}:load", specs)
    assert [x["x"].shape for x in feeds] == [(1, 4), (3, 4)]
    with pytest.raises(DynashapeError, match=r"has no function 'nope' .*load"):
        load_data(f"{f}:nope", specs)


@pytest.mark.parametrize(("feed", "message"), [
    ({"y": np.zeros((1, 4), np.float32)}, r"names \['y'\] that are not inputs \| one array per input: x"),
    ({"x": np.zeros((1, 4), np.float64)}, r"input 'x' has dtype float64 \| float32 \| convert it"),
    ({"x": np.zeros((4,), np.float32)}, r"rank 1\) \| rank 2"),
    ({"x": np.zeros((1, 5), np.float32)}, r"has shape 1x5 \| dim 1 = 4"),
])
def test_user_data_errors_name_what_is_wrong(feed: dict[str, np.ndarray], message: str) -> None:
    with pytest.raises(DynashapeError, match=message):
        load_data(feed, [TensorSpec("x", "float32", ("b", 4))])


def test_load_data_refuses_other_files(tmp_path: Path) -> None:
    with pytest.raises(DynashapeError, match=r"FILE\.npz, or FILE\.py:FUNCTION"):
        load_data(str(tmp_path / "x.txt"), [])
    with pytest.raises(DynashapeError, match="does not exist"):
        load_data(str(tmp_path / "missing.npz"), [])


def test_comparator_leaves_out_undefined_values_and_says_so() -> None:
    specs = [TensorSpec("attention_mask", "int64", ("b", "s"))]
    feed = {"attention_mask": np.array([[1, 1], [0, 0], [1, 0]])}
    rows = masked_rows(feed, specs)
    assert rows == {1}
    ref = np.array([[1.0, 2.0], [np.nan, 5.0], [3.0, np.inf]])
    got = np.array([[1.0, 2.0], [7.0, -9.0], [3.0, 0.0]])
    (d,) = compare_outputs(["y"], [got], [ref], Tolerance(1e-6, 1e-6), undefined_rows=rows)
    assert d.passed and d.excluded == 3
    assert "non-finite" in d.excluded_why and "rows [1] fully masked" in d.excluded_why
    (bad,) = compare_outputs(["y"], [got + 1], [ref], Tolerance(1e-6, 1e-6), undefined_rows=rows)
    assert not bad.passed and bad.max_abs == pytest.approx(1.0)


def test_runtime_error_text_names_the_onnx_runtime_node() -> None:
    e = RuntimeError("[ONNXRuntimeError] : 2 : INVALID_ARGUMENT : Non-zero status code returned while running Add node. "
                     "Name:'/embeddings/Add' Status Message: axis 1 has 32 by 16")
    assert runtime_error_text(e) == "node '/embeddings/Add' (Add): axis 1 has 32 by 16"

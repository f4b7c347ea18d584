"""The doctor's inputs: the one data generator by default, the user's data (``data=``, ``--data``) when given."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
from corpus import CORPUS

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from dynashape._check import check, fix  # noqa: E402
from dynashape._check._graph import Feeder  # noqa: E402
from dynashape._data import fit_feed  # noqa: E402
from dynashape._errors import DynashapeError  # noqa: E402
from dynashape.cli import check_cmd  # noqa: E402
from dynashape.onnx.model import io_specs  # noqa: E402

VOCAB = 10


def _embedder() -> onnx.ModelProto:
    """ids -> a table of VOCAB rows, times the mask: clean (no dim is pinned), but an id >= VOCAB fails."""
    table = numpy_helper.from_array(np.arange(VOCAB * 4, dtype=np.float32).reshape(VOCAB, 4), "table")
    nodes = [
        helper.make_node("Gather", ["table", "input_ids"], ["emb"], name="embed"),
        helper.make_node("Cast", ["attention_mask"], ["maskf"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["maskf", "two"], ["mask3"]),
        helper.make_node("Mul", ["emb", "mask3"], ["out"]),
    ]
    g = helper.make_graph(
        nodes, "embedder",
        [helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "seq"]) for n in ("input_ids", "attention_mask")],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["batch", "seq", 4])],
        [table, numpy_helper.from_array(np.array([2], dtype=np.int64), "two")],
    )
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def _feed(batch: int, seq: int, top: int = VOCAB) -> dict[str, np.ndarray]:
    ids = (np.arange(batch * seq, dtype=np.int64).reshape(batch, seq) * 7) % top
    mask = np.ones((batch, seq), dtype=np.int64)
    mask[1:, seq - 2:] = 0
    return {"input_ids": ids, "attention_mask": mask}


def test_generated_feeds_are_representative() -> None:
    model = _embedder()
    feeds = Feeder(model, io_specs(model)[0])({"input_ids": (4, 32), "attention_mask": (4, 32)})
    ids, mask = feeds["input_ids"], feeds["attention_mask"]
    assert ids.min() >= 0 and ids.max() < VOCAB and len(np.unique(ids)) > 2, "ids from the whole table"
    assert mask.any(axis=1).all() and not mask.all(), "right-padded rows, none fully masked"


def test_user_data_is_what_runs() -> None:
    model = _embedder()
    clean = check(model, data=_feed(3, 7))
    assert clean.findings == [] and clean.notes == []
    assert clean.export_shapes == {"input_ids": (3, 7), "attention_mask": (3, 7)}, "the data's shapes come first"
    bad = check(model, data=[_feed(3, 7, top=VOCAB + 40)])  # ids beyond the table: the model fails on them
    assert any("fails at every shape tried" in n and "embed" in n for n in bad.notes), bad.notes


def test_user_data_is_fitted_to_the_profile() -> None:
    from dynashape import Profile

    profile = Profile.from_shapes({"input_ids": (1, 4), "attention_mask": (1, 4)}, {"input_ids": (2, 16), "attention_mask": (2, 16)},
                                  {"input_ids": (4, 32), "attention_mask": (4, 32)})
    report = check(_embedder(), profile, data=_feed(3, 7))
    assert report.findings == [] and report.notes == []
    assert report.export_shapes == {"input_ids": (2, 16), "attention_mask": (2, 16)}


def test_fit_feed_cuts_and_repeats_the_users_values() -> None:
    feed = _feed(3, 5)
    got = fit_feed(feed, {"input_ids": (2, 12), "attention_mask": (2, 12)})
    np.testing.assert_array_equal(got["input_ids"], np.concatenate([feed["input_ids"][:2]] * 3, axis=1)[:, :12])
    assert got["attention_mask"].any(axis=1).all()
    with pytest.raises(DynashapeError, match="empty along axis 1"):
        fit_feed({"x": np.zeros((2, 0))}, {"x": (2, 3)})


def test_cli_data_flag(tmp_path, capsys) -> None:
    path = tmp_path / "m.onnx"
    onnx.save(_embedder(), str(path))
    good, wrong = tmp_path / "good.npz", tmp_path / "wrong.npz"
    np.savez(good, **_feed(2, 9))
    np.savez(wrong, ids=np.zeros((2, 9), dtype=np.int64), attention_mask=np.ones((2, 9), dtype=np.int64))
    parser = argparse.ArgumentParser(prog="dynashape")
    check_cmd.add_parser(parser.add_subparsers(dest="command"))
    assert check_cmd.run(parser.parse_args(["check", str(path), "--data", str(good)])) == 0
    assert "checked from input_ids:2x9, attention_mask:2x9" in capsys.readouterr().out
    with pytest.raises(DynashapeError, match="names \\['ids'\\] that are not inputs"):
        check_cmd.run(parser.parse_args(["check", str(path), "--data", str(wrong)]))


def test_fix_runs_on_the_users_data(exports, tmp_path) -> None:
    case = next(c for c in CORPUS if c.name == "expand_cls")
    path = exports.broken(case, "torchscript")
    x = np.random.default_rng(0).standard_normal((3, 5, 16)).astype(np.float32)  # the export's shape
    result = fix(path, tmp_path / "fixed.onnx", data={"x": x})
    assert [f.op for f in result.fixed] == ["Expand"] and result.output_path
    assert check(result.output_path, data={"x": x}).findings == []

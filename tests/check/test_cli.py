"""``dynashape check`` as the lead's CLI will call it: exit status, JSON, --fix, profile flags, errors."""

from __future__ import annotations

import argparse
import json

import pytest
from corpus import CORPUS

from dynashape._check import check
from dynashape._errors import DynashapeError
from dynashape.cli import check_cmd


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dynashape")
    check_cmd.add_parser(p.add_subparsers(dest="command"))
    return p


def _run(*argv: str) -> int:
    return check_cmd.run(_parser().parse_args(["check", *argv]))


def _case(name: str):
    return next(c for c in CORPUS if c.name == name)


def test_json_and_exit_status(exports, capsys) -> None:
    assert _run(exports.broken(_case("view_one"), "torchscript"), "--json") == 1
    data = json.loads(capsys.readouterr().out)
    (f,) = data["findings"]
    assert {k: f[k] for k in ("node", "op", "input", "dim", "symbol", "value")} == {
        "node": "/Reshape", "op": "Reshape", "input": "x", "dim": 0, "symbol": "batch", "value": 1}
    assert "x.flatten(1)" in f["fix"] and "x.view(1, -1)" in f["fix"]
    assert "at batch=2 the output is 1x512" in f["message"]
    assert _run(exports.clean("resnet_like", "torchscript"), "--json") == 0
    assert json.loads(capsys.readouterr().out)["findings"] == []


def test_human_view_names_the_pytorch_line(exports, capsys) -> None:
    assert _run(exports.broken(_case("view_one"), "dynamo")) == 1
    out = capsys.readouterr().out
    assert "Reshape node" in out and "corpus.py:" in out and "self.fc(self.conv(x).view(1, -1))" in out


def test_fix_flag_writes_output(exports, tmp_path, capsys) -> None:
    out = tmp_path / "fixed.onnx"
    assert _run(exports.broken(_case("expand_cls"), "torchscript"), "--fix", "-o", str(out)) == 1
    assert out.exists() and "fixed: Expand node '/Expand'" in capsys.readouterr().out
    assert _run(str(out)) == 0


def test_opt_shapes_give_the_export_shape(exports) -> None:
    path = exports.broken(_case("reshape_all_ints"), "torchscript")
    parsed = _parser().parse_args(["check", path, "--optShapes", "x:2x3x8x12"])
    report = check(path, check_cmd._profile(parsed))
    assert report.export_shapes == {"x": (2, 3, 8, 12)}
    assert {f.symbol for f in report.findings} == {"batch", "height", "width"}
    assert not any("fails at every shape" in n for n in report.notes)


def test_user_errors(exports, tmp_path) -> None:
    path = exports.broken(_case("view_one"), "torchscript")
    with pytest.raises(DynashapeError, match="--fix without -o"):
        _run(path, "--fix")
    with pytest.raises(DynashapeError, match="does not exist"):
        _run(str(tmp_path / "missing.onnx"))
    with pytest.raises(DynashapeError, match="does not have"):
        _run(path, "--minShapes", "y:1x3x8x8", "--optShapes", "y:1x3x8x8", "--maxShapes", "y:4x3x8x8")
    with pytest.raises(DynashapeError, match="without --maxShapes"):
        _run(path, "--minShapes", "x:1x3x8x8", "--optShapes", "x:1x3x8x8")


def test_symbolic_only_mode(exports) -> None:
    report = check(exports.broken(_case("view_one"), "torchscript"), empirical=False)
    assert [(f.op, f.symbol, f.value, f.evidence) for f in report.findings] == [("Reshape", "batch", 1, "symbolic")]


@pytest.mark.parametrize("exporter", ["torchscript", "dynamo"])
def test_every_corpus_model_exits_1(exports, exporter: str, capsys) -> None:
    """`dynashape check` gates a CI: exit 1 on every export that really pins a dim."""
    broken = [c for c in CORPUS if (c.torchscript if exporter == "torchscript" else c.dynamo) is not None]
    assert broken
    statuses = {c.name: _run(exports.broken(c, exporter)) for c in broken}
    capsys.readouterr()
    assert statuses == dict.fromkeys(statuses, 1)

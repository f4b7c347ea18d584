"""Engine files and ONNX files: damaged, edited or wrong files are refused in one line, never loaded.

The engine-file cases use only the public contract (``dynashape.load``, ``Engine.save`` and the
CLI), not the format's internals: a truncation, a flipped bit or an edit anywhere in the file must
give a DynashapeError (the CLI: exit 2, one line).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import dynashape
from dynashape import DynashapeError

from .conftest import cli_user_error, fuzz_settings, make_model, raises_user_error, unchanged

onnx = pytest.importorskip("onnx")


def _write(tmp_path: Path, data: bytes, name: str = "bad.engine") -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


def _positions(n: int, count: int) -> list[float]:
    return [i / count for i in range(count)]


# -- engine files ---------------------------------------------------------------------------------

TRUNCATE_AT = [*_positions(1, 40), 0.999]


@pytest.mark.parametrize("frac", TRUNCATE_AT)
def test_truncated_engine(tmp_path: Path, relu_engine_bytes: bytes, frac: float) -> None:
    cut = int(len(relu_engine_bytes) * frac)
    p = _write(tmp_path, relu_engine_bytes[:cut])
    with unchanged(tmp_path):
        raises_user_error(lambda: dynashape.load(p))


FLIP_AT = _positions(1, 48)


@pytest.mark.parametrize("frac", FLIP_AT)
def test_bit_flip_engine(tmp_path: Path, relu_engine_bytes: bytes, frac: float) -> None:
    data = bytearray(relu_engine_bytes)
    i = min(int(len(data) * frac), len(data) - 1)
    data[i] ^= 0x10
    p = _write(tmp_path, bytes(data))
    try:
        engine = dynashape.load(p)
    except DynashapeError as e:
        assert "\n" not in str(e) and " | " in str(e)
        return
    # NOTE: a flip that leaves a loadable file can only be one the format ignores (JSON whitespace);
    # the engine must then still compute the right thing.
    x = np.array([[1.0, -1.0, 2.0]], np.float32)
    np.testing.assert_array_equal(engine.run({"x": x})["y"], np.maximum(x, 0))


# Same-length edits of the manifest's text (format 2 writes it indented, one value a line): another
# backend, device, precision, dtype, static dim (the input's first "3"), format version.
EDITS = [
    (b'"onnxruntime"', b'"inductor"   '), (b'"cpu"', b'"gpu"'), (b'"cpu"', b'"cud"'), (b'"fp32"', b'"fp16"'),
    (b'"float32"', b'"float64"'), (b'"float32"', b'"int64"  '), (b'"batch"', b'"btach"'), (b'"x"', b'"z"'),
    (b'"y"', b'"q"'), (b"16", b"99"), (b"    3\n   ]", b"    4\n   ]"), (b'"format_version": 2,', b'"format_version": 9,'),
    (b'"min"', b'"mni"'), (b'"opt"', b'"max"'),
    (b'"inputs"', b'"inptus"'), (b'"outputs"', b'"outptus"'), (b'"profiles"', b'"profilez"'),
    (b'"format_version"', b'"format_versiom"'), (b"[", b"{"), (b"]", b" "), (b'"name"', b'"nmae"'),
    (b'"threads": null', b'"threads": 9999'), (b'"threads": null', b'"threads": true'), (b"null", b"1e99"),
    (b'"backend"', b'"backenb"'), (b"true", b"null"), (b"false", b"true "),
]


@pytest.mark.parametrize(("old", "new"), EDITS, ids=[f"{a.decode()}->{b.decode()}" for a, b in EDITS])
def test_edited_manifest(tmp_path: Path, relu_engine_bytes: bytes, old: bytes, new: bytes) -> None:
    assert len(old) == len(new)
    # NOTE: a case whose text is gone fails rather than skips: the file layout changed, adapt the case
    assert old in relu_engine_bytes[:4096], f"{old!r} is not in this manifest"
    i = relu_engine_bytes.index(old)
    data = relu_engine_bytes[:i] + new + relu_engine_bytes[i + len(old):]
    p = _write(tmp_path, data)
    raises_user_error(lambda: dynashape.load(p))


@fuzz_settings(60)
@given(st.binary(max_size=256))
def test_garbage_engine(tmp_path_factory: pytest.TempPathFactory, blob: bytes) -> None:
    p = _write(tmp_path_factory.mktemp("g"), blob)
    raises_user_error(lambda: dynashape.load(p))


@fuzz_settings(40)
@given(st.binary(min_size=1, max_size=64))
def test_engine_with_garbage_after_the_magic(tmp_path_factory: pytest.TempPathFactory, relu_engine_bytes: bytes, blob: bytes) -> None:
    p = _write(tmp_path_factory.mktemp("m"), relu_engine_bytes[:16] + blob)
    raises_user_error(lambda: dynashape.load(p))


def test_engine_paths(tmp_path: Path, relu_onnx: str) -> None:
    raises_user_error(lambda: dynashape.load(tmp_path / "missing.engine"))
    raises_user_error(lambda: dynashape.load(tmp_path))  # a folder
    raises_user_error(lambda: dynashape.load(relu_onnx))  # an ONNX file
    os.symlink(tmp_path / "nowhere", tmp_path / "dangling.engine")
    raises_user_error(lambda: dynashape.load(tmp_path / "dangling.engine"))


@pytest.mark.parametrize("frac", [0.0, 0.3, 0.7])
def test_cli_damaged_engine(tmp_path: Path, relu_engine_bytes: bytes, frac: float, capsys: pytest.CaptureFixture[str]) -> None:
    p = _write(tmp_path, relu_engine_bytes[: int(len(relu_engine_bytes) * frac)])
    for argv in (["inspect", p], ["run", "--loadEngine", p, "--shapes", "x:1x3"], ["bench", "--loadEngine", p, "--duration", "0"],
                 ["compare", "--loadEngine", p, "--onnx", p]):
        with unchanged(tmp_path):
            cli_user_error(argv, capsys)


def test_engine_path_is_a_folder_named_as_such(tmp_path: Path) -> None:
    e = raises_user_error(lambda: dynashape.load(tmp_path))
    assert "does not exist" not in str(e)


# -- ONNX files -----------------------------------------------------------------------------------

@fuzz_settings(50)
@given(st.binary(max_size=300))
def test_garbage_onnx(tmp_path_factory: pytest.TempPathFactory, blob: bytes) -> None:
    p = _write(tmp_path_factory.mktemp("o"), blob, "bad.onnx")
    raises_user_error(lambda: dynashape.build(str(p), {"x": ((1, 3), (1, 3), (1, 3))}, backend="onnxruntime"))


@pytest.mark.parametrize("frac", _positions(1, 20))
def test_truncated_onnx(tmp_path: Path, relu_onnx: str, frac: float) -> None:
    data = Path(relu_onnx).read_bytes()
    p = _write(tmp_path, data[: int(len(data) * frac)], "cut.onnx")
    raises_user_error(lambda: dynashape.build(str(p), {"x": ((1, 3), (1, 3), (1, 3))}, backend="onnxruntime"))


def _wrong_graphs() -> list[tuple[str, Any]]:
    h, T = onnx.helper, onnx.TensorProto
    vi = h.make_tensor_value_info
    x = vi("x", T.FLOAT, ["batch", 3])
    y = vi("y", T.FLOAT, ["batch", 3])
    relu = h.make_node("Relu", ["x"], ["y"])
    no_shape = onnx.ValueInfoProto(name="x")
    no_shape.type.tensor_type.elem_type = T.FLOAT
    seq = h.make_tensor_sequence_value_info("x", T.FLOAT, None)
    return [
        ("no outputs", make_model([relu], [x], [])),
        ("input without shape", make_model([relu], [no_shape], [y])),
        ("unknown op", make_model([h.make_node("Bogus", ["x"], ["y"])], [x], [y])),
        ("unknown domain", make_model([h.make_node("Relu", ["x"], ["y"], domain="com.nowhere")], [x], [y])),
        ("dangling input", make_model([h.make_node("Add", ["x", "nope"], ["y"])], [x], [y])),
        ("output never produced", make_model([relu], [x], [vi("z", T.FLOAT, ["batch", 3])])),
        ("cycle", make_model([h.make_node("Add", ["x", "y"], ["t"]), h.make_node("Relu", ["t"], ["y"])], [x], [y])),
        ("type mismatch", make_model([h.make_node("Add", ["x", "i"], ["y"])], [x, vi("i", T.INT64, ["batch", 3])], [y])),
        ("opset 99", make_model([relu], [x], [y], opset=99)),
        ("opset 1", make_model([h.make_node("Gelu", ["x"], ["y"])], [x], [y], opset=1)),
        ("sequence input", make_model([h.make_node("SequenceAt", ["x", "i"], ["y"])], [seq, vi("i", T.INT64, [])], [y])),
        ("bad attribute", make_model([h.make_node("Transpose", ["x"], ["y"], perm=[5, 7])], [x], [y])),
        ("empty graph", make_model([], [], [])),
        ("duplicate outputs", make_model([relu, h.make_node("Relu", ["x"], ["y"])], [x], [y])),
    ]


WRONG = _wrong_graphs()


@pytest.mark.parametrize(("label", "model"), WRONG, ids=[w[0] for w in WRONG])
def test_wrong_graph_build(tmp_path: Path, label: str, model: Any) -> None:
    p = tmp_path / "wrong.onnx"
    onnx.save(model, p)
    with unchanged(tmp_path):
        raises_user_error(lambda: dynashape.build(str(p), {"x": ((1, 3), (2, 3), (4, 3))}, backend="onnxruntime",
                                                  validate=False))


@pytest.mark.parametrize(("label", "model"), WRONG, ids=[w[0] for w in WRONG])
def test_wrong_graph_cli(tmp_path: Path, label: str, model: Any, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "wrong.onnx"
    onnx.save(model, p)
    from .conftest import run_cli

    for argv in (["build", "--onnx", p, "--optShapes", "x:2x3"], ["check", p], ["inspect", p]):
        rc, _out, err = run_cli(argv, capsys)
        assert "Traceback" not in err
        if argv[0] == "build":
            assert rc == 2, (label, err)
        if rc == 2:
            lines = [ln for ln in err.splitlines() if not ln.startswith("[dynashape")]
            assert len(lines) == 1 and " | " in lines[0], (label, argv[0], err)
        else:
            assert rc in (0, 1), (label, argv[0], rc, err)

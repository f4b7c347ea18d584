"""The CLI: every bad command line exits 2 with one line (130 on Ctrl-C), and writes nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from .conftest import cli_user_error, fuzz_settings, run_cli, unchanged

SRC = str(Path(__file__).resolve().parents[2] / "src")

# {onnx}: the relu model; {engine}: its engine; {dir}: an empty scratch folder; {py}: model files.
ARGVS: list[list[str]] = [
    [], ["nope"], ["build", "--bogus"], ["build", "--threads", "x"], ["build", "--threads", "1.5"],
    ["run", "--profile", "x"], ["compare", "--atol", "x"], ["bench", "--iterations", "1e3"],
    ["build"], ["build", "--onnx", "{onnx}", "--model", "zoo:superres"],
    ["build", "--onnx", "{onnx}"], ["build", "--onnx", "{dir}/missing.onnx", "--optShapes", "x:1x3"],
    ["build", "--onnx", "{dir}", "--optShapes", "x:1x3"], ["build", "--onnx", "{engine}", "--optShapes", "x:1x3"],
    ["build", "--onnx", "{onnx}", "--dims", "image_height=²:64:128"], ["build", "--onnx", "{onnx}", "--dims", "batch=1:2:4,batch=1:2:8"],
    ["build", "--onnx", "{onnx}", "--dims", "nope=1:2:4"], ["build", "--onnx", "{onnx}", "--dims", "batch=4:2:1"],
    ["build", "--onnx", "{onnx}", "--optShapes", "x:1x3", "--inductor-config", "force_layout_optimization"],
    ["build", "--onnx", "{onnx}", "--optShapes", "x:1x3", "--backend", "onnxruntime", "--inductor-config", "max_autotune=true"],
    ["build", "--onnx", "{onnx}", "--optShapes", "x:1x3", "--backend", "inductor", "--inductor-config", "no_such_key=1"],
    ["build", "--onnx", "{onnx}", "--dims", "batch=9223372036854775807"], ["build", "--onnx", "{onnx}", "--dims", "batch=1:2:" + "9" * 40],
    ["build", "--onnx", "{onnx}", "--minShapes", "x:1x3", "--optShapes", "x:1x3", "--maxShapes", "x:100000000000x3"],
    ["build", "--onnx", "{onnx}", "--minShapes", "x:1x3", "--optShapes", "x:2x3"],
    ["build", "--onnx", "{onnx}", "--optShapes", "y:1x3"], ["build", "--onnx", "{onnx}", "--optShapes", "x:1x4"],
    ["build", "--onnx", "{onnx}", "--optShapes", "x:1x3x1"], ["build", "--onnx", "{onnx}", "--optShapes", "x:1x3,x:1x3"],
    ["build", "--onnx", "{onnx}", "--optShapes", "'x:1x3"], ["build", "--onnx", "{onnx}", "--optShapes", "x:1x3", "--threads", "0"],
    ["build", "--onnx", "{onnx}", "--optShapes", "x:1x3", "--threads", "-4"],
    ["build", "--onnx", "{onnx}", "--optShapes", "x:1x3", "--threads", "100000"],
    ["build", "--onnx", "{onnx}", "--optShapes", "x:1x3", "--backend", "nope"],
    ["build", "--onnx", "{onnx}", "--optShapes", "x:1x3", "--device", "tpu"],
    ["build", "--onnx", "{onnx}", "--optShapes", "x:1x3", "--fp16", "--backend", "onnxruntime"],
    ["build", "--onnx", "{onnx}", "--optShapes", "x:1x3", "--append-op", "y:Nope"],
    ["build", "--onnx", "{onnx}", "--optShapes", "x:1x3", "--append-op", "z:Sigmoid"],
    ["build", "--onnx", "{onnx}", "--optShapes", "x:1x3", "--saveEngine", "{dir}/no/such/folder/x.engine"],
    ["build", "--onnx", "{onnx}", "--optShapes", "x:1x3", "--saveEngine", "{dir}"],
    ["build", "--model", "{py}/bad_syntax.py:make", "--optShapes", "x:1x3"],
    ["build", "--model", "{py}/raises.py:make", "--optShapes", "x:1x3"],
    ["build", "--model", "{py}/not_module.py:make", "--optShapes", "x:1x3"],
    ["build", "--model", "{py}/bad_syntax.py:nope", "--optShapes", "x:1x3"],
    ["build", "--model", "{py}/missing.py:make", "--optShapes", "x:1x3"], ["build", "--model", "{py}:make", "--optShapes", "x:1x3"],
    ["build", "--model", "nocolon", "--optShapes", "x:1x3"], ["build", "--model", "zoo:nope", "--optShapes", "x:1x3"],
    ["export", "--model", "{py}/bad_syntax.py:make", "--shapes", "x:1x3", "-o", "{dir}/x.onnx"],
    ["export", "--model", "{py}/raises.py:make", "--shapes", "x:1x3", "-o", "{dir}/x.onnx"],
    ["export", "--model", "zoo:superres", "-o", "{dir}/x.onnx", "--opset", "99"],
    ["export", "--model", "zoo:superres", "-o", "{dir}/x.onnx", "--opset", "-1"],
    ["export", "--model", "zoo:superres", "-o", "{dir}", "--opset", "17"],
    ["export", "--model", "zoo:superres", "-o", "{dir}/missing/x.onnx"],
    ["export", "-o", "{dir}/x.onnx"], ["export", "--model", "zoo:superres", "-o", "{dir}/x.onnx", "--dynamic", "input:x=batch"],
    ["export", "--model", "zoo:superres", "-o", "{dir}/x.onnx", "--shapes", "input:1x1x8x8", "--input-dtypes", "input:floaty"],
    ["export", "--model", "zoo:superres", "-o", "{dir}/x.onnx", "--shapes", "input:1x1x8x8", "--input-dtypes", "nope:int64"],
    ["run", "--loadEngine", "{engine}", "--shapes", "y:1x3"], ["run", "--loadEngine", "{engine}", "--shapes", "x:1x3,z:1x2"],
    ["run", "--loadEngine", "{engine}", "--shapes", "x:100000000000x3"], ["run", "--loadEngine", "{engine}", "--shapes", "x:1x3x100000x100000"],
    ["run", "--loadEngine", "{engine}", "--shapes", "x:" + "9" * 30 + "x3"], ["run", "--loadEngine", "{engine}", "--shapes", "x:0x3"],
    ["run", "--loadEngine", "{engine}", "--shapes", "x:1x3", "--profile", "7"],
    ["run", "--loadEngine", "{engine}", "--shapes", "x:1x3", "--profile", "-1"],
    ["run", "--loadEngine", "{engine}", "--shapes", "x:1x3", "--profile", "1"],
    ["run", "--loadEngine", "{engine}"], ["run", "--shapes", "x:1x3"],
    ["run", "--loadEngine", "{engine}", "--shapes", "x:1x3", "--output", "{dir}"],
    ["run", "--loadEngine", "{engine}", "--shapes", "x:1x3", "--output", "{dir}/missing/out.npz"],
    ["run", "--loadEngine", "{engine}", "--input-data", "{dir}"], ["run", "--loadEngine", "{engine}", "--input-data", "{dir}/none.npz"],
    ["run", "--loadEngine", "{engine}", "--input-data", "{onnx}"], ["run", "--loadEngine", "{engine}", "--input-data", "{npz_wrong}"],
    ["run", "--loadEngine", "{engine}", "--input-data", "{npz_pickle}"], ["run", "--loadEngine", "{engine}", "--input-data", "{npy}"],
    ["run", "--loadEngine", "{dir}"], ["run", "--loadEngine", "{onnx}", "--shapes", "x:1x3"],
    ["bench", "--loadEngine", "{engine}", "--warmUp", "nan"], ["bench", "--loadEngine", "{engine}", "--warmUp", "-1"],
    ["bench", "--loadEngine", "{engine}", "--warmUp", "inf"], ["bench", "--loadEngine", "{engine}", "--duration", "nan"],
    ["bench", "--loadEngine", "{engine}", "--duration", "-3"], ["bench", "--loadEngine", "{engine}", "--duration", "inf"],
    ["bench", "--loadEngine", "{engine}", "--iterations", "0"], ["bench", "--loadEngine", "{engine}", "--iterations", "-5"],
    ["bench", "--loadEngine", "{engine}", "--shapes", "x:99x3", "--duration", "0"],
    ["bench", "--loadEngine", "{engine}", "--shapes", "q:1x3", "--duration", "0"],
    ["compare", "--loadEngine", "{engine}", "--onnx", "{other_onnx}"], ["compare", "--loadEngine", "{engine}", "--onnx", "{onnx}", "--atol", "nan"],
    ["compare", "--loadEngine", "{engine}", "--onnx", "{onnx}", "--rtol", "-1"], ["compare", "--loadEngine", "{engine}", "--onnx", "{onnx}", "--atol", "inf"],
    ["compare", "--loadEngine", "{engine}"], ["compare", "--loadEngine", "{engine}", "--onnx", "{onnx}", "--model", "zoo:superres"],
    ["compare", "--loadEngine", "{engine}", "--onnx", "{onnx}", "--shapes", "y:1x3"],
    ["compare", "--loadEngine", "{engine}", "--onnx", "{onnx}", "--shapes", "x:1x3x100000x100000"],
    ["compare", "--loadEngine", "{engine}", "--model", "{py}/bad_syntax.py:make"],
    ["check", "{dir}/missing.onnx"], ["check", "{dir}"], ["check", "{engine}"], ["check", "{onnx}", "--fix"],
    ["check", "{onnx}", "-o", "{dir}/x.onnx"], ["check", "{onnx}", "--fix", "-o", "{dir}/missing/x.onnx"],
    ["check", "{onnx}", "--fix", "-o", "{dir}"], ["check", "{onnx}", "--minShapes", "x:1x3"], ["check", "{onnx}", "--optShapes", "x:1x"],
    ["check", "{bogus_onnx}"], ["inspect", "{dir}/missing"], ["inspect", "{dir}"], ["inspect", "{empty}"],
]


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, relu_onnx: str, relu_engine_bytes: bytes) -> dict[str, str]:
    import numpy as np
    import onnx

    from .conftest import make_model

    root = tmp_path_factory.mktemp("cli")
    py = root / "py"
    py.mkdir()
    (py / "bad_syntax.py").write_text("def make(:\n    pass\n")
    (py / "raises.py").write_text("def make():\n    return {}['missing']\n")
    (py / "not_module.py").write_text("def make():\n    return 42\n")
    (root / "relu.engine").write_bytes(relu_engine_bytes)
    np.savez(root / "wrong.npz", q=np.zeros((1, 3), np.float32))
    np.savez(root / "pickle.npz", x=np.array([{"a": 1}], dtype=object))
    np.save(root / "one.npy", np.zeros((1, 3), np.float32))
    (root / "empty.onnx").write_bytes(b"")
    h, T = onnx.helper, onnx.TensorProto
    onnx.save(make_model([h.make_node("Cast", ["a"], ["y"], to=1)], [h.make_tensor_value_info("a", T.INT64, ["n", 3])],
                         [h.make_tensor_value_info("y", T.FLOAT, ["n", 3])]), root / "other.onnx")
    onnx.save(make_model([h.make_node("Bogus", ["x"], ["y"])], [h.make_tensor_value_info("x", T.FLOAT, ["n", 3])],
                         [h.make_tensor_value_info("y", T.FLOAT, ["n", 3])]), root / "bogus.onnx")
    return {"onnx": relu_onnx, "engine": str(root / "relu.engine"), "py": str(py), "npz_wrong": str(root / "wrong.npz"),
            "npz_pickle": str(root / "pickle.npz"), "npy": str(root / "one.npy"), "empty": str(root / "empty.onnx"),
            "other_onnx": str(root / "other.onnx"), "bogus_onnx": str(root / "bogus.onnx")}


@pytest.mark.parametrize("argv", ARGVS, ids=[" ".join(a)[:60] or "(none)" for a in ARGVS])
def test_bad_command_lines(argv: list[str], env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    subs = {**env, "dir": str(tmp_path)}
    args = [a.format(**subs) for a in argv]
    with unchanged(tmp_path):
        cli_user_error(args, capsys)


@fuzz_settings(60)
@given(st.lists(st.sampled_from(["--minShapes", "--optShapes", "--maxShapes", "--dims", "x:1x3", "x:2x3", "x:9x3", "x:1x", "batch=1:2:4",
                                 "batch=2", "²", "'", "x:1x3,x:1x3", "--threads", "0", "9", "--saveEngine", "--backend", "inductor"]),
                max_size=8))
def test_build_flag_soup(relu_onnx: str, tmp_path_factory: pytest.TempPathFactory, soup: list[str]) -> None:
    import contextlib
    import io

    from dynashape.cli.main import main

    folder = tmp_path_factory.mktemp("soup")
    args = ["build", "--onnx", relu_onnx, "--no-validate", *[s if s != "--saveEngine" else f"--saveEngine={folder}" for s in soup]]
    err = io.StringIO()
    with unchanged(folder), contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        rc = main(args)
    lines = [ln for ln in err.getvalue().splitlines() if not ln.startswith("[dynashape")]
    assert rc in (0, 2), (args, err.getvalue())
    assert "Traceback" not in err.getvalue()
    if rc == 2:
        assert len(lines) == 1 and " | " in lines[0], (args, err.getvalue())


def test_good_run_writes_output(env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out.npz"
    rc, _stdout, _ = run_cli(["run", "--loadEngine", env["engine"], "--shapes", "x:2x3", "--output", str(out)], capsys)
    assert rc == 0 and out.is_file() and sorted(os.listdir(tmp_path)) == ["out.npz"]


# -- real processes --------------------------------------------------------------------------------

def _dynashape(*args: str, **kw: object) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen([sys.executable, "-m", "dynashape", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, **kw)  # type: ignore[call-overload]


@pytest.mark.parametrize("argv", [["build", "--onnx", "{onnx}", "--dims", "batch=1:2:4", "--threads", "100000"],
                                  ["run", "--loadEngine", "{onnx}", "--shapes", "x:1x3"],
                                  ["build", "--model", "{py}/bad_syntax.py:make", "--optShapes", "x:1x3"]])
def test_subprocess_user_errors(argv: list[str], env: dict[str, str]) -> None:
    p = _dynashape(*[a.format(**env) for a in argv])
    _out, err = p.communicate(timeout=120)
    lines = [ln for ln in err.splitlines() if not ln.startswith("[dynashape")]
    assert p.returncode == 2 and len(lines) == 1 and " | " in lines[0], err


def test_ctrl_c_during_imports(tmp_path: Path) -> None:
    """SIGINT while the user's model file is still importing: exit 130, one line, no traceback."""
    slow = tmp_path / "slow.py"
    marker = tmp_path / "started"
    slow.write_text(f"import pathlib, time\npathlib.Path({str(marker)!r}).touch()\ntime.sleep(60)\n")
    # NOTE: a test run started in the background (`pytest &` from a script) passes SIGINT ignored to its
    # children, and Python then keeps ignoring it: the child gets the default disposition back
    p = _dynashape("export", "--model", f"{slow}:make", "--shapes", "x:1x3", "-o", str(tmp_path / "x.onnx"),
                   preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 60
    while not marker.exists() and time.monotonic() < deadline and p.poll() is None:
        time.sleep(0.05)
    p.send_signal(signal.SIGINT)
    _out, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "x.onnx").exists()

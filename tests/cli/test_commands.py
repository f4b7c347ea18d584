"""The CLI through its entry point (``python -m dynashape``) and in-process (``main([...])``) where that suffices.

NOTE: the file is not named test_cli.py: tests/check/test_cli.py exists, and pytest's default import
mode needs unique basenames across test folders without __init__.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import dynashape
from dynashape.cli.main import main

PROFILE_0 = ["--minShapes", "input_1:1x3x64x64", "--optShapes", "input_1:1x3x128x128", "--maxShapes", "input_1:1x3x256x256"]
PROFILE_1 = ["--minShapes", "input_1:1x3x256x256", "--optShapes", "input_1:1x3x512x512", "--maxShapes", "input_1:1x3x768x768"]


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m dynashape ARGS`` in a fresh process."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-m", "dynashape", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=600)


def assert_user_error(p: subprocess.CompletedProcess[str], command: str, *parts: str) -> None:
    assert p.returncode == 2, (p.stdout, p.stderr)
    assert p.stderr.startswith(f"dynashape {command}: error: "), p.stderr
    assert "Traceback" not in p.stderr
    for part in parts:
        assert part in p.stderr


@pytest.fixture(scope="module")
def cli_engine(tmp_path_factory: pytest.TempPathFactory, seg_onnx: str) -> Path:
    """Built through the entry point: two profiles, an appended Sigmoid, saved."""
    path = tmp_path_factory.mktemp("cli") / "seg.engine"
    p = cli("build", "--onnx", seg_onnx, *PROFILE_0, *PROFILE_1, "--append-op", "output_1:Sigmoid", "--saveEngine", str(path))
    assert p.returncode == 0, p.stderr
    assert "built onnxruntime engine (cpu, fp32) with 2 profile(s) in" in p.stdout and f"-> {path}" in p.stdout
    assert "profile 0: input_1: 1x3x64x64 / 1x3x128x128 / 1x3x256x256" in p.stdout
    assert "profile 1: input_1: 1x3x256x256 / 1x3x512x512 / 1x3x768x768" in p.stdout
    return path


# -- the entry point ----------------------------------------------------------------------------

def test_version_and_help() -> None:
    p = cli("--version")
    assert p.returncode == 0 and p.stdout.strip() == f"dynashape {dynashape.__version__}"
    p = cli("--help")
    assert p.returncode == 0
    for command in ("export", "inspect", "build", "run", "bench", "compare"):
        assert command in p.stdout


def test_console_script() -> None:
    exe = shutil.which("dynashape")
    if exe is None:
        pytest.skip("the dynashape console script is not installed (pip install -e .)")
    p = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and "dynashape" in p.stdout


def test_build_with_two_profiles(cli_engine: Path) -> None:
    engine = dynashape.load(cli_engine)
    assert len(engine.profiles) == 2
    assert engine.manifest.build_settings.append_ops == (("output_1", "Sigmoid"),)


# -- export and inspect -------------------------------------------------------------------------

def test_export_zoo_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "seg.onnx"
    assert main(["export", "--model", "zoo:segmentation", "--output", str(out),
                 "--minShapes", "input_1:1x3x32x32", "--optShapes", "input_1:1x3x64x48", "--maxShapes", "input_1:1x3x96x96"]) == 0
    text = capsys.readouterr().out
    assert f"exported {out} (torchscript exporter)" in text
    assert "output output_1: float32 (1, 1, image_height, image_width)" in text
    assert "verified at input_1=1x3x96x96" in text
    assert out.is_file()


def test_export_user_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "net.py"
    src.write_text("import torch\n\ndef make():\n    return torch.nn.Sequential(torch.nn.Linear(4, 2), torch.nn.ReLU())\n")
    out = tmp_path / "net.onnx"
    assert main(["export", "--model", f"{src}:make", "--shapes", "x:3x4", "--dynamic", "x:0=batch", "--output", str(out)]) == 0
    assert "input  x: float32 (batch, 4)" in capsys.readouterr().out
    assert main(["export", "--model", f"{src}:nope", "--shapes", "x:3x4", "--output", str(out)]) == 2
    assert "has no function 'nope' | one of: make" in capsys.readouterr().err


def test_inspect_onnx(seg_onnx: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", seg_onnx]) == 0
    text = capsys.readouterr().out
    assert "ONNX model" in text and "input_1: float32 (1, 3, image_height, image_width)" in text and "Conv x5" in text
    assert main(["inspect", seg_onnx, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["kind"] == "onnx" and data["inputs"][0]["shape"] == [1, 3, "image_height", "image_width"]
    assert data["op_counts"]["Conv"] == 5


def test_inspect_engine(cli_engine: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", str(cli_engine)]) == 0
    text = capsys.readouterr().out
    assert "dynashape engine" in text and "backend onnxruntime, device cpu, precision fp32, format v2" in text
    assert "input_1: min 1x3x256x256, opt 1x3x512x512, max 1x3x768x768" in text
    assert main(["inspect", str(cli_engine), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["kind"] == "engine" and data["backend"] == "onnxruntime" and len(data["profiles"]) == 2
    assert data["build_settings"]["append_ops"] == [["output_1", "Sigmoid"]]


# -- run, bench, compare -------------------------------------------------------------------------

def test_run_random_and_real_data(tmp_path: Path, cli_engine: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out.npz"
    assert main(["run", "--loadEngine", str(cli_engine), "--shapes", "input_1:1x3x300x500", "--output", str(out)]) == 0
    text = capsys.readouterr().out
    assert text.startswith("profile 1, ") and "inputs input_1:1x3x300x500" in text
    assert "output_1: float32 1x1x300x500" in text and f"wrote {out}" in text
    with np.load(out) as f:
        assert f["output_1"].shape == (1, 1, 300, 500)

    x = np.random.default_rng(0).random((1, 3, 100, 120), dtype=np.float32)
    inp = tmp_path / "in.npz"
    np.savez(inp, input_1=x)
    assert main(["run", "--loadEngine", str(cli_engine), "--input-data", str(inp), "--output", str(out)]) == 0
    assert capsys.readouterr().out.startswith("profile 0, ")
    with np.load(out) as f:
        np.testing.assert_array_equal(f["output_1"], dynashape.load(cli_engine).run({"input_1": x})["output_1"])


def test_run_from_onnx_with_dims(seg_onnx: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--onnx", seg_onnx, "--dims", "image_height=32:64:96,image_width=32:64:96",
                 "--shapes", "input_1:1x3x40x90", "--profile", "0"]) == 0
    assert "output_1: float32 1x1x40x90" in capsys.readouterr().out


def test_bench(cli_engine: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--loadEngine", str(cli_engine), "--shapes", "input_1:1x3x64x64", "--shapes", "input_1:1x3x300x500",
                 "--iterations", "3", "--duration", "0", "--warmUp", "0"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "onnxruntime engine (cpu, fp32)"
    assert lines[1].split() == ["shapes", "profile", "iters", "min", "ms", "median", "p90", "p99", "max", "ms", "qps"]
    rows = [ln.split() for ln in lines[2:]]
    assert [r[0] for r in rows] == ["input_1:1x3x64x64", "input_1:1x3x300x500"]
    assert [r[1] for r in rows] == ["0", "1"] and [r[2] for r in rows] == ["3", "3"]
    assert all(len(r) == 9 for r in rows)
    assert main(["bench", "--loadEngine", str(cli_engine), "--iterations", "1", "--duration", "0", "--warmUp", "0", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [d["shapes"]["input_1"] for d in data] == [[1, 3, 128, 128], [1, 3, 512, 512]]


def test_compare_passes_against_its_onnx(cli_engine: Path, seg_onnx: str) -> None:
    p = cli("compare", "--loadEngine", str(cli_engine), "--onnx", seg_onnx)
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.rstrip().endswith("PASSED") and p.stdout.count("PASS") >= 7


def test_compare_fails_against_another_model(tmp_path: Path, cli_engine: Path, seg_onnx: str) -> None:
    import onnx
    from onnx import numpy_helper

    model = onnx.load(seg_onnx)
    for init in model.graph.initializer:  # same graph and IO, other weights: a re-seeded net
        arr = numpy_helper.to_array(init)
        if arr.dtype == np.float32 and arr.size > 1:
            init.CopyFrom(numpy_helper.from_array(np.flip(arr).copy() * np.float32(1.3), init.name))
    other = tmp_path / "other.onnx"
    onnx.save(model, other)
    p = cli("compare", "--loadEngine", str(cli_engine), "--onnx", str(other), "--shapes", "input_1:1x3x64x64", "--json")
    assert p.returncode == 1, p.stdout + p.stderr
    assert json.loads(p.stdout)["passed"] is False
    assert "Traceback" not in p.stderr


def test_compare_with_pytorch_model(cli_engine: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", "--loadEngine", str(cli_engine), "--model", "zoo:segmentation", "--shapes", "input_1:1x3x64x80"]) == 0
    assert "engine vs PyTorch eager (Segmentation)" in capsys.readouterr().out


# -- build from a module ------------------------------------------------------------------------

def test_build_from_zoo_module(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "sr.engine"
    assert main(["build", "--model", "zoo:superres", "--backend", "onnxruntime", "--minShapes", "input:1x1x16x16",
                 "--optShapes", "input:2x1x24x24", "--maxShapes", "input:3x1x32x32", "--saveEngine", str(path)]) == 0
    assert "built onnxruntime engine" in capsys.readouterr().out
    engine = dynashape.load(path)
    assert engine.run({"input": np.zeros((3, 1, 20, 30), np.float32)})["output"].shape == (3, 1, 60, 90)


# -- user errors: exit 2, one line on stderr, no traceback --------------------------------------

def test_shape_out_of_range(cli_engine: Path) -> None:
    p = cli("run", "--loadEngine", str(cli_engine), "--shapes", "input_1:1x3x900x500")
    assert_user_error(p, "run", "input 'input_1' dim 2 (image_height) = 900 is outside every profile",
                      "profile 0 allows 64..256, profile 1 allows 256..768", "--maxShapes=input_1:1x3x900x")


def test_bad_jobs(tmp_path: Path) -> None:
    p = cli("build", "--model", "zoo:superres", "--backend", "inductor", "--minShapes", "input:1x1x16x16", "--optShapes",
            "input:2x1x24x24", "--maxShapes", "input:3x1x32x32", "--jobs", "0", "--saveEngine", str(tmp_path / "sr.engine"))
    assert_user_error(p, "build", "jobs=0", "a count of parallel compiles from 1 to 1024")
    assert not list(tmp_path.iterdir())


def test_missing_files(tmp_path: Path) -> None:
    assert_user_error(cli("inspect", str(tmp_path / "nope.onnx")), "inspect", "does not exist")
    assert_user_error(cli("run", "--loadEngine", str(tmp_path / "nope.engine"), "--shapes", "input_1:1x3x64x64"), "run",
                      f"engine file '{tmp_path / 'nope.engine'}' does not exist")


def test_bad_shape_syntax(seg_onnx: str) -> None:
    p = cli("build", "--onnx", seg_onnx, "--minShapes", "input_1:1x3xAx4", "--optShapes", "input_1:1x3x64x64",
            "--maxShapes", "input_1:1x3x96x96")
    assert_user_error(p, "build", "shape of 'input_1' '1x3xAx4' has the dim 'A'", "joined by 'x'")


@pytest.mark.parametrize(
    ("argv", "command", "part"),
    [
        (["build", "--onnx", "{seg}", "--minShapes", "input_1:1x3x64x64", "--optShapes", "input_1:1x3x64x64"], "build",
         "1 --minShapes, 1 --optShapes and 0 --maxShapes"),
        (["build", "--onnx", "{seg}"], "build", "no profile for a model with dynamic dims"),
        (["build", "--onnx", "{seg}", "--optShapes", "image:1x3x64x64"], "build", "the model's inputs are: input_1"),
        (["build", "--onnx", "{seg}", "--dims", "image_height=64:32:96"], "build", "min 64, opt 32, max 96"),
        (["build", "--onnx", "{seg}", "--optShapes", "input_1:1x3x64x64", "--append-op", "output_1:Swish"], "build",
         "append-op 'output_1:Swish'"),
        (["run", "--onnx", "{seg}", "--optShapes", "input_1:1x3x64x64", "--shapes", "input_1:1x3x64x64", "--profile", "3"], "run",
         "profile=3"),
        (["export", "--model", "zoo:nope", "--output", "x.onnx"], "export", "no zoo model named 'nope' | one of: bert_like"),
        (["compare", "--loadEngine", "{seg}", "--onnx", "{seg}"], "compare", "is not a dynashape engine file"),
    ],
)
def test_user_errors_in_process(argv: list[str], command: str, part: str, seg_onnx: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([a.replace("{seg}", seg_onnx) for a in argv]) == 2
    lines = capsys.readouterr().err.splitlines()
    # NOTE: a command that did work before failing (run --onnx builds first) may have printed
    # progress lines; the error is then the one line after them.
    assert all(line.startswith("[dynashape ") for line in lines[:-1]), lines
    assert lines[-1].startswith(f"dynashape {command}: error: ") and part in lines[-1]


def test_split_compiles_sub_ranges_and_refuses_bad_items(tmp_path: Path) -> None:
    shapes = ["--minShapes", "input:1x1x16x16", "--optShapes", "input:2x1x16x16", "--maxShapes", "input:6x1x16x16"]
    p = cli("build", "--model", "zoo:superres", "--backend", "inductor", *shapes, "--split", "batch:x",
            "--saveEngine", str(tmp_path / "sr.engine"))
    assert_user_error(p, "build", "--split item 'batch:x'", "DIM:C1/C2 (cut points")
    p = cli("build", "--model", "zoo:superres", "--backend", "inductor", *shapes, "--split", "seq:auto",
            "--saveEngine", str(tmp_path / "sr.engine"))
    assert_user_error(p, "build", "split names the dim 'seq', which no input has", "batch")
    assert not list(tmp_path.iterdir())
    out = tmp_path / "sr.engine"
    p = cli("build", "--model", "zoo:superres", "--backend", "inductor", *shapes, "--split", "batch:3/", "--saveEngine", str(out))
    assert p.returncode == 0, p.stderr
    text = cli("inspect", str(out)).stdout
    assert "split into 2 sub-ranges, each compiled for its own opt: batch 1..3 (opt 2) | batch 4..6 (opt 5)" in text
    assert "split=[['batch', [3]]]" in text
    p = cli("run", "--loadEngine", str(out), "--shapes", "input:5x1x16x16")
    assert p.returncode == 0, p.stderr

"""The fuzz corpus: bad inputs at every boundary, each refused in one line (or a DynashapeError).

Every case asserts the public contract: the API raises a :class:`dynashape.DynashapeError` whose
text reads "received | expected | fix"; the CLI exits 2 with ONE line on stderr in that form (130
on Ctrl-C), never a traceback, a crash, or a partial or clobbered file.

NOTE: the engines here are ONNX Runtime engines of graphs written with onnx.helper: they build in
well under a second, so the corpus needs no torch export and no AOTInductor compile. The corpus
counts its cases (parametrized items, plus every hypothesis example) and
``test_corpus_size`` holds it to at least 500.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

import dynashape
from dynashape import DynashapeError, Profile
from dynashape.cli.main import main

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

MIN_CASES = 500
FUZZ_DIR = Path(__file__).parent

# -- models -----------------------------------------------------------------------------------


def make_model(nodes: list[Any], inputs: list[Any], outputs: list[Any], *, opset: int = 17,
               initializers: list[Any] | None = None) -> Any:
    h = onnx.helper
    g = h.make_graph(nodes, "fuzz", inputs, outputs, initializer=initializers or [])
    m = h.make_model(g, opset_imports=[h.make_opsetid("", opset)])
    m.ir_version = 8
    return m


def relu_model() -> Any:
    """x: float32 [batch, 3] -> y = relu(x)."""
    h, T = onnx.helper, onnx.TensorProto
    return make_model([h.make_node("Relu", ["x"], ["y"])], [h.make_tensor_value_info("x", T.FLOAT, ["batch", 3])],
                      [h.make_tensor_value_info("y", T.FLOAT, ["batch", 3])])


def pair_model() -> Any:
    """ids: int64 [batch, seq], mask: float32 [batch, seq] -> out = float(ids) * mask (shared dims)."""
    h, T = onnx.helper, onnx.TensorProto
    return make_model(
        [h.make_node("Cast", ["ids"], ["f"], to=T.FLOAT), h.make_node("Mul", ["f", "mask"], ["out"])],
        [h.make_tensor_value_info("ids", T.INT64, ["batch", "seq"]), h.make_tensor_value_info("mask", T.FLOAT, ["batch", "seq"])],
        [h.make_tensor_value_info("out", T.FLOAT, ["batch", "seq"])],
    )


RELU_PROFILES = [Profile({"x": ((1, 3), (2, 3), (4, 3))}), Profile({"x": ((4, 3), (8, 3), (16, 3))})]
PAIR_DIMS = {"batch": (1, 2, 4), "seq": (1, 8, 16)}


@pytest.fixture(scope="session")
def fuzz_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@pytest.fixture(scope="session")
def relu_onnx(fuzz_dir: Path) -> str:
    path = fuzz_dir / "relu.onnx"
    onnx.save(relu_model(), path)
    return str(path)


@pytest.fixture(scope="session")
def relu_engine(relu_onnx: str) -> dynashape.Engine:
    return dynashape.build(relu_onnx, RELU_PROFILES, backend="onnxruntime")


@pytest.fixture(scope="session")
def pair_engine(fuzz_dir: Path) -> dynashape.Engine:
    path = fuzz_dir / "pair.onnx"
    onnx.save(pair_model(), path)
    return dynashape.build(str(path), dims=PAIR_DIMS, backend="onnxruntime")


@pytest.fixture(scope="session")
def relu_engine_bytes(fuzz_dir: Path, relu_engine: dynashape.Engine) -> bytes:
    path = fuzz_dir / "relu.engine"
    relu_engine.save(path)
    return path.read_bytes()


# -- assertions -------------------------------------------------------------------------------

_TRACE = re.compile(r"Traceback \(most recent call last\)|^\s+File \"", re.M)


def assert_message(text: str) -> None:
    """One line in the 'received | expected | fix' form (at least received | expected)."""
    assert "\n" not in text.strip(), f"more than one line: {text!r}"
    assert " | " in text, f"no 'received | expected' structure: {text!r}"
    assert not _TRACE.search(text), text


def raises_user_error(fn: Callable[[], Any], *kinds: type[DynashapeError]) -> DynashapeError:
    """Call fn; it must raise a DynashapeError (of ``kinds`` when given) with a one-line message."""
    with pytest.raises(DynashapeError) as info:
        fn()
    if kinds:
        assert isinstance(info.value, kinds), f"{type(info.value).__name__}: {info.value}"
    assert_message(str(info.value))
    return info.value


def listing(folder: str | Path) -> dict[str, tuple[int, int]]:
    """name -> (size, mtime_ns) of every entry of a folder, to prove nothing was added or clobbered."""
    out = {}
    for e in os.scandir(folder):
        st = e.stat(follow_symlinks=False)
        out[e.name] = (st.st_size, st.st_mtime_ns)
    return out


@contextmanager
def unchanged(folder: str | Path) -> Iterator[None]:
    before = listing(folder)
    yield
    assert listing(folder) == before, "the folder changed: a partial, temporary or clobbered file"


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main([str(a) for a in argv])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def cli_user_error(argv: list[str], capsys: pytest.CaptureFixture[str], part: str | None = None) -> str:
    """``dynashape argv`` in-process: exit 2, one line on stderr in the three-part form."""
    rc, _out, err = run_cli(argv, capsys)
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith("[dynashape")]
    assert rc == 2, f"exit {rc}, stderr {err!r}"
    assert len(lines) == 1, f"stderr is not one line: {err!r}"
    assert lines[0].startswith("dynashape") and ": error: " in lines[0], lines[0]
    assert_message(lines[0])
    if part is not None:
        assert part in lines[0], f"{part!r} not in {lines[0]!r}"
    return lines[0]


def fuzz_settings(max_examples: int) -> Any:
    """Hypothesis settings for the corpus: a fixed budget, no deadline (2 shared cores), no database."""
    from hypothesis import HealthCheck, settings

    return settings(max_examples=max_examples, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


# -- counting ---------------------------------------------------------------------------------

def _examples(item: pytest.Item) -> int:
    fn = getattr(item, "function", None)
    hyp = getattr(fn, "hypothesis", None)
    if hyp is None:
        return 1
    settings = getattr(fn, "_hypothesis_internal_use_settings", None) or getattr(hyp.inner_test, "_hypothesis_internal_use_settings", None)
    return int(getattr(settings, "max_examples", 100))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    fuzz = [i for i in items if FUZZ_DIR in Path(str(i.path)).parents]
    modules = {Path(str(i.path)).name for i in fuzz}
    config.stash[_COUNT] = (sum(_examples(i) for i in fuzz), modules)


_COUNT = pytest.StashKey[tuple[int, set[str]]]()


def corpus_count(config: pytest.Config) -> tuple[int, set[str]]:
    return config.stash.get(_COUNT, (0, set()))


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    n, modules = corpus_count(config)
    if modules:
        terminalreporter.write_line(f"fuzz corpus: {n} cases in {len(modules)} module(s)")


"""Resource limits, concurrency and saving: bounded numbers, shared engines, atomic engine files."""

from __future__ import annotations

import math
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import dynashape
from dynashape import DynashapeError, Profile
from dynashape._limits import HARD_MAX_THREADS, max_threads

from .conftest import raises_user_error, unchanged

X = np.array([[1.0, -2.0, 3.0]], np.float32)


@pytest.mark.parametrize("threads", [0, -1, 100000, HARD_MAX_THREADS + 1, True, 1.5, "2", float("nan")])
def test_thread_bounds(relu_onnx: str, threads: Any) -> None:
    raises_user_error(lambda: dynashape.build(relu_onnx, {"x": ((1, 3), (1, 3), (1, 3))}, backend="onnxruntime", threads=threads))


def test_thread_bound_accepts_the_bound(relu_onnx: str) -> None:
    e = dynashape.build(relu_onnx, {"x": ((1, 3), (1, 3), (1, 3))}, backend="onnxruntime", threads=min(2, max_threads()))
    np.testing.assert_array_equal(e.run({"x": X})["y"], np.maximum(X, 0))


@pytest.mark.parametrize("shape", [(100000000000, 3), (2**62, 3), (2**63, 3)])
def test_absurd_build_profiles(relu_onnx: str, shape: tuple[int, int]) -> None:
    raises_user_error(lambda: dynashape.build(relu_onnx, Profile({"x": ((1, 3), (1, 3), shape)}), backend="onnxruntime"))


KW = [("iterations", 0), ("iterations", -1), ("iterations", 1.5), ("iterations", True), ("iterations", float("nan")),
      ("warmup_ms", float("nan")), ("warmup_ms", -1.0), ("warmup_ms", float("inf")), ("warmup_ms", "10"),
      ("duration_s", float("nan")), ("duration_s", -0.5), ("duration_s", float("inf")), ("duration_s", None)]


@pytest.mark.parametrize(("key", "value"), KW)
def test_bench_bounds(relu_engine: dynashape.Engine, key: str, value: Any) -> None:
    if value is None:
        pytest.skip("None means the default")
    raises_user_error(lambda: dynashape.bench(relu_engine, {"x": (1, 3)}, **{key: value}))


@pytest.mark.parametrize(("key", "value"), [("atol", -1.0), ("atol", float("nan")), ("atol", float("inf")), ("rtol", -1e-9),
                                            ("rtol", float("nan")), ("rtol", "0.1"), ("atol", True)])
def test_compare_bounds(relu_engine: dynashape.Engine, relu_onnx: str, key: str, value: Any) -> None:
    raises_user_error(lambda: dynashape.compare(relu_engine, relu_onnx, [{"x": (1, 3)}], **{key: value}))


def test_compare_checks_shapes_before_allocating(relu_engine: dynashape.Engine, relu_onnx: str) -> None:
    # 10**12 x 3 floats would be 12 TB: refused by the profile check, before make_inputs.
    raises_user_error(lambda: dynashape.compare(relu_engine, relu_onnx, [{"x": (10**12, 3)}]))
    raises_user_error(lambda: dynashape.compare(relu_engine, relu_onnx, [{"q": (1, 3)}]))


# -- concurrency ---------------------------------------------------------------------------------

def test_threads_run_one_engine_with_good_and_bad_inputs(relu_engine: dynashape.Engine) -> None:
    """Refused calls in some threads leave the others' results right."""
    errors: list[BaseException] = []
    rng = np.random.default_rng(0)
    feeds = [rng.standard_normal((int(b), 3)).astype(np.float32) for b in rng.integers(1, 17, 24)]

    def work(i: int) -> None:
        try:
            for j in range(20):
                x = feeds[(i + j) % len(feeds)]
                if (i + j) % 3 == 0:
                    try:
                        relu_engine.run({"x": x.astype(np.float64)})
                    except DynashapeError:
                        continue
                    raise AssertionError("float64 input accepted")
                np.testing.assert_array_equal(relu_engine.run({"x": x})["y"], np.maximum(x, 0))
        except BaseException as e:  # collected and re-raised in the main thread
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]


def test_threads_save_one_path(relu_engine: dynashape.Engine, tmp_path: Path) -> None:
    """Concurrent saves to one path leave one whole, loadable engine and no temporary file."""
    path = tmp_path / "shared.engine"
    errors: list[BaseException] = []

    def save() -> None:
        try:
            for _ in range(5):
                relu_engine.save(path)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=save) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]
    assert os.listdir(tmp_path) == ["shared.engine"]
    np.testing.assert_array_equal(dynashape.load(path).run({"x": X})["y"], np.maximum(X, 0))


def test_threads_load_and_run_while_saving(relu_engine: dynashape.Engine, tmp_path: Path) -> None:
    path = tmp_path / "e.engine"
    relu_engine.save(path)
    errors: list[BaseException] = []
    stop = threading.Event()

    def saver() -> None:
        while not stop.is_set():
            relu_engine.save(path)

    def loader() -> None:
        try:
            for _ in range(10):
                np.testing.assert_array_equal(dynashape.load(path).run({"x": X})["y"], np.maximum(X, 0))
        except BaseException as e:
            errors.append(e)

    s = threading.Thread(target=saver)
    s.start()
    loaders = [threading.Thread(target=loader) for _ in range(3)]
    for t in loaders:
        t.start()
    for t in loaders:
        t.join()
    stop.set()
    s.join()
    assert not errors, errors[0]


# -- saving ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("where", ["missing folder", "a folder", "under a file"])
def test_save_refused_without_partial_file(relu_engine: dynashape.Engine, tmp_path: Path, where: str) -> None:
    (tmp_path / "afile").write_bytes(b"keep")
    target = {"missing folder": tmp_path / "no" / "x.engine", "a folder": tmp_path,
              "under a file": tmp_path / "afile" / "x.engine"}[where]
    with unchanged(tmp_path):
        raises_user_error(lambda: relu_engine.save(target))
    assert (tmp_path / "afile").read_bytes() == b"keep"


def test_save_over_an_engine_keeps_it_whole(relu_engine: dynashape.Engine, pair_engine: dynashape.Engine, tmp_path: Path) -> None:
    path = tmp_path / "e.engine"
    pair_engine.save(path)
    relu_engine.save(path)
    assert os.listdir(tmp_path) == ["e.engine"]
    assert [s.name for s in dynashape.load(path).inputs] == ["x"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through any permission bit")
def test_save_into_read_only_folder(relu_engine: dynashape.Engine, tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with unchanged(ro):
            raises_user_error(lambda: relu_engine.save(ro / "x.engine"))
    finally:
        ro.chmod(0o700)


def test_thread_count_from_an_edited_manifest_is_bounded(relu_onnx: str, tmp_path: Path) -> None:
    """A manifest may carry a thread count from a bigger machine: it loads with this machine's bound."""
    e = dynashape.build(relu_onnx, {"x": ((1, 3), (1, 3), (1, 3))}, backend="onnxruntime", threads=max_threads())
    path = tmp_path / "t.engine"
    e.save(path)
    loaded = dynashape.load(path)
    np.testing.assert_array_equal(loaded.run({"x": X})["y"], np.maximum(X, 0))
    assert math.isfinite(loaded.manifest.build_settings.threads or 0)

"""The runtime: input checks and their messages, profile choice, torch/numpy in and out, threads."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

import dynashape
from dynashape._errors import DynashapeError, ShapeError


def _x(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random(shape, dtype=np.float32)


def _message(engine: dynashape.Engine, inputs: dict, **kw) -> str:
    with pytest.raises(DynashapeError) as e:
        engine.run(inputs, **kw)
    return str(e.value)


# -- the text of the main errors ---------------------------------------------------------------

def test_shape_outside_every_profile(seg_engine_2: dynashape.Engine) -> None:
    with pytest.raises(ShapeError) as e:
        seg_engine_2.run({"input_1": _x((1, 3, 900, 500))})
    msg = str(e.value)
    assert "input 'input_1' dim 2 (image_height) = 900 is outside every profile" in msg
    assert "profile 0 allows 64..256, profile 1 allows 256..768" in msg
    assert "rebuild with --maxShapes=input_1:1x3x900x768 in profile 1" in msg


def test_shape_below_every_profile(seg_engine_2: dynashape.Engine) -> None:
    msg = _message(seg_engine_2, {"input_1": _x((1, 3, 100, 32))})
    assert "input 'input_1' dim 3 (image_width) = 32 is outside every profile" in msg
    assert "--minShapes=input_1:1x3x64x32" in msg


def test_shapes_that_fit_no_single_profile(seg_engine_2: dynashape.Engine) -> None:
    # height fits only profile 0, width only profile 1.
    msg = _message(seg_engine_2, {"input_1": _x((1, 3, 100, 700))})
    assert "shapes input_1:1x3x100x700 fit no single profile" in msg
    assert "profile 0 rejects input 'input_1' dim 3 (image_width) = 700 (allows 64..256)" in msg
    assert "profile 1 rejects input 'input_1' dim 2 (image_height) = 100 (allows 256..768)" in msg


def test_wrong_input_name_lists_valid_names(seg_engine: dynashape.Engine) -> None:
    msg = _message(seg_engine, {"image": _x((1, 3, 256, 256))})
    assert "unknown input(s) ['image']" in msg and "missing input(s) ['input_1']" in msg
    assert "the engine's inputs: input_1 (float32, (1, 3, image_height, image_width))" in msg


def test_wrong_dtype_names_both(seg_engine: dynashape.Engine) -> None:
    msg = _message(seg_engine, {"input_1": _x((1, 3, 256, 256)).astype(np.float64)})
    assert "input 'input_1' has dtype float64" in msg and "float32, the model's dtype" in msg
    assert "x.astype(np.float32)" in msg
    msg = _message(seg_engine, {"input_1": torch.zeros(1, 3, 256, 256, dtype=torch.float16)})
    assert "has dtype float16" in msg and "x.to(torch.float32)" in msg


def test_wrong_rank(seg_engine: dynashape.Engine) -> None:
    msg = _message(seg_engine, {"input_1": _x((3, 256, 256))})
    assert "input 'input_1' has shape 3x256x256 (rank 3)" in msg
    assert "rank 4: (1, 3, image_height, image_width)" in msg and "x[None]" in msg


def test_static_dim_mismatch(seg_engine: dynashape.Engine) -> None:
    msg = _message(seg_engine, {"input_1": _x((1, 4, 256, 256))})
    assert "input 'input_1' dim 1 = 4 (shape 1x4x256x256)" in msg and "3: the model fixes this dim" in msg


def test_shared_dim_mismatch(bert_engine: dynashape.Engine) -> None:
    ids = np.zeros((2, 16), np.int64)
    msg = _message(bert_engine, {"input_ids": ids, "attention_mask": np.ones((2, 8), np.int64)})
    assert "dim 'seq' differs between inputs: 'input_ids' dim 1 = 16, 'attention_mask' dim 1 = 8" in msg
    msg = _message(bert_engine, {"input_ids": ids, "attention_mask": np.ones((3, 16), np.int64)})
    assert "dim 'batch' differs between inputs" in msg


def test_not_arrays(seg_engine: dynashape.Engine) -> None:
    assert "a dict of input name -> array" in _message(seg_engine, [_x((1, 3, 256, 256))])  # type: ignore[arg-type]
    assert "input 'input_1' is a list" in _message(seg_engine, {"input_1": [[1.0]]})


def test_forced_profile(seg_engine_2: dynashape.Engine) -> None:
    x = _x((1, 3, 256, 256))  # the edge both profiles share
    a = seg_engine_2.run({"input_1": x}, profile=0)["output_1"]
    b = seg_engine_2.run({"input_1": x}, profile=1)["output_1"]
    np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-5)
    msg = _message(seg_engine_2, {"input_1": _x((1, 3, 300, 300))}, profile=0)
    assert "= 300 is outside profile 0, which allows 64..256" in msg and "use profile 1" in msg
    assert "an index from 0 to 1" in _message(seg_engine_2, {"input_1": x}, profile=2)


# -- running ------------------------------------------------------------------------------------

def test_numpy_in_numpy_out_torch_in_torch_out(seg_engine: dynashape.Engine) -> None:
    x = _x((1, 3, 256, 320))
    out_np = seg_engine.run({"input_1": x})["output_1"]
    out_t = seg_engine.run({"input_1": torch.from_numpy(x)})["output_1"]
    assert isinstance(out_np, np.ndarray) and isinstance(out_t, torch.Tensor)
    np.testing.assert_array_equal(out_t.numpy(), out_np)
    np.testing.assert_array_equal(seg_engine(input_1=x)["output_1"], out_np)


def test_non_contiguous_input(seg_engine: dynashape.Engine) -> None:
    x = _x((1, 3, 320, 256))
    t = np.ascontiguousarray(x.transpose(0, 1, 3, 2)).transpose(0, 1, 3, 2)  # same values, other strides
    np.testing.assert_array_equal(seg_engine.run({"input_1": t})["output_1"], seg_engine.run({"input_1": x})["output_1"])


def test_selection_prefers_the_closest_opt(seg_engine_2: dynashape.Engine) -> None:
    assert seg_engine_2.select_profile({"input_1": (1, 3, 128, 128)}) == 0
    # 256 is in both: |log(257/129)| = 0.689 < |log(513/257)| = 0.691, so profile 0 by a hair.
    assert seg_engine_2.select_profile({"input_1": (1, 3, 256, 256)}) == 0
    assert seg_engine_2.select_profile({"input_1": (1, 3, 256, 257)}) == 1
    assert seg_engine_2.select_profile({"input_1": (1, 3, 200, 256)}) == 0
    assert seg_engine_2.select_profile({"input_1": (1, 3, 600, 300)}) == 1


# -- threads ------------------------------------------------------------------------------------

def _threads_match_one_thread(engine: dynashape.Engine, name: str, shapes: list[tuple[int, ...]], out: str) -> None:
    inputs = [_x(s, seed=i) for i, s in enumerate(shapes)]
    expected = [engine.run({name: x})[out] for x in inputs]  # one thread
    n_threads = 8
    results: list[list[np.ndarray | None]] = [[None] * len(inputs) for _ in range(n_threads)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(n_threads)

    def work(t: int) -> None:
        try:
            barrier.wait()
            # Each thread walks the shapes in its own order, so different shapes run at once.
            order = list(range(len(inputs)))[t % len(inputs):] + list(range(len(inputs)))[: t % len(inputs)]
            for _ in range(2):
                for i in order:
                    results[t][i] = engine.run({name: inputs[i]})[out]
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(n_threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=300)
    assert not errors, errors
    for t in range(n_threads):
        for i, e in enumerate(expected):
            # NOTE: the same inputs through the same kernels give the same bits; a race would give
            # another shape or garbage, far beyond this tolerance.
            np.testing.assert_allclose(results[t][i], e, atol=1e-6, rtol=1e-6, err_msg=f"thread {t}, shape {shapes[i]}")


def test_eight_threads_onnxruntime(seg_engine_2: dynashape.Engine) -> None:
    shapes = [(1, 3, 64, 64), (1, 3, 256, 256), (1, 3, 300, 500), (1, 3, 100, 77), (1, 3, 512, 384), (1, 3, 129, 255)]
    _threads_match_one_thread(seg_engine_2, "input_1", shapes, "output_1")


@pytest.mark.slow
def test_eight_threads_inductor(sr_engine: dynashape.Engine) -> None:
    shapes = [(1, 1, 32, 32), (4, 1, 64, 64), (2, 1, 40, 50), (3, 1, 48, 48), (1, 1, 64, 33), (4, 1, 32, 64)]
    _threads_match_one_thread(sr_engine, "input", shapes, "output")

"""The gauntlet's steps, shared by the CPU tests and the GPU script (benchmarks/gauntlet_gpu.py).

Each step takes a :class:`models.Case` and returns what the next step needs; a step that fails
raises, and the caller records the error. ``parity`` runs an engine at min, a non-round middle
shape and max against eager PyTorch (in the engine's precision, on its device).
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

import numpy as np
import torch
from models import Case, profile_of

import dynashape

EXPORTERS = ("torchscript", "dynamo")
# NOTE: fp32 engines differ from eager by float reordering only (1e-6 relative on these tiny
# models); 1e-3 leaves room for the attention softmax and layer norms. fp16 on CUDA keeps 10 bits
# of mantissa: 1e-2 relative, as torch.testing uses for float16.
TOL = {"fp32": (1e-3, 1e-3), "fp16": (2e-2, 2e-2), "bf16": (5e-2, 5e-2)}


def quiet() -> None:
    for name in ("torch.onnx", "torch._dynamo", "torch._inductor", "torch.export", "transformers"):
        logging.getLogger(name).setLevel(logging.ERROR)


def export(case: Case, model: torch.nn.Module, exporter: str, out_dir: str) -> str:
    path = os.path.join(out_dir, f"{case.name}_{exporter}.onnx")
    dynashape.export(model, case.example("opt"), path, dynamic_axes=case.dynamic_axes, profile=profile_of(case),
                     dynamo=exporter == "dynamo")
    return path


def check(path: str, case: Case, *, with_profile: bool) -> list[str]:
    """The findings of ``dynashape.check`` as one line each (empty: no false alarm)."""
    report = dynashape.check(path, profile_of(case) if with_profile else None)
    return [f"{f.op} '{f.node}' {f.symbol}={f.value}" for f in report.findings]


def build(case: Case, source: Any, backend: str, *, device: str = "cpu", precision: str = "fp32") -> dynashape.Engine:
    kwargs: dict[str, Any] = {}
    if isinstance(source, torch.nn.Module):
        kwargs = {"example_inputs": case.example("opt"), "dynamic_axes": case.dynamic_axes}
    return dynashape.build(source, profile_of(case), backend=backend, device=device, precision=precision, **kwargs)


def parity(case: Case, model: torch.nn.Module, engine: dynashape.Engine, *, device: str = "cpu",
           precision: str = "fp32") -> float:
    """Run the engine at min, mid and max against eager; returns the largest error relative to the tolerance.

    In fp32 the engine must match eager within ``TOL``. In a reduced precision the question is whether
    the engine is as accurate as eager in that precision: it passes within ``TOL`` of eager in the same
    precision, or, where the two round differently (an engine built from an ONNX file computes a norm in
    fp16 where the module upcasts it to fp32), when its largest error against eager fp32 on the same
    device is at most twice eager's own plus ``atol``.
    """
    rtol, atol = TOL[precision]
    dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]
    ref_model = model if (device == "cpu" and precision == "fp32") else _cast(model, device, dtype)
    fp32_model = None if precision == "fp32" else _cast(model, device, torch.float32)
    worst = 0.0
    for which in ("min", "mid", "max"):
        feeds = case.example(which, seed=3)
        with torch.no_grad():
            ref_in = {k: (v.to(device).to(dtype) if v.is_floating_point() else v.to(device)) for k, v in feeds.items()}
            ref = ref_model(**ref_in)
        refs = [ref] if isinstance(ref, torch.Tensor) else list(ref)
        got = engine.run({k: v.numpy() for k, v in feeds.items()})
        outs = list(got.values())
        if len(outs) != len(refs):
            raise AssertionError(f"{len(outs)} outputs, eager gives {len(refs)}")
        refs32: list[Any] = [None] * len(refs)
        for i, (o, r) in enumerate(zip(outs, refs, strict=True)):
            r = r.float().cpu().numpy()
            o = np.asarray(o, dtype=np.float32)
            if o.shape != r.shape:
                raise AssertionError(f"at {which} {dict(case.at(which))}: output shape {o.shape}, eager {r.shape}")
            err = float(np.max(np.abs(o - r) / (atol + rtol * np.abs(r)))) if o.size else 0.0
            if (not np.isfinite(err) or err > 1) and fp32_model is not None:
                if refs32[0] is None:
                    with torch.no_grad():
                        r32 = fp32_model(**{k: v.to(device) for k, v in feeds.items()})
                    refs32 = [r32] if isinstance(r32, torch.Tensor) else list(r32)
                r32 = refs32[i].float().cpu().numpy()
                engine_err, eager_err = float(np.max(np.abs(o - r32))), float(np.max(np.abs(r - r32)))
                if np.isfinite(engine_err) and engine_err <= 2 * eager_err + atol:
                    print(f"parity {case.name} at {which}: {np.max(np.abs(o - r)):.3g} from eager {precision}, but as accurate "
                          f"against eager fp32 ({engine_err:.3g} vs eager {precision}'s {eager_err:.3g})", flush=True)
                    continue
                raise AssertionError(f"at {which} {dict(case.at(which))}: max abs diff {np.max(np.abs(o - r)):.3g} "
                                     f"beyond rtol={rtol}, atol={atol}; against eager fp32 {engine_err:.3g}, "
                                     f"where eager {precision} is {eager_err:.3g} from it")
            if not np.isfinite(err) or err > 1:
                raise AssertionError(f"at {which} {dict(case.at(which))}: max abs diff {np.max(np.abs(o - r)):.3g} "
                                     f"beyond rtol={rtol}, atol={atol}")
            worst = max(worst, err)
    return worst


def _cast(model: torch.nn.Module, device: str, dtype: torch.dtype) -> torch.nn.Module:
    import copy

    return copy.deepcopy(model).to(device).to(dtype)


def save_load(engine: dynashape.Engine, case: Case, out_dir: str, tag: str) -> dynashape.Engine:
    path = os.path.join(out_dir, f"{case.name}_{tag}.engine")
    engine.save(path)
    loaded = dynashape.load(path)
    feeds = {k: v.numpy() for k, v in case.example("mid", seed=4).items()}
    a, b = engine.run(feeds), loaded.run(feeds)
    for k in a:
        np.testing.assert_array_equal(np.asarray(a[k]), np.asarray(b[k]), err_msg=f"output {k} after save/load")
    return loaded


def out_of_range(engine: dynashape.Engine, case: Case) -> str:
    """Run one past the max of the first dynamic dim: the engine must refuse with a ShapeError."""
    dim = next(d for axes in case.dynamic_axes.values() for d in axes.values())
    values = case.at("max")
    values[dim] += 1
    torch.manual_seed(0)
    feeds = {k: v.numpy() for k, v in case.inputs(values).items()}
    try:
        engine.run(feeds)
    except dynashape.ShapeError as e:
        return str(e)
    raise AssertionError(f"{dim}={values[dim]} above the profile's max ran without a ShapeError")


class Timer:
    def __init__(self) -> None:
        self.t0 = time.perf_counter()

    @property
    def s(self) -> float:
        return time.perf_counter() - self.t0

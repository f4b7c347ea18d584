"""The dynashape demo: the whole dynamic-shape workflow on the CPU, on the seed's example.

1. The segmentation net (input_1 -> output_1) exported with dynamic image_height/image_width,
   verified in ONNX Runtime, checked by the dynamism doctor, built with the profile
   1x3x512x512 / 1x3x1024x1024 / 1x3x1600x1600 and a Sigmoid appended to output_1, saved, loaded
   and run at several image sizes, non-square ones included.
2. PyTorch's super-resolution tutorial net with a dynamic batch: two profiles, built on both
   backends (ONNX Runtime from the ONNX file, AOTInductor straight from the module).

Run: python examples/demo.py [--out DIR] [--skip-inductor]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
import torch

import dynashape
from dynashape import Profile, ShapeRange, zoo


def _ms(fn, repeat: int = 3) -> float:
    fn()
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, (time.perf_counter() - t) * 1000)
    return best


def _table(engine: dynashape.Engine, reference: torch.nn.Module, name: str, shapes: list[tuple[int, ...]], post=None) -> None:
    print(f"  {'input shape':<18} {'profile':>7} {'latency ms':>11} {'eager ms':>9} {'max |engine - torch|':>22}")
    for shape in shapes:
        x = np.random.default_rng(0).random(shape, dtype=np.float32)
        out = engine.run({name: x})
        y = next(iter(out.values()))
        with torch.no_grad():
            ref = reference(torch.from_numpy(x))
            ref = (post(ref) if post else ref).numpy()
        eager = _ms(lambda x=x: reference(torch.from_numpy(x)))
        lat = _ms(lambda x=x: engine.run({name: x}))
        k = engine.select_profile({name: shape})
        print(f"  {'x'.join(map(str, shape)):<18} {k:>7} {lat:>11.1f} {eager:>9.1f} {float(np.abs(y - ref).max()):>22.2e}")


def segmentation(out: str) -> None:
    print("== 1. segmentation net, dynamic image_height x image_width ==")
    z = zoo.get("segmentation")
    model = z.make()
    onnx_path = os.path.join(out, "segmentation.onnx")
    profile = Profile({"input_1": ShapeRange((1, 3, 512, 512), (1, 3, 1024, 1024), (1, 3, 1600, 1600))})
    result = dynashape.export(model, z.example_inputs(), onnx_path, dynamic_axes=z.dynamic_axes,
                              output_names=["output_1"], profile=profile)
    print(result)
    report = dynashape.check(onnx_path)
    print(f"dynashape check: {len(report.findings)} finding(s)")
    engine = dynashape.build(onnx_path, profile, append_ops=["output_1:Sigmoid"])
    path = os.path.join(out, "segmentation.engine")
    engine.save(path)
    engine = dynashape.load(path)
    print(f"built and reloaded {path}: {engine}")
    _table(engine, model, "input_1", [(1, 3, 512, 512), (1, 3, 777, 1001), (1, 3, 1024, 1024), (1, 3, 600, 1600), (1, 3, 1600, 1600)], post=torch.sigmoid)
    try:
        engine.run({"input_1": np.zeros((1, 3, 1700, 900), np.float32)})
    except dynashape.ShapeError as e:
        print(f"  1x3x1700x900 -> ShapeError: {e}")


def superres(out: str, inductor: bool) -> None:
    print("\n== 2. super-resolution net (PyTorch ONNX tutorial), dynamic batch, two profiles ==")
    z = zoo.get("superres")
    model = z.make()
    onnx_path = os.path.join(out, "superres.onnx")
    dynashape.export(model, z.example_inputs(batch=2, height=224, width=224), onnx_path, dynamic_axes=z.dynamic_axes, output_names=["output"])
    profiles = [
        Profile({"input": ShapeRange((1, 1, 224, 224), (1, 1, 224, 224), (4, 1, 224, 224))}),
        Profile({"input": ShapeRange((4, 1, 224, 224), (8, 1, 224, 224), (16, 1, 224, 224))}),
    ]
    shapes = [(1, 1, 224, 224), (3, 1, 224, 224), (4, 1, 224, 224), (8, 1, 224, 224), (13, 1, 224, 224)]
    t = time.perf_counter()
    engine = dynashape.build(onnx_path, profiles, backend="onnxruntime")
    print(f"onnxruntime engine from {onnx_path}: built in {time.perf_counter() - t:.1f} s")
    _table(engine, model, "input", shapes)
    if inductor:
        t = time.perf_counter()
        engine = dynashape.build(model, profiles, backend="inductor", example_inputs={"input": torch.rand(2, 1, 224, 224)},
                                 dynamic_axes={"input": {0: "batch"}})
        print(f"inductor engine straight from the module (AOTInductor, one package per profile): built in {time.perf_counter() - t:.1f} s")
        _table(engine, model, "input", shapes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="folder for the ONNX and engine files (default: a temporary folder)")
    parser.add_argument("--skip-inductor", action="store_true", help="skip the AOTInductor build (about 30-60 s here)")
    args = parser.parse_args()
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or tmp
        os.makedirs(out, exist_ok=True)
        segmentation(out)
        superres(out, not args.skip_inductor)


if __name__ == "__main__":
    main()

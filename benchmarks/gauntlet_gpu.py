"""The gauntlet on a GPU: every model of tests/gauntlet in fp16 on CUDA, plus torchvision's
fcn_resnet50, deeplabv3_resnet50, resnet50 and efficientnet_b0 with dynamic H and W.

Per model: export (TorchScript and dynamo), check (without and with the profile), an ONNX Runtime
engine (CPU, fp32: the GPU machine has no onnxruntime-gpu), and inductor engines on CUDA in fp16
from the module and from each exporter's file; each engine runs at min, a non-round middle shape and
max against eager fp16 on CUDA, is saved and loaded, and must refuse a shape above its max.
Writes a markdown table (model x step: ok / error, build seconds) to the given path, and the errors
below it.

    CXX=/usr/bin/g++ CC=/usr/bin/gcc PYTHONPATH=src python benchmarks/gauntlet_gpu.py \\
        benchmarks/results/gauntlet_gpu.md [--only bert,swin] [--skip-torchvision]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import traceback
import warnings
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "gauntlet"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch
from _common import calibrate_batchnorm
from models import CASES, Case, _image, _seeded
from pipeline import EXPORTERS, build, check, export, out_of_range, parity, quiet, save_load

STEPS = ["export:torchscript", "export:dynamo", "check", "check+profile", "onnxruntime",
         "inductor:module", "inductor:torchscript", "inductor:dynamo"]


def _torchvision_cases() -> list[Case]:
    import torchvision

    def seg(make: Any) -> Any:
        class Out(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.model = make(weights=None, weights_backbone=None, num_classes=21, aux_loss=False)

            def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
                return self.model(pixel_values)["out"]

        return Out

    def cls(make: Any) -> Any:
        class Out(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                # NOTE: BatchNorm statistics from data: with torchvision's initialization EfficientNet-B0's
                # logits are 0 in fp16 and validation would compare zeros (see _common.calibrate_batchnorm)
                self.model = calibrate_batchnorm(make(weights=None), (4, 3, 224, 224))

            def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
                return self.model(pixel_values)

        return Out

    axes = {"pixel_values": {0: "batch", 2: "height", 3: "width"}}
    hw = {"batch": (1, 2, 4), "height": (256, 512, 1024), "width": (256, 512, 1024)}
    mid = {"batch": 3, "height": 377, "width": 771}
    m = torchvision.models
    return [
        Case("tv_fcn_resnet50", _seeded(seg(m.segmentation.fcn_resnet50)), _image(), axes, hw, mid, kind="image"),
        Case("tv_deeplabv3_resnet50", _seeded(seg(m.segmentation.deeplabv3_resnet50)), _image(), axes, hw, mid, kind="image"),
        Case("tv_resnet50", _seeded(cls(m.resnet50)), _image(), axes, hw, mid, kind="image"),
        Case("tv_efficientnet_b0", _seeded(cls(m.efficientnet_b0)), _image(), axes, hw, mid, kind="image"),
    ]


def _short(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text[:600]}"


def run_case(case: Case, out_dir: str, precision: str, on_step: Any = None,
             steps: set[str] | None = None) -> tuple[dict[str, str], dict[str, str]]:
    """Every step of one model (or those in ``steps``, with the exports they need); ``on_step(cells,
    errors)`` after each, so a run cut off keeps what it did."""
    cells: dict[str, str] = {}
    errors: dict[str, str] = {}
    wanted = set(STEPS) if steps is None else set(steps)
    # an export runs when asked for or when a step from its file is: check and onnxruntime read the
    # TorchScript file (the dynamo file when there is none)
    needs = {f"export:{ex}" for ex in EXPORTERS if f"export:{ex}" in wanted or f"inductor:{ex}" in wanted}
    if wanted & {"check", "check+profile", "onnxruntime"}:
        needs.add("export:torchscript")

    def step(name: str, fn: Any) -> Any:
        if name not in wanted and name not in needs:
            return None
        t0 = time.perf_counter()
        try:
            out = fn()
            cells[name] = f"ok {time.perf_counter() - t0:.0f}s"
            return out
        except Exception as e:  # every failure is recorded, the gauntlet goes on
            cells[name] = "error"
            errors[name] = _short(e)
            traceback.print_exc()
            return None
        finally:
            torch.cuda.empty_cache()
            if on_step is not None:
                on_step(cells, errors)

    print(f"== {case.name}", flush=True)
    model = case.make()
    files = {ex: step(f"export:{ex}", lambda ex=ex: export(case, model, ex, out_dir)) for ex in EXPORTERS}
    ts = files.get("torchscript") or files.get("dynamo")
    if ts:
        def no_alarm(with_profile: bool) -> None:
            found = check(ts, case, with_profile=with_profile)
            if found:
                raise AssertionError(f"false alarm: {found}")

        step("check", lambda: no_alarm(False))
        step("check+profile", lambda: no_alarm(True))

        def ort() -> None:
            engine = build(case, ts, "onnxruntime")
            parity(case, model, engine)
            save_load(engine, case, out_dir, "ort")
            out_of_range(engine, case)

        step("onnxruntime", ort)
    for source in ("module", *EXPORTERS):
        if f"inductor:{source}" not in wanted:
            continue
        src = model if source == "module" else files.get(source)
        if src is None:
            cells[f"inductor:{source}"] = "no file"
            continue

        def ind(src: Any = src, source: str = source) -> None:
            engine = build(case, src, "inductor", device="cuda", precision=precision)
            parity(case, model, engine, device="cuda", precision=precision)
            save_load(engine, case, out_dir, f"ind_{source}")
            out_of_range(engine, case)

        step(f"inductor:{source}", ind)
    return cells, errors


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("output", help="markdown file to write")
    p.add_argument("--only", help="comma-separated model names")
    p.add_argument("--skip-torchvision", action="store_true")
    p.add_argument("--precision", default="fp16", choices=["fp32", "fp16", "bf16"])
    p.add_argument("--steps", help="comma-separated steps to run (default all): " + ", ".join(STEPS)
                   + "; the exports a step needs run too (a heavy model can be spread over several shards)")
    a = p.parse_args()
    steps = None if not a.steps else set(a.steps.split(","))
    if steps is not None and steps - set(STEPS):
        p.error(f"unknown steps {sorted(steps - set(STEPS))}; expected some of: {', '.join(STEPS)}")
    if not torch.cuda.is_available():
        print("no CUDA device", file=sys.stderr)
        return 2
    warnings.filterwarnings("ignore")
    quiet()
    cases = list(CASES) + ([] if a.skip_torchvision else _torchvision_cases())
    if a.only:
        keep = set(a.only.split(","))
        cases = [c for c in cases if c.name in keep]
    rows, errs = [], []
    with tempfile.TemporaryDirectory(prefix="gauntlet-gpu-") as tmp:
        for case in cases:
            def partial(cells: dict[str, str], errors: dict[str, str], name: str = case.name,
                        errs: list[tuple[str, str, str]] = errs) -> None:
                _write(a.output, [*rows, (name, {**cells, "_partial": "1"})], errs + [(name, s, e) for s, e in errors.items()], a.precision)

            cells, errors = run_case(case, tmp, a.precision, partial, steps)
            rows.append((case.name, cells))
            errs += [(case.name, s, e) for s, e in errors.items()]
            _write(a.output, rows, errs, a.precision)
    print(open(a.output).read())
    return 0


def _write(path: str, rows: list[tuple[str, dict[str, str]]], errs: list[tuple[str, str, str]], precision: str) -> None:
    lines = [f"# Gauntlet on {torch.cuda.get_device_name()} ({precision}, torch {torch.__version__})", "",
             "| model | " + " | ".join(STEPS) + " |", "|---" * (len(STEPS) + 1) + "|"]
    # "-": not reached (the run was cut off during this model, marked "(cut off)")
    lines += [f"| {name}{' (cut off)' if cells.get('_partial') else ''} | " + " | ".join(cells.get(s, "-") for s in STEPS) + " |"
              for name, cells in rows]
    lines += ["", "## Errors", ""] + [f"- **{m}** `{s}`: {e}" for m, s, e in errs]
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, path)


if __name__ == "__main__":
    sys.exit(main())

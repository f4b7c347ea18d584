"""Helpers shared by the benchmark scripts: machine facts, atomic writes, statistics, markdown tables.

The scripts run as ``python benchmarks/<name>.py`` (this folder is then on ``sys.path``); nothing
here is part of the dynashape package.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import statistics
from collections.abc import Iterable, Sequence
from typing import Any


def today() -> str:
    return _dt.date.today().isoformat()


def now() -> str:
    return _dt.datetime.now().astimezone().isoformat(timespec="seconds")


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_average() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def version_of(name: str) -> str | None:
    try:
        from importlib.metadata import version

        return version(name)
    except Exception:  # a missing or odd distribution is "not installed"
        return None


def machine_info() -> dict[str, Any]:
    """What the numbers depend on: CPU, cores, library versions, date and the load when measured."""
    info: dict[str, Any] = {
        "date": now(),
        "cpu_model": cpu_model(),
        "logical_cores": os.cpu_count(),
        "affinity_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_1_5_15min_at_start": load_average(),
    }
    for lib in ("dynashape", "torch", "onnxruntime", "onnx", "onnxscript", "numpy", "torchvision", "transformers"):
        info[lib] = version_of(lib)
    try:
        import torch

        info["torch_threads"] = torch.get_num_threads()
        info["torch_cuda"] = torch.version.cuda
        if torch.cuda.is_available():
            p = torch.cuda.get_device_properties(0)
            info["gpu"] = p.name
            info["gpu_memory_gib"] = round(p.total_memory / 2**30, 1)
            info["gpu_sm_count"] = p.multi_processor_count
            info["cuda_driver"] = _driver_version()
    except ImportError:
        pass
    return info


def _driver_version() -> str | None:
    import subprocess

    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20)
        return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else None
    except (OSError, subprocess.SubprocessError):
        return None


def write_atomic(path: str, text: str) -> None:
    """Write ``text`` to ``path`` with dynashape's atomic writer, creating the results folder."""
    from dynashape._io import write_atomic as _write

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    _write(path, text, what="results file")


def write_json(path: str, data: Any) -> None:
    write_atomic(path, json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def summarize(samples_ms: Sequence[float]) -> dict[str, Any]:
    """Median and spread of latencies in ms. ``spread`` = (p90 - p10) / median, a noise flag."""
    s = sorted(samples_ms)
    n = len(s)

    def q(p: float) -> float:
        if n == 1:
            return s[0]
        x = p * (n - 1)
        lo = int(x)
        hi = min(lo + 1, n - 1)
        return s[lo] + (s[hi] - s[lo]) * (x - lo)

    med = statistics.median(s)
    return {"median_ms": med, "min_ms": s[0], "p10_ms": q(0.1), "p90_ms": q(0.9), "max_ms": s[-1],
            "mean_ms": statistics.fmean(s), "n": n, "spread": (q(0.9) - q(0.1)) / med if med > 0 else 0.0}


def geomean(xs: Iterable[float]) -> float | None:
    import math

    v = [x for x in xs if x and x > 0]
    return math.exp(sum(math.log(x) for x in v) / len(v)) if v else None


def md_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    def cell(x: Any) -> str:
        if x is None:
            return "—"
        if isinstance(x, float):
            return f"{x:.3g}" if abs(x) < 10 else f"{x:.1f}"
        return str(x)

    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def fmt_ms(x: float | None) -> str:
    if x is None:
        return "—"
    return f"{x:.3f}" if x < 1 else (f"{x:.2f}" if x < 100 else f"{x:.1f}")


def shape_text(shape: Sequence[int]) -> str:
    return "x".join(str(int(d)) for d in shape)


def build_in_child(argv: Sequence[str], env: dict[str, str], path: str, timeout: float) -> dict[str, Any]:
    """Run a probe's build child (``python <script> ... --child ...``), which saves an engine at ``path``
    and prints one JSON line; that line as a dict with ``path`` added, or ``{"error": <its output's tail>}``."""
    import subprocess
    import sys

    p = subprocess.run([sys.executable, *argv], capture_output=True, text=True, env=env, timeout=timeout)
    lines = [x for x in p.stdout.splitlines() if x.startswith("{")]
    if p.returncode != 0 or not lines:
        return {"error": (p.stderr or p.stdout)[-2000:]}
    return {**json.loads(lines[-1]), "path": path}


def calibrate_batchnorm(model: Any, shape: Sequence[int], *, seed: int = 0) -> Any:
    """Set every BatchNorm's running statistics from one batch of seeded random input (in place; eval mode after).

    NOTE: torchvision's initialization with random weights leaves BatchNorm at mean 0, variance 1, and the
    activations of deep nets shrink layer after layer: EfficientNet-B0's logits come out near 1e-14 and
    MobileNetV3-L's near 4e-10 in fp32 (seen on the CPU with torchvision 0.28), which is 0 in fp16. Every
    engine then matched eager fp16 exactly (the tax benchmark's runs 2, 3 and 6) and the comparison checked
    nothing. Statistics taken from data bring the logits to 0.05-0.4, so a wrong engine shows. The kernels
    and their timing do not depend on these values.
    """
    import torch

    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return model
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average: one batch sets the statistics exactly
    g = torch.Generator().manual_seed(seed)
    model.train()
    with torch.no_grad():
        model(torch.rand(tuple(shape), generator=g))
    # NOTE: with every BatchNorm at unit variance, a random ResNet's residual branches add as much as
    # the stream carries, block after block, and the net amplifies rounding: FCN-ResNet50's fp16 output
    # was 0.387 from fp64 at a largest value of 1.6 (CPU, 256x256, 2026-12-01), so fp16 engines and
    # eager fp16 disagreed by 8% and validation refused even the static engine. Trained ResNets have
    # small gammas on a branch's last BatchNorm; scaled by 0.2 here: fp16 0.001 from fp64 at 0.96.
    for m in model.modules():
        last = {"Bottleneck": "bn3", "BasicBlock": "bn2"}.get(type(m).__name__)
        bn = getattr(m, last, None) if last else None
        if isinstance(bn, torch.nn.modules.batchnorm._BatchNorm) and bn.affine:
            with torch.no_grad():
                bn.weight.mul_(0.2)
                bn.bias.mul_(0.2)
    return model.eval()

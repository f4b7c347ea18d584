"""Build time of a dynamic engine against one static engine, with the packages compiled one by one
and side by side (``jobs``, ``dynashape._backend.aoti_jobs``).

Each build runs alone, in a fresh process with a fresh (cold) Inductor cache, with validation on (a
user's build); the models and profiles are ``dynamic_tax_gpu.py``'s. The static engine is built at
the profile's opt shape. The issue's target: a dynamic build within 2x one static build per profile.

Usage: python benchmarks/build_time_gpu.py --models deeplabv3_resnet50,fcn_resnet50 [--out DIR]
Writes build_time_<gpu>_<date>.json and .md under --out ($OUT, else benchmarks/results).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from dynamic_tax_gpu import configs, make_model  # noqa: E402

_PROGRESS = re.compile(r"\[dynashape\s+([\d.]+)s\] (.*)")


def child(key: str, kind: str, jobs: str) -> None:
    """One build; prints one JSON line."""
    import torch

    import dynashape
    from dynashape import Profile

    cfg = next(c for c in configs() if c.key == key)
    model = make_model(cfg.make)
    device = os.environ.get("BUILD_DEVICE", "cuda")
    if kind == "static":
        shape = cfg.profile[1]
        prof, axes = Profile({cfg.input_name: (shape, shape, shape)}), None
    else:
        prof, axes = Profile({cfg.input_name: cfg.profile}), {cfg.input_name: cfg.axes}
    t = time.perf_counter()
    e = dynashape.build(model, prof, backend="inductor", device=device, precision="fp16" if device == "cuda" else "fp32",
                        example_inputs={cfg.input_name: torch.rand(cfg.profile[1])}, dynamic_axes=axes, quiet=False,
                        jobs="auto" if jobs == "auto" else int(jobs))
    seconds = time.perf_counter() - t
    bd = e.manifest.backend_data
    print(json.dumps({"build_s": round(seconds, 2), "packages": sum(bd.get("profile_parts") or [1]),
                      "compile_jobs": bd.get("compile_jobs", 1), "profile_build_seconds": bd.get("profile_build_seconds"),
                      "parts": [p.describe() for p in e.manifest.parts]}))


def one(key: str, kind: str, jobs: str, timeout: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="build-time-cache-") as cache:
        env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": cache}
        t = time.perf_counter()
        try:
            p = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", key, kind, jobs],
                               capture_output=True, text=True, timeout=timeout, env=env)
        except subprocess.TimeoutExpired:
            return {"skipped": f"cut off after {timeout:.0f} s"}
        wall = round(time.perf_counter() - t, 2)
    if p.returncode != 0:
        tail = (p.stderr or p.stdout).strip().splitlines()
        return {"error": tail[-1][:400] if tail else f"rc {p.returncode}"}
    info = json.loads([x for x in p.stdout.strip().splitlines() if x.startswith("{")][-1])
    info["process_wall_s"] = wall  # with the child's imports and model construction
    # the progress lines, with their seconds since the start of the build: where the time went
    info["stages"] = [[float(m.group(1)), m.group(2)[:160]] for m in map(_PROGRESS.match, p.stderr.splitlines()) if m]
    info["warnings"] = [x[:400] for x in p.stderr.splitlines() if "warning" in x.lower() or "failed" in x][-10:]
    return info


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--child", nargs=3, metavar=("MODEL", "KIND", "JOBS"), help=argparse.SUPPRESS)
    ap.add_argument("--models", default="deeplabv3_resnet50", help="comma list of dynamic_tax_gpu.py model keys")
    ap.add_argument("--jobs", default="1,auto", help="comma list of jobs values for the dynamic build (default 1,auto)")
    ap.add_argument("--budget-s", type=float, default=540.0, help="the whole script's time: a build that would run past it is cut off, "
                    "and none starts with less than 30 s left (give static + dynamic builds of every model room)")
    ap.add_argument("--out", default=os.environ.get("OUT") or os.path.join(HERE, "results"))
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return 0
    import torch

    start = time.time()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    data: dict[str, Any] = {"machine": {"gpu": gpu, "cpus": os.cpu_count(), "torch": torch.__version__},
                            "date": time.strftime("%Y-%m-%d"), "models": {}}
    for key in args.models.split(","):
        res: dict[str, Any] = {}
        for kind, jobs in [("static", "1"), *[("dynamic", j) for j in args.jobs.split(",")]]:
            left = args.budget_s - (time.time() - start)
            if left < 30:
                res[f"{kind} jobs={jobs}"] = {"skipped": "time budget"}
                continue
            print(f"[build] {key} {kind} jobs={jobs} ...", flush=True)
            res[f"{kind} jobs={jobs}"] = info = one(key, kind, jobs, left)
            print(f"[build] {key} {kind} jobs={jobs}: {json.dumps({k: v for k, v in info.items() if k != 'stages'})}", flush=True)
        data["models"][key] = res
    os.makedirs(args.out, exist_ok=True)
    tag = re.sub(r"[^a-z0-9]+", "", gpu.lower().replace("nvidia", ""))[:10] or "cpu"
    base = os.path.join(args.out, f"build_time_{tag}_{data['date']}")
    with open(base + ".json", "w") as f:
        json.dump(data, f, indent=1)
    lines = [f"# Build time, {gpu}, {os.cpu_count()} CPUs, torch {torch.__version__}, {data['date']}", "",
             "| model | engine | packages | compile jobs | build s | / static |", "|---|---|---|---|---|---|"]
    for key, res in data["models"].items():
        static = res.get("static jobs=1", {}).get("build_s")
        for name, info in res.items():
            if "build_s" not in info:
                lines.append(f"| {key} | {name} | | | {info} | |")
                continue
            ratio = f"{info['build_s'] / static:.2f}" if static else ""
            lines.append(f"| {key} | {name} | {info['packages']} | {info['compile_jobs']} | {info['build_s']} | {ratio} |")
    with open(base + ".md", "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())

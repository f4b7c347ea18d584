"""CPU benchmark of the demo networks: eager PyTorch, the onnxruntime engine and the inductor engine.

Issue 2, performance: on the CPU, for the demo networks at 3 or more shapes, eager PyTorch, the
onnxruntime engine and the inductor engine, with the per-call overhead of dynashape's runtime over a
bare backend call (target: under 50 us).

What it does, all in one process:
  1. builds both engines per demo network (zoo ``segmentation``: input_1 1x3xHxW, profile
     512..1600 opt 1024; zoo ``superres``: input Bx1x224x224, profile batch 1..8 opt 4), fp32;
  2. checks each engine against eager PyTorch at every measured shape (max |diff|);
  3. times the three methods at each shape in interleaved rounds (one call of each method a
     round, so machine noise from other jobs falls on all three alike) after a warm-up, and reports
     the median and the p10-p90 spread;
  4. measures dynashape's runtime overhead with ``dynashape._bench.runtime_overhead`` on a tiny
     input (the segmentation net at 1x3x32x32, from its own 16..64 profile) on both backends.

Each method gets its own native input: eager and the inductor engine torch tensors, the onnxruntime
engine numpy arrays (what each user would pass). Results: JSON at --out (default
benchmarks/results/cpu_<date>.json, written atomically) and a markdown table on stdout (and next to
the JSON as .md).

Run:  PYTHONPATH=src python benchmarks/cpu_bench.py            (about 3-5 minutes on 2 cores)
      PYTHONPATH=src python benchmarks/cpu_bench.py --quick    (a smoke test, under a minute or two)
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from typing import Any

# NOTE: a fresh Inductor cache per run (unless --warm-cache) makes the reported build times those of
# a cold build, which is what a user sees the first time; it must be set before torch is imported.
_COLD = "--warm-cache" not in sys.argv
if _COLD:
    import atexit
    import shutil

    _cache = tempfile.mkdtemp(prefix="dynashape-bench-cache-")
    atexit.register(shutil.rmtree, _cache, ignore_errors=True)
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = _cache
    os.environ["DYNASHAPE_CACHE_DIR"] = _cache

import numpy as np  # noqa: E402
import torch  # noqa: E402

import dynashape  # noqa: E402
from dynashape import Profile, ShapeRange, zoo  # noqa: E402
from dynashape._bench.timing import runtime_overhead  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import (  # noqa: E402
    fmt_ms,
    load_average,
    machine_info,
    md_table,
    shape_text,
    summarize,
    today,
    write_atomic,
    write_json,
)

METHODS = ("eager", "onnxruntime", "inductor")

# name -> (input name, profile (min, opt, max) shapes, measured shapes)
CASES: dict[str, tuple[str, tuple[tuple[int, ...], ...], list[tuple[int, ...]]]] = {
    "segmentation": ("input_1", ((1, 3, 512, 512), (1, 3, 1024, 1024), (1, 3, 1600, 1600)),
                     [(1, 3, 512, 512), (1, 3, 777, 1001), (1, 3, 1024, 1024)]),
    "superres": ("input", ((1, 1, 224, 224), (4, 1, 224, 224), (8, 1, 224, 224)),
                 [(1, 1, 224, 224), (4, 1, 224, 224), (8, 1, 224, 224)]),
}
QUICK_CASES: dict[str, tuple[str, tuple[tuple[int, ...], ...], list[tuple[int, ...]]]] = {
    "segmentation": ("input_1", ((1, 3, 64, 64), (1, 3, 96, 96), (1, 3, 160, 160)),
                     [(1, 3, 64, 64), (1, 3, 77, 101), (1, 3, 128, 128)]),
    "superres": ("input", ((1, 1, 32, 32), (2, 1, 32, 32), (4, 1, 32, 32)),
                 [(1, 1, 32, 32), (2, 1, 32, 32), (4, 1, 32, 32)]),
}
# Tiny input for the runtime overhead: the backend call is then short, so the overhead is visible.
OVERHEAD_PROFILE = ((1, 3, 16, 16), (1, 3, 32, 32), (1, 3, 64, 64))
OVERHEAD_SHAPE = (1, 3, 32, 32)


THREADS: int | None = None  # --threads; None: each library's default (all cores)


def _build(model: Any, name: str, inp: str, prof: tuple[tuple[int, ...], ...], backend: str) -> tuple[Any, float]:
    z = zoo.get(name)
    example = {inp: torch.rand(prof[1])}
    # NOTE: the superres zoo entry makes only the batch dynamic; the segmentation entry the image
    # size. The tiny overhead profile reuses the segmentation entry's axes.
    t = time.perf_counter()
    engine = dynashape.build(model, Profile({inp: ShapeRange(*prof)}), backend=backend, example_inputs=example,
                             dynamic_axes=z.dynamic_axes, output_names=list(z.output_names), threads=THREADS,
                             validate=False)
    return engine, time.perf_counter() - t


def _time_interleaved(calls: dict[str, Any], runs: int, warmup: int, cap_s: float) -> dict[str, list[float]]:
    t = time.perf_counter()
    for _ in range(warmup):
        for fn in calls.values():
            fn()
    # NOTE: at most cap_s seconds of timed rounds per shape (but at least 7 rounds), so the slow
    # shapes (superres at batch 8, ~1 s a round on 2 loaded cores) keep the script near 5 minutes.
    per_round = (time.perf_counter() - t) / max(warmup, 1)
    runs = max(min(runs, 7), min(runs, int(cap_s / max(per_round, 1e-9))))
    lat: dict[str, list[float]] = {m: [] for m in calls}
    for _ in range(runs):
        for m, fn in calls.items():
            t = time.perf_counter()
            fn()
            lat[m].append((time.perf_counter() - t) * 1000.0)
    return lat


def bench_model(name: str, case: tuple[str, Any, list[tuple[int, ...]]], runs: int, warmup: int, cap_s: float) -> dict[str, Any]:
    inp, prof, shapes = case
    model = zoo.get(name).make()
    out: dict[str, Any] = {"model": name, "input": inp, "profile": {"min": prof[0], "opt": prof[1], "max": prof[2]},
                           "precision": "fp32", "build_seconds": {}, "shapes": []}
    engines = {}
    for backend in ("onnxruntime", "inductor"):
        print(f"[{name}] building the {backend} engine ...", flush=True)
        engines[backend], secs = _build(model, name, inp, prof, backend)
        out["build_seconds"][backend] = round(secs, 2)
        if backend == "inductor":
            out["inductor_profile_build_seconds"] = engines[backend].manifest.backend_data.get("profile_build_seconds")
        print(f"[{name}]   built in {secs:.1f} s", flush=True)
    for shape in shapes:
        x = torch.rand(shape, generator=torch.Generator().manual_seed(0))
        xn = x.numpy()
        with torch.inference_mode():
            ref = model(x).numpy()
        diffs = {}
        for backend, e in engines.items():
            y = next(iter(e.run({inp: xn if backend == "onnxruntime" else x}).values()))
            y = y.numpy() if hasattr(y, "numpy") else y
            diffs[backend] = float(np.abs(np.asarray(y, np.float64) - ref).max())

        def eager(x: Any = x) -> Any:
            with torch.inference_mode():
                return model(x)

        calls = {"eager": eager,
                 "onnxruntime": lambda xn=xn: engines["onnxruntime"].run({inp: xn}),
                 "inductor": lambda x=x: engines["inductor"].run({inp: x})}
        load_before = load_average()
        lat = _time_interleaved(calls, runs, warmup, cap_s)
        row = {"shape": list(shape), "max_abs_diff_vs_eager": diffs, "load_average_before": load_before,
               "load_average_after": load_average()}
        for m in METHODS:
            row[m] = summarize(lat[m])
        out["shapes"].append(row)
        print(f"[{name}] {shape_text(shape):>12}: " + ", ".join(f"{m} {row[m]['median_ms']:.2f} ms (spread {row[m]['spread']:.0%})" for m in METHODS)
              + f"; load {row['load_average_after'][0] if row['load_average_after'] else '?'}", flush=True)
    return out


def bench_overhead(quick: bool) -> dict[str, Any]:
    model = zoo.get("segmentation").make()
    res: dict[str, Any] = {"model": "segmentation", "shape": list(OVERHEAD_SHAPE),
                           "profile": {"min": OVERHEAD_PROFILE[0], "opt": OVERHEAD_PROFILE[1], "max": OVERHEAD_PROFILE[2]},
                           "target_us": 50.0, "note": "median of engine.run minus median of the bare backend call on the same "
                           "native inputs (numpy in, numpy out through engine.run; the bare call gets the backend's own "
                           "input type), interleaved 3 x iterations"}
    iterations = 200 if quick else 1000
    for backend in ("onnxruntime", "inductor"):
        print(f"[overhead] building the tiny {backend} engine ...", flush=True)
        engine, secs = _build(model, "segmentation", "input_1", OVERHEAD_PROFILE, backend)
        # NOTE: on a shared 2-core machine one measurement can be off by tens of us, so the
        # library's measurement is repeated and the median of the repeats is the result; the paired
        # estimate (median of per-call differences, engine call then bare call back to back) is a
        # cross-check that is less sensitive to slow drifts in machine load.
        reps = [runtime_overhead(engine, {"input_1": OVERHEAD_SHAPE}, iterations=iterations) for _ in range(3)]
        med = sorted(reps, key=lambda r: r["overhead_us"])[1]
        r = {k: round(v, 2) for k, v in med.items()}
        r["repeats_overhead_us"] = [round(x["overhead_us"], 2) for x in reps]
        r["paired_overhead_us"] = round(_paired_overhead(engine, {"input_1": OVERHEAD_SHAPE}, 3 * iterations), 2)
        if backend == "inductor":
            # torch in, torch out: the inductor engine's native types, so no numpy conversion is counted.
            r["paired_overhead_torch_in_us"] = round(_paired_overhead(engine, {"input_1": OVERHEAD_SHAPE}, 3 * iterations, torch_in=True), 2)
        r["build_seconds"] = round(secs, 2)
        r["iterations"] = 3 * iterations
        r["meets_target"] = r["overhead_us"] < 50.0
        r["load_average_after"] = load_average()
        res[backend] = r
        print(f"[overhead] {backend}: engine.run {r['engine_us']:.1f} us, bare call {r['bare_us']:.1f} us, "
              f"overhead {r['overhead_us']:.1f} us (repeats {r['repeats_overhead_us']}, paired {r['paired_overhead_us']} us, "
              f"paired with torch inputs {r.get('paired_overhead_torch_in_us', '-')} us)", flush=True)
    return res


def _paired_overhead(engine: Any, shapes: dict[str, tuple[int, ...]], iterations: int, *, torch_in: bool = False) -> float:
    """Median over calls of (engine.run time - bare backend call time), the two calls back to back.

    The bare call is ``engine.backend_call`` (as in ``dynashape._bench.runtime_overhead``): the
    backend alone on exactly what the engine would pass it.
    """
    from dynashape._data import make_inputs

    data: dict[str, Any] = make_inputs(engine.inputs, shapes)
    if torch_in:
        data = {n: torch.from_numpy(v) for n, v in data.items()}
    bare_call = engine.backend_call(data)
    for _ in range(max(20, iterations // 20)):
        engine.run(data)
        bare_call()
    diffs = []
    for _ in range(iterations):
        t0 = time.perf_counter()
        engine.run(data)
        t1 = time.perf_counter()
        bare_call()
        t2 = time.perf_counter()
        diffs.append((t1 - t0) - (t2 - t1))
    return float(np.median(diffs)) * 1e6


def markdown(result: dict[str, Any]) -> str:
    m = result["machine"]
    lines = [f"CPU: {m['cpu_model']}, {m['logical_cores']} logical cores (torch threads {m['torch_threads']}); "
             f"torch {m['torch']}, onnxruntime {m['onnxruntime']}, onnx {m['onnx']}; {m['date']}; "
             f"load average at start {m['load_average_1_5_15min_at_start']}; "
             f"{result['settings']['runs']} timed runs (fewer, at least 7, where a shape would exceed "
             f"{result['settings']['max_seconds_per_shape']:.0f} s; the n column) after {result['settings']['warmup']} warm-up, "
             f"interleaved; fp32; threads: {result['settings']['threads']}.", ""]
    rows = []
    for mod in result["models"]:
        for r in mod["shapes"]:
            e = r["eager"]["median_ms"]
            rows.append([mod["model"], shape_text(r["shape"]), fmt_ms(e), fmt_ms(r["onnxruntime"]["median_ms"]),
                         fmt_ms(r["inductor"]["median_ms"]), f"{e / r['onnxruntime']['median_ms']:.2f}x",
                         f"{e / r['inductor']['median_ms']:.2f}x",
                         f"{max(r[x]['spread'] for x in METHODS):.0%}",
                         f"{max(r['max_abs_diff_vs_eager'].values()):.1e}", r["eager"]["n"],
                         f"{r['load_average_after'][0] if r['load_average_after'] else '?'}"])
    lines.append(md_table(["model", "input shape", "eager ms", "onnxruntime engine ms", "inductor engine ms",
                           "speed-up ORT", "speed-up inductor", "worst p10-p90 spread", "max abs diff", "n",
                           "load avg (1 min)"], rows))
    lines.append("")
    lines.append("Build times (s, cold Inductor cache): " + "; ".join(
        f"{mod['model']}: onnxruntime {mod['build_seconds']['onnxruntime']}, inductor {mod['build_seconds']['inductor']}"
        for mod in result["models"]))
    o = result.get("overhead")
    if o:
        lines.append("")
        lines.append(f"Runtime overhead (segmentation at {shape_text(o['shape'])}, target < 50 us):")
        lines.append("")
        lines.append(md_table(["backend", "engine.run us", "bare backend call us", "overhead us (median of 3 repeats)",
                               "repeats us", "paired estimate us", "paired, torch in/out us", "under 50 us"],
                              [[b, f"{o[b]['engine_us']:.1f}", f"{o[b]['bare_us']:.1f}", f"{o[b]['overhead_us']:.1f}",
                                ", ".join(f"{v:.1f}" for v in o[b]["repeats_overhead_us"]), f"{o[b]['paired_overhead_us']:.1f}",
                                f"{o[b]['paired_overhead_torch_in_us']:.1f}" if "paired_overhead_torch_in_us" in o[b] else "n/a (numpy native)",
                                "yes" if o[b]["meets_target"] else "NO"] for b in ("onnxruntime", "inductor") if b in o]))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=None, help="JSON path (default benchmarks/results/cpu_<date>.json); a .md table is written beside it")
    ap.add_argument("--runs", type=int, default=None, help="timed runs per method and shape (default 15; --quick 5)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed runs per method and shape before timing (default 3)")
    ap.add_argument("--max-seconds-per-shape", type=float, default=20.0,
                    help="cap on the timed rounds per shape (fewer runs, at least 7, for slow shapes; default 20 s)")
    ap.add_argument("--models", default="segmentation,superres", help="comma-separated: segmentation, superres")
    ap.add_argument("--no-overhead", action="store_true", help="skip the runtime-overhead measurement")
    ap.add_argument("--threads", type=int, default=None,
                    help="CPU threads for all three methods (torch.set_num_threads, ONNX Runtime intra-op threads, Inductor's "
                         "compiled OpenMP loops); default: each library's default, all cores")
    ap.add_argument("--quick", action="store_true", help="tiny shapes and few runs: checks the script, not the machine")
    ap.add_argument("--warm-cache", action="store_true", help="reuse the Inductor compile cache (build times then are not cold)")
    args = ap.parse_args(argv)
    runs = args.runs or (5 if args.quick else 15)
    global THREADS
    if args.threads:
        THREADS = args.threads
        torch.set_num_threads(args.threads)
    cases = QUICK_CASES if args.quick else CASES
    out = args.out or os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", f"cpu_{today()}{'_quick' if args.quick else ''}.json")
    t0 = time.perf_counter()
    result: dict[str, Any] = {"benchmark": "cpu_bench", "machine": machine_info(),
                              "settings": {"runs": runs, "warmup": args.warmup, "quick": args.quick,
                                           "inductor_cache": "warm" if args.warm_cache else "cold (fresh dir)",
                                           "threads": args.threads or "library defaults (all cores)",
                                           "max_seconds_per_shape": args.max_seconds_per_shape,
                                           "statistic": "median of the timed runs; spread = (p10-p90)/median"},
                              "models": []}
    for name in [m.strip() for m in args.models.split(",") if m.strip()]:
        if name not in cases:
            ap.error(f"--models: unknown model '{name}'; valid: {', '.join(cases)}")
        result["models"].append(bench_model(name, cases[name], runs, args.warmup, args.max_seconds_per_shape))
    if not args.no_overhead:
        result["overhead"] = bench_overhead(args.quick)
    result["machine"]["load_average_1_5_15min_at_end"] = load_average()
    result["wall_seconds"] = round(time.perf_counter() - t0, 1)
    noisy = [f"{mod['model']} {shape_text(r['shape'])} {m}" for mod in result["models"] for r in mod["shapes"]
             for m in METHODS if r[m]["spread"] > 0.25]
    result["noisy"] = noisy
    write_json(out, result)
    md = markdown(result)
    write_atomic(os.path.splitext(out)[0] + ".md", md + "\n")
    print()
    print(md)
    if noisy:
        print(f"\nNOTE: p10-p90 spread over 25% of the median (noisy; rerun on a quieter machine): {', '.join(noisy)}")
    print(f"\nwrote {out} ({result['wall_seconds']} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

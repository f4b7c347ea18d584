"""Planned engines on real length streams: `dynashape plan` against the alternatives.

Parts (``--part``):
  speed  the planner on a million-request shape log (CPU, no model): seconds to plan.
  cpu    bert_like (zoo) on ONNX Runtime CPU, a SQuAD v2 length stream at batch 1: eager PyTorch, one
         min..max profile, the planned engine and static engines for a sample of shapes.
  gpu    transformers GPT-2 and BERT (random weights, from configs), fp16 on CUDA, streams at batch 1
         and in batches of --batch consecutive requests: eager, torch.compile(dynamic=True), one
         min..max profile (graphs captured on demand, cache 16), the planned engine (ladder captured
         at load) and static engines for a sample of shapes (the oracle). First pass and steady state.

Run from the repository root (the GPU part needs CUDA; on the GPU machine prefix
``CXX=/usr/bin/g++ CC=/usr/bin/gcc PYTHONPATH=src``):

    python benchmarks/plan_bench.py --part speed --part cpu
    python benchmarks/plan_bench.py --part gpu --requests 400 --static-sample 3

Writes benchmarks/results/plan_bench_<part>_<date>.json and .md. The length file is
benchmarks/workloads/squadv2_train_lengths.txt (copied from the shared workloads folder).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))
from _common import machine_info, md_table, today, write_atomic, write_json

import dynashape
from dynashape import TensorSpec
from dynashape._plan import explain

HERE = os.path.dirname(os.path.abspath(__file__))
LENGTHS = os.path.join(HERE, "workloads", "squadv2_train_lengths.txt")


@contextlib.contextmanager
def gpu_lock() -> Iterator[None]:
    """Hold the GPU alone while timing, when shards of this script run side by side.

    Shards (``--batches 1`` and ``--batches 8`` in two processes) build their engines in parallel, which is
    CPU work; every timed stream and every calibration runs under one exclusive ``flock`` on the file named by
    ``$DYNASHAPE_BENCH_LOCK``, so no two timings share the GPU. The other shard's compiles still use the CPU
    meanwhile: the JSON records that the run was sharded.
    """
    path = os.environ.get("DYNASHAPE_BENCH_LOCK")
    if not path:
        yield
        return
    import fcntl

    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def pct(xs: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs), q)) if xs else float("nan")


def time_stream(fn: Callable[[Any], Any], stream: Sequence[Any], sync: Callable[[], None]) -> dict[str, float]:
    with gpu_lock():
        return _time_stream(fn, stream, sync)


def _time_stream(fn: Callable[[Any], Any], stream: Sequence[Any], sync: Callable[[], None]) -> dict[str, float]:
    out: dict[str, float] = {}
    for name in ("first", "steady"):
        times = []
        for item in stream:
            t = time.perf_counter()
            fn(item)
            sync()
            times.append((time.perf_counter() - t) * 1000.0)
        out[f"{name}_mean"], out[f"{name}_p50"], out[f"{name}_p99"] = float(np.mean(times)), pct(times, 50), pct(times, 99)
    return out


def part_speed(args: argparse.Namespace, tmp: str) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    specs = [TensorSpec("input_ids", "int64", ("batch", "seq")), TensorSpec("attention_mask", "int64", ("batch", "seq"))]
    rows = []
    # SQuAD v2 lengths (few distinct values) and synthetic lengths 1..8192 (every value distinct)
    streams = (("SQuAD v2 lengths", rng.choice(np.loadtxt(LENGTHS, dtype=np.int64), args.speed_requests)),
               ("uniform lengths 1..8192", rng.integers(1, 8193, args.speed_requests)))
    for source, stream in streams:
        log = os.path.join(tmp, "million.log")
        with open(log, "w") as f:
            f.write("".join(f"input_ids:1x{n},attention_mask:1x{n}\n" for n in stream))
        for label, kw in (("batch 1", {}), ("batches of 8", {"batch_size": 8})):
            t = time.perf_counter()
            plan = dynashape.plan(log, inputs=specs, device="cuda", calibrate_cost=False, max_graphs=64, **kw)  # type: ignore[arg-type]
            total = time.perf_counter() - t
            s = plan.details["seconds"]
            rows.append({"workload": f"shape log, {source}, {label}", "requests": args.speed_requests,
                         "distinct": plan.details["workload"]["distinct_shapes"], "seconds": round(total, 3), "read_s": s["read"],
                         "dp_ladder_s": s["dp_ladder"], "dp_profiles_s": s["dp_profiles"], "dp": plan.details["ladder"]["dp"],
                         "buckets": len(plan.ladder.buckets) if plan.ladder else 0})
    # the ladder DP alone at n distinct values: O(k n log n) divide and conquer against the O(k n^2) plain DP
    from dynashape._plan import dp

    for n in (512, 2048, 4096, 8192, 16384):
        w = rng.random((1, n))
        c = (0.25 + np.arange(n) / 4096.0)[None, :]
        row: dict[str, Any] = {"workload": f"ladder DP only, n={n} distinct values, k=64"}
        t = time.perf_counter()
        fast = dp.segment_ladder(w, c, 64, fast=True)
        row["seconds"] = round(time.perf_counter() - t, 3)
        if n <= args.plain_dp_max:
            t = time.perf_counter()
            plain = dp.segment_ladder(w, c, 64, fast=False)
            row["plain_dp_s"] = round(time.perf_counter() - t, 3)
            row["same_ends"] = plain.ends == fast.ends
            row["max_rel_cost_diff"] = float(np.max(np.abs(plain.costs - fast.costs) / plain.costs))
        rows.append(row)
    return {"rows": rows}


def part_cpu(args: argparse.Namespace, tmp: str) -> dict[str, Any]:
    import torch

    from dynashape.zoo import get

    torch.set_num_threads(2)
    z = get("bert_like")
    model = z.make().eval()
    onnx_path = dynashape.export(model, z.example_inputs(), os.path.join(tmp, "bert.onnx"), dynamic_axes=z.dynamic_axes,
                                 output_names=list(z.output_names)).path
    lengths = np.loadtxt(args.lengths, dtype=np.int64)[: args.requests]
    lengths = np.minimum(lengths, 384)
    log = os.path.join(tmp, "r.log")
    with open(log, "w") as f:
        f.write("".join(f"input_ids:1x{n},attention_mask:1x{n}\n" for n in lengths))
    rng = np.random.default_rng(0)
    stream = [{"input_ids": rng.integers(1, 90, (1, int(n))).astype(np.int64), "attention_mask": np.ones((1, int(n)), np.int64)} for n in lengths]
    t = time.perf_counter()
    plan = dynashape.plan(log, onnx_path, use_cache=False)
    plan_s = time.perf_counter() - t
    results: dict[str, dict[str, float]] = {}
    noop = lambda: None  # noqa: E731

    def eager(feed: dict[str, np.ndarray]) -> Any:
        with torch.no_grad():
            return model(torch.from_numpy(feed["input_ids"]), torch.from_numpy(feed["attention_mask"]))

    results["eager PyTorch"] = time_stream(eager, stream, noop)
    one = dynashape.build(onnx_path, dims={"batch": (1, 1, 1), "seq": (int(lengths.min()), 128, int(lengths.max()))}, backend="onnxruntime")
    results["one min..max profile"] = time_stream(one.run, stream, noop)
    planned = dynashape.build(onnx_path, backend="onnxruntime", plan=plan)
    results["planned engine"] = time_stream(planned.run, stream, noop)
    # the static oracle on a sample: the most frequent shapes, each its own static engine
    top = [int(v) for v, _ in sorted(zip(*np.unique(lengths, return_counts=True), strict=True), key=lambda t: -t[1])[: args.static_sample]]
    sub = [f for f in stream if f["input_ids"].shape[1] in top]
    statics = {v: dynashape.build(onnx_path, dims={"batch": 1, "seq": v}, backend="onnxruntime") for v in top}
    results["static oracle (sample)"] = time_stream(lambda f: statics[f["input_ids"].shape[1]].run(f), sub, noop)
    results["planned engine (same sample)"] = time_stream(planned.run, sub, noop)
    measured = results["planned engine"]["steady_mean"]
    pred = plan.predictions["latency_per_request"].value
    return {"results": results, "plan": explain(plan), "plan_seconds": round(plan_s, 2), "predicted_ms": pred, "measured_ms": measured,
            "prediction_error": round(pred / measured - 1.0, 3), "sample_shapes": top}


def _hf(kind: str, device: str) -> tuple[Any, dict[str, Any], dict[str, dict[int, str]]]:
    import torch
    import transformers

    ids = torch.ones(2, 16, dtype=torch.int64, device=device)
    if kind == "gpt2":
        net = transformers.GPT2LMHeadModel(transformers.GPT2Config()).eval()

        class G(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.net = net

            def forward(self, input_ids: Any) -> Any:
                return self.net(input_ids=input_ids, use_cache=False).logits

        return G().to(device), {"input_ids": ids}, {"input_ids": {0: "batch", 1: "seq"}}
    net = transformers.BertModel(transformers.BertConfig()).eval()

    class B(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            return self.net(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    return B().to(device), {"input_ids": ids, "attention_mask": torch.ones_like(ids)}, {n: {0: "batch", 1: "seq"} for n in ("input_ids", "attention_mask")}


def part_gpu(args: argparse.Namespace, tmp: str, on_result: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    import torch

    lengths = np.minimum(np.loadtxt(args.lengths, dtype=np.int64)[: args.requests], 384)
    out: dict[str, Any] = {}
    for kind in args.models:
        module, examples, axes = _hf(kind, "cuda")
        module = module.half()
        names = list(examples)
        for batch in args.batches:
            groups = [lengths[i:i + batch] for i in range(0, len(lengths), batch)]
            shapes = [(len(g), int(g.max())) for g in groups]
            stream = [{n: torch.ones(b, s, dtype=torch.int64, device="cuda") for n in names} for b, s in shapes]
            sync = torch.cuda.synchronize
            key = f"{kind}, batch {batch}"
            res: dict[str, Any] = {}
            with torch.no_grad():
                res["eager fp16"] = time_stream(lambda f, m=module: m(*f.values()), stream, sync)
                compiled = torch.compile(module, dynamic=True)
                res["torch.compile(dynamic=True)"] = time_stream(lambda f, c=compiled: c(*f.values()), stream, sync)
            ex = {n: t.cpu() for n, t in examples.items()}
            one = dynashape.build(module.float().cpu(), dims={"batch": (1, max(2, batch), max(2, batch)), "seq": (8, 128, 384)}, backend="inductor",
                                  device="cuda", precision="fp16", example_inputs=ex, dynamic_axes=axes)
            res["one min..max profile (graph cache 16)"] = time_stream(one.run, stream, sync)
            del one
            t = time.perf_counter()
            with gpu_lock():  # the calibration times the model
                plan = dynashape.plan(None, module.float().cuda(), dims={"seq": lengths.astype(int).tolist(), "batch": [1]}, example_inputs=examples,
                                      dynamic_axes=axes, device="cuda", precision="fp16", batch_size=batch if batch > 1 else None,
                                      max_graphs=args.max_graphs, graph_memory_mb=args.graph_memory_mb, max_profiles=args.max_profiles, ranges={"batch": (1, max(2, batch))})
            plan_s = time.perf_counter() - t
            planned = dynashape.build(module.float().cpu(), backend="inductor", device="cuda", precision="fp16", example_inputs=ex,
                                      dynamic_axes=axes, plan=plan)
            path = os.path.join(tmp, f"{kind}{batch}.engine")
            planned.save(path)
            with gpu_lock():
                t = time.perf_counter()
                planned = dynashape.load(path)  # captures the ladder here
                load_s = time.perf_counter() - t
            res["planned engine"] = time_stream(planned.run, stream, sync)
            stats = planned.graph_stats()
            module.half().cuda()
            # the oracle: static engines at the most frequent shapes
            uniq, counts = np.unique(np.array(shapes), axis=0, return_counts=True)
            top = [tuple(int(x) for x in uniq[i]) for i in np.argsort(-counts)[: args.static_sample]]
            sub = [f for f, s in zip(stream, shapes, strict=True) if s in top]
            statics = {s: dynashape.build(module.float().cpu(), dims={"batch": s[0], "seq": s[1]}, backend="inductor", device="cuda",
                                          precision="fp16", example_inputs=ex, dynamic_axes=axes) for s in top}
            module.half().cuda()
            res["static oracle (sample)"] = time_stream(lambda f, st=statics: st[tuple(next(iter(f.values())).shape)].run(f), sub, sync)
            res["planned engine (same sample)"] = time_stream(planned.run, sub, sync)
            pred = plan.predictions["latency_per_request"].value
            out[key] = {"results": res, "plan": explain(plan), "plan_seconds": round(plan_s, 2), "load_seconds": round(load_s, 2),
                        "graph_stats": stats, "predicted_ms": pred, "measured_ms": res["planned engine"]["steady_mean"],
                        "predicted_graph_mb": plan.predictions["graph_memory"].value,
                        "graph_memory_budget_mb": args.graph_memory_mb,
                        "graph_memory_measured_mb": round(stats.get("pool_bytes", 0) / 2**20, 1)}
            if on_result is not None:
                on_result(out)
            torch.cuda.empty_cache()
    return out


def to_markdown(part: str, data: dict[str, Any]) -> str:
    if part == "speed":
        return md_table(["workload", "requests", "distinct", "seconds", "read s", "ladder DP s", "profile DP s", "plain DP s", "same ends"],
                        [[r["workload"], r.get("requests", ""), r.get("distinct", ""), r["seconds"], r.get("read_s", ""), r.get("dp_ladder_s", ""),
                          r.get("dp_profiles_s", ""), r.get("plain_dp_s", ""), r.get("same_ends", "")] for r in data["rows"]])
    blocks = data.items() if part == "gpu" else [("bert_like, batch 1, ONNX Runtime CPU", data)]
    text = []
    for key, d in blocks:
        text.append(f"### {key}\n")
        text.append(md_table(["method", "first mean", "first p50", "first p99", "steady mean", "steady p50", "steady p99"],
                             [[m, *(f"{r[c]:.3f}" for c in ("first_mean", "first_p50", "first_p99", "steady_mean", "steady_p50", "steady_p99"))]
                              for m, r in d["results"].items()]))
        text.append(f"\npredicted {d['predicted_ms']:.3f} ms a request, measured {d['measured_ms']:.3f} ms"
                    + (f"; graph memory {d['graph_memory_measured_mb']} MB measured, {d['predicted_graph_mb']} MB predicted, "
                       f"budget {d['graph_memory_budget_mb']} MB" if "graph_memory_measured_mb" in d else "") + "\n")
    return "\n".join(text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", action="append", choices=["speed", "cpu", "gpu"], required=True)
    ap.add_argument("--requests", type=int, default=400, help="requests per stream (default 400)")
    ap.add_argument("--speed-requests", type=int, default=1_000_000)
    ap.add_argument("--plain-dp-max", type=int, default=4096, help="largest n the plain O(k n^2) DP is timed at (speed)")
    ap.add_argument("--static-sample", type=int, default=3, help="static engines in the oracle (default 3)")
    ap.add_argument("--batches", default="1,8", help="batch sizes of the streams, comma-separated (gpu; default 1,8: batch 1 and "
                    "batches of 8 consecutive requests)")
    ap.add_argument("--lengths", default=LENGTHS, help="one request length a line (default: SQuAD v2)")
    ap.add_argument("--tag", default="", help="added to the result file names (shards of one run)")
    ap.add_argument("--max-graphs", type=int, default=64)
    ap.add_argument("--max-profiles", type=int, default=4, help="the plan's profile budget (gpu; default 4, the planner's)")
    ap.add_argument("--graph-memory-mb", type=float, default=1024.0, help="the plan's graph memory budget (gpu; default 1024)")
    ap.add_argument("--models", nargs="+", default=["gpt2", "bert"])
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    args = ap.parse_args()
    args.batches = [int(b) for b in args.batches.split(",")]
    import tempfile

    for part in args.part:
        base = os.path.join(args.out, f"plan_bench_{part}{'_' + args.tag if args.tag else ''}_{today()}")
        t = time.perf_counter()
        extra = {"lengths": os.path.basename(args.lengths), "requests": args.requests,
                 "sharded_with_gpu_lock": bool(os.environ.get("DYNASHAPE_BENCH_LOCK"))}

        def partial(data: dict[str, Any], part: str = part, t: float = t, base: str = base, extra: dict[str, Any] = extra) -> None:
            # written after every stream, so a run cut off by a time limit keeps what it measured
            write_json(base + ".json", {"part": part, "machine": machine_info(), "seconds": round(time.perf_counter() - t, 1),
                                        "complete": False, **extra, "data": data})

        with tempfile.TemporaryDirectory() as tmp:
            if part == "gpu":
                data = part_gpu(args, tmp, partial)
            else:
                data = {"speed": part_speed, "cpu": part_cpu}[part](args, tmp)
            doc = {"part": part, "machine": machine_info(), "seconds": round(time.perf_counter() - t, 1), "complete": True, **extra, "data": data}
        write_json(base + ".json", doc)
        md = to_markdown(part, data)
        write_atomic(base + ".md", md + "\n")
        print(md)
        if part != "speed":
            for d in (data.values() if part == "gpu" else [data]):
                print(d["plan"])


if __name__ == "__main__":
    main()

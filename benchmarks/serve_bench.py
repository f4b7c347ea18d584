"""Serving load benchmark: throughput and p50/p99 latency against concurrency, batching on and off.

The model is the zoo's bert_like (2-layer encoder with a mask) as an ONNX Runtime engine on the CPU
(``--device cuda --backend inductor`` builds a CUDA engine instead). Each request is one sequence
(batch 1) whose length is drawn from a real length file (GLUE MRPC, ``benchmarks/workloads``) or a
fixed set of lengths. Closed-loop clients (``--concurrency 1,4,16``) each send their next request
when the last one is answered, for ``--duration`` seconds per point.

Configurations: ``off`` (max_batch 1: every request alone), ``exact`` (shape-aware batching of
equal shapes), ``ladder`` (lengths padded to a bucket ladder, then batched; bert_like is padding-
safe: tests/serve/test_batcher.py checks it). ``--http`` drives a real Ray Serve deployment over
HTTP on 127.0.0.1 (``off`` and ``exact``; a ladder reaches the server only through a plan with a
padding verdict); without it the batcher runs in this process (the GPU machine has no Ray).

    python benchmarks/serve_bench.py --http                  # CPU, through Ray Serve
    python benchmarks/serve_bench.py --device cuda --backend inductor --max-batch 32   # GPU, in-process
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import http.client
import json
import os
import sys
import tempfile
import time
from typing import Any

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))
from _common import load_average, machine_info, today, write_atomic, write_json

import dynashape
from dynashape.serve import Batcher

LADDER = [16, 24, 32, 48, 64, 96, 128]


def lengths(path: str | None, n: int, seed: int) -> list[int]:
    rng = np.random.default_rng(seed)
    if path and os.path.isfile(path):
        with open(path) as f:
            pool = np.array([int(x) for x in f.read().split() if x.strip()])
        pool = pool[(pool >= 4) & (pool <= 128)]
    else:
        pool = np.array([16, 32, 48, 64])
    return [int(x) for x in rng.choice(pool, n)]


def request(seq: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"input_ids": rng.integers(1, 100, (1, seq), dtype=np.int64), "attention_mask": np.ones((1, seq), np.int64)}


def pct(xs: list[float], p: float) -> float:
    return float(np.percentile(np.asarray(xs), p)) if xs else float("nan")


# -- in-process -------------------------------------------------------------------------------------

async def run_inprocess(engine: dynashape.Engine, conc: int, duration: float, seqs: list[int], *, max_batch: int,
                        delay_ms: float, ladder: list[int] | None, workers: int | None = None) -> dict[str, Any]:
    batcher = Batcher(engine, max_batch=max_batch, max_delay_ms=delay_ms, max_queue=4096, workers=workers,
                      ladder={"seq": ladder} if ladder else None)
    lat: list[float] = []
    stop = time.perf_counter() + duration

    async def client(c: int) -> None:
        k = c
        while time.perf_counter() < stop:
            req = request(seqs[k % len(seqs)], k)
            t0 = time.perf_counter()
            await batcher.infer(req)
            lat.append((time.perf_counter() - t0) * 1000)
            k += conc

    t0 = time.perf_counter()
    await asyncio.gather(*(client(c) for c in range(conc)))
    wall = time.perf_counter() - t0
    await batcher.close()
    st = batcher.stats
    return {"requests": len(lat), "throughput_rps": len(lat) / wall, "p50_ms": pct(lat, 50), "p99_ms": pct(lat, 99),
            "engine_calls": st.batches, "rows_per_call": st.requests / max(1, st.batches)}


# -- over HTTP (Ray Serve) --------------------------------------------------------------------------

def run_http(port: int, model: str, conc: int, duration: float, seqs: list[int]) -> dict[str, Any]:
    stop = time.perf_counter() + duration

    def client(c: int) -> list[float]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        out, k = [], c
        while time.perf_counter() < stop:
            req = request(seqs[k % len(seqs)], k)
            body = json.dumps({"inputs": [{"name": n, "shape": list(x.shape), "datatype": "INT64",
                                           "data": x.reshape(-1).tolist()} for n, x in req.items()],
                               "outputs": [{"name": "hidden", "parameters": {"binary_data": True}}]})
            t0 = time.perf_counter()
            conn.request("POST", f"/v2/models/{model}/infer", body, {"content-type": "application/json"})
            r = conn.getresponse()
            r.read()
            if r.status != 200:
                raise RuntimeError(f"HTTP {r.status}")
            out.append((time.perf_counter() - t0) * 1000)
            k += conc
        conn.close()
        return out

    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(conc) as pool:
        lat = [x for xs in pool.map(client, range(conc)) for x in xs]
    wall = time.perf_counter() - t0
    return {"requests": len(lat), "throughput_rps": len(lat) / wall, "p50_ms": pct(lat, 50), "p99_ms": pct(lat, 99)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--http", action="store_true", help="serve with Ray Serve on 127.0.0.1 and send HTTP requests")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--backend", default="onnxruntime")
    ap.add_argument("--concurrency", default="1,4,16")
    ap.add_argument("--duration", type=float, default=4.0, help="seconds per point")
    ap.add_argument("--max-batch", type=int, default=16)
    ap.add_argument("--max-delay-ms", type=float, default=2.0)
    ap.add_argument("--workers", default=None,
                    help="comma-separated engine calls at once per batcher, one set of rows each (in-process; default: the Batcher's)")
    ap.add_argument("--lengths", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "workloads", "glue_mrpc_train_lengths.txt"),
                    help="one request length a line (default: GLUE MRPC, copied from the shared workloads folder)")
    ap.add_argument("--precision", default="fp32", choices=["fp32", "fp16"], help="engine precision (fp16: CUDA only)")
    ap.add_argument("--out", default=None, help="results stem (default benchmarks/results/serve_<device>_<date>)")
    args = ap.parse_args()
    machine = machine_info()  # before the runs: its load average is the load they started under
    import torch

    from dynashape.zoo import get

    z = get("bert_like")
    tmp = tempfile.mkdtemp(prefix="serve_bench-")
    onnx = dynashape.export(z.make(), z.example_inputs(), os.path.join(tmp, "bert_like.onnx"),
                            dynamic_axes=z.dynamic_axes, output_names=list(z.output_names)).path
    dims = {"batch": (1, 8, max(16, args.max_batch)), "seq": (4, 64, 128)}
    engine = dynashape.build(onnx, dims=dims, backend=args.backend, device=args.device, precision=args.precision)
    engine_file = os.path.join(tmp, "bert_like.engine")
    engine.save(engine_file)
    seqs = lengths(args.lengths, 4000, 0)
    concs = [int(c) for c in args.concurrency.split(",")]
    configs = [("off", 1, None), ("exact", args.max_batch, None)] + ([] if args.http else [("ladder", args.max_batch, LADDER)])
    rows = []
    if args.http:
        import ray
        from ray import serve

        ray.init(_node_ip_address="127.0.0.1", include_dashboard=False, num_cpus=2, logging_level="ERROR", log_to_driver=False)
        port = 18000 + os.getpid() % 1000
        try:
            serve.start(http_options={"host": "127.0.0.1", "port": port})
            for name, mb, _ in configs:
                app = dynashape.serve.app(engine_file, name=f"bert_{name}", max_batch=mb, max_delay_ms=args.max_delay_ms)
                serve.run(app, name=name, route_prefix="/", blocking=False)
                run_http(port, f"bert_{name}", 4, 1.0, seqs)  # warm-up
                for c in concs:
                    rows.append({"config": name, "concurrency": c, **run_http(port, f"bert_{name}", c, args.duration, seqs)})
                    print(json.dumps(rows[-1]), flush=True)
                serve.delete(name)
        finally:
            serve.shutdown()
            ray.shutdown()
    else:
        worker_counts: list[int | None] = [int(w) for w in args.workers.split(",")] if args.workers else [None]
        for workers in worker_counts:
            for name, mb, ladder in configs:
                asyncio.run(run_inprocess(engine, 4, 1.0, seqs, max_batch=mb, delay_ms=args.max_delay_ms, ladder=ladder,
                                          workers=workers))
                for c in concs:
                    r = asyncio.run(run_inprocess(engine, c, args.duration, seqs, max_batch=mb, delay_ms=args.max_delay_ms,
                                                  ladder=ladder, workers=workers))
                    rows.append({"config": name, "concurrency": c, "workers": workers, **r})
                    print(json.dumps(rows[-1]), flush=True)
    info = {"date": today(), "machine": machine, "torch": torch.__version__, "mode": "http" if args.http else "inprocess",
            "device": args.device, "backend": args.backend, "precision": args.precision, "max_batch": args.max_batch, "max_delay_ms": args.max_delay_ms,
            "lengths": os.path.basename(args.lengths) if os.path.isfile(args.lengths) else "16/32/48/64",
            "ladder": LADDER, "rows": rows, "load_average_1_5_15min_at_end": load_average()}
    try:
        import ray as _ray

        info["ray"] = _ray.__version__
    except ImportError:
        pass
    stem = args.out or os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                                    f"serve_{args.device}_{'http' if args.http else 'inprocess'}_{today()}")
    write_json(stem + ".json", info)
    lines = ["| config | workers | clients | req/s | p50 ms | p99 ms |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['config']} | {r.get('workers') or 'default'} | {r['concurrency']} | {r['throughput_rps']:.0f} | {r['p50_ms']:.2f} | "
              f"{r['p99_ms']:.2f} |" for r in rows]
    write_atomic(stem + ".md", "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

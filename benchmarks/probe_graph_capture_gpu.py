"""Why CUDA graph capture fails for text models built from ONNX files (a probe, GPU machine).

Seen in the GPU gauntlet (fp16, torch 2.11): engines built from the TorchScript or dynamo exporter's file of
BERT, GPT-2, LLaMA, T5 and the other text models fall back to running without CUDA graphs ("CUDA graph
capture failed ... aoti_torch_copy_(bufN, bufM, 0) API call failed"); vision and audio models capture.
This probe builds one such model the way the inductor backend does (imported in fp16, moved to CUDA, exported
under the CUDA device context, compiled by AOTInductor), prints every exported node whose value lives on
the CPU, captures one call in a CUDA graph, and on failure prints the generated wrapper code around each
``aoti_torch_copy_`` call.

    CXX=/usr/bin/g++ CC=/usr/bin/gcc PYTHONPATH=src python benchmarks/probe_graph_capture_gpu.py --model bert --out $OUT
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import traceback
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "gauntlet"))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="bert")
    ap.add_argument("--exporter", default="torchscript")
    ap.add_argument("--out", default=os.environ.get("OUT", "."))
    args = ap.parse_args()

    import pipeline
    import torch
    from models import BY_NAME

    from dynashape.onnx import to_torch

    case = BY_NAME[args.model]
    model = case.make()
    path = pipeline.export(case, model, args.exporter, tempfile.mkdtemp())
    gm = to_torch(path, compute_dtype=torch.float16).cuda().eval()
    names = [n.name for n in gm.graph.nodes if n.op == "placeholder"]
    feeds = case.example("opt")
    inputs = tuple(feeds[n].cuda() for n in names)
    with torch.device("cuda"):
        ep = torch.export.export(gm, inputs)
    report: dict = {"model": args.model, "exporter": args.exporter, "torch": torch.__version__}
    cpu_nodes = []
    for n in ep.graph.nodes:
        v = n.meta.get("val")
        if isinstance(v, torch.Tensor) and v.device.type == "cpu":
            cpu_nodes.append(f"{n.op} {n.name} {n.target} {tuple(v.shape)} {v.dtype} <- {n.meta.get('stack_trace', '')[-300:]}")
    report["cpu_nodes"] = cpu_nodes
    report["constants_on_cpu"] = [k for k, t in ep.constants.items() if isinstance(t, torch.Tensor) and t.device.type == "cpu"]
    import glob
    import time

    start = time.time()
    pkg = torch._inductor.aoti_compile_and_package(ep, package_path=os.path.join(tempfile.mkdtemp(), "m.pt2"))
    runner = torch._inductor.aoti_load_package(pkg)
    runner(*inputs)
    torch.cuda.synchronize()
    # the CUDA runtime calls of one plain call: a synchronous copy, a synchronize or a host allocation is
    # what a capture refuses
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        runner(*inputs)
        torch.cuda.synchronize()
    calls = {}
    for ev in prof.events():
        name = ev.name
        if any(k in name for k in ("Memcpy", "Synchronize", "cudaMalloc", "cudaFree", "HostAlloc", "copy_", "to_copy", "item", "local_scalar")):
            calls[name] = calls.get(name, 0) + 1
    report["runtime_calls"] = calls
    # the wrapper Inductor generated (left in its cache directory by the compile above)
    wrappers = [f for f in glob.glob(os.path.join(tempfile.gettempdir(), "torchinductor_*", "**", "*.cpp"), recursive=True)
                if os.path.getmtime(f) >= start - 1]
    report["wrappers"] = wrappers[:5]
    sites = []
    for f in wrappers:
        with open(f, errors="replace") as fh:
            lines = fh.read().split("\n")
        for i, line in enumerate(lines):
            if "aoti_torch_copy_" in line or "device_type_cpu" in line or "cudaMemcpy" in line or ("item" in line.lower() and "scalar" in line.lower()):
                sites.append(f"{f}:{i + 1}\n" + "\n".join(lines[max(0, i - 15): i + 3]))
    report["wrapper_sites"] = sites[:10]
    g = torch.cuda.CUDAGraph()
    try:
        with torch.cuda.graph(g):
            runner(*inputs)
        report["capture"] = "ok"
    except Exception as e:
        report["capture"] = f"{type(e).__name__}: {str(e)[:500]}"
    context = []
    with zipfile.ZipFile(pkg) as z:
        for f in z.namelist():
            if f.endswith(".cpp"):
                lines = z.read(f).decode(errors="replace").split("\n")
                for i, line in enumerate(lines):
                    if "aoti_torch_copy_" in line or ("empty_strided" in line and "device_type_cpu" in line):
                        context.append(f"{f}:{i + 1}\n" + "\n".join(lines[max(0, i - 12): i + 3]))
    report["copy_sites"] = context[:12]
    out = os.path.join(args.out, f"probe_graph_capture_{args.model}_{args.exporter}.json")
    with open(out, "w") as fh:
        json.dump(report, fh, indent=1)
    print(json.dumps({k: v for k, v in report.items() if k not in ("copy_sites", "wrapper_sites")}, indent=1)[:4000])
    for c in (context + report["wrapper_sites"])[:8]:
        print("-----\n" + c)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception:
        traceback.print_exc()
        sys.exit(1)

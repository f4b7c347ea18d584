"""``dynashape plan``: profiles and a CUDA-graph bucket ladder from a workload, written as a plan file."""

from __future__ import annotations

import argparse
import json
from typing import Any

import dynashape

from .._errors import DynashapeError


def _dims(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        name, eq, src = item.partition("=")
        if not eq or not name.strip() or not src.strip():
            raise DynashapeError(f"--dim '{item}'", "NAME=FILE (one value a line, optionally VALUE WEIGHT) or NAME=INTEGER",
                                 "e.g. --dim seq=lengths.txt --dim batch=1")
        out[name.strip()] = src.strip()
    return out


def _ranges(items: list[str]) -> dict[str, tuple[int, int]]:
    out = {}
    for item in items:
        name, eq, rng = item.partition("=")
        lo, colon, hi = rng.partition(":")
        if not eq or not colon or not lo.strip().isdigit() or not hi.strip().isdigit():
            raise DynashapeError(f"--range '{item}'", "NAME=LO:HI, e.g. batch=1:16")
        out[name.strip()] = (int(lo), int(hi))
    return out


def cmd_plan(args: argparse.Namespace) -> int:
    given = [f for f, v in (("--onnx", args.onnx), ("--model", args.model), ("--loadEngine", args.load_engine)) if v]
    if len(given) > 1:
        raise DynashapeError(f"both {' and '.join(given)}", "one model")
    model: Any = args.onnx or args.load_engine
    if args.model:
        if not args.model.startswith("zoo:"):
            raise DynashapeError(f"--model {args.model}", "zoo:NAME here (its inputs and dynamic axes are known)",
                                 "export the module to ONNX first (dynashape export) and plan with --onnx")
        model = args.model
    plan = dynashape.plan(
        args.workload, model, dims=_dims(args.dim) or None, batch_size=args.batch_size, device=args.device,
        precision=args.precision, backend=args.backend, max_profiles=args.max_profiles, max_graphs=args.max_graphs,
        graph_memory_mb=args.graph_memory_mb, build_time_s=args.build_time_s, calibrate_cost=not args.no_calibrate,
        ladder=args.ladder, ranges=_ranges(args.range) or None, split=args.split,
    )
    from .._plan import explain, write_report

    plan.save(args.output)
    if args.report:
        write_report(plan, args.report)
    print(json.dumps(plan.to_json(), indent=1) if args.json else explain(plan))
    print(f"wrote {args.output}" + (f" and {args.report}" if args.report else ""))
    return 0


def add_parser(sub: Any) -> None:
    p = sub.add_parser("plan", help="plan profiles and a CUDA-graph bucket ladder from a workload (then build --plan)")
    g = p.add_argument_group("workload")
    g.add_argument("--workload", metavar="FILE", help="shape log, one request a line: NAME:DxD,... [* WEIGHT] (trtexec syntax) or JSONL")
    g.add_argument("--dim", action="append", default=[], metavar="NAME=FILE|N",
                   help="value list for a named dim (one value a line, optionally VALUE WEIGHT), or a constant; repeat per dim")
    g.add_argument("--batch-size", type=int, help="plan for batches of N consecutive requests, each padded to its longest")
    g = p.add_argument_group("model")
    g.add_argument("--onnx", metavar="FILE", help="ONNX model: input specs and calibration")
    g.add_argument("--model", metavar="zoo:NAME", help="a zoo model instead of --onnx")
    g.add_argument("--loadEngine", dest="load_engine", metavar="FILE", help="a built engine (one min..max profile will do): "
                   "calibration times it as it runs, which predicts the planned engine far better than the source model")
    g = p.add_argument_group("target")
    g.add_argument("--device", default=None, help="cpu (default), cuda or cuda:N")
    x = g.add_mutually_exclusive_group()
    x.add_argument("--fp16", action="store_const", const="fp16", dest="precision", help="plan for float16")
    x.add_argument("--bf16", action="store_const", const="bf16", dest="precision", help="plan for bfloat16")
    g.add_argument("--backend", default=None, help="inductor (default on CUDA), onnxruntime (default on the CPU), tensorrt")
    g = p.add_argument_group("budgets")
    g.add_argument("--max-profiles", type=int, help="profiles in all, dynamic and static (default 4)")
    g.add_argument("--max-graphs", type=int, help="CUDA graphs in the ladder (default 64)")
    g.add_argument("--graph-memory-mb", type=float, help="predicted graph memory at most this")
    g.add_argument("--build-time-s", type=float, help="predicted build time at most this")
    g.add_argument("--range", action="append", default=[], metavar="NAME=LO:HI", help="a range the profiles must cover beyond the workload")
    g = p.add_argument_group("planning")
    g.add_argument("--no-calibrate", action="store_true", help="do not time the model here: an analytic proxy (see docs/plan.md)")
    g.add_argument("--ladder", dest="ladder", action="store_true", default=None, help="plan a bucket ladder (default: on CUDA only)")
    g.add_argument("--no-ladder", dest="ladder", action="store_false", help="no bucket ladder")
    g.add_argument("--split", action="store_true", help="inductor: cut dynamic profiles wider than 4x along the ladder dim "
                   "into sub-ranges of equal traffic, each with its own opt; build --plan compiles them as parts of the profile")
    g.add_argument("-o", "--output", required=True, metavar="FILE", help="plan file to write (JSON)")
    g.add_argument("--report", metavar="FILE.html", help="also write the plot and table as one HTML file")
    g.add_argument("--json", action="store_true", help="print the plan as JSON instead of the table")
    p.set_defaults(func=cmd_plan)

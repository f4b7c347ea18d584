"""Subcommand handlers: parse flags, call the public library, print. Each returns an exit status."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

import numpy as np

import dynashape

from .._errors import DynashapeError
from .._io import open_atomic
from .._profiles import _split_name, _split_top, parse_shapes
from .._specs import format_shape
from .args import (
    add_model_args,
    add_precision_args,
    add_profile_args,
    add_timing_args,
    add_trust_args,
    check_opset,
    check_output_path,
    dims_from_args,
    example_inputs,
    load_factory,
    profiles_from_args,
    trust_from_args,
)


def _parse_dynamic(items: list[str]) -> dict[str, dict[int, str]]:
    """``input_1:2=image_height,3=image_width`` (repeatable) -> dynamic_axes."""
    out: dict[str, dict[int, str]] = {}
    for item in items:
        name, rest = _split_name(item, "--dynamic")
        axes = {}
        for part in _split_top(rest, ","):
            axis, eq, sym = part.partition("=")
            if not axis.strip().lstrip("-").isdigit():
                raise DynashapeError(f"--dynamic '{item}'", "NAME:AXIS=DIMNAME[,AXIS=DIMNAME], e.g. input_1:2=image_height,3=image_width")
            axes[int(axis)] = sym.strip() if eq and sym.strip() else f"{name}_dim{int(axis)}"
        out[name] = axes
    return out


def _save_npz(path: str, arrays: dict[str, Any]) -> None:
    with open_atomic(path, what="--output file") as f:
        np.savez(f, **{k: np.asarray(v) for k, v in arrays.items()})  # type: ignore[arg-type]  # numpy's stub types **kwds as bool


def _load_npz(path: str) -> dict[str, np.ndarray]:
    if os.path.isdir(path):
        raise DynashapeError(f"input data file '{path}' is a folder", "an .npz file with one array per input name")
    if not os.path.isfile(path):
        raise DynashapeError(f"input data file '{path}' does not exist", "an .npz file with one array per input name")
    try:
        # NOTE: allow_pickle=False (the default, stated): an .npz from elsewhere must not run code.
        with np.load(path, allow_pickle=False) as f:
            if not hasattr(f, "files"):
                raise ValueError("a single array, not an archive")
            return {k: f[k] for k in f.files}
    except Exception as e:
        raise DynashapeError(f"'{path}' is not a readable .npz file ({type(e).__name__}: {' '.join(str(e).split())[:200]})",
                             "an .npz file (np.savez(path, input_1=x))") from e


def _engine_from_args(args: argparse.Namespace) -> Any:
    if getattr(args, "loadEngine", None):
        return dynashape.load(args.loadEngine, **trust_from_args(args))
    if getattr(args, "onnx", None):
        return dynashape.build(args.onnx, profiles_from_args(args), dims=dims_from_args(args) or None,
                               backend=args.backend, device=args.device, precision=args.precision)
    raise DynashapeError("neither --loadEngine nor --onnx", "one of them", "pass --loadEngine=model.engine")


# -- export ---------------------------------------------------------------------------------------

def cmd_export(args: argparse.Namespace) -> int:
    if args.exporter:
        args.dynamo = args.exporter == "dynamo"
    if not args.model:
        raise DynashapeError("no --model", "--model FILE.py:FUNC or zoo:NAME")
    check_output_path(args.output, "--output")
    check_opset(args.opset, args.dynamo)
    model = load_factory(args.model)
    dynamic = _parse_dynamic(args.dynamic)
    output_names = args.output_names.split(",") if args.output_names else None
    if args.shapes:
        inputs = example_inputs(parse_shapes(args.shapes), args.input_dtypes)
    elif args.model.startswith("zoo:"):
        from .. import zoo

        z = zoo.get(args.model[4:])
        inputs, dynamic, output_names = z.example_inputs(), dynamic or z.dynamic_axes, output_names or list(z.output_names)
    else:
        raise DynashapeError("no --shapes", "example input shapes, e.g. --shapes input_1:1x3x512x512")
    profiles = profiles_from_args(args)
    result = dynashape.export(model, inputs, args.output, output_names=output_names, dynamic_axes=dynamic,
                              profile=profiles[0] if profiles else None, dynamo=args.dynamo, opset=args.opset, verify=not args.no_verify,
                              data=args.data)
    print(result)
    return 0


def _align_from_args(text: str) -> dict[str, int] | None:
    if text.strip() in ("auto", "none"):
        return None if text.strip() == "auto" else {}
    out = {}
    for item in text.split(","):
        name, sep, step = item.strip().partition(":")
        if not sep or not name or not step.strip().isdigit():
            raise DynashapeError(f"--align item '{item}'", "DIM:STEP pairs separated by commas, e.g. image_height:32,image_width:32, "
                                 "or auto, or none")
        out[name] = int(step)
    return out


def _jobs_arg(text: str) -> int | str:
    """``--jobs``: a count or ``auto`` (argparse turns the error into a usage line with exit status 2)."""
    if text.strip() == "auto":
        return "auto"
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a count of parallel compiles or 'auto'") from None


def _split_from_args(text: str) -> str | dict[str, Any]:
    """``--split``: ``auto``, or ``DIM:auto``, ``DIM:N`` (N sub-ranges) or ``DIM:C1/C2`` (cut points; one cut
    as ``DIM:C/``) items separated by commas."""
    if text.strip() == "auto":
        return "auto"
    out: dict[str, Any] = {}
    for item in text.split(","):
        name, sep, how = (x.strip() for x in item.strip().partition(":"))
        cuts = [c for c in how.split("/") if c]
        if not sep or not name or not how or ("/" in how and not all(c.isdigit() for c in cuts)) or ("/" not in how and how != "auto" and not how.isdigit()):
            raise DynashapeError(f"--split item '{item}'", "auto, or DIM:auto, DIM:N (N sub-ranges) or DIM:C1/C2 (cut points; one "
                                 "cut as DIM:C/) separated by commas", "e.g. --split batch:auto or --split batch:4/16")
        out[name] = "auto" if how == "auto" else [int(c) for c in cuts] if "/" in how else int(how)
    return out


def _inductor_config_from_args(items: list[str]) -> dict[str, bool | int | float | str]:
    """``--inductor-config KEY=VALUE`` items: true/false, integers and floats as such, other values as text."""
    out: dict[str, bool | int | float | str] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip() or not text.strip():
            raise DynashapeError(f"--inductor-config '{item}'", "KEY=VALUE, e.g. force_layout_optimization=true or "
                                 "triton.max_tiles=3", "one setting per flag; repeat the flag for more")
        text = text.strip()
        value: bool | int | float | str
        if text.lower() in ("true", "false"):
            value = text.lower() == "true"
        else:
            try:
                value = int(text)
            except ValueError:
                try:
                    value = float(text)
                except ValueError:
                    value = text
        out[key.strip()] = value
    return out


# -- inspect --------------------------------------------------------------------------------------

def cmd_inspect(args: argparse.Namespace) -> int:
    info = dynashape.inspect(args.path, **trust_from_args(args))
    print(json.dumps(info.to_json(), indent=1) if args.json else info)
    return 0


# -- build ----------------------------------------------------------------------------------------

def cmd_build(args: argparse.Namespace) -> int:
    check_output_path(args.saveEngine, "--saveEngine")
    profiles = profiles_from_args(args)
    common: dict[str, Any] = dict(
        dims=dims_from_args(args) or None, backend=args.backend, device=args.device, precision=args.precision,
        append_ops=args.append_op, optimization_level=args.optimization_level, tuning=args.tuning, threads=args.threads,
        validate=not args.no_validate, tf32=args.tf32, channels_last=args.channels_last, data=args.data, jobs=args.jobs,
    )
    if args.align:
        common.update(align=_align_from_args(args.align), align_pad=args.align_pad)
    if args.attention:
        common["attention"] = args.attention
    if args.split:
        common["split"] = _split_from_args(args.split)
    if args.inductor_config:
        common["inductor_config"] = _inductor_config_from_args(args.inductor_config)
    if args.plan:
        common["plan"] = args.plan
    if args.onnx and args.model:
        raise DynashapeError("both --onnx and --model", "one source")
    if args.onnx:
        engine = dynashape.build(args.onnx, profiles, **common)
    elif args.model:
        if not profiles:
            raise DynashapeError("--model without --minShapes/--optShapes/--maxShapes", "full shapes for a module (they define its inputs)")
        shapes = {n: r.opt for n, r in profiles[0].items()}
        if args.model.startswith("zoo:"):
            # a zoo model's own names for its dynamic dims and outputs, as `dynashape export` uses them
            from .. import zoo

            z = zoo.get(args.model[4:])
            common.update(dynamic_axes={n: a for n, a in z.dynamic_axes.items() if n in shapes}, output_names=list(z.output_names))
        engine = dynashape.build(load_factory(args.model), profiles, example_inputs=example_inputs(shapes, args.input_dtypes), **common)
    else:
        raise DynashapeError("no model", "--onnx FILE or --model FILE.py:FUNC")
    if args.saveEngine:
        engine.save(args.saveEngine, signing_key=args.signing_key)
    print(f"built {engine.backend} engine ({engine.device}, {engine.precision}) with {len(engine.profiles)} profile(s) "
          f"in {engine.manifest.build_seconds:.1f} s" + (f" -> {args.saveEngine}" if args.saveEngine else " (not saved: pass --saveEngine)"))
    for k, p in enumerate(engine.profiles):
        print(f"  profile {k}: {p.describe()}")
    plan = engine.manifest.plan
    if plan is not None and plan.ladder is not None and plan.padding is not None:
        print(f"  ladder on '{plan.ladder.dim}': {len(plan.ladder.buckets)} buckets; padding {'safe' if plan.padding.safe else 'refused'}: {plan.padding.reason}")
    if plan is not None:
        from .._plan.report import measured_lines

        for line in measured_lines(plan, indent="  "):
            print(line)
    return 0


# -- run ------------------------------------------------------------------------------------------

def cmd_run(args: argparse.Namespace) -> int:
    check_output_path(args.output, "--output")
    engine = _engine_from_args(args)
    if args.input_data:
        feed: dict[str, Any] = _load_npz(args.input_data)
    elif args.shapes:
        from .._data import make_inputs

        shapes_in = parse_shapes(args.shapes)
        # NOTE: names, ranks and ranges are checked against the profiles before any allocation.
        engine.select_profile(shapes_in)
        feed = make_inputs(engine.inputs, shapes_in, hints=engine.manifest.input_hints)
    else:
        raise DynashapeError("no input", "--shapes NAME:SHAPE,... (random data) or --input-data in.npz")
    shapes = {n: tuple(np.shape(x)) for n, x in feed.items()}
    k = args.profile if args.profile is not None else engine.select_profile(shapes)
    import time

    t = time.perf_counter()
    outs = engine.run(feed, profile=args.profile)
    ms = (time.perf_counter() - t) * 1000
    print(f"profile {k}, {ms:.2f} ms, inputs " + ", ".join(f"{n}:{format_shape(s)}" for n, s in shapes.items()))
    for n, o in outs.items():
        a = np.asarray(o, dtype=np.float64)
        print(f"  {n}: {np.asarray(o).dtype} {format_shape(a.shape)}  min {a.min():.4g}  mean {a.mean():.4g}  max {a.max():.4g}")
    if args.output:
        _save_npz(args.output, outs)
        print(f"wrote {args.output}")
    return 0


# -- bench ----------------------------------------------------------------------------------------

def cmd_bench(args: argparse.Namespace) -> int:
    shapes = [parse_shapes(s) for s in args.shapes] or None
    engine = _engine_from_args(args)
    results = dynashape.bench(engine, shapes, iterations=args.iterations, warmup_ms=args.warmUp, duration_s=args.duration, data=args.data)
    if args.json:
        print(json.dumps([r.to_json() for r in results], indent=1))
        return 0
    print(f"{engine.backend} engine ({engine.device}, {engine.precision})")
    print(results[0].HEADER)
    for r in results:
        print(r.row())
    return 0


# -- compare --------------------------------------------------------------------------------------

def cmd_compare(args: argparse.Namespace) -> int:
    if bool(args.onnx) == bool(args.model):
        raise DynashapeError("a reference", "exactly one of --onnx FILE (ONNX Runtime) or --model FILE.py:FUNC (PyTorch)")
    engine = dynashape.load(args.loadEngine, **trust_from_args(args))
    reference = args.onnx or load_factory(args.model)
    shapes = [parse_shapes(s) for s in args.shapes] or None
    result = dynashape.compare(engine, reference, shapes, atol=args.atol, rtol=args.rtol, data=args.data)
    print(json.dumps(result.to_json(), indent=1) if args.json else result)
    return 0 if result.passed else 1


def register(sub: Any) -> None:
    p = sub.add_parser("export", help="export a torch model to ONNX with dynamic axes, verified in ONNX Runtime")
    add_model_args(p)
    p.add_argument("--shapes", help=f"example input shapes: {_SH}")
    p.add_argument("--dynamic", action="append", default=[], metavar="NAME:AXIS=DIM,...", help="dynamic axes of one input, e.g. input_1:2=image_height,3=image_width (repeat per input)")
    p.add_argument("--output-names", help="comma-separated output names")
    p.add_argument("--output", "-o", required=True, help="ONNX file to write")
    p.add_argument("--dynamo", action="store_true", help="use torch's dynamo exporter (default: the TorchScript-based one)")
    p.add_argument("--exporter", choices=["torchscript", "dynamo"], help="the exporter: torchscript (default) or dynamo (same as --dynamo)")
    p.add_argument("--data", metavar="FILE", help=f"verify on these inputs instead of generated ones: {DATA_HELP}")
    p.add_argument("--opset", type=int, help="ONNX opset (default: the exporter's)")
    p.add_argument("--no-verify", action="store_true", help="skip the ONNX Runtime verification")
    add_profile_args(p)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("inspect", help="describe an ONNX model or an engine")
    p.add_argument("path", help="an .onnx file or an engine file")
    add_trust_args(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser("build", help="build an engine with optimization profiles")
    add_model_args(p)
    add_profile_args(p)
    add_precision_args(p)
    g = p.add_argument_group("build")
    g.add_argument("--backend", default="auto", choices=["auto", "onnxruntime", "inductor", "tensorrt"], help="default auto: onnxruntime on CPU, tensorrt (else inductor) on CUDA")
    g.add_argument("--saveEngine", metavar="FILE", help="engine file to write")
    g.add_argument("--signing-key", metavar="KEY.pem", help="sign the engine with this Ed25519 private key "
                   "(default: $DYNASHAPE_SIGNING_KEY; make one with `dynashape keygen`)")
    g.add_argument("--plan", metavar="FILE", help="build a plan from `dynashape plan` (its profiles and bucket ladder)")
    g.add_argument("--append-op", action="append", default=[], metavar="OUTPUT:OP", help="append an op to an output, e.g. output_1:Sigmoid")
    g.add_argument("--optimization-level", choices=["disable", "basic", "extended", "all"], help="onnxruntime graph optimizations (default all)")
    g.add_argument("--tuning", choices=["default", "max-autotune", "coordinate-descent", "max-autotune-cd"],
                   help="inductor: default (fast build), max-autotune (GEMM/conv choices), coordinate-descent (Triton tiling) "
                   "or max-autotune-cd (both); tuned at each profile's opt shape")
    g.add_argument("--align", metavar="DIM:STEP[,DIM:STEP]", help="inductor: compile a part of each profile for the multiples "
                   "of STEP along DIM, e.g. image_height:32,image_width:32 or batch:8; auto (the default): on CUDA, the spatial "
                   "dims of a conv net by 32; none: no aligned part")
    g.add_argument("--align-pad", action="store_true", help="with --align: pad other values to the next multiple and crop the "
                   "outputs where the build finds the model padding-safe (else they run in a general part)")
    g.add_argument("--split", metavar="auto|DIM:HOW[,DIM:HOW]", help="inductor: compile a dim's range as sub-ranges, each "
                   "tuned at its own opt (one profile for the user): auto (every free dim whose max/min passes 4), or per dim "
                   "DIM:auto, DIM:N (N geometric sub-ranges) or DIM:C1/C2 (cut points: min..C1, C1+1..C2, C2+1..max); "
                   "aligned dims are not split")
    g.add_argument("--attention", choices=["auto", "default", "sdpa"], help="inductor: sdpa exports nn.MultiheadAttention "
                   "self-attention as one batch-first SDPA call and fails where that changes a module's output; auto (the "
                   "default) does it where it does not; default keeps the modules as they are")
    g.add_argument("--inductor-config", action="append", metavar="KEY=VALUE", help="inductor: a torch._inductor.config "
                   "setting for every package's compile, e.g. force_layout_optimization=true (channels-last layout "
                   "optimization, which Inductor turns off when convolutions have symbolic sizes); repeatable, recorded "
                   "in the engine")
    g.add_argument("--jobs", type=_jobs_arg, metavar="N|auto", help="inductor: packages compiled at once, in child processes "
                   "(default 1: one after the other, in this process; auto: one per 4 CPU cores, at most 8)")
    g.add_argument("--threads", type=int, help="CPU threads per inference (default: all)")
    g.add_argument("--no-validate", action="store_true", help="skip running the new engine against the source")
    g.add_argument("--data", metavar="FILE", help=f"validate on these inputs instead of generated ones: {DATA_HELP}")
    g.add_argument("--tf32", action="store_true", help="allow TF32 in fp32 matmuls/convolutions on CUDA (default: off, fp32 is fp32)")
    g.add_argument("--channels-last", dest="channels_last", action="store_true", default=None, help="inductor: channels-last layout (default: on for CUDA conv nets)")
    g.add_argument("--no-channels-last", dest="channels_last", action="store_false", help="inductor: keep the contiguous layout")
    p.set_defaults(func=cmd_build)

    for name, helptext, fn in (("run", "run an engine once", cmd_run), ("bench", "time an engine per shape, trtexec-style", cmd_bench)):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("--loadEngine", metavar="FILE", help="engine file")
        add_trust_args(p)
        p.add_argument("--onnx", metavar="FILE", help="build from this ONNX file first (with the profile flags)")
        add_profile_args(p)
        add_precision_args(p)
        p.add_argument("--backend", default="auto", help="with --onnx: the backend to build with")
        if name == "run":
            p.add_argument("--shapes", help=f"input shapes (random data): {_SH}")
            p.add_argument("--profile", type=int, help="force profile N (default: the closest that fits)")
            p.add_argument("--input-data", metavar="FILE.npz", help="inputs, one array per input name")
            p.add_argument("--output", metavar="FILE.npz", help="write the outputs here")
        else:
            p.add_argument("--shapes", action="append", default=[], help=f"shapes to time (repeat for several; default: each profile's opt): {_SH}")
            add_timing_args(p)
            p.add_argument("--data", metavar="FILE", help=f"time these inputs (one timed set per feed) instead of generated ones: {DATA_HELP}")
            p.add_argument("--json", action="store_true", help="print JSON")
        p.set_defaults(func=fn)

    p = sub.add_parser("compare", help="compare an engine with ONNX Runtime or PyTorch on the same inputs")
    p.add_argument("--loadEngine", metavar="FILE", required=True, help="engine file")
    add_trust_args(p)
    p.add_argument("--onnx", metavar="FILE", help="reference: this ONNX model in ONNX Runtime")
    p.add_argument("--model", metavar="FILE.py:FUNC", help="reference: this torch model in eager PyTorch")
    p.add_argument("--shapes", action="append", default=[], help=f"shapes to compare (repeat; default: every profile's min/opt/max): {_SH}")
    p.add_argument("--data", metavar="FILE", help=f"compare on these inputs instead of generated ones: {DATA_HELP}")
    p.add_argument("--atol", type=float, default=1e-4, help="absolute tolerance (default 1e-4)")
    p.add_argument("--rtol", type=float, default=1e-4, help="relative tolerance (default 1e-4)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("keygen", help="make an Ed25519 key pair for signing engine files")
    p.add_argument("--output", "-o", required=True, metavar="NAME", help="writes NAME.pem (private, mode 600) and NAME.pub.pem")
    p.set_defaults(func=cmd_keygen)


def cmd_keygen(args: argparse.Namespace) -> int:
    from .._engine.signing import generate_keypair

    private, public = generate_keypair(args.output)
    print(f"private key: {private} (sign with: dynashape build ... --signing-key {private})")
    print(f"public key:  {public} (verify with: --verify-key {public} --require-signed)")
    return 0


_SH = "NAME:DxDx...,NAME:..."
DATA_HELP = ("FILE.npz (arrays named after the inputs: one feed; or with one more leading axis: one feed per index) "
             "or FILE.py:FUNCTION returning or yielding feeds (dicts input name -> array)")

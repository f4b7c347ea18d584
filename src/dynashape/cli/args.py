"""Argument groups shared by the subcommands, in trtexec's spelling where trtexec has the flag."""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from typing import Any

from .._errors import DynashapeError, ProfileError
from .._profiles import Profile, parse_dim_ranges, parse_shapes

SHAPES_HELP = "NAME:DxDx...[,NAME:...]; quote names with ':' or ',' ('input:0':1x3x224x224)"


def add_model_args(p: argparse.ArgumentParser, *, onnx_required: bool = False) -> None:
    g = p.add_argument_group("model")
    g.add_argument("--onnx", metavar="FILE", required=onnx_required, help="ONNX model file")
    g.add_argument("--model", metavar="FILE.py:FUNC", help="a Python file and a function returning a torch.nn.Module "
                   "(or zoo:NAME for a built-in tiny model: " + "zoo:segmentation, zoo:superres, ...)")
    g.add_argument("--input-dtypes", metavar="NAME:DTYPE,...", help="dtypes of --model inputs (default float32), e.g. ids:int64")


def add_profile_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("optimization profiles (repeat the min/opt/max triple to add a profile)")
    g.add_argument("--minShapes", action="append", default=[], metavar="SHAPES", help=f"min shapes: {SHAPES_HELP}")
    g.add_argument("--optShapes", action="append", default=[], metavar="SHAPES", help=f"opt shapes, the ones the engine is tuned for: {SHAPES_HELP}")
    g.add_argument("--maxShapes", action="append", default=[], metavar="SHAPES", help=f"max shapes: {SHAPES_HELP}")
    g.add_argument("--dims", action="append", default=[], metavar="NAME=MIN:OPT:MAX,...",
                   help="ranges per symbolic dim name, e.g. batch=1:8:32,image_height=512:1024:1600 (one profile per flag)")


def add_precision_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("precision and device")
    x = g.add_mutually_exclusive_group()
    x.add_argument("--fp16", action="store_const", const="fp16", dest="precision", help="compute in float16")
    x.add_argument("--bf16", action="store_const", const="bf16", dest="precision", help="compute in bfloat16")
    g.add_argument("--device", default=None, help="cpu (default), cuda or cuda:N")


def add_timing_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("timing (trtexec's semantics)")
    g.add_argument("--iterations", type=int, default=None, help="run at least N inferences per shape (default 10)")
    g.add_argument("--warmUp", type=float, default=None, metavar="MS", help="warm up for MS milliseconds per shape (default 200)")
    g.add_argument("--duration", type=float, default=None, metavar="S", help="run for at least S seconds per shape (default 3)")


def profiles_from_args(args: argparse.Namespace) -> list[Profile]:
    """The i-th --minShapes/--optShapes/--maxShapes make profile i; --dims flags are handled by build().

    As in trtexec, a profile given only by --optShapes has min = opt = max.
    """
    mins, opts, maxs = args.minShapes, args.optShapes, args.maxShapes
    n = max(len(mins), len(opts), len(maxs))
    if n == 0:
        return []
    if opts and not mins and not maxs:
        return [Profile.from_shapes(parse_shapes(o), parse_shapes(o), parse_shapes(o)) for o in opts]
    if not (len(mins) == len(opts) == len(maxs)):
        raise ProfileError(
            f"{len(mins)} --minShapes, {len(opts)} --optShapes and {len(maxs)} --maxShapes",
            "the same number of each: the i-th of each makes profile i",
            "repeat all three flags once per profile",
        )
    return [Profile.from_shapes(parse_shapes(a), parse_shapes(b), parse_shapes(c)) for a, b, c in zip(mins, opts, maxs, strict=True)]


def dims_from_args(args: argparse.Namespace) -> list[dict[str, tuple[int, int, int]]]:
    return [parse_dim_ranges(d) for d in getattr(args, "dims", [])]


def load_factory(spec: str) -> Any:
    """``file.py:func`` or ``zoo:NAME`` -> the torch.nn.Module the function returns."""
    if spec.startswith("zoo:"):
        from .. import zoo

        return zoo.get(spec[4:]).make()
    path, colon, func = spec.rpartition(":")
    if not colon or not path.endswith(".py") or not func.isidentifier():
        raise DynashapeError(f"--model '{spec}'", "FILE.py:FUNCTION (a function returning a torch.nn.Module) or zoo:NAME")
    if not os.path.isfile(path):
        raise DynashapeError(f"model file '{path}' does not exist", "a Python file", "check the path")
    mod_name = f"_dynashape_user_{abs(hash(os.path.abspath(path)))}"
    s = importlib.util.spec_from_file_location(mod_name, path)
    assert s is not None and s.loader is not None
    module = importlib.util.module_from_spec(s)
    sys.modules[mod_name] = module
    s.loader.exec_module(module)
    fn = getattr(module, func, None)
    if not callable(fn):
        names = [n for n in dir(module) if callable(getattr(module, n)) and not n.startswith("_")]
        raise DynashapeError(f"'{path}' has no function '{func}'", "one of: " + ", ".join(names))
    model = fn()
    import torch

    if not isinstance(model, torch.nn.Module):
        raise DynashapeError(f"{spec}() returned a {type(model).__name__}", "a torch.nn.Module")
    return model


def example_inputs(shapes: dict[str, tuple[int, ...]], dtypes: str | None) -> dict[str, Any]:
    """Random example tensors at ``shapes`` (floats in [0, 1), integers in {0, 1})."""
    import torch

    from .._dtypes import to_torch

    kinds: dict[str, str] = {}
    for item in (dtypes or "").split(","):
        if item.strip():
            n, _, d = item.rpartition(":")
            kinds[n.strip()] = d.strip()
    unknown = set(kinds) - set(shapes)
    if unknown:
        raise DynashapeError(f"--input-dtypes names {sorted(unknown)}", f"inputs given shapes: {sorted(shapes)}")
    out = {}
    for n, s in shapes.items():
        try:
            dt = to_torch(kinds.get(n, "float32"))
        except DynashapeError:
            raise DynashapeError(f"dtype '{kinds[n]}' for input '{n}'", "a dtype name such as float32, float16, int64, bool") from None
        out[n] = torch.rand(s).to(dt) if dt.is_floating_point else torch.randint(0, 2, s).to(dt)
    return out

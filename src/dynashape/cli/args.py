"""Argument groups shared by the subcommands, in trtexec's spelling where trtexec has the flag."""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from typing import Any

from .._errors import DynashapeError, ProfileError
from .._io import destination
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
    if os.path.isdir(path):
        raise DynashapeError(f"model file '{path}' is a folder", "a Python file", "name the .py file inside it")
    if not os.path.isfile(path):
        raise DynashapeError(f"model file '{path}' does not exist", "a Python file", "check the path")
    mod_name = f"_dynashape_user_{abs(hash(os.path.abspath(path)))}"
    s = importlib.util.spec_from_file_location(mod_name, path)
    assert s is not None and s.loader is not None
    module = importlib.util.module_from_spec(s)
    sys.modules[mod_name] = module
    # NOTE: the user's file is user input: its syntax errors and exceptions are reported in one line
    # with the file and line, not as a traceback through dynashape.
    try:
        s.loader.exec_module(module)
    except SyntaxError as e:
        sys.modules.pop(mod_name, None)
        raise DynashapeError(f"'{path}' line {e.lineno}: SyntaxError: {e.msg}", "a Python file that imports",
                             f"fix the syntax, then check with: python {path}") from e
    except Exception as e:
        sys.modules.pop(mod_name, None)
        raise DynashapeError(f"importing '{path}' raised {_where(e, path)}{type(e).__name__}: {e}", "a Python file that imports",
                             f"fix the error, then check with: python {path}") from e
    fn = getattr(module, func, None)
    if not callable(fn):
        names = [n for n in dir(module) if callable(getattr(module, n)) and not n.startswith("_")]
        raise DynashapeError(f"'{path}' has no function '{func}'", "one of: " + (", ".join(names) or "(it defines no function)"))
    try:
        model = fn()
    except Exception as e:
        raise DynashapeError(f"{spec}() raised {_where(e, path)}{type(e).__name__}: {e}", "a function that returns a torch.nn.Module",
                             f"fix the function in '{path}'") from e
    import torch

    if not isinstance(model, torch.nn.Module):
        raise DynashapeError(f"{spec}() returned a {type(model).__name__}", "a torch.nn.Module")
    return model


def _where(e: BaseException, path: str) -> str:
    """``"at line N "`` of the user's file, from the innermost frame there."""
    tb, line = e.__traceback__, None
    while tb is not None:
        if os.path.abspath(tb.tb_frame.f_code.co_filename) == os.path.abspath(path):
            line = tb.tb_lineno
        tb = tb.tb_next
    return f"at line {line} " if line is not None else ""


def check_output_path(path: str | None, flag: str) -> None:
    """Refuse an output path whose folder is missing or that names a folder, before any work."""
    if not path:
        return
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise DynashapeError(f"{flag} '{path}' is a folder", "a file path for the output",
                             f"name a file inside it, e.g. {os.path.join(path, 'out')}")
    if not os.path.isdir(folder):
        raise DynashapeError(f"{flag} '{path}': the folder '{folder}' does not exist", "a file in an existing folder",
                             f"create it: mkdir -p {folder}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise DynashapeError(f"{flag} '{path}': this user may not write to the folder '{folder}'", "a writable folder",
                             "choose another path or fix the permissions")
    destination(path, what=flag)  # a device node (--saveEngine /dev/null), a pipe: refused before the work


def add_trust_args(p: argparse.ArgumentParser) -> None:
    """Flags for loading engine files, which run native code (README: "Engine files run native code")."""
    g = p.add_argument_group("trust")
    g.add_argument("--verify-key", metavar="KEY.pub.pem", help="Ed25519 public key a signed engine must be signed with "
                   "(default: $DYNASHAPE_VERIFY_KEY)")
    g.add_argument("--require-signed", action="store_true", default=None,
                   help="refuse engines without a valid signature (default: $DYNASHAPE_REQUIRE_SIGNED=1)")


def trust_from_args(args: argparse.Namespace) -> dict[str, Any]:
    return {"verify_key": getattr(args, "verify_key", None), "require_signature": getattr(args, "require_signed", None)}


def check_opset(opset: int | None, dynamo: bool) -> None:
    """Refuse an opset that the chosen exporter cannot write, before importing the model."""
    if opset is None:
        return
    try:
        from torch.onnx import _constants as c  # NOTE: torch's own bounds; private, so guarded

        lo, hi = (18, c.ONNX_MAX_OPSET) if dynamo else (c.ONNX_MIN_OPSET, c.ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET)
    except (ImportError, AttributeError):
        lo, hi = 7, 99
    if not lo <= opset <= hi:
        which = "dynamo" if dynamo else "TorchScript"
        raise DynashapeError(f"--opset {opset}", f"an opset from {lo} to {hi} for torch's {which} exporter",
                             "omit --opset for the exporter's default" + ("" if dynamo else ", or add --dynamo for newer opsets"))


def example_inputs(shapes: dict[str, tuple[int, ...]], dtypes: str | None) -> dict[str, Any]:
    """Example tensors at ``shapes`` from the one data generator (``dynashape._data.make_inputs``)."""
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
    from .._data import make_inputs
    from .._specs import TensorSpec

    out = {}
    for n, s in shapes.items():
        try:
            dt = to_torch(kinds.get(n, "float32"))
        except DynashapeError:
            raise DynashapeError(f"dtype '{kinds[n]}' for input '{n}'", "a dtype name such as float32, float16, int64, bool") from None
        # NOTE: the one data generator (ids and masks that every model accepts), as torch tensors.
        arr = make_inputs([TensorSpec(n, "float32" if dt.is_floating_point else str(dt).removeprefix("torch."), tuple(s))], {n: s})[n]
        out[n] = torch.from_numpy(arr).to(dt)
    return out

"""``dynashape check``: find (and with ``--fix``, repair) dynamic dims that the graph pins to a number."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .._errors import DynashapeError


def add_parser(subparsers: Any) -> None:
    """Register ``check`` on the lead's subparsers (``argparse._SubParsersAction``)."""
    p = subparsers.add_parser(
        "check",
        help="find where a dynamic dim becomes fixed inside an ONNX graph",
        description="Find every place where a dim that the model's inputs declare dynamic becomes fixed inside the "
                    "graph (a view(1, -1), a size frozen by tracing, a Resize to a fixed size), explain it in PyTorch "
                    "terms, and with --fix rewrite the cases where a rewrite is provably safe. Exit status: 0 clean, "
                    "1 findings, 2 user error.",
    )
    _add_arguments(p)
    p.set_defaults(func=run)


def _add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="path to an .onnx file")
    shapes = p.add_argument_group("shapes (optional; opt is taken as the export shape, max or min as the shape to compare with)")
    for kind in ("min", "opt", "max"):
        shapes.add_argument(f"--{kind}Shapes", dest=f"{kind}_shapes", metavar="SPEC",
                            help=f"{kind} shapes in trtexec syntax: name:1x3x224x224,mask:1x128 (quote names with ':' or ',')")
    from .commands import DATA_HELP

    p.add_argument("--data", metavar="FILE", help=f"run the model on these inputs (cut or repeated to each probe's shapes) "
                                                  f"instead of generated ones: {DATA_HELP}")
    p.add_argument("--json", action="store_true", help='print {"findings": [...]} as JSON instead of text')
    p.add_argument("--no-run", action="store_true", help="symbolic propagation only: do not run the model with ONNX Runtime")
    p.add_argument("--fix", action="store_true", help="rewrite the safely fixable findings and write the verified model to -o")
    p.add_argument("-o", "--output", metavar="PATH", help="where --fix writes the repaired model (required with --fix)")


def _profile(args: argparse.Namespace) -> Any:
    from .._profiles import Profile, parse_shapes

    given = {k: getattr(args, f"{k}_shapes") for k in ("min", "opt", "max")}
    if not any(given.values()):
        return None
    if given["opt"] and not given["min"] and not given["max"]:
        opt = parse_shapes(given["opt"])
        return Profile.from_shapes(opt, opt, opt)
    missing = [k for k, v in given.items() if not v]
    if missing:
        raise DynashapeError(
            f"--{'Shapes, --'.join(k for k in given if given[k])}Shapes given without --{'Shapes, --'.join(missing)}Shapes",
            "either --optShapes alone (the export shape) or all three of --minShapes/--optShapes/--maxShapes",
            "add the missing flags",
        )
    return Profile.from_shapes(*(parse_shapes(given[k] or "") for k in ("min", "opt", "max")))


def run(args: argparse.Namespace) -> int:
    """Run ``check`` (and ``fix``); returns the exit status: 0 no finding, 1 findings."""
    from .._check import check, fix

    if args.fix and not args.output:
        raise DynashapeError("--fix without -o", "-o PATH for the repaired model", "add -o fixed.onnx")
    if args.output and not args.fix:
        raise DynashapeError(f"-o {args.output} without --fix", "-o only together with --fix", "add --fix")
    if args.output:
        from .args import check_output_path

        check_output_path(args.output, "-o")
    profile = _profile(args)
    report = check(args.model, profile, empirical=not args.no_run, data=args.data)
    result = fix(args.model, args.output, profiles=profile, data=args.data) if args.fix and report.findings else None
    if args.json:
        out: dict[str, Any] = report.to_json()
        if result is not None:
            out["fix"] = {
                "output": result.output_path,
                "fixed": [f.to_json() for f in result.fixed],
                "unfixed": [{**f.to_json(), "reason": why} for f, why in result.unfixed],
            }
        print(json.dumps(out, indent=2))
    else:
        print(report)
        if result is not None:
            print(result)
    return 1 if report.findings else 0


def main(argv: list[str] | None = None) -> int:
    """Standalone entry point until the lead's ``dynashape`` CLI wires this subcommand."""
    parser = argparse.ArgumentParser(prog="dynashape")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except DynashapeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
